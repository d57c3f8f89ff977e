"""Interpolated Kneser-Ney probabilities for a chosen order ``n`` (:class:`KneserNey`), with
their discounts estimated exactly from the corpus. Semantics: ``docs/generation.md``.

Events. A document ``t1 .. tm`` is read as ``<s> t1 .. tm </s>``: the separator before a
document is the context ``<s>`` (a distinct predecessor), and the document end is an event
``END`` (:data:`END` = -1) that a model predicts like a token. Kneser-Ney is over
``{0..vocab_size-1} ∪ {END}``; a token that never occurs in the corpus has probability 0
(there is no uniform floor).

Kneser-Ney (Chen & Goodman's interpolated form, one discount ``D`` per order). With the
context ``u`` = the last ``n - 1`` prompt tokens (fewer if the prompt is shorter; ``m = |u|``)
and ``h_k`` its suffix of length ``k``::

    P_0(w)      = N1+(• w) / N1+(• •)                                   (no discount)
    P_k(w)      = max(c_k(w) - D, 0) / T_k + D · F_k / T_k · P_{k-1}(w)     k = 1..m
                  (P_k = P_{k-1} when T_k = 0: the context never occurs)

where at the top order ``k = m`` the counts are raw, ``c_m(w) = c(h_m w)``, ``T_m = c(h_m)``,
and below it they are continuation counts, ``c_k(w) = N1+(• h_k w)`` (distinct predecessors,
``<s>`` included), ``T_k = N1+(• h_k •)``; ``F_k`` is the number of distinct ``w`` with
``c_k(w) > 0``. Every count honours takedowns.

Discounts. Fixed (:data:`DEFAULT_DISCOUNT`, or given), or ``discount="estimate"``:
:meth:`~KneserNey.estimate_discounts`, ``D = n1 / (n1 + 2 n2)`` per order from the
count-of-counts of the corpus, exact over all the shards (one suffix-array walk per shard and
order, each rare type looked up in the other shards: :mod:`anygram.kernels.lm`).

Cost. The top order is one :meth:`~anygram.Engine.ntd`. A lower order enumerates every
occurrence of its context and reads the tokens on both sides: O(count(h_k)) (a frequent
one-token context of a big corpus is millions of reads). The unigram base enumerates the whole
corpus once (O(N log N) time, O(N) memory) and is cached; contexts are cached
too (an LRU of :data:`CONTEXT_CACHE_SIZE` entries).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np

from ..errors import InvalidQueryError
from ..query import ngrams
from ..query.core import Query, Searcher
from ..shards import merge
from .results import END, KNNextTokenDist, KNProbResult

#: The discount of every order unless one is given (estimating it exactly is expensive).
DEFAULT_DISCOUNT = 0.75
#: Suffix-array ranks read together by a sampled discount estimate (one random window).
SAMPLE_WINDOW = 1024
#: Contexts whose Kneser-Ney counts each model keeps (least recently used dropped first).
CONTEXT_CACHE_SIZE = 4096

Discount = float | Sequence[float] | Literal["estimate"] | None


@dataclass(frozen=True, slots=True)
class _Counts:
    """Followers of one context: raw counts c(h w), continuation counts N1+(• h w)."""

    count: int  # c(h)
    raw: dict[int, int]  # w -> c(h w), END included
    cont: dict[int, int]  # w -> N1+(• h w)


@dataclass(frozen=True, slots=True)
class _Unigram:
    """The Kneser-Ney unigram base: sorted ids (END = -1 first) and their N1+(• w)."""

    ids: np.ndarray  # int64, sorted
    cont: np.ndarray  # int64
    total: int  # N1+(• •): distinct bigram types

    def probs(self) -> np.ndarray:
        return self.cont / self.total if self.total else np.zeros(self.cont.shape[0])


def check_n(n: object) -> int:
    """``n``, the order, as an int >= 2."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 2:
        raise InvalidQueryError(f"n must be an int >= 2, not {n!r}")
    return int(n)


