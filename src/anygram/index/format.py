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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import (
    IndexFormatError,
    IndexVersionError,
)
from ..fileio import sha256_file

MANIFEST_NAME = "manifest.json"
FORMAT_NAME = "anygram-index"
FORMAT_VERSION = 1
LAYOUT = "infini-gram-v4"
PARTIAL_SUFFIX = ".partial"
TOKEN_WIDTHS = (1, 2, 4)
DTYPE_OF_WIDTH = {1: "u8", 2: "u16", 4: "u32"}
WIDTH_OF_DTYPE = {v: k for k, v in DTYPE_OF_WIDTH.items()}
#: The search sample of a shard (:mod:`anygram.index.sample`): ``sample.{s}``, every
#: ``DEFAULT_SAMPLE_STRIDE``-th suffix with its first ``DEFAULT_SAMPLE_KEY_BYTES`` bytes.
SAMPLE_NAME = "sample"
DEFAULT_SAMPLE_STRIDE = 256
DEFAULT_SAMPLE_KEY_BYTES = 16
# Files up to this size get a sha256 in the manifest that is checked on every open.
CHECKSUM_MAX_BYTES = 64 << 20

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


def shard_file_names(shard: str | None) -> dict[str, str]:
    """Names of a shard's files: ``tokenized.0`` for shard ``"0"``; unsuffixed for v6 (None)."""
    kinds = ("tokenized", "table", "offset", "metadata", "metaoff")
    return {k: (k if shard is None else f"{k}.{shard}") for k in kinds}


@dataclass(frozen=True)
class ShardInfo:
    """What the manifest records about one shard."""

    name: str  # file suffix: "0" -> tokenized.0
    num_docs: int
    num_tokens: int  # document tokens, separators excluded
    ds_bytes: int
    ptr_width: int
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {size, sha256?}


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
        d["shards"] = [asdict(s) for s in self.shards]
        return json.dumps(d, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: Path) -> Manifest:
        if d.get("format") != FORMAT_NAME:
            raise IndexFormatError(
                f"{where} is not an anygram manifest (format={d.get('format')!r})")
        version = d.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexVersionError(
                f"{where} has index format version {version}; this anygram reads version "
                f"{FORMAT_VERSION}: upgrade anygram, or rebuild the index with `anygram build`"
            )
        try:
            shards = tuple(ShardInfo(**s) for s in d["shards"])
            fields = {k: d[k] for k in ("token_width", "vocab_size", "eos_id", "tokenizer",
                                        "has_metadata")}
            return cls(shards=shards, created_by=d.get("created_by", ""),
                       build=d.get("build", {}), **fields)
        except (KeyError, TypeError) as e:
            raise IndexFormatError(
                f"{where} is damaged ({e!r}): rebuild the index with `anygram build`"
            ) from e


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Write ``manifest.json`` durably (temp file, fsync, rename): the build's last step."""
    tmp = directory / (MANIFEST_NAME + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(manifest.to_json())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / MANIFEST_NAME)


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST_NAME
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexFormatError(f"cannot read {path} ({e}): rebuild the index") from e
    return Manifest.from_dict(d, path)


def describe_shard_files(directory: Path, shard: str) -> dict[str, dict[str, Any]]:
    """Sizes (and sha256 of small files) of one shard's files, for the manifest."""
    out: dict[str, dict[str, Any]] = {}
    for name in shard_file_names(shard).values():
        p = directory / name
        if not p.exists():
            continue
        entry: dict[str, Any] = {"size": p.stat().st_size}
        if name.startswith(("offset", "metaoff")) and entry["size"] <= CHECKSUM_MAX_BYTES:
            entry["sha256"] = sha256_file(p)
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
