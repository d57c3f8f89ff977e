"""Seeded sampling of text from the n-gram, the ∞-gram or the Kneser-Ney model
(:class:`Generator`). Semantics: ``docs/generation.md``.

A distribution depends on the last ``n - 1`` tokens (n-gram, Kneser-Ney) or on everything
generated so far (∞-gram); the distributions met are cached for one call, so prompts of a
batch share them.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from ..errors import InvalidQueryError
from ..query import ngrams
from ..query.core import Query, Searcher
from .kneser_ney import Discount, KneserNey, check_n
from .results import END

Model = Literal["infgram", "ngram", "kn"]


class Generator:
    """Text generation over a :class:`~anygram.query.core.Searcher` (the public methods are
    :class:`anygram.Engine`'s, documented there)."""

    def __init__(self, core: Searcher, kn: KneserNey) -> None:
        self._core = core
        self._kn = kn

    def generate_many(self, prompts: list[Query], seeds: list[Any], max_new_tokens: int,
                      model: Model, n: int, temperature: float, top_k: int | None,
                      stop_at_doc_end: bool, discount: Discount) -> list[list[int]]:
        """The new tokens after each prompt, prompt ``i`` sampled with ``seeds[i]``."""
        _check_generation(max_new_tokens, model, temperature, top_k, n)
        if model == "kn":
            self._kn.discounts(discount, n, n)
        cache: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        out = []
        for prompt, seed in zip(prompts, seeds):
            # A copy: ours to extend.
            history = list(self._core.ids(prompt, "prompt_ids", allow_empty=True))
            try:
                rng = np.random.default_rng(seed)
            except (TypeError, ValueError):
                raise InvalidQueryError("seed must be an int >= 0, a list of them, or None, "
                                        f"not {type(seed).__name__}") from None
            new: list[int] = []
            for _ in range(max_new_tokens):
                # The distribution depends on the last n-1 tokens (ngram, kn) or on everything.
                key = tuple(history if model == "infgram"
                            else history[max(0, len(history) - n + 1):])
                dist = cache.get(key)
                if dist is None:
                    dist = cache[key] = self._model_dist(model, list(key), n, discount,
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

    def _model_dist(self, model: str, history: list[int], n: int, discount: Discount,
                    need_token: bool) -> tuple[np.ndarray, np.ndarray]:
        """(ids sorted ascending, END = -1 first; probabilities) of the next token."""
        core = self._core
        if model == "kn":
            ids, probs, *_ = self._kn.vector(history, n, discount)
            nz = probs > 0
            return ids[nz], probs[nz]
        if model == "infgram":
            inf = ngrams.infgram_ntd(core, history, None)
            d, ctx = inf.dist, history[len(history) - inf.suffix_len:]
        else:  # ngram: the last n-1 tokens, shortened while the context never occurs
            ctx = history[max(0, len(history) - (n - 1)):]
            d = ngrams.ntd(core, ctx, None)
            while d.prompt_count == 0 and ctx:
                ctx = ctx[1:]
                d = ngrams.ntd(core, ctx, None)
        # Without document ends, a context followed only by ends backs off further.
        while need_token and not d.counts and ctx:
            ctx = ctx[1:]
            d = ngrams.ntd(core, ctx, None)
        counts = dict(d.counts)
        if d.end_count:
            counts[END] = d.end_count
        ids = np.array(sorted(counts), dtype=np.int64)
        c = np.array([counts[t] for t in ids.tolist()], dtype=np.float64)
        return ids, (c / c.sum() if c.shape[0] else c)


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
    check_n(n)


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
