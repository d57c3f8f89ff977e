"""The n-gram queries on validated token ids: find, count, prob, ntd and their ∞-gram forms.

Each function takes a :class:`~anygram.query.core.Searcher` and ids it has validated, asks
the shard layer, merges and builds the result; :class:`anygram.Engine` documents them.
"""

from __future__ import annotations

from ..errors import InvalidQueryError
from .core import Searcher
from .results import (
    CountResult,
    FindResult,
    InfGramNextTokenDist,
    InfGramProbResult,
    NextTokenDist,
    ProbResult,
)


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
