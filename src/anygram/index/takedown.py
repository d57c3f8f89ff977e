"""Takedown records: which documents of an index are taken down, as written next to it.

- ``takedown.json``: ``{"format": "anygram-takedown", "version": 1, "generation": g,
  "doc_ids": [...sorted global ids]}``; written last and atomically (``os.replace``), so a
  reader sees either the old or the new takedown, never a mix;
- ``takedown-g/``: an anygram index holding exactly the removed documents' tokens (one
  document each, in id order).

How takedowns are made and undone: :mod:`anygram.tools.takedown`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import IndexFormatError

RECORD_NAME = "takedown.json"
FORMAT_NAME = "anygram-takedown"
VERSION = 1


def read_record(index_dir: Path) -> dict[str, Any] | None:
    """The takedown record of an index directory, or None when nothing was taken down."""
    path = Path(index_dir) / RECORD_NAME
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexFormatError(f"cannot read {path} ({e}): restore it from a backup, or "
                               "delete it and take the documents down again") from e
    if record.get("format") != FORMAT_NAME or record.get("version") != VERSION:
        raise IndexFormatError(f"{path} is not a takedown record this anygram reads: "
                               "upgrade anygram")
    return record


def takedown_dir(index_dir: Path, record: dict[str, Any]) -> Path:
    return Path(index_dir) / f"takedown-{record['generation']}"


def record_signature(index_dir: Path) -> tuple[int, int, int] | None:
    """What changes when the takedown record of an index directory changes (it is replaced,
    never edited in place): its inode, size and modification time; None without a record.
    One ``stat``: cheap enough to check before every request."""
    try:
        st = (Path(index_dir) / RECORD_NAME).stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns
