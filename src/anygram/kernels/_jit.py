"""The one place that decides how kernels are compiled.

``cache=True``: compiled code is kept on disk, so a new process loads instead of compiling.
``nogil=True``: kernels release the GIL, so a thread pool can run queries in parallel.
No ``fastmath``: the kernels are integer code.
"""

from numba import njit

kernel = njit(cache=True, nogil=True)
"""Decorator for a kernel."""

inline_kernel = njit(cache=True, nogil=True, inline="always")
"""Decorator for a small helper that numba inlines into the kernels calling it."""
