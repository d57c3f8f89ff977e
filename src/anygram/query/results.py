"""Result types of queries: frozen dataclasses with a JSON-safe ``to_dict()``; those with many
rows also give them as a table (``to_pandas()``, ``to_arrow()``: :mod:`anygram.query.tables`).

The n-gram queries, documents and search, CNF queries (``docs/cnf.md``) and the whole-text
analyses (``docs/analyses.md``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..index.format import parse_metadata_line
from .tables import Columns, Tabular, json_text


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
    """``P(cont | prompt) = cont_count / prompt_count``; ``prob`` is None for an unseen prompt."""

    prompt_count: int
    cont_count: int
    prob: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"prompt_count": self.prompt_count, "cont_count": self.cont_count,
                "prob": self.prob}


@dataclass(frozen=True, slots=True)
class NextTokenDist(Tabular):
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

    def columns(self) -> Columns:
        """One row per following token, by decreasing count: ``token_id``, ``count``,
        ``prob``."""
        pairs = self.most_common()
        return {"token_id": ("int", [t for t, _ in pairs]),
                "count": ("int", [c for _, c in pairs]),
                "prob": ("float", [c / self.prompt_count for _, c in pairs])}


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
class InfGramNextTokenDist(Tabular):
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

    def columns(self) -> Columns:
        """:meth:`NextTokenDist.columns` of the distribution."""
        return self.dist.columns()


_UNPARSED = object()  # DocWindow._metadata before the raw line is parsed


class DocWindow:
    """A window of one document's tokens, optionally around a match.

    Offsets are in tokens. ``start`` is where the window begins inside the document, so the
    window holds the document's tokens ``[start, start + len(token_ids))``. ``match_offset``
    is where the match begins inside the window (None when the window is not about a match,
    as from :meth:`~anygram.Engine.get_doc`) and ``match_len`` how many of its tokens the
    window holds (a match is clipped at the window and document edges). ``match_pos`` is the
    match's token position in its shard.

    ``text`` is the window decoded with the index's tokenizer (None without one). A window
    cut inside a multi-byte character decodes with U+FFFD replacement characters instead of
    failing; ``text_lossy`` says the text holds such characters (a document that itself holds
    U+FFFD is flagged too).

    ``metadata`` is the document's parsed metadata line (``{"path", "linenum", "metadata"}``
    for an anygram index), ``{"raw": line}`` for a line that is not JSON, or None when the
    index has no metadata. A taken-down document (``removed=True``) comes with no tokens, no
    text and no metadata.

    Read-only, like the other results. The engine builds windows by the page, so two fields
    are materialised on first access: ``token_ids`` may be given as a numpy array (a view of
    the page's tokens, turned into a list of ints when first read) and ``metadata`` as the
    raw line (``bytes``/``memoryview``, parsed when first read; :attr:`metadata_line` gives
    it as stored). A caller that reads only some hits or fields pays only for those; the
    values are the same either way.
    """

    __slots__ = ("doc_id", "shard", "doc_len", "start", "text", "text_lossy", "match_pos",
                 "match_offset", "match_len", "removed", "_token_ids", "_metadata", "_line")
    #: The public fields, in constructor order (what ``==``, ``repr`` and ``to_dict`` use).
    FIELDS = ("doc_id", "shard", "doc_len", "start", "token_ids", "text", "text_lossy",
              "match_pos", "match_offset", "match_len", "metadata", "removed")

    doc_id: int
    shard: int
    doc_len: int
    start: int
    text: str | None
    text_lossy: bool
    match_pos: int | None
    match_offset: int | None
    match_len: int
    removed: bool

    def __init__(self, doc_id: int, shard: int, doc_len: int, start: int,
                 token_ids: list[int] | np.ndarray, text: str | None, text_lossy: bool,
                 match_pos: int | None, match_offset: int | None, match_len: int,
                 metadata: dict[str, Any] | bytes | memoryview | None,
                 removed: bool = False) -> None:
        # object.__setattr__ once per slot is what frozen dataclasses do, at 6x the cost of
        # plain stores; a page builds many windows, so this class is read-only by convention
        # (every public attribute but the two lazy ones is a plain slot).
        self.doc_id = doc_id
        self.shard = shard
        self.doc_len = doc_len
        self.start = start
        self._token_ids = token_ids
        self.text = text
        self.text_lossy = text_lossy
        self.match_pos = match_pos
        self.match_offset = match_offset
        self.match_len = match_len
        if isinstance(metadata, (bytes, memoryview)):
            self._line: bytes | memoryview | None = metadata
            self._metadata: dict[str, Any] | None | object = _UNPARSED
        else:
            self._line = None
            self._metadata = metadata
        self.removed = removed

    @property
    def token_ids(self) -> list[int]:
        """The window's token ids."""
        ids = self._token_ids
        if not isinstance(ids, list):
            ids = self._token_ids = ids.tolist()
        return ids

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The document's parsed metadata line (see the class docstring)."""
        meta = self._metadata
        if meta is _UNPARSED:
            meta = self._metadata = parse_metadata_line(self.metadata_line or "")
        return meta  # type: ignore[return-value]  # parsed above

    @property
    def metadata_line(self) -> str | None:
        """The metadata line as stored in the index, newline included (decoded leniently).

        None when the index has no metadata, or when the window was made from an already
        parsed ``metadata`` dict rather than by the engine.
        """
        return None if self._line is None else str(self._line, "utf-8", "replace")

    @property
    def end(self) -> int:
        """Offset inside the document just past the window's last token."""
        return self.start + len(self._token_ids)

    @property
    def match_ids(self) -> list[int]:
        """The match's tokens inside the window (empty when there is no match)."""
        if self.match_offset is None:
            return []
        return self.token_ids[self.match_offset:self.match_offset + self.match_len]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DocWindow):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self.FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable lists inside, as a dataclass's

    def __reduce__(self) -> tuple[type[DocWindow], tuple[Any, ...]]:
        # A view of the page or of the metadata file cannot be pickled: send plain values
        # (the raw line as bytes when there is one, so metadata_line survives).
        meta = self.metadata if self._line is None else bytes(self._line)
        return DocWindow, (self.doc_id, self.shard, self.doc_len, self.start, self.token_ids,
                           self.text, self.text_lossy, self.match_pos, self.match_offset,
                           self.match_len, meta, self.removed)

    def __repr__(self) -> str:
        body = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.FIELDS)
        return f"DocWindow({body})"

    def to_dict(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "shard": self.shard, "doc_len": self.doc_len,
                "start": self.start, "token_ids": list(self.token_ids), "text": self.text,
                "text_lossy": self.text_lossy, "match_pos": self.match_pos,
                "match_offset": self.match_offset, "match_len": self.match_len,
                "metadata": self.metadata, "removed": self.removed}


