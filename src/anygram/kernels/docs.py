"""Numba kernels for documents and search: positions of arbitrary ranks, a seeded
permutation, the bounds of document windows and the gathering of their tokens.

Arrays in, arrays out. Twins in ``tests/reference.py``: ``naive_permute`` (permute),
``naive_window`` (document_windows); positions_at, docs_of and the windows' tokens are
checked against ``Engine.positions``, ``reference.doc_at`` and the documents themselves.
"""

from __future__ import annotations

import numpy as np

from ..errors import IndexFormatError
from ._jit import inline_kernel, kernel
from .search import CORRUPT, _check_pointers, _log2, _raw

# Feistel rounds: 4 already give a pseudo-random permutation for random round functions
# (Luby-Rackoff); more rounds mix the small domains of rare queries better, at ~2 ns each.
_ROUNDS = 8


@kernel
def positions_at(sa: np.ndarray, k: int, w: int, ranks: np.ndarray) -> np.ndarray:
    """Token positions (byte offset / w) stored at the given suffix-array ranks, in order.

    ``ranks`` must lie inside the table (the caller validates). O(len(ranks) * k). Raises
    IndexFormatError for a pointer outside the shard.
    """
    out = np.empty(ranks.shape[0], dtype=np.int64)
    shift = _log2(w)
    top = np.int64(-1)  # no pointer read yet
    low_bits = np.int64(0)
    for i in range(ranks.shape[0]):
        raw = _raw(sa, k, ranks[i])
        top = max(top, raw)
        low_bits |= raw
        out[i] = raw >> shift
    _check_pointers(top, low_bits, shift, sa.shape[0] // k)
    return out


@inline_kernel
def _keep_smallest(heap: np.ndarray, n: int, v: np.int64) -> int:
    """Offer ``v`` to a max-heap of the ``len(heap)`` (> 0) smallest values so far, holding
    ``n``; returns the new ``n``."""
    m = heap.shape[0]
    if n < m:  # fill: sift v up
        i = n
        while i > 0 and heap[(i - 1) >> 1] < v:
            heap[i] = heap[(i - 1) >> 1]
            i = (i - 1) >> 1
        heap[i] = v
        return n + 1
    if v < heap[0]:  # v replaces the largest kept: sift it down from the root
        i = 0
        while True:
            c = 2 * i + 1
            if c >= m:
                break
            if c + 1 < m and heap[c + 1] > heap[c]:
                c += 1
            if heap[c] <= v:
                break
            heap[i] = heap[c]
            i = c
        heap[i] = v
    return n


@kernel
def smallest(values: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` smallest of ``values``, ascending (all when fewer): ``np.sort(values)[:m]``.

    One pass with a bounded max-heap of the ``m`` smallest so far: O(len(values)) reads plus
    O(log m) per replacement (few when ``m`` is much smaller than ``len(values)`` and the values
    come in no particular order, as the positions of a suffix-array range), O(m) memory.
    """
    heap = np.empty(min(m, values.shape[0]), dtype=np.int64)
    n = 0
    if heap.shape[0]:
        for j in range(values.shape[0]):
            v = np.int64(values[j])
            if n < heap.shape[0] or v < heap[0]:  # the test inline: 5x faster than the call
                n = _keep_smallest(heap, n, v)
    return np.sort(heap)


@kernel
def smallest_positions(sa: np.ndarray, k: int, w: int, lo: int, hi: int, m: int
                       ) -> np.ndarray:
    """The ``m`` smallest token positions stored at suffix-array ranks ``[lo, hi)``, ascending:
    :func:`smallest` of :meth:`anygram.Engine.positions` without materialising them.

    One sequential pass over the table (~1 ns a rank), O(m) memory. Raises IndexFormatError
    for a pointer outside the shard.
    """
    heap = np.empty(min(m, max(hi - lo, 0)), dtype=np.int64)
    shift = _log2(w)
    n = 0
    top = np.int64(-1)  # no pointer read yet
    low_bits = np.int64(0)
    if heap.shape[0]:
        for r in range(lo, hi):
            raw = _raw(sa, k, r)
            top = max(top, raw)
            low_bits |= raw
            v = raw >> shift
            if n < heap.shape[0] or v < heap[0]:
                n = _keep_smallest(heap, n, v)
    _check_pointers(top, low_bits, shift, sa.shape[0] // k)
    return np.sort(heap)


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


@inline_kernel
def _doc_of(offsets: np.ndarray, w: int, pos: np.int64) -> np.int64:
    """The last ``d`` with ``offsets[d] <= pos * w`` (offsets ascending, the first 0)."""
    x = np.uint64(pos * w)
    lo, hi = 0, offsets.shape[0]  # offsets[lo] <= x < offsets[hi], hi as +infinity
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if offsets[mid] <= x:
            lo = mid
        else:
            hi = mid
    return np.int64(lo)


@kernel
def docs_of(offsets: np.ndarray, w: int, pos: np.ndarray) -> np.ndarray:
    """Local document holding each token position of a shard.

    ``offsets`` are the byte offsets of the documents' separators (ascending, the first 0),
    so a separator's own position maps to its document. O(len(pos) log len(offsets)).
    """
    out = np.empty(pos.shape[0], dtype=np.int64)
    for i in range(pos.shape[0]):
        out[i] = _doc_of(offsets, w, pos[i])
    return out


#: Columns of the table :func:`document_windows` returns, one row per window.
WINDOW_COLUMNS = ("doc_id", "doc_len", "start", "num_tokens", "match_offset", "match_len",
                  "meta_lo", "meta_hi")


@kernel
def document_windows(ds: np.ndarray, w: int, offsets: np.ndarray, n_pos: int,
                     metaoff: np.ndarray, meta_len: int, doc_base: int, local: np.ndarray,
                     anchor: np.ndarray, hide: np.ndarray, query_len: int, before: int,
                     after: int, around_match: bool) -> tuple[np.ndarray, np.ndarray]:
    """Windows cut from documents of one shard around anchor positions, and their tokens.

    Document ``local[i]`` spans token positions ``[offsets[d] / w + 1, next separator)`` (the
    last one runs to ``n_pos``), as :meth:`anygram.Engine.doc_span`; ``local[i] = -1`` means
    the document holding ``anchor[i]`` (as :func:`docs_of`). Its window reaches ``before``
    tokens back from ``anchor[i]`` and ``after`` tokens on from it (from the end of the
    match of ``query_len`` tokens when ``around_match``), clipped to the document;
    ``anchor[i] = -1`` anchors at the document start with no match. ``hide[i]`` (when
    ``hide`` is not empty) empties window i (a taken-down document).

    Returns ``(table, tokens)``: an int64 table with one row per window and the columns
    :data:`WINDOW_COLUMNS` (``doc_id`` is ``doc_base + local[i]``; the others in tokens,
    relative to the document start, except that ``match_offset`` is relative to the window and
    -1 without a match; ``meta_lo``/``meta_hi`` the document's metadata byte range, from
    ``metaoff`` whose last line runs to ``meta_len``, or -1 when ``metaoff`` is empty), and
    the token bytes of all windows concatenated. O(len(local) + tokens).

    Raises IndexFormatError when the offsets (or metadata offsets) of a document, or an
    anchor, do not fit the shard: nothing is read outside ``ds``.
    """
    m = local.shape[0]
    n_docs = offsets.shape[0]
    table = np.empty((m, 8), dtype=np.int64)
    lo_at = np.empty(m, dtype=np.int64)
    total = 0
    for i in range(m):
        d = local[i] if local[i] >= 0 else _doc_of(offsets, w, anchor[i])
        a = np.int64(offsets[d]) // w + 1
        b = np.int64(offsets[d + 1]) // w if d + 1 < n_docs else np.int64(n_pos)
        if not 1 <= a <= b <= n_pos:
            raise IndexFormatError(CORRUPT)
        p = anchor[i]
        ml = 0
        if p < 0:
            p = a
        else:
            ml = min(query_len, b - p)
        lo = max(a, p - before)
        hi = min(b, p + after + (ml if around_match else 0))
        if hi < lo:  # the anchor is not in its document
            raise IndexFormatError(CORRUPT)
        if hide.shape[0] and hide[i]:
            hi = lo
        table[i, 0] = doc_base + d
        table[i, 1] = b - a
        table[i, 2] = lo - a
        table[i, 3] = hi - lo
        table[i, 4] = p - lo if anchor[i] >= 0 else -1
        table[i, 5] = max(0, min(ml, hi - p))
        if metaoff.shape[0]:
            table[i, 6] = np.int64(metaoff[d])
            table[i, 7] = np.int64(metaoff[d + 1]) if d + 1 < metaoff.shape[0] else meta_len
            if not 0 <= table[i, 6] <= table[i, 7] <= meta_len:
                raise IndexFormatError(CORRUPT)
        else:
            table[i, 6] = -1
            table[i, 7] = -1
        lo_at[i] = lo
        total += hi - lo
    tokens = np.empty(total * w, dtype=np.uint8)
    j = 0
    for i in range(m):
        src = lo_at[i] * w
        for x in range(table[i, 3] * w):  # a loop: a slice assignment compiles seconds longer
            tokens[j] = ds[src + x]
            j += 1
    return table, tokens
