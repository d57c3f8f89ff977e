"""Benchmark contamination: how much of each example of a benchmark occurs verbatim in an
index (``anygram contamination``).

For an example's tokens ``t``, the index's matching statistics ``m[i]`` (the longest prefix
of ``t[i:]`` that occurs in the corpus, :meth:`Engine.creativity <anygram.Engine.creativity>`:
one whole-text walk, O(tokens) searches) give everything:

- ``longest_match = max(m)``: the longest run of the example's tokens found in the index;
- a token is *covered* when some ``n``-token window of the example holding it occurs in the
  index; a window ``t[i:i+n]`` occurs exactly when ``m[i] >= n``, so the covered tokens are
  the union of ``[i, i + m[i])`` over those ``i`` (a longer match covers its every window);
  ``coverage`` is their share of the example's tokens (the GPT-3 paper's 13-gram overlap
  when ``n = 13``);
- ``docs``: documents holding the longest match (the smallest ids among those of its first
  :data:`SCAN_OCCURRENCES` occurrences in each shard).

Documents never match across boundaries (the index holds none): a span found is inside one
document.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CorpusError, InvalidQueryError

if TYPE_CHECKING:
    from ..engine import Engine

#: The n-gram length of the GPT-3 paper's contamination check.
DEFAULT_N = 13
#: Documents named per example (those holding its longest match).
DEFAULT_MAX_DOCS = 5
#: Occurrences of a longest match looked at per shard for the documents holding it.
SCAN_OCCURRENCES = 1000
#: Coverage thresholds of a benchmark's summary: the share of examples at or above each.
THRESHOLDS = (0.2, 0.5, 0.8, 1.0)
#: Bins of the coverage histogram: [0, 0.1), ..., [0.9, 1.0].
HISTOGRAM_BINS = 10


@dataclass(frozen=True)
class ExampleContamination:
    """One example's contamination (module docstring)."""

    example: int  # 0-based position in its benchmark
    tokens: int
    longest_match: int
    longest_at: int  # token where the longest match starts (-1: none)
    coverage: float
    covered: tuple[tuple[int, int], ...]  # covered token spans [start, end), ascending
    count: int  # occurrences of the longest match in the index
    docs: tuple[int, ...]  # documents holding the longest match (at most max_docs)

    def to_dict(self) -> dict[str, Any]:
        return {"example": self.example, "tokens": self.tokens,
                "longest_match": self.longest_match, "longest_at": self.longest_at,
                "coverage": self.coverage, "covered": [list(s) for s in self.covered],
                "count": self.count, "docs": list(self.docs)}


def covered_spans(matches: np.ndarray, n: int) -> list[tuple[int, int]]:
    """The union of ``[i, i + matches[i])`` over the ``i`` where ``matches[i] >= n``: the
    tokens inside some ``n``-token window that occurs (module docstring), as spans."""
    spans: list[tuple[int, int]] = []
    for i in np.flatnonzero(matches >= n).tolist():
        end = i + int(matches[i])
        if spans and i <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((i, end))
    return spans


def example_contamination(engine: Engine, ids: Sequence[int], *, example: int = 0,
                          n: int = DEFAULT_N, max_docs: int = DEFAULT_MAX_DOCS
                          ) -> ExampleContamination:
    """The contamination of one example, given as token ids (module docstring)."""
    check_options(n, max_docs)
    ids = list(ids)
    m = np.asarray(engine.creativity(ids), dtype=np.int64)
    longest = int(m.max()) if m.shape[0] else 0
    at = int(m.argmax()) if longest else -1
    spans = covered_spans(m, n)
    covered = sum(b - a for a, b in spans)
    count = 0
    docs: tuple[int, ...] = ()
    if longest:
        match = ids[at:at + longest]
        count = engine.count(match).count
        docs = holding_docs(engine, match, max_docs)
    return ExampleContamination(example, len(ids), longest, at,
                                covered / len(ids) if ids else 0.0, tuple(spans), count, docs)


