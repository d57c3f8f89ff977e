"""Thread pools whose threads are all running before any work is handed to them."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor


def started_pool(threads: int, name: str) -> ThreadPoolExecutor:
    """A pool of ``threads`` threads, every one started.

    A pool starts a thread per task it is handed, and a started thread that runs Python code
    holds the GIL for up to the switch interval (5 ms) before the caller can start the next:
    handing 16 tasks to a fresh pool took ~20 ms before the last one began. Here each thread
    waits for all the others first, so every submit starts one and none holds the GIL.
    """
    pool = ThreadPoolExecutor(threads, thread_name_prefix=name)
    everyone = threading.Barrier(threads)
    for _ in range(threads):
        pool.submit(everyone.wait)
    return pool
