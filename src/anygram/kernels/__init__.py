"""Numba kernels: arrays in, arrays (or ints) out. One module per family of operations.

Every kernel works on a shard's raw bytes (see :mod:`anygram.kernels.search`), so one
compiled kernel serves u8, u16 and u32 indexes. Each has a naive twin in ``tests/reference.py``.
"""

from .cnf import (
    count_phrase_starts,
    docs_of_sorted,
    phrase_hits,
    probe_anchors,
    sort_positions,
    verify_anchors,
)
from .docs import (
    WINDOW_COLUMNS,
    docs_of,
    document_windows,
    permute,
    positions_at,
    smallest,
    smallest_positions,
)
from .search import (
    find_range,
    find_range_cached,
    longest_suffix,
    next_token_counts,
    rank_positions,
    sample_next_token_counts,
)

__all__ = [
    "count_phrase_starts",
    "docs_of",
    "docs_of_sorted",
    "document_windows",
    "find_range",
    "find_range_cached",
    "longest_suffix",
    "next_token_counts",
    "permute",
    "phrase_hits",
    "positions_at",
    "probe_anchors",
    "rank_positions",
    "sample_next_token_counts",
    "smallest",
    "smallest_positions",
    "sort_positions",
    "verify_anchors",
    "WINDOW_COLUMNS",
]
