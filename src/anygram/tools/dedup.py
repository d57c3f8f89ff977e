"""Exact-substring dedup over an index (``anygram dedup``; Lee et al. 2022's method).

What is removed, exactly: every window of ``K`` tokens (inside one document) whose same
``K`` tokens already occurred earlier in corpus order (documents in id order, then
position), and the union of those windows. So the first occurrence of each repeated span is
kept, and documents never merge. The windows are found in the shards' suffix arrays
(:mod:`anygram.kernels.dedup`): equal windows are contiguous in each, and one merge of all
of them meets each group of equal windows in one run. O(positions · log shards) window
compares; memory: the token bytes and suffix arrays joined (a copy) and two bytes per
position (where windows start, and the marks).

With ``against`` (another index, e.g. of benchmarks), what is removed is instead every window
of ``K`` tokens that occurs in that index (decontamination), found from the matching
statistics of each document against it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidQueryError, TokenizerError
from ..kernels import dedup as kd
from .contamination import holding_docs
from .render import token_pieces

if TYPE_CHECKING:
    from ..engine import Engine

#: The most repeated windows a report lists.
DEFAULT_TOP = 10
#: Candidate windows per shard for that list (its largest groups of equal windows).
_CANDIDATES = 50


@dataclass
class Duplicates:
    """The windows to remove from an index: per shard, one mark per token position (the
    window of ``min_tokens`` tokens starting there is removed), and the groups of equal
    windows found inside each shard (for the report)."""

    engine: Engine
    min_tokens: int
    marks: list[np.ndarray]  # per shard, uint8 per position
    groups: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    against: str | None = None

    def spans(self) -> Iterator[tuple[int, int, int]]:
        """The removed token ranges ``(doc_id, start, end)``, offsets inside the document
        (its first token is 0), overlapping windows merged, in corpus order."""
        e = self.engine
        for shard, marks in enumerate(self.marks):
            starts, ends = kd.marked_spans(marks, self.min_tokens)
            if not starts.shape[0]:
                continue
            docs = e.docs_at(shard, starts)
            for d, a, b in zip(docs.tolist(), starts.tolist(), ends.tolist()):
                first, _ = e.doc_span(shard, d)
                yield e.doc_id(shard, d), a - first, b - first

    def report(self, top: int = DEFAULT_TOP) -> dict[str, Any]:
        """What is removed: spans, tokens and documents (counts and shares), and the most
        repeated windows with their counts and documents (none with ``against``)."""
        e = self.engine
        removed = docs = spans = 0
        last = -1
        for doc, a, b in self.spans():
            spans += 1
            removed += b - a
            docs += doc != last
            last = doc
        tokens, n_docs = _live_size(e)
        return {"min_tokens": self.min_tokens, "against": self.against,
                "documents": n_docs, "tokens": tokens, "spans": spans,
                "removed_tokens": removed,
                "share_of_tokens": removed / tokens if tokens else 0.0,
                "documents_affected": docs,
                "share_of_documents": docs / n_docs if n_docs else 0.0,
                "most_repeated": self._most_repeated(top)}

    def _most_repeated(self, top: int) -> list[dict[str, Any]]:
        """The most frequent of the candidate windows: each shard's largest groups of equal
        windows, and the windows its first marks start (repeats of earlier shards). None
        with ``against`` (what is removed there is what the other index holds)."""
        e = self.engine
        if self.against is not None:
            return []
        w = e.token_width
        seen: dict[tuple[int, ...], int] = {}
        for shard, marks in enumerate(self.marks):
            firsts, sizes = self.groups[shard]
            starts = np.concatenate((firsts[np.argsort(-sizes, kind="stable")[:_CANDIDATES]],
                                     np.flatnonzero(marks)[:_CANDIDATES]))
            ds = e.shards[shard].ds
            for a in starts.tolist():
                key = tuple(ds[a * w:(a + self.min_tokens) * w].view(f"<u{w}").tolist())
                if key not in seen:
                    seen[key] = e.count(list(key)).count
        best = sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        out = []
        for window, count in best:
            row: dict[str, Any] = {"token_ids": list(window), "count": count,
                                   "docs": list(holding_docs(e, window, 5))}
            if e.tokenizer is not None:
                row["text"] = e.decode(list(window))
            out.append(row)
        return out


def _live_size(engine: Engine) -> tuple[int, int]:
    """Tokens and documents of the corpus outside taken-down documents."""
    tokens, docs = engine.num_tokens, engine.num_docs
    for shard, s in enumerate(engine.shards):
        local = np.arange(s.num_docs)
        for d in local[engine.is_removed(shard, local)].tolist():
            a, b = engine.doc_span(shard, d)
            tokens, docs = tokens - (b - a), docs - 1
    return tokens, docs


def check_min_tokens(min_tokens: int) -> None:
    if type(min_tokens) is not int or min_tokens < 1:
        raise InvalidQueryError(f"min_tokens must be an int >= 1, not {min_tokens!r}")


def find_duplicates(engine: Engine, min_tokens: int) -> Duplicates:
    """The windows of ``min_tokens`` tokens that repeat an earlier one (module docstring)."""
    check_min_tokens(min_tokens)
    shards = engine.shards
    w = engine.token_width
    dead = _taken_down(engine)
    valid = [kd.window_starts(s.ds, w, min_tokens) for s in shards]
    # One merge over every shard, their arrays joined (a copy of the token bytes and suffix
    # arrays: within what a build of the index needed).
    pos_off = np.cumsum([0] + [s.num_positions for s in shards]).astype(np.int64)
    joined_marks = np.zeros(int(pos_off[-1]), dtype=np.uint8)
    # Taken-down positions joined as the rest (none taken down: empty, as the kernel takes it).
    joined_dead = (np.concatenate([d if d.shape[0] else np.zeros(s.num_positions, np.uint8)
                                   for d, s in zip(dead, shards)])
                   if any(d.shape[0] for d in dead) else np.zeros(0, dtype=np.uint8))
    g_shard, g_pos, g_size = kd.repeats_all(
        np.concatenate([s.ds for s in shards]),
        np.cumsum([0] + [s.ds_bytes for s in shards]).astype(np.int64),
        np.concatenate([s.sa for s in shards]),
        np.cumsum([0] + [s.sa.shape[0] for s in shards]).astype(np.int64),
        np.array([s.ptr_width for s in shards], dtype=np.int64), np.concatenate(valid),
        joined_dead, pos_off, w, min_tokens, joined_marks)
    marks = [joined_marks[pos_off[i]:pos_off[i + 1]] for i in range(len(shards))]
    groups = [(g_pos[g_shard == s], g_size[g_shard == s]) for s in range(len(shards))]
    return Duplicates(engine, min_tokens, marks, groups)


def find_in(engine: Engine, other: Engine, min_tokens: int) -> Duplicates:
    """The windows of ``min_tokens`` tokens of ``engine``'s documents that occur in
    ``other`` (decontamination against another index)."""
    check_min_tokens(min_tokens)
    mine, theirs = engine.tokenizer, other.tokenizer
    if (mine is None) != (theirs is None) or (mine is not None and theirs is not None
                                              and mine.spec() != theirs.spec()):
        raise TokenizerError("the two indexes were built with different tokenizers: their "
                             "token ids cannot be compared; build both with the same one")
    if other.token_width != engine.token_width:
        raise TokenizerError("the two indexes hold tokens of different widths: build both "
                             "with the same tokenizer")
    marks = [np.zeros(s.num_positions, dtype=np.uint8) for s in engine.shards]
    for doc in range(engine.num_docs):
        shard, local = engine.locate_doc(doc)
        first, _ = engine.doc_span(shard, local)
        window = engine.get_doc(doc, decode=False)
        if window.removed:
            continue
        m = np.asarray(other.creativity(list(window.token_ids)), dtype=np.int64)
        marks[shard][first + np.flatnonzero(m >= min_tokens)] = 1  # the windows found there
    return Duplicates(engine, min_tokens, marks, [], against=str(other))


def _taken_down(engine: Engine) -> list[np.ndarray]:
    """Per shard, the positions of its taken-down documents (uint8 per position; empty when
    it has none): they are not part of the corpus, so their windows are neither removed
    nor the earlier occurrence of another's."""
    out = []
    for shard, s in enumerate(engine.shards):
        docs = np.arange(s.num_docs)
        gone = docs[engine.is_removed(shard, docs)].tolist()
        dead = np.zeros(s.num_positions if gone else 0, dtype=np.uint8)
        for d in gone:
            a, b = engine.doc_span(shard, d)
            dead[a:b] = 1
        out.append(dead)
    return out


