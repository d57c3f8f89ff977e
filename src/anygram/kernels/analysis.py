"""Numba kernels of the whole-text analyses: one left-to-right walk over a text per shard.

Same conventions as :mod:`anygram.kernels.search` (``ds``, ``sa``, ``k`` of one shard; a text
is little-endian token bytes, ``w`` bytes a token). Twins in ``tests/reference_analysis.py``.

The walk rests on one fact: if ``text[i:j]`` occurs, so does every substring of it. Hence for
each end ``j`` the suffixes ``text[i:j]`` that occur are exactly those with ``i >= start(j)``,
and ``start`` is non-decreasing in ``j``. :func:`suffix_walk` follows ``start(j)`` from left to
right, keeping the rank range of ``text[start:j]``: appending a token *narrows* that range (a
search inside it that compares only the new token); only when the extension fails does it
search afresh, bisecting the length of the longest suffix that still occurs. The same holds
when starts and ends are restricted to a set of *cuts* (word starts, for attribution aligned
to words): the walk then appends a word at a time and bisects over the cuts.

Fresh searches are what costs (two cache misses a step, ~20 steps in a 100M-token shard), so
they start from cached rank ranges of the text's first one or two tokens:

- ``tok``: ``tok[t] = (lo, hi)``, the range of token ``t`` (``-1``: not looked up yet); zero
  rows disables it (vocabularies too large for a dense table);
- ``bkey``/``brng``: a 2-way set-associative hash of token pairs (``bkey[slot]`` the pair,
  ``-1`` empty; ``brng[slot]`` its range); zero slots disables it.

Both are filled as the kernels go and keep their content across calls: the searches they
save are the first levels of every search, the same few entries again and again. The caller
must not let two threads use the same caches at once (the engine hands a busy cache's
caller empty ones).
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel
from .search import (
    _read_token,
    find_range,
    find_range_from,
    match_in_range,
    range_bounds,
)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: multiply, keep the top bits


def new_caches(vocab_size: int, max_tokens: int = 1 << 21, pair_slots: int = 1 << 18
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empty caches ``(tok, bkey, brng)`` for one shard (see the module docstring).

    The token table is dense (16 bytes a token id), so vocabularies above ``max_tokens`` get
    none; ``pair_slots`` (a power of two, or 0 for none) sizes the pair hash (24 bytes a slot).
    """
    if pair_slots != 0 and (pair_slots < 2 or pair_slots & (pair_slots - 1)):
        raise ValueError(f"pair_slots must be 0 or a power of two >= 2, not {pair_slots}")
    rows = vocab_size if vocab_size <= max_tokens else 0
    return (np.full((rows, 2), -1, dtype=np.int64), np.full(pair_slots, -1, dtype=np.int64),
            np.zeros((pair_slots, 2), dtype=np.int64))


@kernel
def _token_range(ds, sa, k, w, text, i, tok, total):
    """Rank range of the token at offset ``i`` of ``text``, through the ``tok`` cache."""
    t = _read_token(text, i * w, w)
    cached = t < tok.shape[0]
    # Both ends must be set: the table is shared with lock-free writers (end stored first).
    if cached and tok[t, 0] >= 0 and tok[t, 1] >= 0:
        return tok[t, 0], tok[t, 1]
    lo, hi = find_range(ds, sa, k, text[i * w:(i + 1) * w], 0, total)
    if cached:
        tok[t, 1] = hi
        tok[t, 0] = lo
    return lo, hi


@kernel
def _pair_range(ds, sa, k, w, text, i, tok, bkey, brng, total):
    """Rank range of the two tokens at offset ``i`` of ``text``, through the pair cache."""
    key = (_read_token(text, i * w, w) << 32) | _read_token(text, (i + 1) * w, w)
    slots = bkey.shape[0]
    slot = 0
    if slots > 0:
        slot = np.int64((np.uint64(key) * _GOLDEN) >> np.uint64(40)) & (slots - 2)
        if bkey[slot] == key:
            return brng[slot, 0], brng[slot, 1]
        if bkey[slot + 1] == key:
            return brng[slot + 1, 0], brng[slot + 1, 1]
    lo, hi = _token_range(ds, sa, k, w, text, i, tok, total)
    if hi > lo:
        lo, hi = find_range_from(ds, sa, k, text[i * w:(i + 2) * w], w, lo, hi)
    if slots > 0:
        if bkey[slot] != -1:  # taken (or both ways are): the second way is the victim
            slot += 1
        bkey[slot] = key
        brng[slot, 0] = lo
        brng[slot, 1] = hi
    return lo, hi