def window_columns(windows: Sequence[DocWindow]) -> Columns:
    """The table of document windows: one row per window, a column per field
    (:attr:`DocWindow.FIELDS`); ``metadata`` as JSON text."""
    return {
        "doc_id": ("int", [w.doc_id for w in windows]),
        "shard": ("int", [w.shard for w in windows]),
        "doc_len": ("int", [w.doc_len for w in windows]),
        "start": ("int", [w.start for w in windows]),
        "token_ids": ("ints", [w.token_ids for w in windows]),
        "text": ("str?", [w.text for w in windows]),
        "text_lossy": ("bool", [w.text_lossy for w in windows]),
        "match_pos": ("int?", [w.match_pos for w in windows]),
        "match_offset": ("int?", [w.match_offset for w in windows]),
        "match_len": ("int", [w.match_len for w in windows]),
        "metadata": ("json", [json_text(w.metadata) for w in windows]),
        "removed": ("bool", [w.removed for w in windows]),
    }


class DocWindows(list[DocWindow], Tabular):
    """A list of :class:`DocWindow` (what :meth:`~anygram.Engine.get_docs` and the other
    batch retrievals return) that also gives them as a table: :func:`window_columns`."""

    def columns(self) -> Columns:
        return window_columns(self)


@dataclass(frozen=True, slots=True)
class SearchResult(Tabular):
    """One page of the occurrences of a query, each with its document window.

    ``count`` is the exact number of occurrences outside taken-down documents; ``hits`` are
    the occurrences ``[offset, offset + len(hits))`` of the requested order, all distinct.
    ``next_offset`` is the offset of the next page, None after the last one.
    """

    count: int
    hits: list[DocWindow]
    offset: int
    next_offset: int | None
    approx: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "approx": self.approx, "offset": self.offset,
                "next_offset": self.next_offset, "hits": [h.to_dict() for h in self.hits]}

    def columns(self) -> Columns:
        """One row per hit: :func:`window_columns`."""
        return window_columns(self.hits)


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One occurrence in the corpus: token position ``pos`` of ``shard``, inside document
    ``doc_id`` (global id), with its document ``window`` when context was asked for.

    Used for CNF matches (``CnfHit``: the anchor occurrence) and attribution spans
    (``AttributionDoc``).
    """

    shard: int
    pos: int
    doc_id: int
    window: DocWindow | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"shard": self.shard, "pos": self.pos, "doc_id": self.doc_id,
                "window": None if self.window is None else self.window.to_dict()}


# ----------------------------------------------------------------------------- CNF queries

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
    ``anchor`` the place of the anchor clause among them and ``anchor_count`` its
    occurrences; they include taken-down documents, which no match comes from.
    """

    count: int
    approx: bool
    estimate: float
    stderr: float
    sampled: int
    sample_matches: int
    anchor_count: int
    clause_counts: tuple[int, ...]
    anchor: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "approx": self.approx, "estimate": self.estimate,
                "stderr": self.stderr, "sampled": self.sampled,
                "sample_matches": self.sample_matches, "anchor": self.anchor,
                "anchor_count": self.anchor_count, "clause_counts": list(self.clause_counts)}


