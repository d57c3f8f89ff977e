"""What a shard's sidecar files share: the search sample (:mod:`anygram.index.sample`) and the
next-token table (:mod:`anygram.index.ntd_table`).

A sidecar is derived from a shard's files, never required, and never trusted blindly:

- it starts with a header of its own kind (a magic, a format version, a CRC-32 of the rest,
  and the shard's fingerprint: its token and table sizes and widths, :func:`fingerprint`);
- it is written atomically (:func:`write_atomic`: a temporary file in the same directory,
  renamed) and mapped, not read (:func:`map_checked`: a regular file whose header its kind's
  checks accept, O(1));
- ``build`` writes it beside the shard; an index without one gets it on first use
  (:func:`load_or_build`), next to the index when the directory is writable, else in the
  user's cache directory (:func:`cache_path`), else in memory only; one found wrong later is
  deleted (:func:`forget`) so that the next open rebuilds it;
- a shard holds it in a :class:`Lazy`: loaded on first use, dropped when found wrong.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import stat
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from .format import shard_file_names

_T = TypeVar("_T")


class Unusable(Exception):
    """A sidecar file that is not this shard's, or not sound (the message says why)."""


def fingerprint(ds: np.ndarray, sa: np.ndarray, token_width: int, ptr_width: int
                ) -> tuple[int, int, int, int]:
    """What a sidecar records of its shard's shape: token bytes, table bytes, widths."""
    return int(ds.shape[0]), int(sa.shape[0]), token_width, ptr_width


def padded(size: int) -> int:
    """``size`` rounded up to a multiple of 8 (where the next array of int64 starts)."""
    return size + (-size % 8)


def shard_identity(directory: Path, suffix: str | None,
                   files: Mapping[str, Mapping[str, Any]] | None = None) -> bytes:
    """16 bytes that change when a shard's token or table file is replaced by another: from
    the checksums the manifest records for them (``files``, a shard's manifest entries),
    else from their sizes and modification times (an infini-gram index, an older manifest).

    A sidecar that must not outlive its shard's content (the next-token table: a wrong one
    would give wrong answers) records it and is refused when it differs. Two stats, or
    none: O(1).
    """
    names = shard_file_names(suffix)
    parts = []
    for kind in ("tokenized", "table"):
        entry = (files or {}).get(names[kind]) or {}
        digest = entry.get("checksum") or entry.get("sha256")
        if digest:
            parts.append(f"{kind}={digest}")
            continue
        try:
            st = os.stat(directory / names[kind])
        except OSError:
            parts.append(f"{kind}=?")
            continue
        parts.append(f"{kind}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).digest()[:16]


def write_atomic(path: Path, header: bytes, header_size: int,
                 body: Sequence[bytes | np.ndarray]) -> None:
    """Write ``header`` (zero-padded to ``header_size``) and ``body`` to ``path`` atomically: a
    temporary file in the same directory, synced, renamed."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "xb") as f:  # the umask's permissions, as the index's other files
            f.write(header.ljust(header_size, b"\0"))
            for part in body:
                f.write(part if isinstance(part, bytes) else part.tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def map_checked(path: Path, header_size: int, check: Callable[[bytes, int], str | None]
                ) -> tuple[bytes, mmap.mmap]:
    """The header and a read-only map of the sidecar at ``path``.

    Raises:
        Unusable: not a regular file, or ``check(header, file size)`` says why not.
        OSError: it cannot be read.
    """
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block a read, a device never end
        raise Unusable("not a regular file")
    with open(path, "rb", buffering=0) as f:
        if hasattr(os, "posix_fadvise"):  # the header only: no read-ahead of the file
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_RANDOM)
        header = f.read(header_size)
        why = check(header, st.st_size)
        if why is not None:
            raise Unusable(why)
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if hasattr(mapped, "madvise"):
        # Searches touch a few pages at random: read-around (up to the device's read-ahead,
        # 8 MB on some disks) would read the whole file on a cold index's first query.
        mapped.madvise(mmap.MADV_RANDOM)
    return header, mapped


def map_usable(path: Path, header_size: int, check: Callable[[bytes, int], str | None],
               log: logging.Logger, what: str) -> tuple[bytes, mmap.mmap] | None:
    """:func:`map_checked`, or None when the sidecar cannot be used (a log line says why,
    unless it cannot be read at all)."""
    try:
        return map_checked(path, header_size, check)
    except Unusable as e:
        log.warning("ignoring the %s %s: %s", what, path, e)
    except OSError:
        pass
    return None


def crc32_in_header(path: Path, unpack: Callable[[bytes], tuple[Any, ...]], field: int,
                    header_size: int) -> int:
    """The CRC-32 a sidecar's header records (field ``field`` of ``unpack(header)``)."""
    with open(path, "rb") as f:
        return int(unpack(f.read(header_size))[field])


def cache_path(shard_path: Path, name: str) -> Path:
    """Where a sidecar of a read-only index goes: the user's cache directory, under a key of
    the shard's absolute path."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "anygram"
    key = hashlib.sha256(str(shard_path.resolve()).encode()).hexdigest()[:16]
    return base / "sidecars" / key / name


def load_or_build(directory: Path, name: str, read: Callable[[Path], _T | None],
                  build: Callable[[], _T], write: Callable[[Path, _T], None],
                  log: logging.Logger, what: str) -> _T:
    """The sidecar ``name`` of a shard in ``directory``: read beside the index or from the
    cache (``read`` gives None for a missing or stale one), else built now and written where
    it can be (next time it is read), else kept in memory."""
    beside = directory / name
    # (read() gives None for a missing file: no stat first, and the cache's place, which
    # resolves the directory's path, only when needed; a cold index's first query waits on
    # these system calls in every shard.)
    found = read(beside)
    if found is not None:
        return found
    places = [beside, cache_path(directory, name)]
    if places[1].exists():
        found = read(places[1])
        if found is not None:
            return found
    log.info("building the %s of %s (once)", what, beside)
    made = build()
    for path in places:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write(path, made)
            break
        except OSError:
            continue
    return made


def forget(directory: Path, name: str) -> None:
    """Delete a shard's sidecar ``name`` (beside the index and in the cache), where allowed:
    one found wrong is rebuilt on the next open."""
    for path in (directory / name, cache_path(directory, name)):
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass


class Lazy(Generic[_T]):
    """A shard's sidecar as its searches hold it: loaded by ``load`` on first use (None:
    the shard answers without one), dropped for good when found wrong. Thread-safe; shared
    by the copies of a shard that differ only in their taken-down documents."""

    __slots__ = ("_load", "_value", "_loaded", "_lock")

    def __init__(self, load: Callable[[], _T | None] | None) -> None:
        self._load = load
        self._value: _T | None = None
        self._loaded = load is None  # nothing to load: never used
        self._lock = threading.Lock()

    def get(self) -> _T | None:
        """The sidecar (loaded now if this is its first use), or None."""
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    assert self._load is not None
                    self._value = self._load()
                    self._loaded = True
        return self._value

    def drop(self, found: _T) -> bool:
        """Stop using ``found``; True unless another caller dropped it first."""
        with self._lock:
            if self._value is not found:
                return False
            self._value = None
            return True