class KneserNey:
    """Interpolated Kneser-Ney over a :class:`~anygram.query.core.Searcher`, with its
    caches: the unigram base, the counts of recent contexts and the estimated discounts
    (the public methods are :class:`anygram.Engine`'s, documented there)."""

    def __init__(self, core: Searcher) -> None:
        self._core = core
        self._unigram: _Unigram | None = None
        self._contexts: OrderedDict[tuple[int, ...], _Counts] = OrderedDict()
        self._estimates: dict[tuple[int, int | None, int], dict[int, float]] = {}

    def prob(self, prompt_ids: Query, cont_id: int, n: int, discount: Discount
             ) -> KNProbResult:
        core = self._core
        n = check_n(n)
        prompt = core.ids(prompt_ids, "prompt_ids", allow_empty=True)
        cont = END if type(cont_id) is int and cont_id == END else core.token(
            cont_id, "cont_id")
        ctx = prompt[max(0, len(prompt) - (n - 1)):]
        ds = self.discounts(discount, len(ctx) + 1, n)
        uni = self._unigram_base()
        i = int(np.searchsorted(uni.ids, cont))
        p = float(uni.cont[i]) / uni.total if i < uni.ids.shape[0] and uni.ids[i] == cont \
            and uni.total else 0.0
        top = _Counts(0, {}, {})
        for k in range(1, len(ctx) + 1):
            counts = self._counts(ctx[len(ctx) - k:], top=k == len(ctx))
            p = _interpolate_one(counts, k == len(ctx), ds[k - 1], cont, p)
            top = counts
        return KNProbResult(prob=p, order=len(ctx) + 1, context_count=top.count,
                            cont_count=top.raw.get(cont, 0), discounts=ds)

    def ntd(self, prompt_ids: Query, n: int, discount: Discount, top_k: int | None,
            full: bool) -> KNNextTokenDist:
        n = check_n(n)
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                                  or top_k < 1):
            raise InvalidQueryError(f"top_k must be a positive int or None, not {top_k!r}")
        prompt = self._core.ids(prompt_ids, "prompt_ids", allow_empty=True)
        ids, probs, ctx, ds, top, candidates = self.vector(prompt, n, discount)
        if full:
            keep = np.arange(ids.shape[0])
        elif top_k is not None:
            keep = np.lexsort((ids, -probs))[:top_k]
        elif ctx:
            keep = np.searchsorted(ids, np.array(sorted(candidates), dtype=np.int64))
        else:
            keep = np.arange(ids.shape[0])
        keep = keep[probs[keep] > 0] if not full else keep
        explicit = {int(t): float(p) for t, p in zip(ids[keep].tolist(), probs[keep].tolist())}
        leftover = max(0.0, 1.0 - math.fsum(explicit.values()))
        return KNNextTokenDist(probs=explicit, leftover=leftover, order=len(ctx) + 1,
                               context_count=top.count, full=full or keep.shape[0] == ids.shape[0],
                               discounts=ds)

    def estimate_discounts(self, n: int, sample: int | None, seed: int) -> dict[int, float]:
        n = check_n(n)
        if sample is not None and (isinstance(sample, bool) or not isinstance(sample, int)
                                   or sample < 1):
            raise InvalidQueryError(f"sample must be a positive int or None, not {sample!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InvalidQueryError(f"seed must be an int >= 0, not {type(seed).__name__}")
        key = (n, sample, int(seed))
        hit = self._estimates.get(key)
        if hit is not None:
            return dict(hit)
        group = self._core.shards
        windows = _sample_windows([s.num_positions for s in group.sizes], sample, seed)
        out: dict[int, float] = {}
        for order in range(2, n + 1):
            coc = group.count_of_counts(order, 2, order < n, windows)
            n1, n2 = int(coc[1]), int(coc[2])
            out[order] = n1 / (n1 + 2 * n2) if n1 + 2 * n2 else DEFAULT_DISCOUNT
        self._estimates[key] = out
        return dict(out)

    def discounts(self, discount: Discount, order: int, n: int) -> tuple[float, ...]:
        """D of orders 2..order from the ``discount`` argument (one value, or one per order
        2..n, or ``"estimate"``: :meth:`estimate_discounts`, cached)."""
        if discount is None:
            ds = [DEFAULT_DISCOUNT] * (n - 1)
        elif isinstance(discount, str):
            if discount != "estimate":
                raise InvalidQueryError(f"discount must be a number, n - 1 numbers, 'estimate' "
                                        f"or None, not {discount!r}")
            est = self.estimate_discounts(n, None, 0)
            ds = [est[j] for j in range(2, n + 1)]
        elif isinstance(discount, (int, float, np.floating, np.integer)) and not isinstance(
                discount, (bool, np.bool_)):
            ds = [float(discount)] * (n - 1)
        else:  # one per order
            bad = InvalidQueryError(f"discount must be a number, n - 1 numbers, 'estimate' or "
                                    f"None, not {discount!r}")
            if isinstance(discount, (bool, np.bool_, bytes, dict)):
                raise bad
            try:
                ds = [float(d) for d in cast("Iterable[float]", discount)]
            except (TypeError, ValueError):
                raise bad from None
            if len(ds) != n - 1:
                raise InvalidQueryError(f"discount must be one value or n - 1 = {n - 1} values "
                                        f"(orders 2..{n}), not {len(ds)}")
        for d in ds:
            if not 0.0 <= d <= 1.0:
                raise InvalidQueryError(f"a discount must be in [0, 1], not {d}")
        return tuple(ds[:max(order - 1, 0)])

    def vector(self, prompt: list[int], n: int, discount: Discount
               ) -> tuple[np.ndarray, np.ndarray, list[int], tuple[float, ...], _Counts,
                          set[int]]:
        """The whole Kneser-Ney distribution over the unigram support (ids sorted, END
        first), with the context, discounts, top-order counts and the followers of the last
        prompt token."""
        ctx = prompt[max(0, len(prompt) - (n - 1)):]
        ds = self.discounts(discount, len(ctx) + 1, n)
        uni = self._unigram_base()
        probs = uni.probs()
        top = _Counts(0, {}, {})
        candidates: set[int] = set()
        for k in range(1, len(ctx) + 1):
            is_top = k == len(ctx)
            counts = self._counts(ctx[len(ctx) - k:], top=is_top)
            c = counts.raw if is_top else counts.cont
            total = counts.count if is_top else sum(c.values())
            if k == 1:
                candidates = set(c)
            if total:
                d = ds[k - 1]
                probs = probs * (d * len(c) / total)
                ws = np.array(list(c), dtype=np.int64)
                add = np.maximum(np.array(list(c.values()), dtype=np.float64) - d, 0.0) / total
                probs[np.searchsorted(uni.ids, ws)] += add
            top = counts
        return uni.ids, probs, ctx, ds, top, candidates

    # ------------------------------------------------------------------ counting

    def _unigram_base(self) -> _Unigram:
        """N1+(• w) for every w (END included) and N1+(• •), over the whole corpus (cached)."""
        if self._unigram is None:
            core = self._core
            pairs = core.shards.token_pairs(None, 0)
            ids, _, cont, total = merge.follower_counts(pairs, core.token_width, END)
            self._unigram = _Unigram(ids.astype(np.int64), cont.astype(np.int64), total)
        return self._unigram

    def _counts(self, h: list[int], *, top: bool) -> _Counts:
        """Raw follower counts of ``h`` (top order: one ntd) or, below the top, raw and
        continuation counts by enumerating its occurrences (cached)."""
        core = self._core
        if top:
            d = ngrams.ntd(core, h, None)
            followers = dict(d.counts)
            if d.end_count:
                followers[END] = d.end_count
            return _Counts(d.prompt_count, followers, {})
        key = tuple(h)
        hit = self._contexts.get(key)
        if hit is not None:
            self._contexts.move_to_end(key)
            return hit
        pairs = core.shards.token_pairs(core.ranges(core.bytes(h)), len(h))
        ids, raw, cont, _ = merge.follower_counts(pairs, core.token_width, END)
        out = _Counts(int(raw.sum()), dict(zip(ids.tolist(), raw.tolist())),
                      dict(zip(ids.tolist(), cont.tolist())))
        self._contexts[key] = out
        if len(self._contexts) > CONTEXT_CACHE_SIZE:
            self._contexts.popitem(last=False)
        return out


def _interpolate_one(counts: _Counts, top: bool, d: float, w: int, lower: float) -> float:
    c = counts.raw if top else counts.cont
    total = counts.count if top else sum(c.values())
    if total == 0:
        return lower
    return max(c.get(w, 0) - d, 0.0) / total + d * len(c) / total * lower


def _sample_windows(sizes: list[int], sample: int | None, seed: int
                    ) -> list[np.ndarray | None]:
    """Per shard (of ``sizes`` ranks), the sorted rank windows ``[a, b)`` of a sampled
    estimate (None: all): about ``sample / SAMPLE_WINDOW`` windows of :data:`SAMPLE_WINDOW`
    ranks, drawn uniformly without replacement among the windows of all the shards (so each
    has the same chance)."""
    total = sum(sizes)
    if sample is None or sample >= total:
        return [None] * len(sizes)
    blocks = [-(-size // SAMPLE_WINDOW) for size in sizes]
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(sum(blocks), size=min(sum(blocks), -(-sample // SAMPLE_WINDOW)),
                              replace=False)).astype(np.int64)
    out: list[np.ndarray | None] = []
    first = 0
    for size, nb in zip(sizes, blocks):
        mine = pick[(pick >= first) & (pick < first + nb)] - first
        first += nb
        out.append(np.stack([mine * SAMPLE_WINDOW,
                             np.minimum((mine + 1) * SAMPLE_WINDOW, size)], axis=1))
    return out
