"""Numba kernels over one shard's raw arrays. Arrays in, arrays (or ints) out.

Every kernel works on bytes, so one compiled kernel serves u8, u16 and u32 indexes:

- ``ds``: the shard's token bytes (uint8), tokens little-endian, documents preceded by
  ``w`` bytes of 0xff;
- ``sa``: the suffix array as uint8, ``k`` bytes per little-endian pointer; each pointer is a
  byte offset into ``ds``; suffixes are ordered by ``memcmp`` of their bytes, a suffix that is
  a proper prefix of another sorting first;
- ``q``: a query as little-endian token bytes (uint8).

Because the order is bytewise, all suffixes that start with a byte string ``q`` form one
contiguous rank range, and inside it, the suffixes that continue with the same next token
are contiguous too. Each kernel has a naive twin in ``tests/reference.py``.
"""

from __future__ import annotations

import numpy as np

from ..errors import IndexFormatError
from ._jit import inline_kernel, kernel

#: What a kernel raises when a value read from an index file points outside the shard.
CORRUPT = ("a suffix-array pointer or document offset of this index is out of range or "
           "misaligned: the index is damaged; run `anygram verify` on it, and rebuild it")

#: A pointer no shard reaches: what :func:`_ptr` gives for an 8-byte entry above 2**63 - 1.
_FAR = 1 << 62


@inline_kernel
def _ptr(sa: np.ndarray, k: int, rank: int) -> int:
    """The byte offset stored at ``rank`` (k-byte little-endian); never negative.

    An 8-byte entry with its top bit set (no shard is that large) would wrap to a negative
    int64, which the bounds checks ``p + i < len(ds)`` do not catch; it becomes :data:`_FAR`.
    """
    base = rank * k
    p = 0
    for i in range(k):
        p |= int(sa[base + i]) << (8 * i)
    return p if p >= 0 else _FAR


@inline_kernel
def _log2(w):
    """``log2`` of a token width (a power of two): positions are byte offsets ``>>`` it,
    because a division by a variable costs ~20 ns in numba (sign checks and ``idiv``)."""
    shift = 0
    while (1 << shift) < w:
        shift += 1
    return shift


@inline_kernel
def _raw(sa: np.ndarray, k: int, rank: int) -> np.int64:
    """:func:`_ptr` as an int64, 4-byte entries unrolled (the usual width; the loop over k
    bytes costs ~1.5 ns more)."""
    if k == 4:
        b = 4 * rank
        return (np.int64(sa[b]) | (np.int64(sa[b + 1]) << 8) | (np.int64(sa[b + 2]) << 16)
                | (np.int64(sa[b + 3]) << 24))
    return np.int64(_ptr(sa, k, rank))


@inline_kernel
def _checked_position(sa: np.ndarray, k: int, shift: int, rank: int, n_pos: int) -> np.int64:
    """The token position stored at ``rank`` (``_ptr >> shift``), raising
    :class:`~anygram.errors.IndexFormatError` unless the pointer is a multiple of the token
    width ``1 << shift`` and below ``n_pos`` positions: for a kernel that indexes memory with
    it at once."""
    raw = _raw(sa, k, rank)
    _check_pointers(raw, raw, shift, n_pos)
    return raw >> shift


@inline_kernel
def _check_pointers(top: np.int64, low_bits: np.int64, shift: int, n_pos: int) -> None:
    """Raise IndexFormatError unless pointers whose largest is ``top`` and whose OR is
    ``low_bits`` are multiples of the token width ``1 << shift`` below ``n_pos`` positions.

    Kernels that only hand positions on keep the max and the OR in the loop (no branch) and
    check once at the end: the checks then cost ~0.2 ns a pointer.
    """
    if (low_bits & ((np.int64(1) << shift) - 1)) != 0 or (top >> shift) >= n_pos:
        raise IndexFormatError(CORRUPT)


@inline_kernel
def _cmp_at(ds: np.ndarray, p: int, q: np.ndarray, start: int) -> int:
    """Compare ``ds[p+start : p+len(q)]`` with ``q[start:]``: -1, 0 (q is a prefix), or 1.

    A suffix that ends before ``q`` does is smaller (it is a proper prefix). Reads stay
    inside ``ds`` whatever ``p >= 0`` is: a damaged pointer past the end reads as a suffix
    shorter than ``q``.
    """
    n = ds.shape[0]
    for i in range(start, q.shape[0]):
        j = p + i
        if j >= n:
            return -1
        a = ds[j]
        b = q[i]
        if a != b:
            return -1 if a < b else 1
    return 0


@inline_kernel
def _grown(a: np.ndarray, m: int, cap: int) -> np.ndarray:
    """A new array of ``cap`` entries starting with ``a[:m]``. A loop, not ``b[:m] = a[:m]``:
    numba's slice assignment costs seconds more on a cold compile."""
    b = np.empty(cap, dtype=a.dtype)
    for i in range(m):
        b[i] = a[i]
    return b


