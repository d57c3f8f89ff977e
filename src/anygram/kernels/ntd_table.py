"""The next-token table: the exact next-token counts of a shard's frequent 1- and 2-token
prompts, made in one pass over its suffix array and looked up by rank.

Inside the rank range of a token ``a``, the suffixes are sorted by the token after it, so the
runs of equal second tokens are the groups of ``a``'s next-token distribution; inside the run
of ``a b``, the runs of equal third tokens are the groups of ``a b``'s. One walk over the
suffix array, reading the three tokens at each suffix, yields both levels
(:func:`build_ntd_table`). A prompt is kept when it occurs at least ``threshold`` times.

The table (arrays in, arrays out):

- ``keys1``, ``keys2``: int64 ``[n, KEY_COLUMNS]``, one row per kept prompt of 1 and of 2
  tokens, by rank: its first rank (``LO``), its tokens (``TOKEN1``, ``TOKEN2``: 0 for one
  token), its groups (``FIRST``, ``GROUPS``: rows of ``counts``/``ids``), its occurrences
  followed by a document end (``END``: a separator or the end of the shard) and a check
  value over all of these (``CHECK``, :func:`_entry_check`);
- ``counts``: uint32, the occurrences of each group (a prompt with a larger group is not
  kept); ``ids``: the groups' next tokens, ``w`` little-endian bytes each, in the suffix
  array's (bytewise) order, as :func:`~anygram.kernels.search.next_token_counts` gives them.

:func:`table_next_tokens` answers a prompt's exact next-token counts from its rank range:
the row whose ``LO`` is the range's start, checked against the range (its counts sum to its
length), against its own check value, and against the suffix array at both ends of the
range (the prompt, the first and the last next token), else not used. Each kernel has a
naive twin in ``tests/reference.py``.
"""

from __future__ import annotations

import numpy as np

from ..errors import IndexFormatError
from ._jit import inline_kernel, kernel
from .search import CORRUPT, _cmp_at, _grown, _ptr, _read_token

#: The columns of a key row.
LO, TOKEN1, TOKEN2, FIRST, GROUPS, END, CHECK = range(7)
KEY_COLUMNS = 7

#: :func:`table_next_tokens`: the answer is the table's; the prompt is not in it; the
#: table disagrees with itself or with the suffix array (do not use it again).
FOUND, MISSING, WRONG = 1, 0, -1

_U32_MAX = (1 << 32) - 1
_SHARD_END = -1  # the "token" after a suffix that ends there
_NONE = -2  # before the first rank and after the last


@inline_kernel
def _mix(h, x):
    """One step of the check value: a bijection of ``h ^ x`` (an xor-shift and a multiply by
    an odd constant, mod 2**64), so that changing any one value changes the result."""
    v = h ^ x
    v ^= v >> np.uint64(29)
    return v * np.uint64(0xBF58476D1CE4E5B9)


@inline_kernel
def _entry_check(row, counts, ids, w):
    """The check value of a key row and its groups: 63 bits, as an int64."""
    h = np.uint64(0x9E3779B97F4A7C15)
    h = _mix(h, np.uint64(row[LO]))
    h = _mix(h, np.uint64(row[TOKEN1]))
    h = _mix(h, np.uint64(row[TOKEN2]))
    h = _mix(h, np.uint64(row[FIRST]))
    h = _mix(h, np.uint64(row[GROUPS]))
    h = _mix(h, np.uint64(row[END]))
    a = row[FIRST]
    for g in range(a, a + row[GROUPS]):
        t = np.uint64(_read_token(ids, g * w, w))
        h = _mix(h, (t << np.uint64(32)) | np.uint64(counts[g]))
    return np.int64(h >> np.uint64(1))


@inline_kernel
def _token_or_end(ds, p, w):
    """The token at byte ``p``; :data:`_SHARD_END` past the end of the shard."""
    if p + w > ds.shape[0]:
        return _SHARD_END
    return _read_token(ds, p, w)


