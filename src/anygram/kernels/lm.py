"""Numba kernels for the Kneser-Ney discount estimate: count-of-counts of k-gram types.

Same conventions as :mod:`anygram.kernels.search` (``ds``, ``sa``, ``k`` of one shard, ``w``
bytes a token, documents preceded by a separator of ``w`` bytes 0xff). Twin (brute force over
the documents) in ``tests/reference_lm.py``.

The k-grams are those of the Kneser-Ney model (``anygram.generation``): ``k - 1`` document
tokens followed by a document token or the document end (a separator, or the end of the
shard). All suffixes that begin with the same ``k`` tokens are contiguous in the suffix array,
so one walk over the ranks, comparing each suffix's first ``k`` tokens with the run's, gives
every k-gram type with its count (the run length). The one suffix per shard that ends the
shard right after ``k - 1`` tokens (the last document's last k-gram, ending in END) is not in
its run (it sorts as a proper prefix): it is merged in by comparing it with every run that ends
in a separator.
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel
from .search import _group_end, _ptr, _read_token


@kernel
def _in_removed(p, rm_lo, rm_hi):
    """Whether byte offset ``p`` lies in one of the sorted intervals ``[rm_lo, rm_hi)``."""
    lo = 0
    hi = rm_lo.shape[0]
    while lo < hi:  # first interval starting after p
        mid = (lo + hi) >> 1
        if rm_lo[mid] <= p:
            lo = mid + 1
        else:
            hi = mid
    return lo > 0 and p < rm_hi[lo - 1]


@kernel
def _same(ds, p, q, nbytes):
    for i in range(nbytes):
        if ds[p + i] != ds[q + i]:
            return False
    return True


@kernel
def _valid(ds, p, w, order, sep):
    """Whether the suffix at ``p`` starts with a k-gram: ``order - 1`` document tokens, then
    any token (a separator is the document end)."""
    if p + order * w > ds.shape[0]:
        return False
    for j in range(order - 1):
        if _read_token(ds, p + j * w, w) == sep:
            return False
    return True


@kernel
def _count_of_counts(ds: np.ndarray, sa: np.ndarray, k: int, w: int, order: int, maxc: int,
                     continuation: bool, windows: np.ndarray, full: bool, rm_lo: np.ndarray,
                     rm_hi: np.ndarray) -> np.ndarray:
    n = ds.shape[0]
    total = sa.shape[0] // k if k > 0 else 0
    sep = (np.int64(1) << (8 * w)) - 1
    nbytes = order * w
    out = np.zeros(maxc + 1, dtype=np.int64)
    removals = rm_lo.shape[0] > 0
    # The shard's last k-gram when it ends in END at the shard end (no separator follows it).
    tail = n - (order - 1) * w
    has_tail = tail >= w
    if has_tail:
        for j in range(order - 1):
            if _read_token(ds, tail + j * w, w) == sep:
                has_tail = False
                break
    if has_tail and removals and _in_removed(tail, rm_lo, rm_hi):
        has_tail = False
    tail_pred = _read_token(ds, tail - w, w) if has_tail else sep
    tail_merged = False
    preds = np.empty(maxc + 1, dtype=np.int64)
    buf = np.empty(nbytes, dtype=np.uint8)
    for wi in range(windows.shape[0]):
        r = windows[wi, 0]
        b = min(windows[wi, 1], total)
        if r >= b:
            continue
        # Runs that start before the window belong to an earlier window (or none).
        if r > 0:
            p = _ptr(sa, k, r)
            p0 = _ptr(sa, k, r - 1)
            if _valid(ds, p, w, order, sep) and p0 + nbytes <= n and _same(ds, p, p0, nbytes):
                for i in range(nbytes):
                    buf[i] = ds[p + i]
                r = _group_end(ds, sa, k, buf, 0, r, total)
        while r < b:
            p = _ptr(sa, k, r)
            if not _valid(ds, p, w, order, sep):
                r += 1
                continue
            for i in range(nbytes):
                buf[i] = ds[p + i]
            c = 0  # raw count, or distinct predecessors (<s> = the separator)
            over = False
            while r < total:
                q = _ptr(sa, k, r)
                if q + nbytes > n or not _same(ds, p, q, nbytes):
                    break
                if not (removals and _in_removed(q, rm_lo, rm_hi)):
                    if continuation:
                        x = _read_token(ds, q - w, w)
                        seen = False
                        for i in range(c):
                            if preds[i] == x:
                                seen = True
                                break
                        if not seen:
                            preds[c] = x
                            c += 1
                    else:
                        c += 1
                    if c > maxc:
                        over = True
                        if not removals:  # the count is settled: jump to the run's end
                            r = _group_end(ds, sa, k, buf, 0, r, total)
                            break
                        c = maxc  # keep walking (removed members), preds stays in bounds
                r += 1
            if has_tail and not tail_merged and _read_token(ds, p + nbytes - w, w) == sep \
                    and _same(ds, p, tail, nbytes - w):
                tail_merged = True
                if over:
                    continue
                if continuation:
                    seen = False
                    for i in range(c):
                        if preds[i] == tail_pred:
                            seen = True
                    if not seen:
                        c += 1
                else:
                    c += 1
            if not over and 0 < c <= maxc:
                out[c] += 1
    if full and has_tail and not tail_merged:
        out[1] += 1
    return out


def count_of_counts(ds: np.ndarray, sa: np.ndarray, k_ptr: int, w: int, order: int, maxc: int,
                    *, continuation: bool = False, windows: np.ndarray | None = None,
                    removed: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """How many k-gram types (``k = order``) of one shard occur exactly ``c`` times.

    Returns int64 ``out`` of length ``maxc + 1`` with ``out[c]`` for ``c = 1..maxc``
    (``out[0] = 0``). With ``continuation`` a type's count is its number of distinct
    predecessors ``N1+(• g)`` (the separator before a document counts as one, ``<s>``) instead
    of its number of occurrences.

    ``windows``: int64 ``[m, 2]`` rank ranges ``[a, b)``, sorted and disjoint; only the types
    whose run of suffixes *starts* in a window are counted (each completely, even past the
    window's end). Default: the whole table (exact). ``removed``: sorted, disjoint byte
    intervals ``(starts, ends)`` of taken-down documents, whose occurrences are not counted.
    """
    total = sa.shape[0] // k_ptr if k_ptr > 0 else 0
    full = windows is None
    if windows is None:
        windows = np.array([[0, total]], dtype=np.int64)
    empty = np.zeros(0, dtype=np.int64)
    lo, hi = removed if removed is not None else (empty, empty)
    return _count_of_counts(ds, sa, k_ptr, w, order, maxc, continuation,
                            np.ascontiguousarray(windows, dtype=np.int64), full,
                            np.ascontiguousarray(lo, dtype=np.int64),
                            np.ascontiguousarray(hi, dtype=np.int64))
