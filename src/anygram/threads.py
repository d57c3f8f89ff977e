"""Worker threads that are started without waiting for each to run."""

from __future__ import annotations

import _thread
import queue
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from functools import partial
from typing import Any, TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")


class Workers:
    """``threads`` threads that run the calls :meth:`map` hands them, all started at once.

    ``threading.Thread.start`` waits until the new thread runs, a wait for the scheduler
    and the GIL of ~0.3 ms on an idle machine and of several ms on a busy one: 16 such
    starts were most of a cold 16-shard index's open. These threads are started without
    that wait (``_thread.start_new_thread``) and idle on a queue until work comes; a call
    handed to them before they run waits in the queue. (Started on demand by the first
    calls, as a ``ThreadPoolExecutor``'s, they would each hold the GIL for up to the switch
    interval before the caller could start the next.) No ``threading.Thread`` objects: the
    threads are daemons, unnamed, stopped by :meth:`shutdown`.
    """

    def __init__(self, threads: int) -> None:
        self._jobs: _Jobs = queue.SimpleQueue()
        self._threads = threads
        for _ in range(threads):
            # (the threads hold the queue, not this object: when it is collected unclosed,
            # as a ThreadPoolExecutor's threads do, they stop)
            _thread.start_new_thread(_work, (self._jobs,))
        self._stop = weakref.finalize(self, _stop, self._jobs, threads)

    def map(self, fn: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
        """``[fn(x) for x in items]``, the calls run by the threads; the first error in
        ``items``' order is raised (after every call has ended)."""
        futures: list[Future[_R]] = []
        for x in items:
            f: Future[_R] = Future()
            self._jobs.put((f, partial(fn, x)))
            futures.append(f)
        for f in futures:
            f.exception()  # wait for all: none still runs when an error is raised
        return [f.result() for f in futures]

    def shutdown(self) -> None:
        """Stop the threads, each after the calls handed to it before."""
        self._stop()


_Jobs = queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None]


def _work(jobs: _Jobs) -> None:
    """A worker thread: run the calls from ``jobs`` until a None."""
    while (job := jobs.get()) is not None:
        done, call = job
        try:
            done.set_result(call())
        except BaseException as e:  # handed to the caller, as a pool's future does
            done.set_exception(e)
        del job, done, call  # (a finished call's arguments are not kept while waiting)


def _stop(jobs: _Jobs, threads: int) -> None:
    for _ in range(threads):
        jobs.put(None)