@kernel
def _find_any(ds, sa, k, w, text, i, j, tok, bkey, brng, total):
    """Whether ``text[i:j]`` (``j > i``) occurs: ``(lo, mid, hi)`` as
    :func:`~anygram.kernels.search.match_in_range` gives them, searched inside the cached
    range of its first one or two tokens. For one or two tokens
    the range is exact and ``mid = lo`` (or -1)."""
    if j - i == 1:
        lo, hi = _token_range(ds, sa, k, w, text, i, tok, total)
    else:
        lo, hi = _pair_range(ds, sa, k, w, text, i, tok, bkey, brng, total)
        if j - i > 2 and hi > lo:
            return match_in_range(ds, sa, k, text[i * w:j * w], 2 * w, lo, hi)
    return lo, (lo if hi > lo else -1), hi


@kernel
def _find(ds, sa, k, w, text, i, j, tok, bkey, brng, total):
    """The rank range of ``text[i:j]``; the empty span matches the whole table."""
    if j <= i:
        return 0, total
    lo, mid, hi = _find_any(ds, sa, k, w, text, i, j, tok, bkey, brng, total)
    if mid < 0:
        return lo, lo
    if j - i > 2:
        return range_bounds(ds, sa, k, text[i * w:j * w], 2 * w, lo, mid, hi)
    return lo, hi


@kernel
def suffix_walk(ds: np.ndarray, sa: np.ndarray, k: int, w: int, text: np.ndarray,
                cuts: np.ndarray, tok: np.ndarray, bkey: np.ndarray, brng: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """For each cut ``c = cuts[t]``: the longest suffix of ``text[:c]`` that starts at a cut
    and occurs in the shard, where it starts and its rank range.

    ``cuts`` are increasing token offsets, the last one ``n`` (the end of the text); only
    suffixes ``text[cuts[i]:cuts[t]]`` are considered. With every offset ``0..n`` a cut,
    that is every suffix; with the word starts (and ``n``), whole words only.

    Returns ``(starts, lows, counts, fresh)``: ``starts[t]`` is the suffix's start (a cut;
    ``starts[t] == cuts[t]``: the empty suffix, whose range is the whole table), ``[lows[t],
    lows[t] + counts[t])`` its rank range; ``fresh`` the number of searches that did not start
    from the walk's range (for benchmarks). ``starts`` is non-decreasing.

    Cost: one narrowing search per cut (O(log of the current count) steps, however many
    tokens it appends), plus, each time the suffix cannot be extended and must drop some of
    its ``L`` cuts, a bisection over them: O(log L) searches, each inside the range of a
    cached token pair.
    """
    m = cuts.shape[0]
    total = sa.shape[0] // k
    starts = np.empty(m, dtype=np.int64)
    lows = np.empty(m, dtype=np.int64)
    counts = np.empty(m, dtype=np.int64)
    starts[0] = cuts[0]
    lows[0] = 0
    counts[0] = total
    s = 0  # the suffix is text[cuts[s]:cuts[t]], of rank range [lo, hi)
    lo = 0
    hi = total
    fresh = 0
    for t in range(m - 1):
        i = cuts[s]
        j = cuts[t]
        e = cuts[t + 1]
        if j - i >= 2:
            a, b = find_range_from(ds, sa, k, text[i * w:e * w], (j - i) * w, lo, hi)
        else:  # one or two tokens so far: the caches know (or learn) the start of it
            a, b = _find(ds, sa, k, w, text, i, e, tok, bkey, brng, total)
        if b <= a:
            # text[cuts[s]:e] does not occur: bisect for the first cut from which it does.
            # Invariant: the suffix from cut `good` occurs, from cut `bad` does not. Only
            # existence is needed for that; the winner's bounds are completed at the end.
            good = t + 1
            bad = s
            ga = 0
            gm = 0
            gb = total
            while good - bad > 1:
                mid = (good + bad) >> 1
                x, y, z = _find_any(ds, sa, k, w, text, cuts[mid], e, tok, bkey, brng, total)
                fresh += 1
                if y >= 0:
                    good = mid
                    ga = x
                    gm = y
                    gb = z
                else:
                    bad = mid
            s = good
            i = cuts[s]
            if e - i > 2:
                a, b = range_bounds(ds, sa, k, text[i * w:e * w], 2 * w, ga, gm, gb)
            else:
                a = ga
                b = gb
        lo = a
        hi = b
        starts[t + 1] = cuts[s]
        lows[t + 1] = lo
        counts[t + 1] = hi - lo
    return starts, lows, counts, fresh


@kernel
def span_ranges(ds: np.ndarray, sa: np.ndarray, k: int, w: int, text: np.ndarray,
                left: np.ndarray, right: np.ndarray, tok: np.ndarray, bkey: np.ndarray,
                brng: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank ranges ``[lo, hi)`` of the spans ``text[left[i]:right[i]]`` (token offsets).

    An empty span matches the whole table. One search per span, inside the cached range of
    its first two tokens.
    """
    m = left.shape[0]
    total = sa.shape[0] // k
    lo = np.empty(m, dtype=np.int64)
    hi = np.empty(m, dtype=np.int64)
    for i in range(m):
        lo[i], hi[i] = _find(ds, sa, k, w, text, left[i], right[i], tok, bkey, brng, total)
    return lo, hi
