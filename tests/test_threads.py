"""Workers: threads started without waiting for each, running the calls handed to them."""

from __future__ import annotations

import gc
import os
import threading
import time

import pytest

from anygram.threads import Workers


def test_the_threads_run_the_calls_in_parallel_and_answer_in_order() -> None:
    pool = Workers(4)
    try:
        assert pool.map(lambda x: x * x, range(10)) == [x * x for x in range(10)]
        everyone = threading.Barrier(4, timeout=10)  # only if 4 threads run at once
        assert pool.map(lambda _: everyone.wait() >= 0, range(4)) == [True] * 4
    finally:
        pool.shutdown()


def test_the_first_error_is_raised_after_every_call_ended() -> None:
    pool = Workers(3)
    ended: list[int] = []

    def call(x: int) -> int:
        if x in (1, 2):
            raise ValueError(x)
        time.sleep(0.05)
        ended.append(x)
        return x

    try:
        with pytest.raises(ValueError, match="1"):
            pool.map(call, range(3))
        assert ended == [0]
    finally:
        pool.shutdown()


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts Linux threads")
def test_shutdown_stops_the_threads() -> None:
    def threads() -> int:
        return len(os.listdir("/proc/self/task"))

    before = threads()
    pool = Workers(2)
    assert pool.map(lambda x: x + 1, [1]) == [2]
    assert threads() == before + 2
    pool.shutdown()
    deadline = time.monotonic() + 10
    while threads() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threads() == before


def test_the_threads_stop_when_their_workers_are_collected_unclosed() -> None:
    def threads() -> int:
        return len(os.listdir("/proc/self/task"))

    before = threads()
    workers = Workers(6)
    assert workers.map(abs, [-1, -2]) == [1, 2]
    assert threads() == before + 6
    del workers
    gc.collect()
    deadline = time.monotonic() + 10
    while threads() > before:
        assert time.monotonic() < deadline, "the workers' threads outlived them"
        time.sleep(0.01)