@inline_kernel
def _add_row(keys, n, lo, token1, token2, first, groups, end):
    """Append a key row (grown as needed); the new row count."""
    if n == keys.shape[0]:
        grown = np.empty((2 * n + 16, keys.shape[1]), dtype=np.int64)
        for i in range(n):
            for c in range(keys.shape[1]):
                grown[i, c] = keys[i, c]
        keys = grown
    keys[n, LO] = lo
    keys[n, TOKEN1] = token1
    keys[n, TOKEN2] = token2
    keys[n, FIRST] = first
    keys[n, GROUPS] = groups
    keys[n, END] = end
    return keys, n + 1


@kernel
def build_ntd_table(ds: np.ndarray, sa: np.ndarray, k: int, w: int, threshold: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(keys1, keys2, counts, ids)`` of the prompts of 1 and 2 tokens occurring at least
    ``threshold`` (>= 1) times (module docstring). One pass over the suffix array, reading the
    token bytes at each suffix (3 tokens): O(N) reads.

    Raises IndexFormatError for a pointer that is misaligned or outside the shard.
    """
    n = ds.shape[0]
    total = sa.shape[0] // k if k > 0 else 0
    sep = (np.int64(1) << (8 * w)) - 1
    keys1 = np.empty((16, KEY_COLUMNS), dtype=np.int64)
    keys2 = np.empty((16, KEY_COLUMNS), dtype=np.int64)
    n1 = 0
    n2 = 0
    counts = np.empty(1024, dtype=np.int64)
    ids = np.empty(1024, dtype=np.int64)
    g = 0
    # The groups of the current 1-token prompt (buf1) and 2-token prompt (buf2).
    ids1 = np.empty(64, dtype=np.int64)
    counts1 = np.empty(64, dtype=np.int64)
    ids2 = np.empty(64, dtype=np.int64)
    counts2 = np.empty(64, dtype=np.int64)
    m1 = 0
    m2 = 0
    end1 = 0
    end2 = 0
    p1 = np.int64(_NONE)  # the tokens at the previous rank
    p2 = np.int64(_NONE)
    p3 = np.int64(_NONE)
    s1 = 0  # where the current runs of equal tokens 1, 1-2, 1-3 started
    s2 = 0
    s3 = 0
    for r in range(total + 1):
        t1 = np.int64(_NONE)
        t2 = np.int64(_NONE)
        t3 = np.int64(_NONE)
        if r < total:
            p = _ptr(sa, k, r)
            if p & (w - 1) or p + w > n:
                raise IndexFormatError(CORRUPT)
            t1 = _read_token(ds, p, w)
            t2 = _token_or_end(ds, p + w, w)
            t3 = _token_or_end(ds, p + 2 * w, w)
        new1 = r == total or t1 != p1
        new2 = new1 or t2 != p2
        new3 = new2 or t3 != p3
        if r > 0:
            valid1 = p1 != sep  # a prompt holds no separator
            valid2 = valid1 and p2 != _SHARD_END and p2 != sep
            if new3 and valid2:  # a group of the prompt p1 p2 ends
                if p3 == _SHARD_END or p3 == sep:
                    end2 += r - s3
                else:
                    if m2 == ids2.shape[0]:
                        ids2 = _grown(ids2, m2, 2 * m2)
                        counts2 = _grown(counts2, m2, 2 * m2)
                    ids2[m2] = p3
                    counts2[m2] = r - s3
                    m2 += 1
            if new2 and valid2 and r - s2 >= threshold and _fits(counts2, m2):
                keys2, n2 = _add_row(keys2, n2, s2, p1, p2, g, m2, end2)
                ids, counts, g = _add_groups(ids, counts, g, ids2, counts2, m2)
            if new2 and valid1:  # a group of the prompt p1 ends
                if p2 == _SHARD_END or p2 == sep:
                    end1 += r - s2
                else:
                    if m1 == ids1.shape[0]:
                        ids1 = _grown(ids1, m1, 2 * m1)
                        counts1 = _grown(counts1, m1, 2 * m1)
                    ids1[m1] = p2
                    counts1[m1] = r - s2
                    m1 += 1
            if new1 and valid1 and r - s1 >= threshold and _fits(counts1, m1):
                keys1, n1 = _add_row(keys1, n1, s1, p1, 0, g, m1, end1)
                ids, counts, g = _add_groups(ids, counts, g, ids1, counts1, m1)
        if new1:
            s1 = r
            m1 = 0
            end1 = 0
        if new2:
            s2 = r
            m2 = 0
            end2 = 0
        if new3:
            s3 = r
        p1 = t1
        p2 = t2
        p3 = t3
    out_counts = np.empty(g, dtype=np.uint32)
    out_ids = np.empty(g * w, dtype=np.uint8)
    for i in range(g):
        out_counts[i] = counts[i]
        for b in range(w):
            out_ids[i * w + b] = (ids[i] >> (8 * b)) & 0xFF
    rows1 = keys1[:n1].copy()
    rows2 = keys2[:n2].copy()
    for rows in (rows1, rows2):
        for j in range(rows.shape[0]):
            rows[j, CHECK] = _entry_check(rows[j], out_counts, out_ids, w)
    return rows1, rows2, out_counts, out_ids


@inline_kernel
def _fits(counts, m):
    """Whether every group count fits the table's 32 bits."""
    for i in range(m):
        if counts[i] > _U32_MAX:
            return False
    return True


@inline_kernel
def _add_groups(ids, counts, g, new_ids, new_counts, m):
    """Append ``m`` groups to the table's (grown as needed)."""
    if g + m > ids.shape[0]:
        cap = max(2 * ids.shape[0], g + m)
        ids = _grown(ids, g, cap)
        counts = _grown(counts, g, cap)
    for i in range(m):
        ids[g + i] = new_ids[i]
        counts[g + i] = new_counts[i]
    return ids, counts, g + m


@inline_kernel
def _find_row(keys, lo):
    """The row whose ``LO`` is ``lo``, or -1 (a binary search: the rows are by rank)."""
    a = 0
    b = keys.shape[0]
    while a < b:
        mid = (a + b) >> 1
        if keys[mid, LO] < lo:
            a = mid + 1
        else:
            b = mid
    if a < keys.shape[0] and keys[a, LO] == lo:
        return a
    return -1


@inline_kernel
def _after_prompt_at(ds, sa, k, w, rank, qlen, row):
    """At ``rank``, a suffix that must start with the prompt of key ``row`` (``qlen``
    bytes): the token after it (:data:`_SHARD_END` at the end of the shard, the separator
    at a document end), or :data:`_NONE` when the suffix does not start with the prompt."""
    p = _ptr(sa, k, rank)
    if p & (w - 1):
        raise IndexFormatError(CORRUPT)
    if p + qlen > ds.shape[0]:
        return _NONE
    if _read_token(ds, p, w) != row[TOKEN1] or (
            qlen > w and _read_token(ds, p + w, w) != row[TOKEN2]):
        return _NONE
    return _token_or_end(ds, p + qlen, w)


@kernel
def table_next_tokens(ds: np.ndarray, sa: np.ndarray, k: int, w: int, qlen: int, lo: int,
                      hi: int, keys1: np.ndarray, keys2: np.ndarray, counts: np.ndarray,
                      ids: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, int]:
    """``(status, token_ids, counts, end_count)`` of the ``qlen``-byte prompt whose rank range
    is ``[lo, hi)``: status :data:`FOUND` with the counts
    :func:`~anygram.kernels.search.next_token_counts` gives, :data:`MISSING` (the prompt is
    not in the table) or :data:`WRONG` (its row disagrees with itself, the range or the
    suffix array: the table is damaged or stale). O(groups) reads of the table, binary
    search of its rows, and two reads of the shard (its ranks ``lo`` and ``hi - 1``).
    """
    none = np.zeros(0, dtype=np.int64)
    if qlen == w:
        keys = keys1
    elif qlen == 2 * w:
        keys = keys2
    else:
        return MISSING, none, none, 0
    if hi <= lo:
        return MISSING, none, none, 0
    j = _find_row(keys, lo)
    if j < 0:
        return MISSING, none, none, 0
    row = keys[j]
    first = row[FIRST]
    m = row[GROUPS]
    end = row[END]
    if first < 0 or m < 0 or end < 0 or first + m > counts.shape[0] or \
            (first + m) * w > ids.shape[0] or _entry_check(row, counts, ids, w) != row[CHECK]:
        return WRONG, none, none, 0
    out_ids = np.empty(m, dtype=np.int64)
    out_counts = np.empty(m, dtype=np.int64)
    total = end
    for i in range(m):
        out_ids[i] = _read_token(ids, (first + i) * w, w)
        out_counts[i] = counts[first + i]
        total += out_counts[i]
    if total != hi - lo:
        return WRONG, none, none, 0
    # The suffix array at both ends of the range: the shortest suffix (the prompt at the end
    # of the shard) sorts first, a separator (all 0xff bytes) last.
    sep = (np.int64(1) << (8 * w)) - 1
    head = _after_prompt_at(ds, sa, k, w, lo, qlen, row)
    tail = _after_prompt_at(ds, sa, k, w, hi - 1, qlen, row)
    if head == _NONE or tail == _NONE:
        return WRONG, none, none, 0
    if head == _SHARD_END or head == sep:
        head_ok = end > 0 and (head == _SHARD_END or m == 0)
    else:
        head_ok = m > 0 and out_ids[0] == head
    if tail == _SHARD_END or tail == sep:
        tail_ok = end > 0 and (tail == sep or (m == 0 and hi - lo == 1))
    else:
        tail_ok = m > 0 and out_ids[m - 1] == tail
    if not (head_ok and tail_ok):
        return WRONG, none, none, 0
    return FOUND, out_ids, out_counts, end


@kernel
def tabled(qlens: np.ndarray, ranges: np.ndarray, w: int, threshold: int, keys1: np.ndarray,
           keys2: np.ndarray) -> np.ndarray:
    """For each query (``qlens[j]`` bytes, rank range ``ranges[j]``), whether the table has
    a row for its range (or the range is empty): whether :func:`table_next_tokens` can give
    its exact next tokens. A row's content is checked when it is used."""
    m = qlens.shape[0]
    out = np.zeros(m, dtype=np.bool_)
    for j in range(m):
        lo = ranges[j, 0]
        hi = ranges[j, 1]
        if hi <= lo:
            out[j] = True
        elif hi - lo >= threshold and (qlens[j] == w or qlens[j] == 2 * w):
            out[j] = _find_row(keys1 if qlens[j] == w else keys2, lo) >= 0
    return out


@kernel
def range_is_whole(ds: np.ndarray, sa: np.ndarray, k: int, w: int, qlen: int, lo: int,
                   hi: int) -> bool:
    """Whether ``[lo, hi)`` (not empty) is the whole rank range of the ``qlen`` bytes that
    rank ``lo``'s suffix starts with: ranks ``lo - 1`` and ``hi`` do not start with them."""
    total = sa.shape[0] // k if k > 0 else 0
    p = _ptr(sa, k, lo)
    if p & (w - 1) or p + qlen > ds.shape[0]:
        return False
    q = ds[p:p + qlen]
    if lo > 0 and _cmp_at(ds, _ptr(sa, k, lo - 1), q, 0) == 0:
        return False
    return not (hi < total and _cmp_at(ds, _ptr(sa, k, hi), q, 0) == 0)