@kernel
def _lower_bound(ds, sa, k, q, start, lo, hi):
    # Invariant: every rank < lo compares < q; every rank >= hi compares >= q.
    while lo < hi:
        mid = (lo + hi) >> 1
        if _cmp_at(ds, _ptr(sa, k, mid), q, start) < 0:
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel
def _upper_bound(ds, sa, k, q, start, lo, hi):
    # Invariant: every rank < lo compares <= q; every rank >= hi compares > q.
    while lo < hi:
        mid = (lo + hi) >> 1
        if _cmp_at(ds, _ptr(sa, k, mid), q, start) <= 0:
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel
def match_in_range(ds: np.ndarray, sa: np.ndarray, k: int, q: np.ndarray, start: int,
                   lo: int, hi: int) -> tuple[int, int, int]:
    """Narrow ``[lo, hi)`` to one rank whose suffix starts with ``q``.

    Every suffix of ``[lo, hi)`` must already begin with ``q[:start]`` (only bytes
    ``start..`` are compared: a narrowing step compares just the appended token). Returns
    ``(lo, mid, hi)`` with ``mid`` a matching rank and the range of ``q`` inside the new
    ``[lo, hi)``, or ``mid = -1`` when ``q`` does not occur.
    """
    while lo < hi:
        mid = (lo + hi) >> 1
        c = _cmp_at(ds, _ptr(sa, k, mid), q, start)
        if c < 0:
            lo = mid + 1
        elif c > 0:
            hi = mid
        else:
            return lo, mid, hi
    return lo, -1, lo


@kernel
def range_bounds(ds: np.ndarray, sa: np.ndarray, k: int, q: np.ndarray, start: int, lo: int,
                 mid: int, hi: int) -> tuple[int, int]:
    """The range of ``q`` from :func:`match_in_range`'s ``(lo, mid, hi)`` (``mid >= 0``)."""
    return (_lower_bound(ds, sa, k, q, start, lo, mid),
            _upper_bound(ds, sa, k, q, start, mid + 1, hi))


@kernel
def find_range_from(ds: np.ndarray, sa: np.ndarray, k: int, q: np.ndarray, start: int,
                    lo: int, hi: int) -> tuple[int, int]:
    """:func:`find_range` where every suffix of ``[lo, hi)`` begins with ``q[:start]``."""
    # Narrow to one matching rank first; both bounds then search only the remaining sides.
    lo, mid, hi = match_in_range(ds, sa, k, q, start, lo, hi)
    if mid < 0:
        return lo, lo
    return range_bounds(ds, sa, k, q, start, lo, mid, hi)


@kernel
def find_range(ds: np.ndarray, sa: np.ndarray, k: int, q: np.ndarray, lo: int,
               hi: int) -> tuple[int, int]:
    """The rank range ``[start, end)`` of suffixes starting with ``q``, searched in ``[lo, hi)``.

    ``[lo, hi)`` must contain the answer (the whole table, or the range of a prefix of ``q``).
    O(|q| log(hi - lo)) byte compares.
    """
    return find_range_from(ds, sa, k, q, 0, lo, hi)


@kernel
def _group_end(ds, sa, k, buf, start, r, hi):
    """First rank in ``(r, hi]`` whose suffix differs from ``buf`` at bytes ``[start, len)``.

    Rank ``r`` matches ``buf``. Gallops forward (groups are usually short), then bisects.
    """
    step = 1
    prev = r
    while r + step < hi and _cmp_at(ds, _ptr(sa, k, r + step), buf, start) == 0:
        prev = r + step
        step <<= 1
    return _upper_bound(ds, sa, k, buf, start, prev + 1, min(r + step, hi))


@kernel
def _read_token(ds, pos, w):
    t = 0
    for i in range(w):
        t |= np.int64(ds[pos + i]) << (8 * i)
    return t


