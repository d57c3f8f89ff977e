"""Result types of CNF queries (see ``docs/cnf.md``): frozen dataclasses with ``to_dict()``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .results import Occurrence


@dataclass(frozen=True, slots=True)
class CnfCount:
    """The number of matches of a CNF query: anchor-clause occurrences with every other
    clause nearby (``docs/cnf.md``).

    Exact unless ``approx``. When ``approx``, ``sampled`` anchor occurrences drawn uniformly
    without replacement were checked and ``sample_matches`` of them matched; ``estimate =
    anchor_count * sample_matches / sampled`` is unbiased, ``stderr`` is its estimated
    standard error, and ``count`` is ``estimate`` rounded. When exact, ``estimate == count``
    and ``stderr == 0``.

    ``clause_counts`` are the occurrences (distinct positions) of each clause as written,
    ``anchor_count`` that of the first; both include taken-down documents, which no match
    comes from.
    """

    count: int
    approx: bool
    estimate: float
    stderr: float
    sampled: int
    sample_matches: int
    anchor_count: int
    clause_counts: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "approx": self.approx, "estimate": self.estimate,
                "stderr": self.stderr, "sampled": self.sampled,
                "sample_matches": self.sample_matches, "anchor_count": self.anchor_count,
                "clause_counts": list(self.clause_counts)}


@dataclass(frozen=True, slots=True)
class CnfFindResult(CnfCount):
    """:class:`CnfCount` plus where the matches are: per shard, the ascending token positions
    of the matching anchor occurrences. Complete when exact; when ``approx``, only the
    matches among the sampled anchors (``sample_matches`` of them).
    """

    positions: tuple[np.ndarray, ...] = ()

    def pairs(self) -> list[tuple[int, int]]:
        """The matches as ``(shard, position)`` pairs, by shard then position."""
        return [(s, int(p)) for s, arr in enumerate(self.positions) for p in arr]

    def to_dict(self) -> dict[str, Any]:
        d = CnfCount.to_dict(self)
        d["positions"] = [arr.tolist() for arr in self.positions]
        return d


CnfHit = Occurrence  # an occurrence of the query, with its document window


@dataclass(frozen=True, slots=True)
class CnfSearchResult:
    """One page of the matches of a CNF query.

    ``count``/``approx``/``estimate`` as in :class:`CnfCount`. ``total_hits`` is how many
    matches can be paged through: all of them when exact, the matches among the sampled
    anchors when ``approx``. ``hits`` are entries ``[offset, offset + len(hits))`` of the
    requested order, all distinct; ``next_offset`` is None after the last page.
    """

    count: int
    approx: bool
    estimate: float
    total_hits: int
    offset: int
    next_offset: int | None
    hits: tuple[CnfHit, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "approx": self.approx, "estimate": self.estimate,
                "total_hits": self.total_hits, "offset": self.offset,
                "next_offset": self.next_offset, "hits": [h.to_dict() for h in self.hits]}


@dataclass(frozen=True, slots=True)
class DocsWithAllResult:
    """The number of documents in which every clause occurs (anywhere, no proximity limit).

    Exact unless ``approx``; then ``estimate`` is unbiased (``docs/cnf.md``), ``stderr`` its
    estimated standard error, ``count`` its rounding, and ``doc_ids`` (when requested) only
    the matching documents met in the sample. ``doc_ids`` are global ids, ascending.
    """

    count: int
    approx: bool
    estimate: float
    stderr: float
    sampled: int
    doc_ids: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "approx": self.approx, "estimate": self.estimate,
                "stderr": self.stderr, "sampled": self.sampled,
                "doc_ids": None if self.doc_ids is None else list(self.doc_ids)}
