"""Numba kernels for the Kneser-Ney discount estimate: count-of-counts of k-gram types,
exact over any number of shards.

Same conventions as :mod:`anygram.kernels.search` (``ds``, ``sa``, ``k`` of one shard, ``w``
bytes a token, documents preceded by a separator of ``w`` bytes 0xff). Twins (brute force over
the documents) in ``tests/reference_lm.py``.

The k-grams are those of the Kneser-Ney model (``anygram.lm.generation``): ``k - 1`` document
tokens followed by a document token or the document end (a separator, or the end of the
shard). A k-gram's *key* is its ``k * w`` bytes, the end written as a separator. All suffixes
that begin with the same key are contiguous in a shard's suffix array, so one walk over the
ranks, comparing each suffix's first ``k`` tokens with the run's, gives every k-gram type of
the shard with its count (the run length, or its number of distinct preceding tokens). The one
suffix per shard that ends the shard right after ``k - 1`` tokens (the last document's last
k-gram, ending in END: its *tail*) is not in its run (it sorts as a proper prefix); it is added
to the run of its key when that exists, and is a type of its own otherwise.

Several shards. A type's count is the sum of its shards' counts (the union of their
predecessor sets for continuation counts), so a type counted ``c <= maxc`` times overall is
counted at most ``c`` times in every shard. Each type is *owned* by the first shard where it
occurs (after takedowns); its *position* is the rank of its key there (where its run starts,
or would be inserted). :func:`shard_candidates` walks one shard and emits its types with a
count in ``1..maxc`` (the only ones that can end up in ``1..maxc``), in key order;
:func:`lookup_candidates` then looks them up in another shard, galloping forward from the
previous key's rank (the keys are sorted): a shard before the source shard that holds the type
disowns it, a later shard adds its occurrences. Memory: O(chunk) candidates at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._jit import inline_kernel, kernel
from .search import _cmp_at, _group_end, _lower_bound, _ptr, _read_token, find_range

#: Suffix-array ranks whose runs one :func:`shard_candidates` call walks (bounds its memory).
CHUNK = 1 << 20

_EMPTY = np.zeros(0, dtype=np.int64)
_EMPTY_KEY = np.zeros(0, dtype=np.uint8)


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


@inline_kernel
def _add(continuation, x, preds, i, c):
    """Count one more occurrence (preceded by token ``x``) of candidate ``i`` counted ``c``
    times so far: the new count (continuation: ``x`` joins ``preds[i, :c]`` if new)."""
    if not continuation:
        return c + 1
    for j in range(c):
        if preds[i, j] == x:
            return c
    preds[i, c] = x
    return c + 1


@kernel
def _gallop_lower(ds, sa, k, q, r, total):
    """The first rank ``>= r`` whose suffix is not below ``q`` (every rank below ``r`` is)."""
    if r >= total or _cmp_at(ds, _ptr(sa, k, r), q, 0) >= 0:
        return r
    step = 1
    prev = r
    while r + step < total and _cmp_at(ds, _ptr(sa, k, r + step), q, 0) < 0:
        prev = r + step
        step <<= 1
    return _lower_bound(ds, sa, k, q, 0, prev + 1, min(r + step, total))


@kernel
def _shard_candidates(ds, sa, k, w, order, maxc, continuation, windows, rm_lo, rm_hi,
                      tail_rank, tail_pred):
    n = ds.shape[0]
    total = sa.shape[0] // k if k > 0 else 0
    sep = (np.int64(1) << (8 * w)) - 1
    nbytes = order * w
    removals = rm_lo.shape[0] > 0
    cap = 0
    for wi in range(windows.shape[0]):
        cap += max(0, min(windows[wi, 1], total) - windows[wi, 0])
    ptrs = np.empty(cap, dtype=np.int64)
    counts = np.empty(cap, dtype=np.int64)
    preds = np.empty((cap, maxc + 1 if continuation else 1), dtype=np.int64)
    m = 0
    buf = np.empty(nbytes, dtype=np.uint8)
    for wi in range(windows.shape[0]):
        r = windows[wi, 0]
        b = min(windows[wi, 1], total)
        if r >= b:
            continue
        # A run that starts before the window belongs to an earlier window (or none).
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
            start = r
            c = 0  # occurrences, or distinct predecessors (<s> = the separator)
            while r < total:
                q = _ptr(sa, k, r)
                if q + nbytes > n or not _same(ds, p, q, nbytes):
                    break
                if not (removals and _in_removed(q, rm_lo, rm_hi)):
                    c = _add(continuation, _read_token(ds, q - w, w), preds, m, c)
                    if c > maxc:  # settled: jump to the run's end
                        r = _group_end(ds, sa, k, buf, 0, r, total)
                        break
                r += 1
            if c <= maxc and start == tail_rank:
                c = _add(continuation, tail_pred, preds, m, c)
            if 0 < c <= maxc:
                ptrs[m] = p
                counts[m] = c
                m += 1
    return ptrs[:m].copy(), counts[:m].copy(), preds[:m].copy()


def shard_candidates(ds: np.ndarray, sa: np.ndarray, k_ptr: int, w: int, order: int,
                     maxc: int, *, continuation: bool = False, windows: np.ndarray | None = None,
                     removed: tuple[np.ndarray, np.ndarray] | None = None, tail_rank: int = -1,
                     tail_pred: int = -1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k-gram types (``k = order``) of one shard counted ``1..maxc`` times there.

    Returns ``(ptrs, counts, preds)`` in key order: the byte offset in ``ds`` where each
    type's key is (its first occurrence in the suffix array), its count, and (with
    ``continuation``, where a count is the number of distinct predecessors, the separator
    counting as one, ``<s>``) its predecessors in ``preds[i, :counts[i]]``.

    ``windows``: int64 ``[m, 2]`` rank ranges ``[a, b)``, sorted and disjoint; only the types
    whose run *starts* in a window are emitted (each counted completely, even past the window's
    end). Default: the whole table. ``removed``: sorted, disjoint byte intervals
    ``(starts, ends)`` of taken-down documents, whose occurrences are not counted.
    ``tail_rank``: the rank where the run of the shard's tail's key starts (the tail, with
    predecessor ``tail_pred``, is added to that run), or -1. O(k · ranks) byte compares; a run
    counted past ``maxc`` is skipped to its end by a galloping search.
    """
    total = sa.shape[0] // k_ptr if k_ptr > 0 else 0
    if windows is None:
        windows = np.array([[0, total]], dtype=np.int64)
    lo, hi = removed if removed is not None else (_EMPTY, _EMPTY)
    return _shard_candidates(ds, sa, k_ptr, w, order, maxc, continuation,
                             np.ascontiguousarray(windows, dtype=np.int64),
                             np.ascontiguousarray(lo, dtype=np.int64),
                             np.ascontiguousarray(hi, dtype=np.int64), tail_rank, tail_pred)


