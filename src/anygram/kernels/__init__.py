"""Numba kernels: arrays in, arrays (or ints) out. One module per family of operations.

Every kernel works on a shard's raw bytes (see :mod:`anygram.kernels.search`), so one
compiled kernel serves u8, u16 and u32 indexes. Each has a naive twin in ``tests/reference.py``.
"""

from .search import (
    find_range,
    longest_suffix,
    next_token_counts,
    rank_positions,
    sample_next_token_counts,
)

__all__ = ["find_range", "longest_suffix", "next_token_counts", "rank_positions", "sample_next_token_counts"]
