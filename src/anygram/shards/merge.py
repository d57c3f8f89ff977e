"""Merging per-shard partials (:mod:`anygram.shards.base`) into whole-index answers.

Each function takes the partials of every shard, in shard order, and returns plain values
(ints, dicts, arrays); the query layer builds result types from them. Counts add up, since a
string occurs in the index iff it occurs in some shard and n-grams never cross shards; the
takedown index's partials are merged the same way and subtracted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..kernels.tallies import sum_tallies
from .base import NextTokens, Occurrences, Range, SpanOccurrences, TokenBatch, Walk


def total(ranges: Sequence[Range]) -> int:
    """Occurrences in rank ranges, summed over the shards."""
    return sum(b - a for a, b in ranges)


def sample_sizes(ranges: Sequence[Range], samples: int) -> list[int | None]:
    """Each shard's share of ``samples`` evenly spaced occurrences, in proportion to its
    count (at least one where there is any)."""
    n = total(ranges)
    return [max(1, -(-samples * (b - a) // n)) for a, b in ranges]


def add_next_tokens(counts: dict[int, int], parts: Sequence[NextTokens], sign: int) -> int:
    """Add ``sign`` x each shard's next-token counts into ``counts``; return ``sign`` x the
    document ends."""
    end = sum(part.end for part in parts)
    tallied = [part for part in parts if part.ids.shape[0]]
    if not tallied:
        return sign * end
    if len(tallied) == 1:  # a shard's ids are distinct
        ids, added = tallied[0].ids.tolist(), tallied[0].counts.tolist()
    else:  # summed in a kernel: the ids in the order the loop below would add them
        summed = sum_tallies(np.concatenate([p.ids for p in tallied]),
                             np.concatenate([p.counts for p in tallied]))
        ids, added = summed[0].tolist(), summed[1].tolist()
    if sign > 0 and not counts:
        counts.update(zip(ids, added))
        return end
    get = counts.get
    for t, c in zip(ids, added):
        counts[t] = get(t, 0) + sign * c
    return sign * end


def tokens_of(batches: Sequence[TokenBatch], j: int) -> list[NextTokens]:
    """Query ``j``'s next-token tallies, one per shard, from the shards' batches."""
    return [NextTokens(b.ids[b.starts[j]:b.starts[j + 1]], b.counts[b.starts[j]:b.starts[j + 1]],
                       int(b.ends[j])) for b in batches]


def longest_suffix(found: Sequence[tuple[int, int, int]]) -> tuple[int, list[Range]]:
    """The longest suffix over all shards (from each shard's ``(length, lo, hi)``) and its
    rank range in each shard."""
    best = max((f[0] for f in found), default=0)
    # Occurrence is monotone in suffix length, so a shard whose own longest suffix is
    # shorter than `best` has no occurrence of the best suffix.
    return best, [(f[1], f[2]) if f[0] == best else (0, 0) for f in found]


def walk(walks: Sequence[Walk], cuts: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """The corpus walk from per-shard walks: ``(starts, counts, ranges per shard)``.

    A string occurs in the corpus iff it occurs in some shard, so the start at each cut is
    the minimum of the shards' starts, and the count sums the counts of the shards whose own
    start is that one (the others do not contain that suffix); their rank ranges are kept,
    the others' are empty.
    """
    if not walks:
        return cuts.copy(), np.zeros(cuts.shape[0], dtype=np.int64), []
    if len(walks) == 1:
        s, lo, c = walks[0]
        return s, c, [(lo, lo + c)]
    starts = np.minimum.reduce([w.starts for w in walks])
    counts = np.zeros(cuts.shape[0], dtype=np.int64)
    ranges = []
    for s, lo, c in walks:
        c = np.where(s == starts, c, 0)
        counts += c
        ranges.append((lo, lo + c))
    return starts, counts, ranges


def counts_at(walks: Sequence[Walk], starts: np.ndarray) -> np.ndarray:
    """Per cut, the count summed over the shards whose walk starts where ``starts`` does."""
    out = np.zeros(starts.shape[0], dtype=np.int64)
    for w in walks:
        out += np.where(w.starts == starts, w.counts, 0)
    return out


def span_counts(ranges: Sequence[tuple[np.ndarray, np.ndarray]], m: int) -> np.ndarray:
    """Occurrences of each of ``m`` spans, summed over the shards' rank ranges."""
    out = np.zeros(m, dtype=np.int64)
    for lo, hi in ranges:
        out += hi - lo
    return out


def spans_in_order(parts: Sequence[SpanOccurrences], doc_bases: Sequence[int], m: int,
                   limit: int | None) -> list[list[tuple[int, int, int]]]:
    """For each of ``m`` spans, its occurrences as ``(shard, position, global doc id)`` in
    corpus order (shard, then position), at most ``limit`` of them."""
    found = [(p.span, np.full(p.span.shape[0], s), p.positions, p.docs + doc_bases[s])
             for s, p in enumerate(parts) if p.span.shape[0]]
    if not found:
        return [[] for _ in range(m)]
    span, shard, pos, doc = (np.concatenate(x) for x in zip(*found))
    order = np.lexsort((pos, shard, span))
    span = span[order]
    bounds = np.searchsorted(span, np.arange(m + 1)).tolist()  # span i: [bounds[i], ..[i+1])
    if limit is not None:  # the first `limit` occurrences of each span
        nth = np.arange(order.shape[0]) - np.asarray(bounds)[span]
        order = order[nth < limit]
        bounds = np.searchsorted(span[nth < limit], np.arange(m + 1)).tolist()
    rows = list(zip(shard[order].tolist(), pos[order].tolist(), doc[order].tolist()))
    return [rows[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def ranks_of(occ: Sequence[Occurrences], seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(shards, ranks)`` of positions ``seq`` of the rank-ordered occurrence sequence, which
    runs through the shards in order, each shard's occurrences by rank."""
    nonempty = [s for s, o in enumerate(occ) if o.visible]
    if len(nonempty) == 1:  # all in one shard (always so with one shard): no lookup needed
        s = nonempty[0]
        o = occ[s]
        ranks = o.start + seq if o.ranks is None else o.ranks[seq]
        return np.full(seq.shape[0], s, dtype=np.int64), ranks
    counts = np.array([o.visible for o in occ], dtype=np.int64)
    ends = np.cumsum(counts)
    shards = np.searchsorted(ends, seq, side="right").astype(np.int64)
    j = seq - (ends - counts)[shards]  # index inside the shard's occurrences
    ranks = np.array([o.start for o in occ], dtype=np.int64)[shards] + j
    for s, o in enumerate(occ):
        if o.ranks is not None:  # some occurrences were filtered out: look the rank up
            sel = shards == s
            ranks[sel] = o.ranks[j[sel]]
    return shards, ranks


def page_slices(visible: Sequence[int], offset: int, n: int) -> list[tuple[int, int, int]]:
    """The shards holding items ``[offset, offset + n)`` of a sequence that runs through the
    shards in order (``visible[s]`` items each): ``(shard, lo, hi)``, the shard's own
    items ``[lo, hi)``."""
    out = []
    first = 0  # sequence index of the shard's first item
    for s, v in enumerate(visible):
        lo, hi = max(offset - first, 0), min(offset + n - first, v)
        first += v
        if hi > lo:
            out.append((s, lo, hi))
    return out


def follower_counts(pairs: Sequence[tuple[np.ndarray, np.ndarray]], width: int, end: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """From every shard's ``(token before, token after)`` pairs of a context's occurrences:
    the follower ids (sorted; a document end as ``end``, a negative id), their raw counts,
    their continuation counts (distinct tokens before), and the number of distinct pairs."""
    sep = (1 << (8 * width)) - 1
    p = np.concatenate([a for a, _ in pairs]) if pairs else np.zeros(0, dtype=np.int64)
    x = np.concatenate([b for _, b in pairs]) if pairs else np.zeros(0, dtype=np.int64)
    codes = np.unique((p.astype(np.uint64) << np.uint64(8 * width)) | x.astype(np.uint64))
    right = (codes & np.uint64(sep)).astype(np.int64)
    ids, cont = np.unique(right, return_counts=True)
    raw_ids, raw = np.unique(x, return_counts=True)
    assert np.array_equal(ids, raw_ids)
    ids = np.where(ids == sep, end, ids)
    order = np.argsort(ids, kind="stable")
    return ids[order], raw[order], cont[order], int(codes.shape[0])


def estimate(population: int, y: np.ndarray) -> tuple[float, float]:
    """Unbiased estimate of a sum over a population of ``population`` units from the values
    ``y`` of a uniform sample without replacement (drawn across the shards), and its
    estimated standard error (with the finite-population correction)."""
    n = y.shape[0]
    est = population * float(y.mean()) if n else 0.0
    if n < 2:
        return est, 0.0
    var = float(y.var(ddof=1)) * (1.0 - n / population) / n
    return est, population * math.sqrt(max(var, 0.0))
