"""Running one function on every shard of a group: in the calling thread while the shards
answer in microseconds, on a thread pool while they do not, so that their reads overlap.

A search of a warm shard (its pages in the page cache) takes a few microseconds: handing it
to a thread costs more than it does. A search of a cold shard waits ~0.1 ms on each page it
reads from disk, and a shard's reads depend on each other (a binary search), so the only way
to shorten a cold query over many shards is to search them at the same time. The kernels
release the GIL, so threads run them in parallel, and a thread waiting on a page costs
nothing. So the fan-out adapts: a group starts on the pool (an index just opened is cold),
moves to the calling thread once its per-shard calls have been fast for a while, and moves
back as soon as a sequential pass is slow (pages evicted, or big answers).

"Slow" is measured as the calling thread's own cost, not the wall clock: its CPU time and
its major page faults (pages read from storage), from ``getrusage(RUSAGE_THREAD)``. Under
concurrent queries (a server's threads) the wall time of a pass includes waiting for the
GIL, which is no reason to hand the shards to the pool: judged by the wall clock, 8 client
threads flipped a warm 10-shard index to the pool and back, at a third of the throughput.
Where there is no per-thread usage (not Linux), the wall clock it is.

Threads: one per shard, at most :data:`MAX_THREADS`: an I/O-bound query wants every shard's
read in flight at once, and a thread blocked on a page fault uses no CPU.
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from ..threads import Workers

_T = TypeVar("_T")
_R = TypeVar("_R")

#: The most threads one group's pool runs.
MAX_THREADS = 64
#: A per-shard call slower than this (seconds) is not worth running in the calling thread:
#: it read pages from disk (~0.1 ms each) or computed a big answer.
SLOW = 200e-6
#: Consecutive fast pool passes after which the group runs in the calling thread.
SETTLE = 8

_RUSAGE_THREAD: int | None = getattr(resource, "RUSAGE_THREAD", None)  # Linux only


def _usage() -> tuple[float, float, int]:
    """Wall seconds, this thread's CPU seconds and its major page faults, so far (module
    docstring); without per-thread usage, no faults. (``getrusage``'s CPU times are counted
    in scheduler ticks, too coarse here: the CPU time is ``thread_time``'s.)"""
    faults = 0 if _RUSAGE_THREAD is None else resource.getrusage(_RUSAGE_THREAD).ru_majflt
    return time.perf_counter(), time.thread_time(), faults


def _slow(before: tuple[float, float, int], calls: int) -> bool:
    """Whether calls made since ``before`` read storage or computed for long."""
    budget = SLOW * calls
    if time.perf_counter() - before[0] <= budget:
        return False  # (the common case, and the cheapest to tell)
    if _RUSAGE_THREAD is None:
        return True
    wall, cpu, faults = _usage()
    return faults > before[2] or cpu - before[1] > budget


class FanOut:
    """Runs per-shard calls for one group of ``shards`` shards (module docstring)."""

    def __init__(self, shards: int) -> None:
        self._threads = min(shards, MAX_THREADS)
        self._pool: Workers | None = None
        self._lock = threading.Lock()
        self._parallel = self._threads > 1  # an index just opened is cold
        self._fast = 0

    @property
    def parallel(self) -> bool:
        """Whether calls run on the pool now."""
        return self._parallel

    def map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """``[fn(x) for x in items]``, on the pool or in this thread (module docstring)."""
        if not self._parallel:
            before = _usage()
            out = [fn(x) for x in items]
            if _slow(before, len(items)):
                self._parallel, self._fast = True, 0
            return out
        timed = self._executor().map(lambda x: _timed(fn, x), items)
        if not any(slow for _, slow in timed):
            self._fast += 1
            if self._fast >= SETTLE:
                self._parallel = False
        else:
            self._fast = 0
        return [r for r, _ in timed]

    def start(self) -> None:
        """Start the pool's threads now (an index just opened), so that they are waiting
        when the first query hands out its shards (:class:`anygram.threads.Workers`)."""
        if self._threads > 1:
            self._executor()

    def _executor(self) -> Workers:
        with self._lock:
            if self._pool is None:
                self._pool = Workers(self._threads)
            return self._pool

    def close(self) -> None:
        """Stop the pool's threads (after the calls in flight)."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
        self._parallel = False


def _timed(fn: Callable[[_T], _R], x: _T) -> tuple[_R, bool]:
    """``fn(x)`` on a pool thread, and whether it was slow."""
    before = _usage()
    out = fn(x)
    return out, _slow(before, 1)
