"""The fan-out's judgement of a slow pass (anygram.shards.fanout): its own thread's CPU time
and storage reads count, waiting (for the GIL, here a sleep) does not."""

from __future__ import annotations

import mmap
import os
import sys
import time

import pytest

from anygram.shards import fanout

linux_only = pytest.mark.skipif(fanout._RUSAGE_THREAD is None,
                                reason="per-thread usage (RUSAGE_THREAD) is Linux only")


@linux_only
def test_waiting_is_not_slow():
    before = fanout._usage()
    time.sleep(20 * fanout.SLOW)  # a thread waiting for the GIL uses no CPU either
    assert not fanout._slow(before, 1)


def test_computing_is_slow():
    before = fanout._usage()
    end = time.thread_time() + 5 * fanout.SLOW
    while time.thread_time() < end:
        pass
    assert fanout._slow(before, 1)


def test_a_fast_pass_is_not_slow():
    assert not fanout._slow(fanout._usage(), 1)


@linux_only
@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="needs posix_fadvise")
def test_reading_pages_from_storage_is_slow(tmp_path):
    path = tmp_path / "cold"
    path.write_bytes(os.urandom(1 << 20))
    with path.open("rb") as f:
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            before = fanout._usage()
            time.sleep(2 * fanout.SLOW)  # past the wall-clock budget, with no CPU spent
            sum(m[i] for i in range(0, len(m), 4096))
            faults = fanout._usage()[2] - before[2]
            if faults == 0:
                pytest.skip(f"this filesystem kept the pages cached ({sys.platform})")
            assert fanout._slow(before, 1)