@dataclass(frozen=True, slots=True)
class CnfFindResult(CnfCount, Tabular):
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

    def columns(self) -> Columns:
        """One row per match (:meth:`pairs`): ``shard``, ``pos``."""
        pairs = self.pairs()
        return {"shard": ("int", [s for s, _ in pairs]), "pos": ("int", [p for _, p in pairs])}


CnfHit = Occurrence  # an occurrence of the query, with its document window


@dataclass(frozen=True, slots=True)
class CnfSearchResult(Tabular):
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

    def columns(self) -> Columns:
        """One row per hit, its window's fields (:func:`window_columns`; a search gives
        every hit its window): ``match_pos`` is the anchor occurrence's position."""
        return window_columns([h.window for h in self.hits if h.window is not None])


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


# ----------------------------------------------------------------------------- analyses

@dataclass(frozen=True, slots=True, eq=False)
class InfGramTextResult(Tabular):
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

    def columns(self) -> Columns:
        """One row per token: ``token_id``, ``suffix_len``, ``prompt_count``,
        ``cont_count``, ``prob`` (NaN where the prompt never occurs)."""
        return {"token_id": ("int", self.token_ids), "suffix_len": ("int", self.suffix_len),
                "prompt_count": ("int", self.prompt_count),
                "cont_count": ("int", self.cont_count), "prob": ("float", self.prob)}


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
class AttributionResult(Tabular):
    """The maximal spans of a text that occur in the corpus rarely (``docs/analyses.md``),
    by increasing start (and end)."""

    spans: list[AttributionSpan]

    def to_dict(self) -> dict[str, Any]:
        return {"spans": [s.to_dict() for s in self.spans]}

    def columns(self) -> Columns:
        """One row per span: ``start``, ``end``, ``length``, ``count``,
        ``unigram_logprob_sum``, and its occurrences as lists: ``doc_ids``, ``shards``,
        ``positions``."""
        spans = self.spans
        return {"start": ("int", [s.start for s in spans]), "end": ("int", [s.end for s in spans]),
                "length": ("int", [s.length for s in spans]),
                "count": ("int", [s.count for s in spans]),
                "unigram_logprob_sum": ("float", [s.unigram_logprob_sum for s in spans]),
                "doc_ids": ("ints", [[d.doc_id for d in s.docs] for s in spans]),
                "shards": ("ints", [[d.shard for d in s.docs] for s in spans]),
                "positions": ("ints", [[d.pos for d in s.docs] for s in spans])}

    def to_infini_gram(self, token_width: int) -> dict[str, Any]:
        """infini-gram's ``attribute`` answer: ``{"spans": [{"l", "r", "length", "count",
        "unigram_logprob_sum", "docs": [{"s", "ptr"}]}]}`` with byte pointers
        (``pos * token_width``); its docs come in suffix-array order, ours in corpus order."""
        return {"spans": [{"l": s.start, "r": s.end, "length": s.length, "count": s.count,
                           "unigram_logprob_sum": s.unigram_logprob_sum,
                           "docs": [{"s": d.shard, "ptr": d.pos * token_width}
                                    for d in s.docs]}
                          for s in self.spans]}
