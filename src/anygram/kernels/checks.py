"""Numba kernels that check an index's arrays: what opening an index samples and what
``anygram verify`` reads in full. Arrays in, ints out (the first bad index, or -1), so the
caller can name what is wrong.

Same conventions as :mod:`anygram.kernels.search` (``ds``, ``sa``, ``k`` of one shard, ``w``
bytes a token). A suffix array is sound when every entry is a multiple of ``w`` below
``len(ds)`` and adjacent suffixes are strictly increasing: then, having ``len(ds) / w``
entries, it is a permutation of the token offsets (strict order makes them distinct).
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel
from .search import _ptr


@kernel
def pointers_fit(ptrs: np.ndarray, ds_bytes: int, w: int) -> bool:
    """Whether every byte offset of ``ptrs`` (uint64) is a multiple of ``w`` below
    ``ds_bytes``. One pass, no branch in the loop."""
    top = np.uint64(0)
    low_bits = np.uint64(0)
    for i in range(ptrs.shape[0]):
        top = max(top, ptrs[i])
        low_bits |= ptrs[i]
    return bool(ptrs.shape[0] == 0 or (top < np.uint64(ds_bytes)
                                       and (low_bits & np.uint64(w - 1)) == 0))


@kernel
def _suffix_order(ds, p, q, max_bytes):
    """Compare the suffixes at byte offsets ``p`` and ``q`` over at most ``max_bytes`` bytes
    (``max_bytes < 0``: to the end): -1 (p first), 0 (equal so far), 1."""
    n = ds.shape[0]
    i = 0
    while max_bytes < 0 or i < max_bytes:
        if q + i >= n:
            return 1 if p + i < n else 0  # q's suffix ended: it is a prefix, it sorts first
        if p + i >= n:
            return -1
        a = ds[p + i]
        b = ds[q + i]
        if a != b:
            return -1 if a < b else 1
        i += 1
    return 0


@kernel
def first_bad_rank(ds: np.ndarray, sa: np.ndarray, k: int, w: int, start: int, stop: int,
                   step: int, max_bytes: int) -> int:
    """The first rank ``r`` of ``range(start, stop, step)`` (``stop`` at most the table's last
    rank) whose entry, or rank ``r + 1``'s, is not a token offset of ``ds``, or whose suffix
    does not sort strictly before rank ``r + 1``'s; -1 when there is none.

    Suffixes equal over their first ``max_bytes`` bytes pass (``max_bytes < 0``: compared to
    the end, as ``anygram verify`` does; the open-time sample bounds the work).
    """
    n = ds.shape[0]
    for r in range(start, stop, step):
        p = _ptr(sa, k, r)
        q = _ptr(sa, k, r + 1)
        if p >= n or q >= n or p % w != 0 or q % w != 0 or p == q:
            return r
        if _suffix_order(ds, p, q, max_bytes) > 0:
            return r
    return -1


@kernel
def first_bad_offset(offsets: np.ndarray, limit: int, align: int, gap: int, start: int,
                     stop: int, step: int) -> int:
    """The first ``d`` of ``range(start, stop, step)`` where ``offsets[d]`` is not a multiple
    of ``align`` below ``limit``, or is below ``offsets[d - 1] + gap`` (``offsets[0]`` must be
    0); -1 when none. Separator offsets: ``limit = len(ds)``, ``align = gap = w``; metadata
    line offsets: ``limit = len(metadata) + 1``, ``align = 1``, ``gap = 0``."""
    ua = np.uint64(align)
    for d in range(start, stop, step):
        o = offsets[d]
        if o % ua != 0 or o >= np.uint64(limit) or (d == 0 and o != 0) or (
                d > 0 and o < offsets[d - 1] + np.uint64(gap)):
            return d
    return -1


@kernel
def first_missing_separator(offsets: np.ndarray, ds: np.ndarray, w: int, start: int,
                            stop: int, step: int) -> int:
    """The first document ``d`` of ``range(start, stop, step)`` whose offset does not hold a
    separator (``w`` bytes 0xff; offsets already checked by :func:`first_bad_offset`)."""
    for d in range(start, stop, step):
        o = np.int64(offsets[d])
        for j in range(w):
            if ds[o + j] != 0xFF:
                return d
    return -1


@kernel
def token_stats(ds: np.ndarray, w: int, lo: int, hi: int) -> tuple[int, int]:
    """``(separators, largest token id)`` in the byte range ``[lo, hi)`` (multiples of ``w``);
    the largest id is -1 when the range holds only separators. One sequential pass."""
    sep = (np.int64(1) << (8 * w)) - 1
    seps = 0
    top = np.int64(-1)
    for b in range(lo, hi, w):
        t = np.int64(0)
        for j in range(w):
            t |= np.int64(ds[b + j]) << (8 * j)
        if t == sep:
            seps += 1
        elif t > top:
            top = t
    return seps, int(top)
