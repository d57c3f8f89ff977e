"""The n-gram queries on validated token ids: find, count, prob, ntd and their ∞-gram forms.

Each function takes a :class:`~anygram.query.core.Searcher` and ids it has validated, asks
the shard layer, merges and builds the result; :class:`anygram.Engine` documents them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, TypeVar

import numpy as np

from ..errors import InvalidQueryError
from ..shards import TokenBatch, merge
from .core import Searcher, next_token_dist
from .results import (
    CountResult,
    FindResult,
    InfGramNextTokenDist,
    InfGramProbResult,
    NextTokenDist,
    ProbResult,
)

_R = TypeVar("_R")


def find(core: Searcher, ids: list[int]) -> FindResult:
    q = core.bytes(ids)
    ranges = core.ranges(q)
    return FindResult(count=core.count(q, ranges), ranges=tuple(ranges))


def count(core: Searcher, ids: list[int]) -> CountResult:
    q = core.bytes(ids)
    return CountResult(count=core.count(q, core.ranges(q)))


def prob(core: Searcher, prompt: list[int], cont: int) -> ProbResult:
    q = core.bytes(prompt)
    ranges = core.ranges(q)
    prompt_count = core.count(q, ranges)
    full = core.bytes(prompt + [cont])
    # The continuation's occurrences lie inside the prompt's: search only there.
    cont_count = core.count(full, core.shards.find_within(full, ranges))
    return ProbResult(prompt_count=prompt_count, cont_count=cont_count,
                      prob=cont_count / prompt_count if prompt_count else None)


def ntd(core: Searcher, prompt: list[int], max_support: int | None) -> NextTokenDist:
    q = core.bytes(prompt)
    return core.dist(q, core.ranges(q), max_support)


def infgram_prob(core: Searcher, prompt: list[int], cont: int) -> InfGramProbResult:
    suffix_len, ranges = core.longest_suffix(core.bytes(prompt))
    suffix = prompt[len(prompt) - suffix_len:]
    prompt_count = core.count(core.bytes(suffix), ranges)
    full = core.bytes(suffix + [cont])
    cont_count = core.count(full, core.shards.find_within(full, ranges))
    return InfGramProbResult(prompt_count=prompt_count, cont_count=cont_count,
                             prob=cont_count / prompt_count if prompt_count else None,
                             suffix_len=suffix_len)


def infgram_ntd(core: Searcher, prompt: list[int],
                max_support: int | None) -> InfGramNextTokenDist:
    q = core.bytes(prompt)
    suffix_len, ranges = core.longest_suffix(q)
    dist = core.dist(q[q.shape[0] - suffix_len * core.token_width:], ranges, max_support)
    return InfGramNextTokenDist(dist=dist, suffix_len=suffix_len)


def check_max_support(max_support: int | None) -> None:
    """``max_support`` must be a positive int or None."""
    if max_support is not None and (type(max_support) is not int or max_support < 1):
        raise InvalidQueryError(f"max_support must be a positive int or None, not {max_support!r}")


# ----------------------------------------------------------------------------- batches
#
# Many queries at once: one kernel call per shard for all of them, the queries sorted by
# their bytes (consecutive searches read neighbouring pages), the answers in input order.


class _Packed(NamedTuple):
    qs: np.ndarray  # the queries' token bytes, one after the other, sorted
    offs: np.ndarray  # where each starts (one more than the queries)
    order: list[int]  # the input index of each packed query


def _pack(core: Searcher, queries: Sequence[list[int]],
          order: list[int] | None = None) -> _Packed:
    """The queries as bytes, sorted (or in ``order``)."""
    m = len(queries)
    w = core.token_width
    flat = core.bytes([t for q in queries for t in q])  # one conversion for all of them
    nbytes = np.fromiter(map(len, queries), dtype=np.int64, count=m) * w
    starts = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(nbytes, out=starts[1:])
    if order is None:
        picked = _sorted_order(flat, starts, nbytes)
        order = picked.tolist()
    else:
        picked = np.asarray(order, dtype=np.int64).reshape(-1)
    offs = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(nbytes[picked], out=offs[1:])
    # Byte i of packed query j is byte i of query picked[j]: a gather of the flat bytes.
    gather = np.repeat(starts[picked] - offs[:-1], nbytes[picked]) + np.arange(offs[-1])
    return _Packed(flat[gather], offs, order)


#: Bytes of each query its sort looks at: enough for locality (the order is not an answer).
_SORT_BYTES = 32


def _sorted_order(flat: np.ndarray, starts: np.ndarray, nbytes: np.ndarray) -> np.ndarray:
    """The queries' order by their bytes (their first :data:`_SORT_BYTES`)."""
    m = nbytes.shape[0]
    width = int(min(_SORT_BYTES, nbytes.max())) if m else 0
    if width == 0:
        return np.arange(m, dtype=np.int64)
    cols = np.arange(width)
    inside = cols[None, :] < nbytes[:, None]
    heads = np.zeros((m, width), dtype=np.uint8)
    heads[inside] = flat[(starts[:-1, None] + cols[None, :])[inside]]
    # As fixed-width byte strings numpy compares them as memcmp does (a zero pad sorts
    # first, as a shorter query does).
    return np.argsort(heads.view(f"S{width}").ravel(), kind="stable")