def write_spans(dup: Duplicates, path: str | Path) -> int:
    """The removed ranges as JSON lines ``{"doc_id", "start", "end"}`` (written atomically);
    how many."""
    n = 0

    def lines() -> Iterator[str]:
        nonlocal n
        for doc, a, b in dup.spans():
            n += 1
            yield json.dumps({"doc_id": doc, "start": a, "end": b}) + "\n"

    _write_atomic(Path(path), lines())
    return n


def write_corpus(dup: Duplicates, path: str | Path, text_field: str = "text") -> int:
    """The corpus without the removed ranges, as JSON lines in document order (written
    atomically): each document's text (its kept runs of tokens decoded one after the other;
    ``token_ids`` for an index without tokenizer) under ``text_field``, with the fields it
    was built with. Taken-down documents are left out. How many documents."""
    e = dup.engine
    removed: dict[int, list[tuple[int, int]]] = {}
    for doc, a, b in dup.spans():
        removed.setdefault(doc, []).append((a, b))
    n = 0

    def lines() -> Iterator[str]:
        nonlocal n
        for doc in range(e.num_docs):
            window = e.get_doc(doc, decode=False)
            if window.removed:
                continue
            ids = list(window.token_ids)
            keep = np.ones(len(ids), dtype=bool)
            for a, b in removed.get(doc, []):
                keep[a:b] = False
            record: dict[str, Any] = dict((window.metadata or {}).get("metadata") or {})
            if e.tokenizer is None:
                record["token_ids"] = [t for t, k in zip(ids, keep) if k]
            elif keep.all():
                record[text_field] = e.decode(ids)
            else:
                # Each token's own text, decoded in its context (a run decoded alone would
                # lose a leading space to SentencePiece's decoder, or cut a character).
                pieces = token_pieces(e, ids)
                record[text_field] = "".join(p for p, k in zip(pieces, keep) if k)
            n += 1
            yield json.dumps(record, ensure_ascii=False) + "\n"

    _write_atomic(Path(path), lines())
    return n


def _write_atomic(path: Path, lines: Iterator[str]) -> None:
    """``lines`` into ``path``: a temporary file beside it, flushed to disk and renamed when
    complete, readable by all as a plain new file is (mkstemp's is the owner's only)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
