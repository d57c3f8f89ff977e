"""started_pool: every thread is running before the pool is handed any work."""

from __future__ import annotations

import threading

from anygram.threads import started_pool


def test_every_thread_is_started_and_the_pool_works() -> None:
    before = threading.active_count()
    pool = started_pool(5, "test-started")
    try:
        assert threading.active_count() - before == 5
        names = set(pool.map(lambda _: threading.current_thread().name, range(50)))
        assert names and all(n.startswith("test-started") for n in names)
        assert sorted(pool.map(lambda x: x * x, range(10))) == [x * x for x in range(10)]
    finally:
        pool.shutdown(wait=True)