@kernel
def _lookup_candidates(key_ds, key_ptrs, nbytes, ds, sa, k, w, cursor, disown, maxc,
                       continuation, counts, preds, alive, rm_lo, rm_hi, tail, tail_pred):
    total = sa.shape[0] // k if k > 0 else 0
    sep = (np.int64(1) << (8 * w)) - 1
    removals = rm_lo.shape[0] > 0
    buf = np.empty(nbytes, dtype=np.uint8)
    for i in range(key_ptrs.shape[0]):
        if not alive[i]:
            continue
        for j in range(nbytes):
            buf[j] = key_ds[key_ptrs[i] + j]
        cursor = _gallop_lower(ds, sa, k, buf, cursor, total)
        # The shard's tail (ending the shard, not in the run) has this key?
        at_tail = tail >= 0 and _read_token(buf, nbytes - w, w) == sep
        if at_tail:
            for j in range(nbytes - w):
                if ds[tail + j] != buf[j]:
                    at_tail = False
                    break
        c = 0 if disown else counts[i]
        r = cursor
        while r < total:
            q = _ptr(sa, k, r)
            if _cmp_at(ds, q, buf, 0) != 0:
                break
            if not (removals and _in_removed(q, rm_lo, rm_hi)):
                if disown:
                    c = 1
                    break
                c = _add(continuation, _read_token(ds, q - w, w), preds, i, c)
                if c > maxc:
                    break
            r += 1
        if at_tail and (c == 0 if disown else c <= maxc):
            c = 1 if disown else _add(continuation, tail_pred, preds, i, c)
        if disown:
            if c > 0:
                alive[i] = False
        elif c > maxc:
            alive[i] = False
        else:
            counts[i] = c
    return cursor


