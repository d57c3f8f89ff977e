"""The on-disk index format: file names, pointer widths, the manifest and its checks.

This is the only module that knows how an index is laid out (normative spec:
``docs/index-format.md``). The layout is infini-gram's v4 layout, so indexes are
interchangeable with infini-gram both ways:

- ``tokenized.{s}``: each document preceded by a separator of ``w`` bytes of ``0xff``, then its
  token ids as little-endian ``u8``/``u16``/``u32``;
- ``table.{s}``: the suffix array over token-aligned byte offsets of ``tokenized.{s}``, each a
  little-endian integer of ``k = ceil(log2(ds_bytes) / 8)`` bytes, ordered by the raw bytes of
  the suffixes;
- ``offset.{s}``: ``u64`` byte offset of each document's separator;
- ``metadata.{s}`` / ``metaoff.{s}`` (optional): one JSON line per document and ``u64`` offsets;
- ``manifest.json`` (anygram only): written last, it marks a finished build.

infini-gram's v6 layout (one shard per directory, unsuffixed names) is read too.
"""

from __future__ import annotations

import json
import os
import re
import reprlib
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from ..errors import (
    IncompleteIndexError,
    IndexFormatError,
    IndexVersionError,
)
from ..fileio import sha256_file

MANIFEST_NAME = "manifest.json"
FORMAT_NAME = "anygram-index"
FORMAT_VERSION = 1
LAYOUT = "infini-gram-v4"
PARTIAL_SUFFIX = ".partial"
# A build in progress keeps its state in this file; a directory holding it is unfinished.
PROGRESS_NAME = "progress.json"
TOKEN_WIDTHS = (1, 2, 4)
DTYPE_OF_WIDTH = {1: "u8", 2: "u16", 4: "u32"}
WIDTH_OF_DTYPE = {v: k for k, v in DTYPE_OF_WIDTH.items()}
#: The search sample of a shard (:mod:`anygram.index.sample`): ``sample.{s}``, every
#: ``DEFAULT_SAMPLE_STRIDE``-th suffix with its first ``DEFAULT_SAMPLE_KEY_BYTES`` bytes.
SAMPLE_NAME = "sample"
DEFAULT_SAMPLE_STRIDE = 256
DEFAULT_SAMPLE_KEY_BYTES = 16
#: The next-token table of a shard (:mod:`anygram.index.ntd_table`): ``ntd.{s}``, the exact
#: next-token counts of the 1- and 2-token prompts occurring at least
#: ``DEFAULT_NTD_THRESHOLD`` times.
NTD_NAME = "ntd"
DEFAULT_NTD_THRESHOLD = 256
#: The names of a shard's sidecars: derived from its files, never required (checked, and
#: rebuilt when needed, on first use).
SIDECAR_NAMES = (SAMPLE_NAME, NTD_NAME)
#: Prefix of the temporary directory ``anygram add`` builds in, inside the index.
ADD_PREFIX = ".add-"
#: The journal of an ``anygram add`` in progress: the shards it is moving into the index,
#: which the manifest does not list yet (:mod:`anygram.index.grow`).
ADD_JOURNAL = "add.pending.json"
# Offset files up to this size also get the "sha256" key older versions check on every open;
# every file gets a "checksum" that `anygram verify` checks.
CHECKSUM_MAX_BYTES = 64 << 20
# A manifest or takedown record larger than this is refused unread (a real one is a few KB
# per shard, or 8-odd bytes per taken-down document).
RECORD_MAX_BYTES = 256 << 20
# Shard names are file suffixes: digits only, so no name can reach outside the directory.
_SHARD_NAME = re.compile(r"[0-9]{1,12}")
#: Where a cluster build keeps its shards (:mod:`anygram.index.ray_build`): in a directory
#: every node sees, or on the disks of the nodes the manifest names (``ShardInfo.node``).
Placement = Literal["shared", "label"]
PLACEMENTS: tuple[Placement, ...] = ("shared", "label")
#: A node's name: the value of its ``anygram-node`` label (Ray's label value syntax).
NODE_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")