def _totals(parts: Sequence[np.ndarray], m: int) -> np.ndarray:
    """Per query, the occurrences summed over the shards' ``[m, 2+]`` range arrays."""
    out = np.zeros(m, dtype=np.int64)
    for r in parts:
        out += r[:, -1] - r[:, -2]
    return out


def _counts(core: Searcher, packed: _Packed, parts: Sequence[np.ndarray]) -> np.ndarray:
    """Per packed query, its occurrences in the documents that remain."""
    m = packed.offs.shape[0] - 1
    counts = _totals(parts, m)
    if core.takedown is not None:
        counts -= _totals(core.takedown.find_many(packed.qs, packed.offs), m)
    return counts


def _in_order(packed: _Packed, values: Sequence[_R]) -> list[_R]:
    out: list[_R | None] = [None] * len(values)
    for j, i in enumerate(packed.order):
        out[i] = values[j]
    return out  # type: ignore[return-value]  # every slot was filled


def _unsorted(packed: _Packed, values: np.ndarray) -> np.ndarray:
    """Per-query ``values`` of the packed queries, in input order (as :func:`_in_order`,
    without a Python loop: a batch's results cost microseconds a query)."""
    out = np.empty_like(values)
    out[packed.order] = values
    return out


def count_many(core: Searcher, queries: Sequence[list[int]]) -> list[CountResult]:
    packed = _pack(core, queries)
    counts = _counts(core, packed, core.shards.find_many(packed.qs, packed.offs))
    return list(map(CountResult, _unsorted(packed, counts).tolist()))


def prob_many(core: Searcher, prompts: Sequence[list[int]],
              conts: Sequence[int]) -> list[ProbResult]:
    packed = _pack(core, prompts)
    ranges = core.shards.find_many(packed.qs, packed.offs)
    prompt_counts = _counts(core, packed, ranges).tolist()
    full = _pack(core, [prompts[i] + [conts[i]] for i in range(len(prompts))], packed.order)
    cont_counts = _counts(core, full, core.shards.find_many_within(full.qs, full.offs,
                                                                   ranges)).tolist()
    return _in_order(packed, [ProbResult(prompt_count=p, cont_count=c,
                                         prob=c / p if p else None)
                              for p, c in zip(prompt_counts, cont_counts)])


def ntd_many(core: Searcher, prompts: Sequence[list[int]],
             max_support: int | None) -> list[NextTokenDist]:
    packed = _pack(core, prompts)
    ranges = core.shards.find_many(packed.qs, packed.offs)
    return _in_order(packed, _dists(core, packed, ranges, max_support))


