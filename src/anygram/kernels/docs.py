"""Numba kernels for documents and search: positions of arbitrary ranks, a seeded
permutation, the bounds of document windows and the gathering of their tokens.

Arrays in, arrays out. Twins in ``tests/reference.py``: ``naive_permute`` (permute),
``naive_window`` (window_bounds); positions_at and gather_tokens are checked against
``Engine.positions`` and the documents themselves.
"""

from __future__ import annotations

import numpy as np

from ._jit import inline_kernel, kernel
from .search import _ptr

# Feistel rounds: 4 already give a pseudo-random permutation for random round functions
# (Luby-Rackoff); more rounds mix the small domains of rare queries better, at ~2 ns each.
_ROUNDS = 8


@kernel
def positions_at(sa: np.ndarray, k: int, w: int, ranks: np.ndarray) -> np.ndarray:
    """Token positions (byte offset / w) stored at the given suffix-array ranks, in order.

    ``ranks`` must lie inside the table (the caller validates). O(len(ranks) * k).
    """
    out = np.empty(ranks.shape[0], dtype=np.int64)
    for i in range(ranks.shape[0]):
        out[i] = _ptr(sa, k, ranks[i]) // w
    return out


@inline_kernel
def _mix(x: np.uint64) -> np.uint64:
    """splitmix64's finaliser: a bijective avalanche of 64 bits (all uint64 arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@kernel
def permute(idx: np.ndarray, n: int, seed: np.uint64) -> np.ndarray:
    """Image of each index of ``idx`` (all in ``[0, n)``) under a seeded permutation of [0, n).

    The permutation is a balanced Feistel network on ``[0, 4**h)``, the smallest power of 4
    that holds ``n``, keyed by ``seed``; an image outside ``[0, n)`` is permuted again
    (cycle walking), which keeps it a bijection of ``[0, n)``. Because ``4**h < 4n``, an index
    walks fewer than 4 times on average. Stateless: ``permute([j], n, seed)`` alone gives the
    j-th element, so any page of the permuted sequence costs O(page size).
    """
    out = np.empty(idx.shape[0], dtype=np.int64)
    if n <= 1:
        out[:] = 0
        return out
    bits = 0
    while (np.int64(1) << bits) < n:  # bits of n - 1
        bits += 1
    h = (bits + 1) // 2
    mask = np.uint64((np.int64(1) << h) - 1)
    uh = np.uint64(h)
    keys = np.empty(_ROUNDS, dtype=np.uint64)
    key = seed
    for r in range(_ROUNDS):
        key = key + np.uint64(0x9E3779B97F4A7C15)  # splitmix64's increment: distinct round keys
        keys[r] = _mix(key)
    for i in range(idx.shape[0]):
        x = np.uint64(idx[i])
        while True:
            left = x >> uh
            right = x & mask
            for r in range(_ROUNDS):
                left, right = right, left ^ (_mix(right ^ keys[r]) & mask)
            x = (left << uh) | right
            if x < np.uint64(n):
                break
        out[i] = np.int64(x)
    return out


@kernel
def window_bounds(offsets: np.ndarray, w: int, n_pos: int, local: np.ndarray,
                  anchor: np.ndarray, query_len: int, before: int, after: int,
                  around_match: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                               np.ndarray, np.ndarray]:
    """Windows cut from documents of one shard around anchor positions, clipped to them.

    Document ``local[i]`` spans token positions ``[offsets[d] / w + 1, next separator)`` (the
    last one runs to ``n_pos``), as :meth:`anygram.Engine.doc_span`. Its window reaches
    ``before`` tokens back from ``anchor[i]`` and ``after`` tokens on from it (from the end
    of the match of ``query_len`` tokens when ``around_match``); ``anchor[i] = -1`` anchors
    at the document start with no match. Returns int64 arrays ``(doc_start, doc_end, lo, hi,
    match_len)``: the window is positions ``[lo, hi)`` and holds ``match_len`` tokens of the
    match (0 without one). O(len(local)).
    """
    m = local.shape[0]
    n_docs = offsets.shape[0]
    doc_start = np.empty(m, dtype=np.int64)
    doc_end = np.empty(m, dtype=np.int64)
    lo = np.empty(m, dtype=np.int64)
    hi = np.empty(m, dtype=np.int64)
    match_len = np.zeros(m, dtype=np.int64)
    for i in range(m):
        d = local[i]
        a = np.int64(offsets[d]) // w + 1
        b = np.int64(offsets[d + 1]) // w if d + 1 < n_docs else np.int64(n_pos)
        p = anchor[i]
        ml = 0
        if p < 0:
            p = a
        else:
            ml = min(query_len, b - p)
        end = p + after + (ml if around_match else 0)
        doc_start[i] = a
        doc_end[i] = b
        lo[i] = max(a, p - before)
        hi[i] = min(b, end)
        match_len[i] = max(0, min(ml, hi[i] - p))
    return doc_start, doc_end, lo, hi, match_len


@kernel
def gather_tokens(ds: np.ndarray, w: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The token bytes of positions ``[lo[i], hi[i])`` for each i, concatenated (uint8)."""
    total = 0
    for i in range(lo.shape[0]):
        total += hi[i] - lo[i]
    out = np.empty(total * w, dtype=np.uint8)
    j = 0
    for i in range(lo.shape[0]):
        nb = (hi[i] - lo[i]) * w
        out[j:j + nb] = ds[lo[i] * w:lo[i] * w + nb]
        j += nb
    return out
