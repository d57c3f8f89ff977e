"""Exact-substring dedup (``anygram dedup``, Lee et al. 2022 on this index): which
``K``-token windows of a shard repeat one that comes earlier in corpus order.

A *window* is the ``K`` tokens starting at a token position ``p`` of a shard, inside one
document (no separator among them). In suffix-array order, the suffixes that start with the
same window are contiguous: one pass over the suffix array finds every group of equal
windows, and all but the group's smallest position repeat an earlier one
(:func:`repeats_within`). A window of shard ``s`` also repeats when it occurs in an earlier
shard: both suffix arrays are sorted the same way, so one merge-like pass over the two finds
them (:func:`repeats_in`). Where windows start is known first (:func:`window_starts`), so
that no pass scans a window twice for separators. Memory: two bytes per position of the
shard (where windows start, and the marks). Arrays as in :mod:`anygram.kernels.search`. Naive twin: ``tests/test_dedup.py``'s reference.
"""

from __future__ import annotations

import numpy as np

from ._jit import inline_kernel, kernel
from .search import _ptr


@kernel
def window_starts(ds: np.ndarray, w: int, K: int) -> np.ndarray:
    """Per token position (uint8): 1 where ``K`` tokens of one document start (none of them
    the separator, ``w`` bytes of 0xff, and all inside the shard). One backward pass."""
    n = ds.shape[0] // w
    out = np.zeros(n, dtype=np.uint8)
    run = 0  # tokens from this position to the next separator (or the shard's end)
    for p in range(n - 1, -1, -1):
        sep = True
        for i in range(w):
            if ds[p * w + i] != 0xFF:
                sep = False
                break
        run = 0 if sep else run + 1
        if run >= K:
            out[p] = 1
    return out


@inline_kernel
def _window_ok(valid: np.ndarray, p: int, w: int) -> bool:
    """Whether a window starts at byte offset ``p`` (aligned, in the shard: a damaged
    pointer is no window)."""
    return p % w == 0 and p // w < valid.shape[0] and valid[p // w] == 1


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
def repeats_within(ds: np.ndarray, sa: np.ndarray, k: int, w: int, K: int, valid: np.ndarray,
                   dead: np.ndarray, marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Set ``marks[p // w]`` (uint8, one per position) for every window of the shard whose
    ``K`` tokens occur at a smaller position of the shard; return every group of two or more
    equal windows as ``(its smallest position, its size)``. ``valid``: :func:`window_starts`.
    Positions marked in ``dead`` (uint8 per position; empty: none), the taken-down
    documents', count for nothing.
    O(positions · K) byte compares at worst, one pass over the suffix array."""
    span = K * w
    n = sa.shape[0] // k
    firsts = np.empty(16, dtype=np.int64)
    sizes = np.empty(16, dtype=np.int64)
    groups = 0
    r = 0
    while r < n:
        p = _ptr(sa, k, r)
        if not _window_ok(valid, p, w):
            r += 1
            continue
        end = r + 1  # the group: ranks [r, end) whose windows equal p's
        first = -1  # its smallest live position (bytes)
        live = 0
        for i in range(r, n):
            q = _ptr(sa, k, i)
            if i > r and (not _window_ok(valid, q, w) or _compare(ds, p, ds, q, span) != 0):
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
def repeats_in(ds: np.ndarray, sa: np.ndarray, k: int, valid: np.ndarray, dead: np.ndarray,
               other_ds: np.ndarray, other_sa: np.ndarray, other_k: int,
               other_valid: np.ndarray, other_dead: np.ndarray, w: int, K: int,
               marks: np.ndarray) -> int:
    """Set ``marks[p // w]`` for every live window of the shard (``ds``, ``sa``) that occurs
    at a live position of the other shard (``other_ds``, ``other_sa``); return how many were
    set anew. ``valid``, ``dead`` and the other's: as :func:`repeats_within`'s. One
    merge-like pass over both suffix arrays (they are sorted alike)."""
    span = K * w
    n, m = sa.shape[0] // k, other_sa.shape[0] // other_k
    i = j = 0
    added = 0
    p = q = -1  # the current windows (byte offsets); -1: advance to the next one
    while True:
        while p < 0 and i < n:
            p = _ptr(sa, k, i)
            if not _window_ok(valid, p, w):
                p = -1
                i += 1
        while q < 0 and j < m:
            q = _ptr(other_sa, other_k, j)
            if not _window_ok(other_valid, q, w) or not _live(other_dead, q // w):
                q = -1
                j += 1
        if p < 0 or q < 0:
            break
        c = _compare(ds, p, other_ds, q, span)
        if c == 0:
            if marks[p // w] == 0 and _live(dead, p // w):
                marks[p // w] = 1
                added += 1
            p, i = -1, i + 1  # the next suffix of this shard may start with the same window
        elif c < 0:
            p, i = -1, i + 1
        else:
            q, j = -1, j + 1
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
