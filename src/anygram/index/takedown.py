"""Takedown records: which documents of an index are taken down, as written next to it.

- ``takedown.json``: ``{"format": "anygram-takedown", "version": 1, "generation": g,
  "doc_ids": [...sorted global ids]}``; written last and atomically (``os.replace``), so a
  reader sees either the old or the new takedown, never a mix;
- ``takedown-g/``: an anygram index holding exactly the removed documents' tokens (one
  document each, in id order);
- ``takedown.lock``: writers hold an exclusive ``fcntl`` lock on it from reading the record
  to replacing it, so concurrent takedowns apply one after the other (readers need none).

How takedowns are made and undone: :mod:`anygram.tools.takedown`.
"""

from __future__ import annotations

import fcntl
import os
import re
import reprlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexFormatError
from .checks import ShardView, check_removed_documents
from .format import inside, read_json_record

RECORD_NAME = "takedown.json"
LOCK_NAME = "takedown.lock"
#: Names of takedown index directories: ``takedown-<generation>`` (``.partial`` while built).
GENERATION_DIR = re.compile(r"takedown-[0-9]+(\.partial)?")
FORMAT_NAME = "anygram-takedown"
VERSION = 1


def read_record(index_dir: Path) -> dict[str, Any] | None:
    """The takedown record of an index directory, or None when nothing was taken down.

    Raises:
        IndexFormatError: the record is unreadable or malformed (a generation that is not a
            positive int, ids that are not sorted distinct non-negative ints, ...).
    """
    path = Path(index_dir) / RECORD_NAME
    if not path.exists() and not path.is_symlink():
        return None
    path = inside(Path(index_dir), RECORD_NAME, "takedown record")
    record = read_json_record(path, "takedown record")
    if not isinstance(record, dict) or record.get("format") != FORMAT_NAME or \
            record.get("version") != VERSION:
        raise IndexFormatError(f"{path} is not a takedown record this anygram reads: "
                               "upgrade anygram")
    generation, ids = record.get("generation"), record.get("doc_ids")
    if type(generation) is not int or generation < 1:
        raise _damaged(path, f"generation {reprlib.repr(generation)} is not a positive int")
    if type(ids) is not list or not all(type(i) is int and 0 <= i < 1 << 62 for i in ids):
        raise _damaged(path, f"doc_ids {reprlib.repr(ids)} is not a list of document ids")
    if any(a >= b for a, b in zip(ids, ids[1:])):
        raise _damaged(path, "doc_ids are not sorted and distinct")
    return record


def _damaged(path: Path, what: str) -> IndexFormatError:
    return IndexFormatError(f"{path} is damaged ({what}): restore it from a backup, or "
                            "delete it and take the documents down again")


def takedown_dir(index_dir: Path, record: dict[str, Any]) -> Path:
    """The directory of the record's takedown index (inside ``index_dir``: checked)."""
    return inside(Path(index_dir), f"takedown-{int(record['generation'])}", "takedown index")


def check_takedown_index(index_dir: Path, record: dict[str, Any], shards: Sequence[ShardView],
                         minus: Sequence[ShardView]) -> None:
    """Raise IndexFormatError unless the record fits the index and its takedown index: every
    id is a document of ``shards`` (the directory's, in order), and ``minus`` (the takedown
    index's shards) holds one document per id, as long as that document."""
    where = f"{Path(index_dir) / RECORD_NAME} and {takedown_dir(index_dir, record)}"
    check_removed_documents(np.asarray(record["doc_ids"], dtype=np.int64), shards, minus, where)


@contextmanager
def locked(index_dir: Path) -> Iterator[None]:
    """Hold the index's takedown lock (blocking until other writers release it)."""
    fd = os.open(Path(index_dir) / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def record_path(index_dir: Path) -> str:
    """The path of an index directory's takedown record, as a string (for
    :func:`record_signature`, called before every request of a server)."""
    return os.path.join(os.fspath(index_dir), RECORD_NAME)


def record_signature(path: str) -> tuple[int, int, int] | None:
    """What changes when a takedown record (at ``path``: :func:`record_path`) changes (it is
    replaced, never edited in place): its inode, size and modification time; None without a
    record. One ``stat``: a few microseconds."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns
