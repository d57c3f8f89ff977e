"""Exact-substring dedup (``anygram dedup``, Lee et al. 2022 on this index): which
``K``-token windows of a shard repeat one that comes earlier in corpus order.

A *window* is the ``K`` tokens starting at a token position ``p`` of a shard, inside one
document (no separator among them). In suffix-array order, the suffixes that start with the
same window are contiguous, and every shard's suffix array is sorted the same way: one merge
of all of them (:func:`repeats_all`) meets every group of equal windows in one run, and all
but the group's first in corpus order (shard, then position) repeat an earlier one. Where
windows start is known first (:func:`window_starts`), so that no window is scanned twice for
separators. Memory: two bytes per position (where windows start, and the marks). Arrays as
in :mod:`anygram.kernels.search`. Naive twin: ``tests/test_dedup.py``'s reference.
"""

from __future__ import annotations

import numpy as np

from ._jit import inline_kernel, kernel


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
def marked_spans(marks: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """The union of ``[p, p + K)`` over the marked positions ``p``, as ascending disjoint
    spans ``(starts, ends)`` of positions."""
    n = marks.shape[0]
    # (np.ndarray: numpy 2.2's stubs give np.empty a one-axis shape that concatenate lacks)
    starts: np.ndarray = np.empty(16, dtype=np.int64)
    ends: np.ndarray = np.empty(16, dtype=np.int64)
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


@inline_kernel
def _before(ds: np.ndarray, pos: np.ndarray, a: int, b: int, span: int) -> bool:
    """Whether shard ``a``'s current window sorts before shard ``b``'s (ties: the earlier
    shard first)."""
    c = _compare(ds, pos[a], ds, pos[b], span)
    return c < 0 or (c == 0 and a < b)


@inline_kernel
def _sift_down(heap: np.ndarray, size: int, at: int, ds: np.ndarray, pos: np.ndarray,
               span: int) -> None:
    while True:
        low, left, right = at, 2 * at + 1, 2 * at + 2
        if left < size and _before(ds, pos, heap[left], heap[low], span):
            low = left
        if right < size and _before(ds, pos, heap[right], heap[low], span):
            low = right
        if low == at:
            return
        heap[at], heap[low] = heap[low], heap[at]
        at = low


@inline_kernel
def _next_window(sa: np.ndarray, sa_off: np.ndarray, ks: np.ndarray, ds_off: np.ndarray,
                 valid: np.ndarray, pos_off: np.ndarray, rank: np.ndarray, pos: np.ndarray,
                 s: int, w: int) -> bool:
    """Move shard ``s`` to its next rank that starts a window: ``pos[s]`` its byte offset in
    the joined token bytes; False when it has none left."""
    k = ks[s]
    base = sa_off[s]
    n = (sa_off[s + 1] - base) // k
    size = ds_off[s + 1] - ds_off[s]
    r = rank[s] + 1
    while r < n:
        p = 0
        for i in range(k):
            p |= int(sa[base + r * k + i]) << (8 * i)
        if 0 <= p < size and p % w == 0 and valid[pos_off[s] + p // w] == 1:
            rank[s], pos[s] = r, ds_off[s] + p
            return True
        r += 1
    rank[s] = n
    return False


@kernel
def repeats_all(ds: np.ndarray, ds_off: np.ndarray, sa: np.ndarray, sa_off: np.ndarray,
                ks: np.ndarray, valid: np.ndarray, dead: np.ndarray, pos_off: np.ndarray,
                w: int, K: int, marks: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every shard at once, their arrays joined end to end: shard ``s``'s token bytes are
    ``ds[ds_off[s]:ds_off[s+1]]``, its suffix array ``sa[sa_off[s]:sa_off[s+1]]`` (``ks[s]``
    bytes a pointer), its positions ``[pos_off[s], pos_off[s+1])`` of ``valid``
    (:func:`window_starts`), ``dead`` (taken down; empty: none) and ``marks``.

    Set ``marks`` for every live window whose ``K`` tokens occur at a live place earlier in
    corpus order (an earlier shard, or a smaller position of its own); return every group of
    two or more equal live windows as ``(shard, position, size)`` of its first. One merge of
    all the suffix arrays (a heap of the shards' current windows): O(positions · log
    shards) window compares."""
    S = ks.shape[0]
    span = K * w
    rank = np.full(S, -1, dtype=np.int64)
    pos = np.zeros(S, dtype=np.int64)
    heap = np.empty(S, dtype=np.int64)
    size = 0
    for s in range(S):
        if _next_window(sa, sa_off, ks, ds_off, valid, pos_off, rank, pos, s, w):
            heap[size] = s
            size += 1
    for at in range(size // 2 - 1, -1, -1):
        _sift_down(heap, size, at, ds, pos, span)
    g_shard: np.ndarray = np.empty(16, dtype=np.int64)
    g_pos: np.ndarray = np.empty(16, dtype=np.int64)
    g_size: np.ndarray = np.empty(16, dtype=np.int64)
    groups = 0
    members: np.ndarray = np.empty(16, dtype=np.int64)  # the group's live members (positions)
    has_dead = dead.shape[0] > 0
    while size:
        key = pos[heap[0]]
        m = 0
        first = -1  # the group's first live member (joined position: shards are in order)
        while size and _compare(ds, pos[heap[0]], ds, key, span) == 0:
            s = heap[0]
            at = pos_off[s] + (pos[s] - ds_off[s]) // w  # joined token position
            if not has_dead or dead[at] == 0:
                if m == members.shape[0]:
                    members = np.concatenate((members, np.empty(m, dtype=np.int64)))
                members[m] = at
                m += 1
                if first < 0 or at < first:
                    first = at
            if _next_window(sa, sa_off, ks, ds_off, valid, pos_off, rank, pos, s, w):
                _sift_down(heap, size, 0, ds, pos, span)
            else:
                size -= 1
                heap[0] = heap[size]
                _sift_down(heap, size, 0, ds, pos, span)
        if m > 1:
            for i in range(m):
                if members[i] != first:
                    marks[members[i]] = 1
            if groups == g_shard.shape[0]:
                g_shard = np.concatenate((g_shard, np.empty(groups, dtype=np.int64)))
                g_pos = np.concatenate((g_pos, np.empty(groups, dtype=np.int64)))
                g_size = np.concatenate((g_size, np.empty(groups, dtype=np.int64)))
            g = np.searchsorted(pos_off, first, side="right") - 1
            g_shard[groups], g_pos[groups], g_size[groups] = g, first - pos_off[g], m
            groups += 1
    return g_shard[:groups].copy(), g_pos[:groups].copy(), g_size[:groups].copy()
