"""The search sample: a small in-memory top level over a shard's suffix array.

Every ``stride``-th suffix (ranks ``0, stride, 2 stride, ...``) is kept with its first ``m``
bytes (``keys``, zero-padded; ``lens`` says how many are real: fewer than ``m`` only for a
suffix that ends first, at the end of the shard) and its byte offset (``ptrs``). A search
bisects the sample in memory, which narrows each bound of a query's rank range to one block
of ``stride`` ranks; only that block of the suffix array, and the token bytes its binary
search compares, are read from the shard: about ``2 log2(stride)`` reads of the token file
instead of ``2 log2(N)`` dependent reads of both files. A sampled suffix whose stored bytes
equal the query's first ``m`` (a query longer than ``m`` bytes) is compared on in the token
file, from byte ``m`` on.

The answers are exactly :func:`anygram.kernels.search.find_range`'s, whatever the sample
holds: the sample only brackets the search, and the bracket is checked against the suffix
array itself where the search did not compare it (the rank before the start, the rank at the
end). A bracket that does not hold (a damaged or stale sample) falls back to the plain
search and is counted in ``faults[0]``, so the caller drops the sample.
"""

from __future__ import annotations

import numpy as np

from ._jit import inline_kernel, kernel
from .search import _cmp_at, _lower_bound, _ptr, _upper_bound, find_range, find_range_from


