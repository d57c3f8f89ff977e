"""Result types of engine queries: frozen dataclasses with a JSON-safe ``to_dict()``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .format import parse_metadata_line


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


@dataclass(frozen=True, slots=True)
class SearchResult:
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