def lookup_candidates(key_ds: np.ndarray, key_ptrs: np.ndarray, nbytes: int, ds: np.ndarray,
                      sa: np.ndarray, k_ptr: int, w: int, maxc: int, counts: np.ndarray,
                      preds: np.ndarray, alive: np.ndarray, *, disown: bool,
                      continuation: bool = False, cursor: int = 0,
                      removed: tuple[np.ndarray, np.ndarray] | None = None, tail: int = -1,
                      tail_pred: int = -1) -> int:
    """Look candidate types up in another shard, updating them in place; returns the cursor.

    Candidate ``i`` is the key ``key_ds[key_ptrs[i] : key_ptrs[i] + nbytes]`` (keys in
    increasing byte order), counted ``counts[i]`` times so far (continuation: predecessors
    ``preds[i, :counts[i]]``, ``preds`` with at least ``maxc + 1`` columns); only the
    ``alive`` ones are looked up. ``disown``: the shard comes before the candidates' shard,
    so a candidate it holds at all (after takedowns) is not theirs: ``alive[i] = False``.
    Otherwise its occurrences are added, and a candidate counted past ``maxc`` dies.

    ``cursor``: a rank at or below the first key's (the value returned for the previous,
    smaller keys; 0 at first): each key is found by galloping forward from the previous one,
    O(log gap) compares, then its run is read until its count passes ``maxc``.
    ``removed``: as in :func:`shard_candidates`. ``tail``: byte offset of the shard's tail
    (its last ``k - 1`` tokens, which end the shard), with predecessor ``tail_pred``; -1: none.
    """
    lo, hi = removed if removed is not None else (_EMPTY, _EMPTY)
    return int(_lookup_candidates(key_ds, np.ascontiguousarray(key_ptrs, dtype=np.int64),
                                  nbytes, ds, sa, k_ptr, w, cursor, disown, maxc, continuation,
                                  counts, preds, alive, np.ascontiguousarray(lo, dtype=np.int64),
                                  np.ascontiguousarray(hi, dtype=np.int64), tail, tail_pred))



def _tail(ds: np.ndarray, sa: np.ndarray, k_ptr: int, w: int, order: int,
          removed: tuple[np.ndarray, np.ndarray] | None) -> tuple[int, int, np.ndarray, int, bool]:
    """The shard's tail k-gram: ``(byte offset or -1, predecessor, key, rank, run exists)``;
    ``rank`` is where the key's run starts (or would be inserted)."""
    n = ds.shape[0]
    tail = n - (order - 1) * w
    none = (-1, -1, _EMPTY_KEY, -1, False)
    if tail < w:
        return none
    toks = [int.from_bytes(bytes(ds[tail + j * w:tail + (j + 1) * w]), "little")
            for j in range(order - 1)]
    if (1 << (8 * w)) - 1 in toks:
        return none
    if removed is not None and _in_removed(tail, *removed):
        return none
    key = np.concatenate([np.asarray(ds[tail:n]), np.full(w, 0xFF, dtype=np.uint8)])
    total = sa.shape[0] // k_ptr
    a, b = find_range(ds, sa, k_ptr, key, 0, total)
    pred = int.from_bytes(bytes(ds[tail - w:tail]), "little")
    return tail, pred, key, int(a), bool(b > a)


def _chunks(windows: np.ndarray | None, total: int) -> list[np.ndarray]:
    """``windows`` (all ranks when None) cut into calls of about :data:`CHUNK` ranks."""
    if windows is None:
        return [np.array([[a, min(a + CHUNK, total)]], dtype=np.int64)
                for a in range(0, total, CHUNK)]
    out, start, size = [], 0, 0
    lengths = windows[:, 1] - windows[:, 0]
    for i, length in enumerate(lengths.tolist()):
        size += length
        if size >= CHUNK:
            out.append(windows[start:i + 1])
            start, size = i + 1, 0
    if start < windows.shape[0]:
        out.append(windows[start:])
    return out


