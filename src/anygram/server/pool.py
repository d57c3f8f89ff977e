"""Engine calls off the event loop: a bounded thread pool, an admission counter, a time budget."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .errors import OverloadedError, TimeBudgetExceededError


class WorkPool:
    """Runs blocking calls in ``workers`` threads, admitting at most ``max_pending`` at once.

    Admission is a counter checked without waiting: a request over the bound is refused at
    once (:class:`OverloadedError`, 503) instead of queueing behind the others. A call is
    counted from admission until its thread finishes (or until it is cancelled before it
    started), so a request that ran out of time still holds its place while its engine call,
    which cannot be interrupted, completes.
    """

    def __init__(self, workers: int, max_pending: int, timeout_s: float) -> None:
        self.workers = workers
        self.max_pending = max_pending
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=workers,
                                            thread_name_prefix="anygram-serve")
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        return self._pending

    def _release(self, _: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    async def run(self, fn: Callable[..., dict[str, Any]], *args: Any,
                  latency_key: str = "latency_ms") -> dict[str, Any]:
        """``fn(*args)`` in a worker thread, its wall time (ms) added under ``latency_key``."""
        with self._lock:
            if self._pending >= self.max_pending:
                raise OverloadedError(f"the server is busy ({self._pending} requests in "
                                      "flight): retry in a moment")
            self._pending += 1
        try:
            future = self._executor.submit(_timed, fn, args, latency_key)
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


def _timed(fn: Callable[..., dict[str, Any]], args: tuple[Any, ...],
           latency_key: str) -> dict[str, Any]:
    started = time.perf_counter()
    out = fn(*args)
    out[latency_key] = round((time.perf_counter() - started) * 1000, 3)
    return out
