"""Exact-substring dedup (``anygram dedup``, Lee et al. 2022 on this index): which
``K``-token windows of a shard repeat one that comes earlier in corpus order.

A *window* is the ``K`` tokens starting at a token position ``p`` of a shard, inside one
document (no separator among them). In suffix-array order, the suffixes that start with the
same window are contiguous: one pass over the suffix array finds every group of equal
windows, and all but the group's smallest position repeat an earlier one
(:func:`repeats_within`). A window of shard ``s`` also repeats when it occurs in an earlier
shard: both suffix arrays are sorted the same way, so one merge-like pass over the two finds
them (:func:`repeats_in`). Memory: one byte per position of the shard (the marks). Arrays as
in :mod:`anygram.kernels.search`. Naive twin: ``tests/test_dedup.py``'s reference.
"""

from __future__ import annotations

import numpy as np

from ._jit import inline_kernel, kernel
from .search import _ptr


@inline_kernel
def _window_ok(ds: np.ndarray, p: int, span: int, w: int) -> bool:
    """Whether the ``span`` bytes at byte offset ``p`` are whole tokens of one document: in
    the shard, aligned, and no token among them is the separator (``w`` bytes of 0xff)."""
    if p % w != 0 or p + span > ds.shape[0]:
        return False
    for t in range(p, p + span, w):
        sep = True
        for i in range(w):
            if ds[t + i] != 0xFF:
                sep = False
                break
        if sep:
            return False
    return True


@inline_kernel
def _live(dead: np.ndarray, pos: int) -> bool:
    """Whether a position is outside taken-down documents (``dead`` empty: all are)."""
    return dead.shape[0] == 0 or dead[pos] == 0


@inline_kernel
def _compare(a: np.ndarray, p: int, b: np.ndarray, q: int, span: int) -> int:
    """``memcmp`` of ``span`` bytes of ``a`` at ``p`` and of ``b`` at ``q``: -1, 0 or 1."""
    for i in range(span):
        x, y = a[p + i], b[q + i]
        if x != y:
            return -1 if x < y else 1
    return 0


@kernel
def repeats_within(ds: np.ndarray, sa: np.ndarray, k: int, w: int, K: int, dead: np.ndarray,
                   marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Set ``marks[p // w]`` (uint8, one per position) for every window of the shard whose
    ``K`` tokens occur at a smaller position of the shard; return every group of two or more
    equal windows as ``(its smallest position, its size)``. Positions marked in ``dead``
    (uint8 per position; empty: none), the taken-down documents', count for nothing.
    O(positions · K) byte compares at worst, one pass over the suffix array."""
    span = K * w
    n = sa.shape[0] // k
    firsts = np.empty(16, dtype=np.int64)
    sizes = np.empty(16, dtype=np.int64)
    groups = 0
    r = 0
    while r < n:
        p = _ptr(sa, k, r)
        if not _window_ok(ds, p, span, w):
            r += 1
            continue
        end = r + 1  # the group: ranks [r, end) whose windows equal p's
        first = -1  # its smallest live position (bytes)
        live = 0
        for i in range(r, n):
            q = _ptr(sa, k, i)
            if i > r and (not _window_ok(ds, q, span, w) or _compare(ds, p, ds, q, span) != 0):
                break
            end = i + 1
            if _live(dead, q // w):
                live += 1
                if first < 0 or q < first:
                    first = q
        if live > 1:
            for i in range(r, end):
                q = _ptr(sa, k, i)
                if q != first and _live(dead, q // w):
                    marks[q // w] = 1
            if groups == firsts.shape[0]:
                firsts = np.concatenate((firsts, np.empty(groups, dtype=np.int64)))
                sizes = np.concatenate((sizes, np.empty(groups, dtype=np.int64)))
            firsts[groups] = first // w
            sizes[groups] = live
            groups += 1
        r = end
    return firsts[:groups].copy(), sizes[:groups].copy()


@kernel
def repeats_in(ds: np.ndarray, sa: np.ndarray, k: int, other_ds: np.ndarray,
               other_sa: np.ndarray, other_k: int, w: int, K: int, dead: np.ndarray,
               other_dead: np.ndarray, marks: np.ndarray) -> int:
    """Set ``marks[p // w]`` for every live window of the shard (``ds``, ``sa``) that occurs
    at a live position of the other shard (``other_ds``, ``other_sa``); return how many were
    set anew. ``dead``, ``other_dead``: as :func:`repeats_within`'s. One merge-like pass over
    both suffix arrays (they are sorted alike)."""
    span = K * w
    n, m = sa.shape[0] // k, other_sa.shape[0] // other_k
    i = j = 0
    added = 0
    while i < n and j < m:
        p = _ptr(sa, k, i)
        if not _window_ok(ds, p, span, w):
            i += 1
            continue
        q = _ptr(other_sa, other_k, j)
        if not _window_ok(other_ds, q, span, w) or not _live(other_dead, q // w):
            j += 1
            continue
        c = _compare(ds, p, other_ds, q, span)
        if c == 0:
            if marks[p // w] == 0 and _live(dead, p // w):
                marks[p // w] = 1
                added += 1
            i += 1  # the next suffix of this shard may start with the same window
        elif c < 0:
            i += 1
        else:
            j += 1
    return added


@kernel
def marked_spans(marks: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """The union of ``[p, p + K)`` over the marked positions ``p``, as ascending disjoint
    spans ``(starts, ends)`` of positions."""
    n = marks.shape[0]
    starts = np.empty(16, dtype=np.int64)
    ends = np.empty(16, dtype=np.int64)
    m = 0
    for p in range(n):
        if marks[p] == 0:
            continue
        if m and p <= ends[m - 1]:
            ends[m - 1] = max(ends[m - 1], p + K)
            continue
        if m == starts.shape[0]:
            starts = np.concatenate((starts, np.empty(m, dtype=np.int64)))
            ends = np.concatenate((ends, np.empty(m, dtype=np.int64)))
        starts[m] = p
        ends[m] = p + K
        m += 1
    return starts[:m].copy(), ends[:m].copy()