LoadMethod = Literal["mmap", "ram"]


def ptr_width_for(ds_bytes: int) -> int:
    """Bytes per suffix-array pointer for a shard of ``ds_bytes`` token bytes.

    infini-gram's rule ``ceil(log2(ds_bytes) / 8)``, computed exactly with integers
    (``log2(D) > 8m`` iff ``(D - 1).bit_length() > 8m``); at least 1.
    """
    return max(1, -(-(max(ds_bytes, 1) - 1).bit_length() // 8))


def separator(width: int) -> bytes:
    """The document separator of a ``width``-byte index: all ``0xff``."""
    return b"\xff" * width


def is_sidecar(name: str) -> bool:
    """Whether a file name of a manifest's shard entry names a sidecar (``sample.0``,
    ``ntd.0``): not a part of the index, checked whole by its own module."""
    return name.split(".", 1)[0] in SIDECAR_NAMES


def shard_file_names(shard: str | None) -> dict[str, str]:
    """Names of a shard's files: ``tokenized.0`` for shard ``"0"``; unsuffixed for v6 (None)."""
    kinds = ("tokenized", "table", "offset", "metadata", "metaoff")
    return {k: (k if shard is None else f"{k}.{shard}") for k in kinds}


def inside(directory: Path, name: str, what: str) -> Path:
    """``directory / name``, refused (IndexFormatError) unless it stays inside ``directory``
    once symbolic links are followed: an index's files name no place outside it.

    ``name`` comes from an index (a manifest, a takedown record, a directory listing): it must
    be a relative path without ``..``.
    """
    rel = PurePosixPath(name)
    if not name or rel.is_absolute() or ".." in rel.parts or "\\" in name:
        raise IndexFormatError(f"{directory}: the {what} {name!r} is not a path inside the "
                               "index directory: the index is damaged or hostile; refused")
    path = directory / name
    if len(rel.parts) == 1 and not path.is_symlink():
        return path  # a plain name in the directory: nothing to resolve (the common case)
    real, base = path.resolve(), directory.resolve()
    if real != base and base not in real.parents:
        raise IndexFormatError(f"{path} leads outside the index directory (to {real}): "
                               "copy the file into the index instead of linking it; refused")
    return path


def regular_file_size(path: Path) -> int:
    """The size of ``path``, refused unless it is a regular file (a FIFO would block a read,
    a device has no end): IncompleteIndexError when missing, IndexFormatError otherwise."""
    try:
        st = os.stat(path)
    except FileNotFoundError as e:
        raise IncompleteIndexError(f"{path} is missing: the index is incomplete; rebuild "
                                   "it") from e
    except OSError as e:
        raise IndexFormatError(f"cannot read {path} ({e})") from e
    if not stat.S_ISREG(st.st_mode):
        raise IndexFormatError(f"{path} is not a regular file: the index is damaged; refused")
    return st.st_size


def read_json_record(path: Path, what: str) -> Any:
    """The JSON in a small file of an index (a manifest, a takedown record), or
    IndexFormatError: not a regular file, larger than :data:`RECORD_MAX_BYTES`, unreadable,
    not JSON, or nested too deep to parse."""
    size = regular_file_size(path)
    if size > RECORD_MAX_BYTES:
        raise IndexFormatError(f"{path} has {size} bytes: too large for a {what}; refused")
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as e:
        raise IndexFormatError(f"cannot read {path} as a {what} ({type(e).__name__}: "
                               f"{str(e)[:200]})") from e


@dataclass(frozen=True)
class ShardInfo:
    """What the manifest records about one shard."""

    name: str  # file suffix: "0" -> tokenized.0
    num_docs: int
    num_tokens: int  # document tokens, separators excluded
    ds_bytes: int
    ptr_width: int
    # name -> {"size", "checksum": "sha256:<hex>" (for verify), "sha256" (older versions)}
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The node that keeps its files (``anygram-node`` label; a build with node-local
    # placement): None, every machine that opens the index sees them (not written then).
    node: str | None = None

    def check(self, where: Path) -> None:
        """Types and ranges of the fields, and file names that are this shard's own."""
        def bad(what: str) -> IndexFormatError:
            return IndexFormatError(f"{where} is damaged (shard {reprlib.repr(self.name)}: "
                                    f"{what}): rebuild the index with `anygram build`")

        if not isinstance(self.name, str) or not _SHARD_NAME.fullmatch(self.name):
            raise bad("a shard name is a number (the suffix of its files)")
        for key in ("num_docs", "num_tokens", "ds_bytes", "ptr_width"):
            value = getattr(self, key)
            if not _is_int(value) or value < 0:
                raise bad(f"{key} {reprlib.repr(value)}")
        if not isinstance(self.files, dict):
            raise bad(f"files {reprlib.repr(self.files)}")
        if self.node is not None and not (isinstance(self.node, str)
                                          and NODE_NAME.fullmatch(self.node)):
            raise bad(f"node {reprlib.repr(self.node)}")
        # and its sidecars (anygram.index.sample's, anygram.index.ntd_table's)
        own = {*shard_file_names(self.name).values(),
               *(f"{kind}.{self.name}" for kind in SIDECAR_NAMES)}
        for name, entry in self.files.items():
            if name not in own:
                raise bad(f"{name!r} is not one of its files")
            if not isinstance(entry, dict) or not _is_int(entry.get("size")) or any(
                    not isinstance(entry.get(k, ""), str) for k in ("sha256", "checksum")):
                raise bad(f"the entry of {name} is {reprlib.repr(entry)}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _shard_info(d: Any) -> ShardInfo:
    if not isinstance(d, dict):
        raise TypeError(f"a shard entry is a {type(d).__name__}, not an object")
    return ShardInfo(**d)


@dataclass(frozen=True)
class Manifest:
    """The index's self-description, stored as ``manifest.json``."""

    token_width: int
    vocab_size: int  # valid query ids are 0 .. vocab_size-1
    eos_id: int | None
    tokenizer: dict[str, Any] | None
    shards: tuple[ShardInfo, ...]
    has_metadata: bool
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION
    layout: str = LAYOUT
    created_by: str = ""
    build: dict[str, Any] = field(default_factory=dict)

    @property
    def num_docs(self) -> int:
        return sum(s.num_docs for s in self.shards)

    @property
    def num_tokens(self) -> int:
        return sum(s.num_tokens for s in self.shards)

    def to_json(self) -> str:
        d = asdict(self)
        # (a shard's node only when it has one: other indexes' manifests stay as they were)
        d["shards"] = [{k: v for k, v in asdict(s).items() if k != "node" or v is not None}
                       for s in self.shards]
        return json.dumps(d, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: Any, where: Path) -> Manifest:
        """The manifest in the parsed JSON ``d``, every field checked (IndexFormatError)."""
        if not isinstance(d, dict) or d.get("format") != FORMAT_NAME:
            got = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise IndexFormatError(f"{where} is not an anygram manifest "
                                   f"(format={reprlib.repr(got)})")
        version = d.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexVersionError(
                f"{where} has index format version {reprlib.repr(version)}; this anygram reads "
                f"version {FORMAT_VERSION}: upgrade anygram, or rebuild the index with "
                "`anygram build`"
            )
        try:
            shards = tuple(_shard_info(s) for s in d["shards"])
            fields = {k: d[k] for k in ("token_width", "vocab_size", "eos_id", "tokenizer",
                                        "has_metadata")}
            manifest = cls(shards=shards, created_by=d.get("created_by", ""),
                           build=d.get("build", {}), **fields)
        except (KeyError, TypeError, ValueError) as e:
            raise IndexFormatError(
                f"{where} is damaged ({e!r}): rebuild the index with `anygram build`"
            ) from e
        manifest._check(where)
        return manifest

    def _check(self, where: Path) -> None:
        """What a reader relies on: types, ranges, unique shard names, no file outside."""
        def bad(what: str) -> IndexFormatError:
            return IndexFormatError(f"{where} is damaged ({what}): rebuild the index with "
                                    "`anygram build`")

        if not _is_int(self.token_width) or self.token_width not in TOKEN_WIDTHS:
            raise bad(f"token_width {reprlib.repr(self.token_width)}")
        separator_id = (1 << (8 * self.token_width)) - 1
        if not _is_int(self.vocab_size) or not 0 < self.vocab_size <= separator_id:
            raise bad(f"vocab_size {reprlib.repr(self.vocab_size)}")
        if self.eos_id is not None and not _is_int(self.eos_id):
            raise bad(f"eos_id {reprlib.repr(self.eos_id)}")
        if not isinstance(self.has_metadata, bool):
            raise bad(f"has_metadata {reprlib.repr(self.has_metadata)}")
        if self.tokenizer is not None:
            if not isinstance(self.tokenizer, dict):
                raise bad(f"tokenizer {reprlib.repr(self.tokenizer)}")
            file = self.tokenizer.get("file")
            if file is not None:
                if not isinstance(file, str):
                    raise bad(f"tokenizer file {reprlib.repr(file)}")
                inside(where.parent, file, "tokenizer file")
        if not self.shards:
            raise bad("no shards: an index has at least one, even when empty")
        names = [s.name for s in self.shards]
        if len(set(names)) != len(names):
            raise bad(f"a shard is listed twice: {reprlib.repr(names)}")
        for s in self.shards:
            s.check(where)


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Write ``manifest.json`` durably (temp file, fsync, rename): the build's last step."""
    tmp = directory / (MANIFEST_NAME + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(manifest.to_json())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / MANIFEST_NAME)


def read_manifest(directory: Path) -> Manifest:
    """The checked manifest of an index directory (IndexFormatError when damaged)."""
    path = inside(directory, MANIFEST_NAME, "manifest")
    return Manifest.from_dict(read_json_record(path, "manifest"), path)


def _checked_by_older_versions(name: str, size: int) -> bool:
    """Whether older anygram versions check a file's ``sha256`` on every open: the offset
    files up to :data:`CHECKSUM_MAX_BYTES`. This one checks no hash on open (that would read
    O(documents) data); ``anygram verify`` checks every ``checksum``."""
    return name.startswith(("offset", "metaoff")) and size <= CHECKSUM_MAX_BYTES


def describe_shard_files(directory: Path, shard: str) -> dict[str, dict[str, Any]]:
    """Size and sha256 of each of one shard's files, for the manifest: ``checksum`` for every
    file (what ``anygram verify`` checks), ``sha256`` too for the files older anygram versions
    check on every open (the key they read)."""
    out: dict[str, dict[str, Any]] = {}
    for name in shard_file_names(shard).values():
        p = directory / name
        if not p.exists():
            continue
        digest = sha256_file(p)
        entry: dict[str, Any] = {"size": p.stat().st_size, "checksum": f"sha256:{digest}"}
        if _checked_by_older_versions(name, entry["size"]):
            entry["sha256"] = digest
        out[name] = entry
    return out


# ----------------------------------------------------------------------------- metadata lines


_SCAN_JSON = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # the C scanner


def parse_metadata_line(line: str) -> dict[str, Any]:
    """A ``metadata.{s}`` line as a dict; ``{"raw": line}`` when it is not a JSON object."""
    line = line.rstrip("\n")
    try:
        # The C scanner alone: 3x faster than json.loads on a short line (a cost per hit).
        obj, end = _SCAN_JSON(line, 0)
    except (StopIteration, ValueError):
        obj, end = None, -1
    if end != len(line):
        try:
            obj = json.loads(line)  # surrounding whitespace, or a real error
        except ValueError:
            obj = None
    # Not an anygram / infini-gram v4 JSON line: keep it whole rather than fail the query.
    return obj if isinstance(obj, dict) else {"raw": line}