def _dists(core: Searcher, packed: _Packed, ranges: Sequence[np.ndarray],
           max_support: int | None) -> list[NextTokenDist]:
    """Per packed query, its next-token distribution, given each shard's ranges of it."""
    m = packed.offs.shape[0] - 1
    totals = _totals(ranges, m)
    qlens = np.diff(packed.offs)
    # Each shard's share of max_support samples where a prompt occurs more often (and the
    # next-token tables do not hold it: Searcher.tabled).
    sampled = totals > max_support if max_support is not None else np.zeros(m, dtype=bool)
    if sampled.any():
        sampled &= ~core.tabled(qlens, ranges)
    samples = [np.where(sampled & (r[:, 1] > r[:, 0]), np.maximum(
        1, -(-(max_support or 0) * (r[:, 1] - r[:, 0]) // np.maximum(totals, 1))), 0)
        for r in ranges]
    parts = core.shards.next_tokens_many(qlens, ranges, samples)
    removed_totals = np.zeros(m, dtype=np.int64)
    removed_parts: list[TokenBatch] = []
    if core.takedown is not None:
        removed_ranges = core.takedown.find_many(packed.qs, packed.offs)
        removed_totals = _totals(removed_ranges, m)
        removed_parts = core.takedown.next_tokens_many(
            qlens, removed_ranges, [np.zeros(m, dtype=np.int64)] * len(removed_ranges))
    return [next_token_dist(int(totals[j]), merge.tokens_of(parts, j), bool(sampled[j]),
                            int(removed_totals[j]), merge.tokens_of(removed_parts, j))
            for j in range(m)]


class _Suffixes(NamedTuple):
    packed: _Packed  # the prompts, sorted
    lengths: list[int]  # per packed prompt, the length of its longest occurring suffix
    suffixes: list[list[int]]  # per packed prompt, that suffix
    ranges: list[np.ndarray]  # per shard, the suffixes' rank ranges ([0, 0] if elsewhere)


def _longest_suffixes(core: Searcher, prompts: Sequence[list[int]]) -> _Suffixes:
    packed = _pack(core, prompts)
    m = len(prompts)
    found = core.shards.longest_suffix_many(packed.qs, packed.offs)
    best = np.max(np.stack([f[:, 0] for f in found]), axis=0) if found else np.zeros(m, int)
    # A shard whose own longest suffix is shorter than the best holds none of it.
    ranges = [np.where((f[:, 0] == best)[:, None], f[:, 1:], 0) for f in found]
    prompt_of = [prompts[i] for i in packed.order]
    lengths = best.tolist()
    suffixes = [prompt_of[j][len(prompt_of[j]) - n:] for j, n in enumerate(lengths)]
    return _Suffixes(packed, lengths, suffixes, ranges)


def infgram_prob_many(core: Searcher, prompts: Sequence[list[int]],
                      conts: Sequence[int]) -> list[InfGramProbResult]:
    packed, lengths, suffixes, ranges = _longest_suffixes(core, prompts)
    m = len(prompts)
    counts = _counts(core, _pack(core, suffixes, list(range(m))), ranges)
    full = _pack(core, [suffixes[j] + [conts[packed.order[j]]] for j in range(m)],
                 list(range(m)))
    cont_counts = _counts(core, full, core.shards.find_many_within(full.qs, full.offs, ranges))
    out = []
    for j, (p, c, n) in enumerate(zip(counts.tolist(), cont_counts.tolist(), lengths)):
        if p == 0 and n > 0:  # all of the suffix's occurrences are taken down: search on
            out.append(infgram_prob(core, prompts[packed.order[j]], conts[packed.order[j]]))
        else:
            out.append(InfGramProbResult(prompt_count=p, cont_count=c,
                                         prob=c / p if p else None, suffix_len=n))
    return _in_order(packed, out)


def infgram_ntd_many(core: Searcher, prompts: Sequence[list[int]],
                     max_support: int | None) -> list[InfGramNextTokenDist]:
    packed, lengths, suffixes, ranges = _longest_suffixes(core, prompts)
    m = len(prompts)
    dists = _dists(core, _pack(core, suffixes, list(range(m))), ranges, max_support)
    out = []
    for j, (dist, n) in enumerate(zip(dists, lengths)):
        if dist.prompt_count == 0 and n > 0:  # all taken down, as in infgram_prob_many
            out.append(infgram_ntd(core, prompts[packed.order[j]], max_support))
        else:
            out.append(InfGramNextTokenDist(dist=dist, suffix_len=n))
    return _in_order(packed, out)
