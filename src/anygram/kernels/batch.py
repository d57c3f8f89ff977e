"""Batch searches: many queries of one shard in one call.

Queries come packed: their bytes one after the other (``qs``) and ``offs``, the start of each
(``len(offs) = queries + 1``). Each search is the single-query kernel's, through the shard's
search sample when it has one (``ptrs`` not empty, :mod:`anygram.kernels.sample`), else from
its first-token table (:func:`~anygram.kernels.search.find_range_cached`). Callers sort the
queries, so that consecutive searches read neighbouring pages.
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel
from .ntd_table import FOUND, WRONG, table_next_tokens
from .sample import find_range_indexed, longest_suffix_sampled
from .search import (
    find_range,
    find_range_cached,
    longest_suffix,
    next_token_counts,
    sample_next_token_counts,
)


@kernel
def find_many(ds: np.ndarray, sa: np.ndarray, k: int, w: int, qs: np.ndarray,
              offs: np.ndarray, first: np.ndarray, keys: np.ndarray, lens: np.ndarray,
              ptrs: np.ndarray, stride: int, faults: np.ndarray) -> np.ndarray:
    """The rank range of each query: int64 ``[queries, 2]``."""
    m = offs.shape[0] - 1
    out = np.empty((m, 2), dtype=np.int64)
    for j in range(m):
        q = qs[offs[j]:offs[j + 1]]
        if ptrs.shape[0] > 0:
            lo, hi = find_range_indexed(ds, sa, k, q, w, first, keys, lens, ptrs, stride,
                                        faults)
        else:
            lo, hi = find_range_cached(ds, sa, k, q, w, first)
        out[j, 0] = lo
        out[j, 1] = hi
    return out


@kernel
def find_many_within(ds: np.ndarray, sa: np.ndarray, k: int, qs: np.ndarray,
                     offs: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """The rank range of each query inside ``ranges[j]`` (that of a prefix of it)."""
    m = offs.shape[0] - 1
    out = np.empty((m, 2), dtype=np.int64)
    for j in range(m):
        lo = ranges[j, 0]
        hi = ranges[j, 1]
        if hi > lo:
            lo, hi = find_range(ds, sa, k, qs[offs[j]:offs[j + 1]], lo, hi)
        else:
            hi = lo
        out[j, 0] = lo
        out[j, 1] = hi
    return out


@kernel
def longest_suffix_many(ds: np.ndarray, sa: np.ndarray, k: int, w: int, qs: np.ndarray,
                        offs: np.ndarray, keys: np.ndarray, lens: np.ndarray, ptrs: np.ndarray,
                        stride: int, faults: np.ndarray) -> np.ndarray:
    """For each query, its longest suffix that occurs (in tokens) and that suffix's rank
    range: int64 ``[queries, 3]``."""
    m = offs.shape[0] - 1
    out = np.empty((m, 3), dtype=np.int64)
    for j in range(m):
        q = qs[offs[j]:offs[j + 1]]
        if ptrs.shape[0] > 0:
            n, lo, hi = longest_suffix_sampled(ds, sa, k, q, w, keys, lens, ptrs, stride,
                                               faults)
        else:
            n, lo, hi = longest_suffix(ds, sa, k, q, w)
        out[j, 0] = n
        out[j, 1] = lo
        out[j, 2] = hi
    return out


@kernel
def next_tokens_many(ds: np.ndarray, sa: np.ndarray, k: int, w: int, qlens: np.ndarray,
                     ranges: np.ndarray, samples: np.ndarray, threshold: int,
                     keys1: np.ndarray, keys2: np.ndarray, table_counts: np.ndarray,
                     table_ids: np.ndarray, faults: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The next-token counts after each query (``qlens[j]`` bytes, whole rank range
    ``ranges[j]``; exact, or from ``samples[j]`` evenly spaced ranks when that is positive):
    ``(ids, counts, starts, ends)``, query ``j``'s tokens being ``ids[starts[j]:starts[j +
    1]]`` and ``ends[j]`` its document ends.

    Exact counts of a prompt occurring at least ``threshold`` times come from the shard's
    next-token table (``keys1``, ``keys2``, ``table_counts``, ``table_ids``:
    :mod:`anygram.kernels.ntd_table`; no rows: none) when it holds them; a row found wrong
    is not used and counted in ``faults[0]``."""
    m = qlens.shape[0]
    starts = np.zeros(m + 1, dtype=np.int64)
    ends = np.zeros(m, dtype=np.int64)
    cap = 256
    ids = np.empty(cap, dtype=np.int64)
    counts = np.empty(cap, dtype=np.int64)
    used = 0
    for j in range(m):
        lo = ranges[j, 0]
        hi = ranges[j, 1]
        if hi > lo:
            status = 0
            if samples[j] > 0:
                t, c, e = sample_next_token_counts(ds, sa, k, qlens[j], w, lo, hi, samples[j])
            else:
                if hi - lo >= threshold and qlens[j] <= 2 * w:
                    status, t, c, e = table_next_tokens(ds, sa, k, w, qlens[j], lo, hi, keys1,
                                                        keys2, table_counts, table_ids)
                    if status == WRONG:
                        faults[0] += 1
                if status != FOUND:
                    t, c, e = next_token_counts(ds, sa, k, qlens[j], w, lo, hi)
            n = t.shape[0]
            if used + n > cap:
                while used + n > cap:
                    cap *= 2
                ids2 = np.empty(cap, dtype=np.int64)
                counts2 = np.empty(cap, dtype=np.int64)
                for i in range(used):
                    ids2[i] = ids[i]
                    counts2[i] = counts[i]
                ids = ids2
                counts = counts2
            for i in range(n):
                ids[used + i] = t[i]
                counts[used + i] = c[i]
            used += n
            ends[j] = e
        starts[j + 1] = used
    return ids[:used], counts[:used], starts, ends
