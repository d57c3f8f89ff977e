"""Takedown: remove documents from everything a served index reveals, without a rebuild.

The removed documents are recorded next to the index (:mod:`anygram.index.takedown`):

- ``takedown.json``: ``{"format": "anygram-takedown", "version": 1, "generation": g,
  "doc_ids": [...sorted global ids]}``; written last and atomically (``os.replace``), so a
  reader sees either the old or the new takedown, never a mix;
- ``takedown-g/``: an anygram index holding exactly the removed documents' tokens (one
  document each, in id order).

Every change holds the index's takedown lock from reading the record to replacing it, so
concurrent takedowns (other processes too) apply one after the other and none is lost.

Every count is (occurrences in the index) minus (occurrences in ``takedown-g/``): an n-gram
never crosses a document, so the difference is exactly the count over the documents that
remain, at the cost of one more binary search per query on a small index. Search and
retrieval skip hits inside removed documents. Undo rewrites the record without the ids.
"""

from __future__ import annotations

import json
import os
import reprlib
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidQueryError
from ..index.takedown import (
    FORMAT_NAME,
    GENERATION_DIR,
    RECORD_NAME,
    VERSION,
    locked,
    read_record,
    takedown_dir,
)

if TYPE_CHECKING:
    from ..engine import Engine

def _removed_documents(engine: Engine, doc_ids: list[int]) -> Iterator[np.ndarray]:
    """The token ids of each document, read from the index."""
    for doc_id in doc_ids:
        shard, local = engine.locate_doc(doc_id)
        s = engine.shards[shard]
        start, end = engine.doc_span(shard, local)
        w = s.token_width
        yield s.ds[start * w:end * w].view(f"<u{w}")


def set_removed(index_dir: str | Path, doc_ids: Iterable[int]) -> list[int]:
    """Make ``doc_ids`` (global ids) the complete set of taken-down documents of an index.

    Builds the takedown index into a new generation directory, then atomically replaces
    ``takedown.json``; older generations are deleted afterwards. Returns the sorted ids.
    """
    with locked(Path(index_dir)):
        return _set_removed(Path(index_dir), doc_ids)


def _set_removed(index_dir: Path, doc_ids: Iterable[int]) -> list[int]:
    """:func:`set_removed`, the lock held."""
    from ..engine import Engine
    from ..index.build import build_index_from_ids

    ids = sorted({_doc_id(i) for i in doc_ids})
    base = Engine.open(index_dir, takedown=False)
    for i in ids:
        base.locate_doc(i)  # raises a clear error for an id out of range
    old = read_record(index_dir)
    if not ids:  # nothing removed any more: drop the record, then the takedown index
        (index_dir / RECORD_NAME).unlink(missing_ok=True)
        _delete_generations(index_dir, keep=None)
        return ids
    generation = (old["generation"] + 1) if old else 1
    record = {"format": FORMAT_NAME, "version": VERSION, "generation": generation,
              "doc_ids": ids}
    target = takedown_dir(index_dir, record)
    if target.exists():
        shutil.rmtree(target)
    build_index_from_ids(_removed_documents(base, ids), target, vocab_size=base.vocab_size)
    tmp = index_dir / (RECORD_NAME + ".tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, index_dir / RECORD_NAME)  # the switch: readers see old or new, never half
    _delete_generations(index_dir, keep=target)
    return ids


def _delete_generations(index_dir: Path, keep: Path | None) -> None:
    for stale in index_dir.glob("takedown-*"):
        if stale != keep and GENERATION_DIR.fullmatch(stale.name) and stale.is_dir() and \
                not stale.is_symlink():
            shutil.rmtree(stale)


def removed_ids(index_dir: str | Path) -> list[int]:
    """Global ids of the documents currently taken down."""
    record = read_record(Path(index_dir))
    return list(record["doc_ids"]) if record else []


def take_down(index_dir: str | Path, doc_ids: Iterable[int]) -> list[int]:
    """Add documents to the takedown; returns the complete sorted list of removed ids."""
    add = {_doc_id(i) for i in doc_ids}
    with locked(Path(index_dir)):  # the record read below is the one replaced
        return _set_removed(Path(index_dir), set(removed_ids(index_dir)) | add)


def undo(index_dir: str | Path, doc_ids: Iterable[int] | None = None) -> list[int]:
    """Restore documents (all of them when ``doc_ids`` is None); returns the ids still removed."""
    restore = None if doc_ids is None else {_doc_id(i) for i in doc_ids}
    with locked(Path(index_dir)):
        keep = set() if restore is None else set(removed_ids(index_dir)) - restore
        return _set_removed(Path(index_dir), keep)


def _doc_id(x: object) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise InvalidQueryError(f"a document id must be an int, not {type(x).__name__} "
                                f"{reprlib.repr(x)}")
    return int(x)


# ----------------------------------------------------------------------------- selecting docs


def docs_where(engine: Engine, field: str, value: Any) -> list[int]:
    """Ids of documents whose metadata field ``field`` equals ``value`` (a linear scan).

    ``field`` is looked up in the document's input fields (``metadata``), then in the record
    itself (``path``, ``linenum``).
    """
    hits: list[int] = []
    for shard, s in enumerate(engine.shards):
        if s.metadata is None or s.metaoff is None:
            raise InvalidQueryError("this index has no document metadata to select by: "
                                    "select documents by id or by text")
        raw = bytes(s.metadata)
        offs = s.metaoff.tolist() + [len(raw)]
        for local in range(s.num_docs):
            rec = json.loads(raw[offs[local]:offs[local + 1]])
            fields = rec.get("metadata") or {}
            got = fields[field] if field in fields else rec.get(field, _MISSING)
            if got == value:
                hits.append(engine.doc_id(shard, local))
    return hits


_MISSING = object()


def docs_with_text(engine: Engine, texts: Iterable[str],
                   tokenize: Callable[[str], list[int]] | None = None) -> list[int]:
    """Ids of documents whose whole text equals one of ``texts`` (after tokenization)."""
    tokenize = tokenize or engine.tokenize
    hits: set[int] = set()
    for text in texts:
        ids = tokenize(text)
        if not ids:
            continue
        found = engine.find(ids)
        for shard, (a, b) in enumerate(found.ranges):
            if b <= a:
                continue
            positions = engine.positions(shard, a, b)
            for pos, local in zip(positions.tolist(),
                                  engine.docs_at(shard, positions).tolist()):
                start, end = engine.doc_span(shard, local)
                if pos == start and end - start == len(ids):
                    hits.add(engine.doc_id(shard, local))
    return sorted(hits)
