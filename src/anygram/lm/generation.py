"""Smoothing and generation (mixed into :class:`anygram.Engine`): interpolated Kneser-Ney
probabilities for a chosen order ``n``, and seeded sampling of text from the n-gram, the
∞-gram or the Kneser-Ney model. Semantics: ``docs/generation.md``.

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
:meth:`~LanguageModels.estimate_discounts`, ``D = n1 / (n1 + 2 n2)`` per order from the
count-of-counts of the corpus, exact over all the shards (one suffix-array walk per shard and
order, each rare type looked up in the other shards: :mod:`anygram.kernels.lm`).

Cost. The top order is one :meth:`~anygram.Engine.ntd`. A lower order enumerates every
occurrence of its context and reads the tokens on both sides: O(count(h_k)) (a frequent
one-token context of a big corpus is millions of reads). The unigram base enumerates the whole
corpus once (O(N log N) time, O(N) memory) and is cached on the engine; contexts are cached
too (an LRU of :data:`CONTEXT_CACHE_SIZE` entries).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np

from ..errors import InvalidQueryError
from ..kernels.lm import count_of_counts
from ..query.core import EngineCore, Query
from .results import END, KNNextTokenDist, KNProbResult

#: The discount of every order unless one is given (estimating it exactly is expensive).
DEFAULT_DISCOUNT = 0.75
#: Suffix-array ranks read together by a sampled discount estimate (one random window).
SAMPLE_WINDOW = 1024
#: Contexts whose Kneser-Ney counts each engine keeps (least recently used dropped first).
CONTEXT_CACHE_SIZE = 4096

Model = Literal["infgram", "ngram", "kn"]
Discount = float | Sequence[float] | Literal["estimate"] | None


# ---------------------------------------------------------------------------- internals


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


class _State:
    """Per-engine caches (the engine is not ours to add fields to)."""

    def __init__(self) -> None:
        self.unigram: _Unigram | None = None
        self.contexts: OrderedDict[tuple[int, ...], _Counts] = OrderedDict()
        self.discounts: dict[tuple[int, int | None, int], dict[int, float]] = {}


def _check_n(n: object) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 2:
        raise InvalidQueryError(f"n must be an int >= 2, not {n!r}")
    return int(n)


def _discounts(engine: LanguageModels, discount: Discount, order: int, n: int) -> tuple[float, ...]:
    """D of orders 2..order from the ``discount`` argument (one value, or one per order 2..n,
    or ``"estimate"``: :meth:`LanguageModels.estimate_discounts`, cached)."""
    if discount is None:
        ds = [DEFAULT_DISCOUNT] * (n - 1)
    elif isinstance(discount, str):
        if discount != "estimate":
            raise InvalidQueryError(f"discount must be a number, n - 1 numbers, 'estimate' or "
                                    f"None, not {discount!r}")
        est = engine.estimate_discounts(n)
        ds = [est[j] for j in range(2, n + 1)]
    elif isinstance(discount, (int, float, np.floating, np.integer)) and not isinstance(
            discount, (bool, np.bool_)):
        ds = [float(discount)] * (n - 1)
    else:  # one per order
        bad = InvalidQueryError(f"discount must be a number, n - 1 numbers, 'estimate' or None, "
                                f"not {discount!r}")
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


class LanguageModels(EngineCore):
    """Engine methods for smoothed probabilities (Kneser-Ney) and text generation."""

    # ------------------------------------------------------------------ Kneser-Ney

    def kn_prob(self, prompt_ids: Query, cont_id: int, *, n: int = 3,
                discount: Discount = None) -> KNProbResult:
        """Interpolated Kneser-Ney ``P(cont_id | prompt_ids)`` of order ``n`` (>= 2).

        ``cont_id`` may be :data:`END` (-1) for the document end. ``discount``: one ``D`` for
        every order, or ``n - 1`` values for orders ``2..n``, or ``"estimate"``
        (:meth:`estimate_discounts` of ``n``, computed once per engine); default
        :data:`DEFAULT_DISCOUNT` (0.75). Sums to 1 over all ids and END.
        """
        n = _check_n(n)
        prompt = self._as_ids(prompt_ids, "prompt_ids", allow_empty=True)
        cont = END if cont_id == END and not isinstance(cont_id, bool) else self._as_id(
            cont_id, "cont_id")
        ctx = prompt[max(0, len(prompt) - (n - 1)):]
        ds = _discounts(self, discount, len(ctx) + 1, n)
        uni = _lm_unigram(self)
        i = int(np.searchsorted(uni.ids, cont))
        p = float(uni.cont[i]) / uni.total if i < uni.ids.shape[0] and uni.ids[i] == cont \
            and uni.total else 0.0
        top = _Counts(0, {}, {})
        for k in range(1, len(ctx) + 1):
            counts = _lm_counts(self, ctx[len(ctx) - k:], top=k == len(ctx))
            p = _interpolate_one(counts, k == len(ctx), ds[k - 1], cont, p)
            top = counts
        return KNProbResult(prob=p, order=len(ctx) + 1, context_count=top.count,
                            cont_count=top.raw.get(cont, 0), discounts=ds)

    def kn_ntd(self, prompt_ids: Query, *, n: int = 3,
               discount: Discount = None, top_k: int | None = None,
               full: bool = False) -> KNNextTokenDist:
        """Interpolated Kneser-Ney next-token distribution of order ``n`` (>= 2).

        The explicit tokens are, by default, the followers of the last prompt token (every
        token that gets mass beyond the unigram base; the whole support for an empty
        prompt); with ``top_k`` the ``top_k`` most probable tokens of the whole
        distribution; with ``full`` every token of nonzero probability. ``leftover`` is the
        mass of the others (spread over them in proportion to ``P_0``).
        """
        n = _check_n(n)
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                                  or top_k < 1):
            raise InvalidQueryError(f"top_k must be a positive int or None, not {top_k!r}")
        prompt = self._as_ids(prompt_ids, "prompt_ids", allow_empty=True)
        ids, probs, ctx, ds, top, candidates = _kn_vector(self, prompt, n, discount)
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

    def estimate_discounts(self, n: int, *, sample: int | None = None,
                           seed: int = 0) -> dict[int, float]:
        """Kneser-Ney discounts of orders ``2..n`` from the corpus: ``{order: D}``.

        ``D = n1 / (n1 + 2 n2)`` (Ney; Chen & Goodman), with ``n1`` / ``n2`` the numbers of
        k-gram types (``k`` = the order) counted once / twice: raw occurrence counts at the
        top order ``n``, continuation counts ``N1+(• g)`` (distinct predecessors, ``<s>``
        included) below it, as the model uses them. A k-gram is ``k - 1`` document tokens
        followed by a token or the document end. ``D`` is in ``[0, 1]``; it falls back to
        :data:`DEFAULT_DISCOUNT` when ``n1 + 2 n2 = 0``. Taken-down documents are excluded.

        Exact for any number of shards: each shard's suffix array is walked once per order
        (O(k · N) byte compares), and each type it counts once or twice is looked up in the
        other shards (a galloping search from the previous type's rank, so the shards are
        merged in key order), which adds its occurrences there or finds that an earlier shard
        holds it (a type is counted by the first shard where it occurs). One shard: one walk;
        S shards: the walks plus ``S - 1`` lookups per rare type, O(S · k · N) in all (two
        shards: ~2x the time of the walks alone). Memory: O(1 M) candidates at a time.

        ``sample``: read only about that many suffix-array ranks per order: windows of
        :data:`SAMPLE_WINDOW` consecutive ranks drawn with ``seed``, uniformly without
        replacement among the windows of all the shards. A type is counted, with its exact
        count over all the shards, when its position (the rank of its first ``k`` tokens in the
        first shard holding it) falls in a drawn window, so every type has the same chance
        (the fraction of windows drawn) to be counted, however many shards hold it: ``D`` is a
        ratio, estimated from an unbiased selection of types without scaling. None (or at
        least the whole table) is exact. Results are cached on the engine per ``(n, sample, seed)``.
        """
        n = _check_n(n)
        if sample is not None and (isinstance(sample, bool) or not isinstance(sample, int)
                                   or sample < 1):
            raise InvalidQueryError(f"sample must be a positive int or None, not {sample!r}")
        state = _state(self)
        key = (n, sample, int(seed))
        hit = state.discounts.get(key)
        if hit is not None:
            return dict(hit)
        windows = _sample_windows(self, sample, seed)
        removed = [_removed_intervals(self, shard) for shard in range(len(self.shards))]
        shards = [(s.ds, s.sa, s.ptr_width) for s in self.shards]
        out: dict[int, float] = {}
        for order in range(2, n + 1):
            coc = count_of_counts(shards, self.token_width, order, 2, continuation=order < n,
                                  windows=windows, removed=removed)
            n1, n2 = int(coc[1]), int(coc[2])
            out[order] = n1 / (n1 + 2 * n2) if n1 + 2 * n2 else DEFAULT_DISCOUNT
        state.discounts[key] = out
        return dict(out)

    # ------------------------------------------------------------------ generation

    def generate(self, prompt_ids: Query, *, max_new_tokens: int = 50,
                 model: Model = "infgram", n: int = 5, temperature: float = 1.0,
                 top_k: int | None = None, seed: int | Sequence[int] | None = 0,
                 stop_at_doc_end: bool = True,
                 discount: Discount = None) -> list[int]:
        """Sample up to ``max_new_tokens`` tokens after the prompt; returns the new tokens.

        ``model``: ``"infgram"`` (the next-token distribution of the longest occurring suffix
        of everything so far), ``"ngram"`` (of the last ``n - 1`` tokens, backing off to
        shorter contexts while the context never occurs) or ``"kn"`` (Kneser-Ney of order
        ``n``). ``top_k`` keeps the ``top_k`` most probable tokens (ties: smaller id first);
        ``temperature`` divides the log-probabilities (0: greedy). ``seed`` seeds a
        :func:`numpy.random.default_rng` (an int or a sequence of ints). A sampled document
        end stops the generation when ``stop_at_doc_end``; otherwise the end is never
        sampled. Generation also stops when no token can follow.
        """
        return _generate_many(self, [prompt_ids], [seed], max_new_tokens, model, n,
                              temperature, top_k, stop_at_doc_end, discount)[0]

    def generate_batch(self, prompts: Sequence[Query], *, max_new_tokens: int = 50,
                       model: Model = "infgram", n: int = 5, temperature: float = 1.0,
                       top_k: int | None = None, seed: int = 0,
                       seeds: Sequence[int | Sequence[int]] | None = None,
                       stop_at_doc_end: bool = True,
                       discount: Discount = None) -> list[list[int]]:
        """:meth:`generate` for many prompts, sharing the distributions they meet.

        Prompt ``i`` is sampled with ``seeds[i]``, or with ``(seed, i)`` when ``seeds`` is
        None: ``generate_batch(ps, seed=s)[i] == generate(ps[i], seed=(s, i))``.
        """
        if isinstance(prompts, (str, np.ndarray)) or not isinstance(prompts, Sequence):
            raise InvalidQueryError("prompts must be a list of prompts")
        if seeds is None:
            seeds = [(seed, i) for i in range(len(prompts))]
        elif len(seeds) != len(prompts):
            raise InvalidQueryError(f"{len(seeds)} seeds for {len(prompts)} prompts")
        return _generate_many(self, list(prompts), list(seeds), max_new_tokens, model, n,
                              temperature, top_k, stop_at_doc_end, discount)


# ---------------------------------------------------------------------------- counting


def _state(engine: Any) -> _State:
    state = engine.__dict__.get("_lm_state")
    if state is None:
        state = engine.__dict__["_lm_state"] = _State()
    return state


def _pairs(engine: LanguageModels, shard: int, left: np.ndarray, k: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """For occurrences of a k-token string at positions ``left + 1`` of ``shard``: the token
    before each (the separator = ``<s>``) and the token after it (separator / shard end =
    END), outside taken-down documents. Both as int64 with the separator id."""
    s = engine.shards[shard]
    toks = s.ds.view(engine._dtype)
    sep = (1 << (8 * engine.token_width)) - 1
    if engine._removed[shard].shape[0]:
        left = left[~engine.is_removed(shard, engine.docs_at(shard, left))]
    after = left + 1 + k
    inside = after < toks.shape[0]
    nxt = np.full(left.shape[0], sep, dtype=np.int64)
    nxt[inside] = toks[after[inside]]
    return toks[left].astype(np.int64), nxt


def _group(prev: list[np.ndarray], nxt: list[np.ndarray], width: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(follower ids with END = -1, raw counts, continuation counts, distinct pairs)."""
    sep = (1 << (8 * width)) - 1
    p = np.concatenate(prev) if prev else np.zeros(0, dtype=np.int64)
    x = np.concatenate(nxt) if nxt else np.zeros(0, dtype=np.int64)
    codes = np.unique((p.astype(np.uint64) << np.uint64(8 * width)) | x.astype(np.uint64))
    right = (codes & np.uint64(sep)).astype(np.int64)
    ids, cont = np.unique(right, return_counts=True)
    raw_ids, raw = np.unique(x, return_counts=True)
    assert np.array_equal(ids, raw_ids)
    ids = np.where(ids == sep, END, ids)
    order = np.argsort(ids, kind="stable")
    return ids[order], raw[order], cont[order], int(codes.shape[0])