def count_of_counts(shards: Sequence[tuple[np.ndarray, np.ndarray, int]], w: int, order: int,
                    maxc: int, *, continuation: bool = False,
                    windows: Sequence[np.ndarray | None] | None = None,
                    removed: Sequence[tuple[np.ndarray, np.ndarray] | None] | None = None
                    ) -> np.ndarray:
    """How many k-gram types (``k = order``) of the whole index occur exactly ``c`` times.

    ``shards``: ``(ds, sa, ptr_width)`` of each shard, in index order. Returns int64 ``out`` of
    length ``maxc + 1`` with ``out[c]`` for ``c = 1..maxc`` (``out[0] = 0``), exact over all
    the shards: a type's count is the sum of its shards' counts, or with ``continuation`` its
    number of distinct predecessors ``N1+(• g)`` over all of them (the separator before a
    document counts as one, ``<s>``).

    ``windows``: per shard, None (every rank) or int64 ``[m, 2]`` rank ranges ``[a, b)``,
    sorted and disjoint: only the types whose position (the rank of their key in the first
    shard holding them) falls in a window of that shard are counted, each with its exact count.
    Default: every type (exact). ``removed``: per shard, None or the sorted, disjoint byte
    intervals ``(starts, ends)`` of its taken-down documents, whose occurrences do not count.

    Cost: each shard's suffix array is walked once (O(k · N) byte compares, skipping runs
    counted past ``maxc``); each of its types counted ``1..maxc`` times is then looked up in
    every other shard by a galloping search from the previous one's rank (O(log gap) compares)
    and its run there read until its count passes ``maxc``. About S walks for S shards; one
    shard costs a single walk. Extra memory: O(:data:`CHUNK`) candidates.
    """
    num = len(shards)
    windows = list(windows) if windows is not None else [None] * num
    removed = list(removed) if removed is not None else [None] * num
    nbytes = order * w
    out = np.zeros(maxc + 1, dtype=np.int64)
    tails = [_tail(ds, sa, k, w, order, rm) for (ds, sa, k), rm in zip(shards, removed)]
    others = [[t for t in range(num) if t != s] for s in range(num)]  # earlier shards first

    def look(s: int, key_ds: np.ndarray, ptrs: np.ndarray, counts: np.ndarray,
             preds: np.ndarray, cursors: list[int]) -> None:
        alive = np.ones(ptrs.shape[0], dtype=np.bool_)
        for t in others[s]:
            if not alive.any():
                break
            ds, sa, k = shards[t]
            tail, tail_pred = tails[t][0], tails[t][1]
            cursors[t] = lookup_candidates(key_ds, ptrs, nbytes, ds, sa, k, w, maxc, counts,
                                           preds, alive, disown=t < s,
                                           continuation=continuation, cursor=cursors[t],
                                           removed=removed[t], tail=tail, tail_pred=tail_pred)
        out[:] += np.bincount(counts[alive], minlength=maxc + 1)[:maxc + 1]

    for s, (ds, sa, k) in enumerate(shards):
        total = sa.shape[0] // k if k > 0 else 0
        tail, tail_pred, key, rank, run = tails[s]
        cursors = [0] * num
        for chunk in _chunks(windows[s], total):
            ptrs, counts, preds = shard_candidates(
                ds, sa, k, w, order, maxc, continuation=continuation, windows=chunk,
                removed=removed[s], tail_rank=rank if run else -1, tail_pred=tail_pred)
            if num == 1:
                out[:] += np.bincount(counts, minlength=maxc + 1)[:maxc + 1]
                continue
            look(s, ds, ptrs, counts, preds, cursors)
        # The tail as a type of its own (no run has its key), at the rank of its key.
        if tail >= 0 and not run:
            ws = windows[s]
            r = min(rank, total - 1)
            if ws is None or bool(np.any((ws[:, 0] <= r) & (r < ws[:, 1]))):
                preds = np.full((1, maxc + 1), tail_pred, dtype=np.int64)
                look(s, key, np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.int64), preds,
                     [0] * num)
    out[0] = 0
    return out

