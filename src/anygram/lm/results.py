"""Result types of the smoothed language models (:mod:`anygram.lm.kneser_ney`): frozen
dataclasses with a JSON-safe ``to_dict()`` (a distribution also as a table:
:mod:`anygram.query.tables`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..query.tables import Columns, Tabular

#: The document-end event, as a token id in Kneser-Ney results (never a real id).
END = -1

@dataclass(frozen=True, slots=True)
class KNProbResult:
    """Interpolated Kneser-Ney ``P(cont | prompt)``.

    ``order`` is the order used (``min(n, len(prompt) + 1)``); ``context_count`` and
    ``cont_count`` are the raw counts ``c(h)`` and ``c(h w)`` of the top-order context ``h``
    (both 0 when ``h`` never occurs; the probability then comes from the lower orders);
    ``discounts`` holds ``D`` of orders ``2..order``.
    """

    prob: float
    order: int
    context_count: int
    cont_count: int
    discounts: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"prob": self.prob, "order": self.order, "context_count": self.context_count,
                "cont_count": self.cont_count, "discounts": list(self.discounts)}


@dataclass(frozen=True, slots=True)
class KNNextTokenDist(Tabular):
    """A Kneser-Ney next-token distribution.

    ``probs`` holds explicit probabilities (token id -> probability; :data:`END` for the
    document end); ``leftover = 1 - sum(probs)`` is the mass of every other token, spread over
    them in proportion to the unigram base ``P_0``. With ``full`` the explicit tokens are the
    whole support (every token of the corpus and END) and ``leftover`` is ~0.
    """

    probs: dict[int, float]
    leftover: float
    order: int
    context_count: int
    full: bool = False
    discounts: tuple[float, ...] = field(default=())

    @property
    def end_prob(self) -> float | None:
        """Probability of the document end, when it is explicit."""
        return self.probs.get(END)

    def prob(self, token_id: int) -> float | None:
        """Explicit probability of ``token_id`` (0 for a token off a full support; None when
        the token is not explicit: ask :meth:`~anygram.Engine.kn_prob`)."""
        if token_id in self.probs:
            return self.probs[token_id]
        return 0.0 if self.full else None

    def most_common(self, n: int | None = None) -> list[tuple[int, float]]:
        """``(token_id, prob)`` by decreasing probability, then increasing id."""
        items = sorted(self.probs.items(), key=lambda kv: (-kv[1], kv[0]))
        return items if n is None else items[:n]

    def to_dict(self) -> dict[str, Any]:
        return {"order": self.order, "context_count": self.context_count, "full": self.full,
                "leftover": self.leftover, "discounts": list(self.discounts),
                "next_tokens": [{"token_id": t, "prob": p} for t, p in self.most_common()]}

    def columns(self) -> Columns:
        """One row per explicit token, by decreasing probability: ``token_id`` (:data:`END`
        for the document end), ``prob``."""
        pairs = self.most_common()
        return {"token_id": ("int", [t for t, _ in pairs]),
                "prob": ("float", [p for _, p in pairs])}