def _removed_intervals(engine: LanguageModels, shard: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Byte intervals ``[start, end)`` of the taken-down documents of ``shard`` (sorted)."""
    local = engine._removed[shard]
    if local.shape[0] == 0:
        return None
    s = engine.shards[shard]
    bounds = np.append(s.offsets.astype(np.int64), s.ds_bytes)
    return bounds[local], bounds[local + 1]


def _sample_windows(engine: LanguageModels, sample: int | None, seed: int
                    ) -> list[np.ndarray | None]:
    """Per shard, the sorted rank windows ``[a, b)`` of a sampled estimate (None: all): about
    ``sample / SAMPLE_WINDOW`` windows of :data:`SAMPLE_WINDOW` ranks, drawn uniformly without
    replacement among the windows of all the shards (so each has the same chance)."""
    sizes = [s.sa.shape[0] // s.ptr_width if s.ptr_width else 0 for s in engine.shards]
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


def _lm_unigram(engine: LanguageModels) -> _Unigram:
    """N1+(• w) for every w (END included) and N1+(• •), over the whole corpus (cached)."""
    state = _state(engine)
    if state.unigram is None:
        prev, nxt = [], []
        for shard, s in enumerate(engine.shards):
            p, x = _pairs(engine, shard, np.arange(s.num_positions, dtype=np.int64), 0)
            prev.append(p)
            nxt.append(x)
        ids, _, cont, total = _group(prev, nxt, engine.token_width)
        state.unigram = _Unigram(ids.astype(np.int64), cont.astype(np.int64), total)
    return state.unigram


def _lm_counts(engine: LanguageModels, h: list[int], *, top: bool) -> _Counts:
    """Raw follower counts of ``h`` (top order: one ntd) or, below the top, raw and
    continuation counts by enumerating its occurrences (cached)."""
    if top:
        d = engine.ntd(h)
        followers = dict(d.counts)
        if d.end_count:
            followers[END] = d.end_count
        return _Counts(d.prompt_count, followers, {})
    state = _state(engine)
    key = tuple(h)
    hit = state.contexts.get(key)
    if hit is not None:
        state.contexts.move_to_end(key)
        return hit
    q = engine._bytes(h)
    prev, nxt = [], []
    for shard, (a, b) in enumerate(engine._ranges(q)):
        if b > a:
            left = np.sort(engine.positions(shard, a, b).astype(np.int64)) - 1
            p, x = _pairs(engine, shard, left, len(h))
            prev.append(p)
            nxt.append(x)
    ids, raw, cont, _ = _group(prev, nxt, engine.token_width)
    out = _Counts(int(raw.sum()), dict(zip(ids.tolist(), raw.tolist())),
                  dict(zip(ids.tolist(), cont.tolist())))
    state.contexts[key] = out
    if len(state.contexts) > CONTEXT_CACHE_SIZE:
        state.contexts.popitem(last=False)
    return out


def _interpolate_one(counts: _Counts, top: bool, d: float, w: int, lower: float) -> float:
    c = counts.raw if top else counts.cont
    total = counts.count if top else sum(c.values())
    if total == 0:
        return lower
    return max(c.get(w, 0) - d, 0.0) / total + d * len(c) / total * lower


def _kn_vector(engine: LanguageModels, prompt: list[int], n: int,
               discount: Discount
               ) -> tuple[np.ndarray, np.ndarray, list[int], tuple[float, ...], _Counts, set[int]]:
    """The whole Kneser-Ney distribution over the unigram support (ids sorted, END first)."""
    ctx = prompt[max(0, len(prompt) - (n - 1)):]
    ds = _discounts(engine, discount, len(ctx) + 1, n)
    uni = _lm_unigram(engine)
    probs = uni.probs()
    top = _Counts(0, {}, {})
    candidates: set[int] = set()
    for k in range(1, len(ctx) + 1):
        is_top = k == len(ctx)
        counts = _lm_counts(engine, ctx[len(ctx) - k:], top=is_top)
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


# ---------------------------------------------------------------------------- sampling


def _check_generation(max_new_tokens: object, model: object, temperature: object,
                      top_k: object, n: object) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) \
            or max_new_tokens < 0:
        raise InvalidQueryError(f"max_new_tokens must be an int >= 0, not {max_new_tokens!r}")
    if model not in ("infgram", "ngram", "kn"):
        raise InvalidQueryError(f"model must be 'infgram', 'ngram' or 'kn', not {model!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not temperature >= 0 or math.isinf(temperature):
        raise InvalidQueryError(f"temperature must be a finite number >= 0, not {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise InvalidQueryError(f"top_k must be a positive int or None, not {top_k!r}")
    _check_n(n)


def _model_dist(engine: LanguageModels, model: str, history: list[int], n: int,
                discount: Discount, need_token: bool
                ) -> tuple[np.ndarray, np.ndarray]:
    """(ids sorted ascending, END = -1 first; probabilities) of the next token."""
    if model == "kn":
        ids, probs, *_ = _kn_vector(engine, history, n, discount)
        nz = probs > 0
        return ids[nz], probs[nz]
    if model == "infgram":
        inf = engine.infgram_ntd(history)
        d, ctx = inf.dist, history[len(history) - inf.suffix_len:]
    else:  # ngram: the last n-1 tokens, shortened while the context never occurs
        ctx = history[max(0, len(history) - (n - 1)):]
        d = engine.ntd(ctx)
        while d.prompt_count == 0 and ctx:
            ctx = ctx[1:]
            d = engine.ntd(ctx)
    # Without document ends, a context followed only by ends backs off further.
    while need_token and not d.counts and ctx:
        ctx = ctx[1:]
        d = engine.ntd(ctx)
    counts = dict(d.counts)
    if d.end_count:
        counts[END] = d.end_count
    ids = np.array(sorted(counts), dtype=np.int64)
    c = np.array([counts[t] for t in ids.tolist()], dtype=np.float64)
    return ids, (c / c.sum() if c.shape[0] else c)


def _sample(rng: np.random.Generator, ids: np.ndarray, probs: np.ndarray, temperature: float,
            top_k: int | None) -> int:
    if top_k is not None and top_k < ids.shape[0]:
        keep = np.lexsort((ids, -probs))[:top_k]
        keep.sort()
        ids, probs = ids[keep], probs[keep]
    if temperature == 0:
        return int(ids[np.lexsort((ids, -probs))[0]])
    if temperature != 1.0:
        logits = np.log(probs) / temperature
        probs = np.exp(logits - logits.max())
    cdf = np.cumsum(probs)
    i = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
    return int(ids[min(i, ids.shape[0] - 1)])


def _generate_many(engine: LanguageModels, prompts: list[Query], seeds: list[Any],
                   max_new_tokens: int, model: str, n: int, temperature: float,
                   top_k: int | None, stop_at_doc_end: bool, discount: Discount
                   ) -> list[list[int]]:
    _check_generation(max_new_tokens, model, temperature, top_k, n)
    if model == "kn":
        _discounts(engine, discount, n, n)
    cache: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
    out = []
    for prompt, seed in zip(prompts, seeds):
        history = list(engine._as_ids(prompt, "prompt_ids", allow_empty=True))  # ours to extend
        rng = np.random.default_rng(seed)
        new: list[int] = []
        for _ in range(max_new_tokens):
            # The distribution depends on the last n-1 tokens (ngram, kn) or on everything.
            key = tuple(history if model == "infgram" else history[max(0, len(history) - n + 1):])
            dist = cache.get(key)
            if dist is None:
                dist = cache[key] = _model_dist(engine, model, list(key), n, discount,
                                                   not stop_at_doc_end)
            ids, probs = dist
            if not stop_at_doc_end and ids.shape[0] and ids[0] == END:
                ids, probs = ids[1:], probs[1:]
            if ids.shape[0] == 0 or not probs.sum() > 0:
                break
            token = _sample(rng, ids, probs, float(temperature), top_k)
            if token == END:
                break
            new.append(token)
            history.append(token)
        out.append(new)
    return out