@kernel
def next_token_counts(ds: np.ndarray, sa: np.ndarray, k: int, qlen: int, w: int, lo: int,
                      hi: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Exact counts of the tokens that follow a query in its rank range ``[lo, hi)``.

    ``qlen`` is the query length in bytes. Returns ``(token_ids, counts, end_count)``, ids in
    the table's (bytewise) order; ``end_count`` counts occurrences followed by a document
    separator or by the end of the shard. O(distinct next tokens x log(hi - lo)).
    """
    n = ds.shape[0]
    cap = 64
    ids = np.empty(cap, dtype=np.int64)
    counts = np.empty(cap, dtype=np.int64)
    m = 0
    end_count = 0
    buf = np.empty(qlen + w, dtype=np.uint8)
    r = lo
    while r < hi:
        p = _ptr(sa, k, r)
        if p & (w - 1):
            raise IndexFormatError(CORRUPT)
        if p + qlen + w > n:
            # The suffix ends with the query: the shortest suffix, so it sorts first. (In a
            # sound index p + qlen == n here; the test bounds the reads below whatever p is.)
            end_count += 1
            r += 1
            continue
        for i in range(qlen + w):
            buf[i] = ds[p + i]
        r2 = _group_end(ds, sa, k, buf, qlen, r, hi)
        t = _read_token(ds, p + qlen, w)
        if t == (np.int64(1) << (8 * w)) - 1:
            end_count += r2 - r
        else:
            if m == cap:
                cap *= 2
                ids = _grown(ids, m, cap)
                counts = _grown(counts, m, cap)
            ids[m] = t
            counts[m] = r2 - r
            m += 1
        r = r2
    return ids[:m], counts[:m], end_count


@kernel
def sample_next_token_counts(ds: np.ndarray, sa: np.ndarray, k: int, qlen: int, w: int,
                             lo: int, hi: int, samples: int
                             ) -> tuple[np.ndarray, np.ndarray, int]:
    """Approximate next-token counts from ``samples`` evenly spaced ranks of ``[lo, hi)``.

    The range is cut into ``samples`` strata of near-equal size; the middle rank of each
    stratum stands for the whole stratum. Counts therefore sum to ``hi - lo`` exactly, and a
    token's estimate is off by less than two strata per contiguous run of that token.
    Same outputs as :func:`next_token_counts`.
    """
    n = ds.shape[0]
    length = hi - lo
    ids = np.empty(samples, dtype=np.int64)
    counts = np.empty(samples, dtype=np.int64)
    m = 0
    end_count = 0
    sep = (np.int64(1) << (8 * w)) - 1
    for i in range(samples):
        a = lo + (i * length) // samples
        b = lo + ((i + 1) * length) // samples
        if b <= a:
            continue
        p = _ptr(sa, k, (a + b) >> 1)
        if p & (w - 1):
            raise IndexFormatError(CORRUPT)
        t = sep if p + qlen + w > n else _read_token(ds, p + qlen, w)
        if t == sep:
            end_count += b - a
        elif m > 0 and ids[m - 1] == t:
            counts[m - 1] += b - a  # samples come in table order: equal tokens are adjacent
        else:
            ids[m] = t
            counts[m] = b - a
            m += 1
    return ids[:m], counts[:m], end_count


@kernel
def longest_suffix(ds: np.ndarray, sa: np.ndarray, k: int, q: np.ndarray, w: int
                   ) -> tuple[int, int, int]:
    """The longest suffix of ``q`` (in whole tokens) that occurs in the shard, and its range.

    Returns ``(suffix_len_tokens, start, end)``; the empty suffix (length 0) always occurs
    and its range is the whole table. Occurrence is monotone in the suffix length, so the
    length is found by bisection: O(log |q|) range searches.
    """
    n_tok = q.shape[0] // w
    total = sa.shape[0] // k if k > 0 else 0
    # Invariant: the suffix of length `good` occurs (range [gs, ge)); length `bad` does not.
    good = 0
    gs = 0
    ge = total
    bad = n_tok + 1
    while bad - good > 1:
        mid = (good + bad) >> 1
        s, e = find_range(ds, sa, k, q[(n_tok - mid) * w:], 0, total)
        if e > s:
            good = mid
            gs = s
            ge = e
        else:
            bad = mid
    return good, gs, ge


@kernel
def rank_positions(sa: np.ndarray, k: int, w: int, lo: int, hi: int) -> np.ndarray:
    """Token positions (byte offset / w) stored at ranks ``[lo, hi)``, in rank order.

    Raises IndexFormatError for a pointer outside the shard (as every kernel that turns
    suffix-array entries into positions: the positions they return are safe to index with).
    """
    out = np.empty(max(hi - lo, 0), dtype=np.int64)
    shift = _log2(w)
    top = np.int64(-1)  # no pointer read yet
    low_bits = np.int64(0)
    for r in range(lo, hi):
        raw = _raw(sa, k, r)
        top = max(top, raw)
        low_bits |= raw
        out[r - lo] = raw >> shift
    _check_pointers(top, low_bits, shift, sa.shape[0] // k)
    return out


@kernel
def find_range_cached(ds: np.ndarray, sa: np.ndarray, k: int, q: np.ndarray, w: int,
                      first: np.ndarray) -> tuple[int, int]:
    """:func:`find_range` over the whole table, starting from the first token's range.

    ``first`` is an int64 ``[V, 2]`` table of rank ranges by first token, -1 where not yet
    known; it is filled in as tokens are met. Starting inside the first token's range skips
    the top ``log2(N / count(token))`` levels of the search. Writers store the end before
    the start and readers fall back to a plain search unless both are set, so concurrent
    queries may share the table without a lock.
    """
    n = sa.shape[0] // k if k > 0 else 0
    if q.shape[0] < w or first.shape[0] == 0:
        return find_range(ds, sa, k, q, 0, n)
    t = _read_token(q, 0, w)
    if t >= first.shape[0]:
        return find_range(ds, sa, k, q, 0, n)
    lo = first[t, 0]
    hi = first[t, 1]
    if lo < 0 or hi < 0:
        lo, hi = find_range(ds, sa, k, q[:w], 0, n)
        first[t, 1] = hi
        first[t, 0] = lo
    if q.shape[0] == w or hi <= lo:
        return lo, hi
    return find_range(ds, sa, k, q, lo, hi)
