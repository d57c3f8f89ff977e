"""Result types of the whole-text analyses (``docs/analyses.md``), with ``to_dict()``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .results import InfGramProbResult, Occurrence


@dataclass(frozen=True, slots=True, eq=False)
class InfGramTextResult:
    """The ∞-gram of every token of a text given the tokens before it (read-only arrays).

    Entry ``j`` (``0 <= j < len(token_ids)``) is what ``Engine.infgram_prob(token_ids[:j],
    token_ids[j])`` returns: ``suffix_len[j]`` is the length of the longest suffix of
    ``token_ids[:j]`` that occurs (0: the empty suffix, i.e. the unigram over all
    positions), ``prompt_count[j]`` its count, ``cont_count[j]`` the count of that suffix
    followed by ``token_ids[j]``, and ``prob[j] = cont_count[j] / prompt_count[j]``, NaN
    when ``prompt_count[j] == 0`` (only on an empty corpus; ``infgram_prob`` says None).
    ``result[j]`` gives entry ``j`` as an :class:`~anygram.InfGramProbResult`.
    """

    token_ids: np.ndarray
    suffix_len: np.ndarray
    prompt_count: np.ndarray
    cont_count: np.ndarray
    prob: np.ndarray

    def __len__(self) -> int:
        return int(self.token_ids.shape[0])

    def __getitem__(self, j: int) -> InfGramProbResult:
        p = float(self.prob[j])
        return InfGramProbResult(prompt_count=int(self.prompt_count[j]),
                                 cont_count=int(self.cont_count[j]),
                                 prob=None if math.isnan(p) else p,
                                 suffix_len=int(self.suffix_len[j]))

    def to_dict(self) -> dict[str, Any]:
        return {"token_ids": self.token_ids.tolist(), "suffix_len": self.suffix_len.tolist(),
                "prompt_count": self.prompt_count.tolist(),
                "cont_count": self.cont_count.tolist(),
                "prob": [None if math.isnan(p) else p for p in self.prob.tolist()]}


AttributionDoc = Occurrence  # an occurrence of the query, with its document window


@dataclass(frozen=True, slots=True)
class AttributionSpan:
    """The text's tokens ``[start, end)``, found verbatim ``count`` times in the corpus.

    ``unigram_logprob_sum`` is the sum over its tokens of ``log(count([t]) / count([]))``
    (natural log; the denominator counts every position, separators included): the lower,
    the rarer the words. ``docs`` are its occurrences in corpus order (shard, then
    position), at most ``max_docs_per_span`` of them when that was given.
    """

    start: int
    end: int
    count: int
    unigram_logprob_sum: float
    docs: tuple[AttributionDoc, ...]

    @property
    def length(self) -> int:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "length": self.length,
                "count": self.count, "unigram_logprob_sum": self.unigram_logprob_sum,
                "docs": [d.to_dict() for d in self.docs]}


@dataclass(frozen=True, slots=True)
class AttributionResult:
    """The maximal spans of a text that occur in the corpus rarely (``docs/analyses.md``),
    by increasing start (and end)."""

    spans: list[AttributionSpan]

    def to_dict(self) -> dict[str, Any]:
        return {"spans": [s.to_dict() for s in self.spans]}

    def to_infini_gram(self, token_width: int) -> dict[str, Any]:
        """infini-gram's ``attribute`` answer: ``{"spans": [{"l", "r", "length", "count",
        "unigram_logprob_sum", "docs": [{"s", "ptr"}]}]}`` with byte pointers
        (``pos * token_width``); its docs come in suffix-array order, ours in corpus order."""
        return {"spans": [{"l": s.start, "r": s.end, "length": s.length, "count": s.count,
                           "unigram_logprob_sum": s.unigram_logprob_sum,
                           "docs": [{"s": d.shard, "ptr": d.pos * token_width}
                                    for d in s.docs]}
                          for s in self.spans]}