def holding_docs(engine: Engine, ids: Sequence[int], max_docs: int,
                 scan: int = SCAN_OCCURRENCES) -> tuple[int, ...]:
    """Up to ``max_docs`` distinct live documents holding ``ids``, the smallest ids among
    those of its first ``scan`` occurrences in each shard (suffix-array order)."""
    found: set[int] = set()
    if max_docs == 0:
        return ()
    for shard, (a, b) in enumerate(engine.find(ids).ranges):
        if b <= a:
            continue
        local = np.unique(engine.docs_at(shard, engine.positions(shard, a, min(b, a + scan))))
        local = local[~engine.is_removed(shard, local)]
        found.update(engine.doc_id(shard, int(d)) for d in local.tolist())
    return tuple(sorted(found)[:max_docs])


def check_options(n: int, max_docs: int) -> None:
    """Raise InvalidQueryError unless ``n >= 1`` and ``max_docs >= 0`` (ints)."""
    if type(n) is not int or n < 1:
        raise InvalidQueryError(f"n (the window length) must be an int >= 1, not {n!r}")
    if type(max_docs) is not int or max_docs < 0:
        raise InvalidQueryError(f"max_docs must be an int >= 0, not {max_docs!r}")


def contamination(engine: Engine, examples: Iterable[str | Sequence[int]], *,
                  n: int = DEFAULT_N, max_docs: int = DEFAULT_MAX_DOCS
                  ) -> Iterator[ExampleContamination]:
    """Each example's contamination, in order (texts are tokenized with the index's
    tokenizer)."""
    check_options(n, max_docs)
    for i, ex in enumerate(examples):
        ids = engine.tokenize(ex) if isinstance(ex, str) else list(ex)
        yield example_contamination(engine, ids, example=i, n=n, max_docs=max_docs)


@dataclass
class BenchmarkContamination:
    """A benchmark's summary: how many examples, their mean coverage, the share of examples
    at or above each coverage threshold (and with any covered token), the coverage
    histogram and the longest match overall."""

    name: str
    n: int
    examples: int = 0
    tokens: int = 0
    covered_tokens: int = 0
    coverage_sum: float = 0.0
    any_covered: int = 0
    at_least: dict[float, int] = field(default_factory=lambda: dict.fromkeys(THRESHOLDS, 0))
    histogram: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BINS)
    longest_match: int = 0

    def add(self, r: ExampleContamination) -> None:
        self.examples += 1
        self.tokens += r.tokens
        self.covered_tokens += round(r.coverage * r.tokens)
        self.coverage_sum += r.coverage
        self.any_covered += r.coverage > 0
        for t in self.at_least:
            self.at_least[t] += r.coverage >= t
        self.histogram[min(int(r.coverage * HISTOGRAM_BINS), HISTOGRAM_BINS - 1)] += 1
        self.longest_match = max(self.longest_match, r.longest_match)

    def to_dict(self) -> dict[str, Any]:
        share = (lambda k: k / self.examples) if self.examples else (lambda k: 0.0)
        return {"benchmark": self.name, "n": self.n, "examples": self.examples,
                "tokens": self.tokens, "covered_tokens": self.covered_tokens,
                "mean_coverage": share(self.coverage_sum),
                "share_with_any_covered": share(self.any_covered),
                "share_at_least": {str(t): share(k) for t, k in self.at_least.items()},
                "coverage_histogram": {
                    "bins": [round(i / HISTOGRAM_BINS, 3) for i in range(HISTOGRAM_BINS + 1)],
                    "counts": list(self.histogram)},
                "longest_match": self.longest_match}


def read_examples(path: str | Path, text_fields: Sequence[str] = ("text",)) -> Iterator[str]:
    """The examples of a benchmark file (JSONL, .txt one per line, Parquet/Arrow, a Hugging
    Face ``datasets`` folder): each one's ``text_fields`` joined by a newline (a prompt and
    its answer). A missing or empty field is a CorpusError naming the file and line."""
    from ..index.corpus import iter_documents

    if not text_fields:
        raise InvalidQueryError("give at least one text field")
    first, rest = text_fields[0], list(text_fields[1:])
    for doc in iter_documents(path, text_field=first, txt_mode="line"):
        parts = [doc.text]
        for f in rest:
            value = doc.metadata.get(f)
            if not isinstance(value, str):
                raise CorpusError(f"{doc.path}:{doc.linenum + 1}: no text field {f!r} "
                                  f"(fields: {', '.join(sorted(doc.metadata)) or 'none'})")
            parts.append(value)
        if not any(p.strip() for p in parts):
            raise CorpusError(f"{doc.path}:{doc.linenum + 1}: the example's text is empty")
        yield "\n".join(parts)
