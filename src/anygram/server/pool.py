"""Engine calls off the event loop: bounded thread pools, admission counters, a time budget.

Requests run in one of two lanes (:data:`Lane`), each a :class:`WorkPool` of its own, so a
few slow requests cannot take the threads the cheap ones need: ``"light"`` for the n-gram
statistics (count, prob, ntd, the ∞-gram, find: answers read off suffix-array ranges, whose
work the query size and the vocabulary bound), ``"heavy"`` for everything that reads
documents or walks a whole text (search, documents, CNF, creativity, infgram-text,
attribute). Each route names its lane (:class:`~anygram.server.common.Operation`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal, TypeVar

from .errors import OverloadedError, TimeBudgetExceededError

#: The lane a request runs in (see the module doc).
Lane = Literal["light", "heavy"]

T = TypeVar("T")


class WorkPool:
    """Runs blocking calls in ``workers`` threads, admitting at most ``max_pending`` at once.

    Admission is a counter checked without waiting: a request over the bound is refused at
    once (:class:`OverloadedError`, 503) instead of queueing behind the others. A call is
    counted from admission until its thread finishes (or until it is cancelled before it
    started), so a request that ran out of time still holds its place while its engine call,
    which cannot be interrupted, completes.
    """

    def __init__(self, workers: int, max_pending: int, timeout_s: float,
                 name: str = "anygram-serve") -> None:
        self.workers = workers
        self.max_pending = max_pending
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        return self._pending

    def _release(self, _: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread, within the admission bound and the time budget."""
        with self._lock:
            if self._pending >= self.max_pending:
                raise OverloadedError(f"the server is busy ({self._pending} requests of this "
                                      "kind in flight): retry in a moment")
            self._pending += 1
        try:
            future = self._executor.submit(fn, *args)
        except BaseException:
            with self._lock:
                self._pending -= 1
            raise
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
        except (asyncio.TimeoutError, TimeoutError):
            raise TimeBudgetExceededError(
                f"the request took more than its time budget of {self.timeout_s:g} s: "
                "narrow the query (fewer tokens, documents or a smaller window)") from None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
