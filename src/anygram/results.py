"""Result types of engine queries: frozen dataclasses with a JSON-safe ``to_dict()``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FindResult:
    """Where a query occurs: its total count and, per shard, the rank range ``[start, end)``."""

    count: int
    ranges: tuple[tuple[int, int], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "ranges": [list(r) for r in self.ranges]}


@dataclass(frozen=True, slots=True)
class CountResult:
    """The exact number of occurrences of a query."""

    count: int
    approx: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "approx": self.approx}


@dataclass(frozen=True, slots=True)
class ProbResult:
    """``P(cont | prompt) = cont_count / prompt_count``; ``prob`` is None if the prompt is unseen."""

    prompt_count: int
    cont_count: int
    prob: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"prompt_count": self.prompt_count, "cont_count": self.cont_count,
                "prob": self.prob}


@dataclass(frozen=True, slots=True)
class NextTokenDist:
    """The tokens that follow a prompt and how often.

    ``counts`` maps each following token id to its count. ``end_count`` counts occurrences of
    the prompt at the end of a document (followed by a separator or the end of a shard), so
    ``sum(counts.values()) + end_count == prompt_count`` always. When ``approx`` is true the
    counts come from evenly spaced samples (they still sum to ``prompt_count``).
    """

    prompt_count: int
    counts: dict[int, int]
    end_count: int
    approx: bool = False

    def prob(self, token_id: int) -> float | None:
        """Probability of ``token_id`` following the prompt (None if the prompt is unseen)."""
        if self.prompt_count == 0:
            return None
        return self.counts.get(token_id, 0) / self.prompt_count

    def most_common(self, n: int | None = None) -> list[tuple[int, int]]:
        """``(token_id, count)`` pairs by decreasing count, then increasing id."""
        items = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return items if n is None else items[:n]

    def to_dict(self) -> dict[str, Any]:
        total = self.prompt_count
        return {
            "prompt_count": total,
            "end_count": self.end_count,
            "approx": self.approx,
            "next_tokens": [{"token_id": t, "count": c, "prob": c / total}
                            for t, c in self.most_common()],
        }


@dataclass(frozen=True, slots=True)
class InfGramProbResult:
    """∞-gram probability: ``prob`` from the longest suffix of the prompt that occurs.

    ``suffix_len`` is that suffix's length in tokens (0 means the unigram over all tokens).
    """

    prompt_count: int
    cont_count: int
    prob: float | None
    suffix_len: int

    def to_dict(self) -> dict[str, Any]:
        return {"prompt_count": self.prompt_count, "cont_count": self.cont_count,
                "prob": self.prob, "suffix_len": self.suffix_len}


@dataclass(frozen=True, slots=True)
class InfGramNextTokenDist:
    """∞-gram next-token distribution: :class:`NextTokenDist` of the longest occurring suffix."""

    dist: NextTokenDist
    suffix_len: int

    @property
    def prompt_count(self) -> int:
        return self.dist.prompt_count

    @property
    def counts(self) -> dict[int, int]:
        return self.dist.counts

    @property
    def end_count(self) -> int:
        return self.dist.end_count

    @property
    def approx(self) -> bool:
        return self.dist.approx

    def prob(self, token_id: int) -> float | None:
        return self.dist.prob(token_id)

    def to_dict(self) -> dict[str, Any]:
        return {**self.dist.to_dict(), "suffix_len": self.suffix_len}