@kernel
def build_sample(ds: np.ndarray, sa: np.ndarray, k: int, stride: int, m: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(keys, lens, ptrs)`` of every ``stride``-th suffix: ``keys`` uint8 ``[n, m]``, ``lens``
    uint8 ``[n]``, ``ptrs`` int64 ``[n]``. One read of the suffix array and of ``m`` token
    bytes per kept suffix."""
    total = sa.shape[0] // k if k > 0 else 0
    n = (total + stride - 1) // stride
    keys = np.zeros((n, m), dtype=np.uint8)
    lens = np.zeros(n, dtype=np.uint8)
    ptrs = np.empty(n, dtype=np.int64)
    size = ds.shape[0]
    for j in range(n):
        p = _ptr(sa, k, j * stride)
        ptrs[j] = p
        length = max(0, min(m, size - p))  # 0 for a damaged pointer past the end
        lens[j] = length
        for i in range(length):
            keys[j, i] = ds[p + i]
    return keys, lens, ptrs


@inline_kernel
def _cmp_sampled(ds, keys, lens, ptrs, j, q):
    """Compare sampled suffix ``j`` with ``q`` as :func:`_cmp_at` does (-1, 0: ``q`` is a
    prefix of it, 1), on its stored bytes, reading the token file only past them."""
    stored = min(np.int64(lens[j]), keys.shape[1])  # a row holds at most m bytes
    n = q.shape[0]
    for i in range(min(n, stored)):
        a = keys[j, i]
        b = q[i]
        if a != b:
            return -1 if a < b else 1
    if n <= stored:
        return 0
    if stored < keys.shape[1]:
        return -1  # the suffix ends before q does: a proper prefix sorts first
    p = ptrs[j]
    if p < 0:  # (a damaged sample: compared as a suffix past the end; the bracket is checked)
        p = ds.shape[0]
    return _cmp_at(ds, p, q, stored)


@inline_kernel
def _first_sample(ds, keys, lens, ptrs, q, a, strict):
    """The first sample at or after ``a`` that compares > ``q`` (``strict``) or >= ``q``."""
    b = ptrs.shape[0]
    while a < b:
        mid = (a + b) >> 1
        c = _cmp_sampled(ds, keys, lens, ptrs, mid, q)
        if c < 0 or (strict and c == 0):
            a = mid + 1
        else:
            b = mid
    return a


@kernel
def find_range_sampled(ds: np.ndarray, sa: np.ndarray, k: int, q: np.ndarray,
                       keys: np.ndarray, lens: np.ndarray, ptrs: np.ndarray, stride: int,
                       faults: np.ndarray) -> tuple[int, int]:
    """The rank range ``[start, end)`` of the suffixes starting with ``q`` (as
    :func:`~anygram.kernels.search.find_range` over the whole table), bracketed by the
    sample (module docstring) and finished in one block of ``stride`` ranks.

    The start: the first sample that compares >= ``q`` follows it, the sample before
    precedes it, so it is in the block between. The end: usually a few ranks further (most
    queries are rare), found by galloping from the start; past a block, from the sample
    again.
    """
    total = sa.shape[0] // k if k > 0 else 0
    if q.shape[0] == 0 or ptrs.shape[0] == 0:
        return find_range(ds, sa, k, q, 0, total)
    lo_j = _first_sample(ds, keys, lens, ptrs, q, 0, False)
    start = 0 if lo_j == 0 else (lo_j - 1) * stride + 1
    end = min(lo_j * stride, total)
    lo = _lower_bound(ds, sa, k, q, 0, start, end)
    # The bisection compared rank lo - 1 unless lo is the block's start (then the sample
    # before vouched for it), and rank lo unless lo is its end: check what it did not.
    if lo == start and lo > 0 and _cmp_at(ds, _ptr(sa, k, lo - 1), q, 0) >= 0:
        return _fallback(ds, sa, k, q, total, faults)
    c = 1 if lo == total else _cmp_at(ds, _ptr(sa, k, lo), q, 0)
    if c < 0:
        return _fallback(ds, sa, k, q, total, faults)
    if c > 0:
        return lo, lo  # q does not occur
    # Gallop: ranks lo .. prev match q; rank lo + step is the next to look at.
    prev = lo
    step = 1
    while step <= stride and lo + step < total and \
            _cmp_at(ds, _ptr(sa, k, lo + step), q, 0) == 0:
        prev = lo + step
        step <<= 1
    if step <= stride or lo + step >= total:
        return lo, _upper_bound(ds, sa, k, q, 0, prev + 1, min(lo + step, total))
    # More than a block of matches: the first sample that compares > q, after lo_j.
    up_j = _first_sample(ds, keys, lens, ptrs, q, lo_j, True)
    start = max(prev + 1, (up_j - 1) * stride + 1)
    end = min(up_j * stride, total)
    if end <= prev:  # the sample places the end before a rank the gallop saw match
        return _fallback(ds, sa, k, q, total, faults)
    hi = _upper_bound(ds, sa, k, q, 0, start, end)
    # As for the start: check the ranks around hi that the bisection did not compare (the
    # matches in between are matches: the table is sorted and both ends match).
    if (hi == start and hi - 1 > prev and _cmp_at(ds, _ptr(sa, k, hi - 1), q, 0) != 0) or \
            (hi == end and hi < total and _cmp_at(ds, _ptr(sa, k, hi), q, 0) == 0):
        return _fallback(ds, sa, k, q, total, faults)
    return lo, hi


@kernel
def _fallback(ds, sa, k, q, total, faults):
    """The plain search, when the sample's bracket did not hold."""
    faults[0] += 1
    return find_range(ds, sa, k, q, 0, total)


@kernel
def longest_suffix_sampled(ds: np.ndarray, sa: np.ndarray, k: int, q: np.ndarray, w: int,
                           keys: np.ndarray, lens: np.ndarray, ptrs: np.ndarray, stride: int,
                           faults: np.ndarray) -> tuple[int, int, int]:
    """:func:`~anygram.kernels.search.longest_suffix` with each search bracketed by the
    sample: ``(suffix_len_tokens, start, end)``."""
    n_tok = q.shape[0] // w
    total = sa.shape[0] // k if k > 0 else 0
    # Invariant: the suffix of length `good` occurs (range [gs, ge)); length `bad` does not.
    good = 0
    gs = 0
    ge = total
    bad = n_tok + 1
    while bad - good > 1:
        mid = (good + bad) >> 1
        s, e = find_range_sampled(ds, sa, k, q[(n_tok - mid) * w:], keys, lens, ptrs, stride,
                                  faults)
        if e > s:
            good = mid
            gs = s
            ge = e
        else:
            bad = mid
    return good, gs, ge


@kernel
def find_range_indexed(ds: np.ndarray, sa: np.ndarray, k: int, q: np.ndarray, w: int,
                       first: np.ndarray, keys: np.ndarray, lens: np.ndarray,
                       ptrs: np.ndarray, stride: int, faults: np.ndarray) -> tuple[int, int]:
    """:func:`find_range_sampled`, helped by the table of first-token ranges (as
    :func:`~anygram.kernels.search.find_range_cached` fills it, here from one-token queries
    only): a one-token query is a lookup once its token was met, and a query whose first
    token's range is known and no longer than a block is searched there directly, from its
    second token on."""
    if q.shape[0] < w or first.shape[0] == 0:
        return find_range_sampled(ds, sa, k, q, keys, lens, ptrs, stride, faults)
    t = _read_first(q, w)
    if t >= first.shape[0]:
        return find_range_sampled(ds, sa, k, q, keys, lens, ptrs, stride, faults)
    lo = first[t, 0]
    hi = first[t, 1]
    if lo < 0 or hi < 0:
        if q.shape[0] > w:
            # Not known: search the whole query at once. Finding its first token's range
            # first would double a cold index's dependent reads.
            return find_range_sampled(ds, sa, k, q, keys, lens, ptrs, stride, faults)
        lo, hi = find_range_sampled(ds, sa, k, q, keys, lens, ptrs, stride, faults)
        first[t, 1] = hi  # the end before the start: readers check both (no lock needed)
        first[t, 0] = lo
    if q.shape[0] == w or hi <= lo:
        return lo, hi
    if hi - lo <= stride:
        return find_range_from(ds, sa, k, q, w, lo, hi)
    return find_range_sampled(ds, sa, k, q, keys, lens, ptrs, stride, faults)


@inline_kernel
def _read_first(q, w):
    t = 0
    for i in range(w):
        t |= np.int64(q[i]) << (8 * i)
    return t
