"""Writing one shard: its token, offset and metadata files (:class:`ShardWriter`), then its
suffix array and sidecars (:func:`finish_shard`); and tokenizing a batch of documents
(:func:`encode_batch`). Each piece runs in any process: the build runs them in its own
pools, or a :class:`BuildRunner` elsewhere (:mod:`anygram.index.ray_build`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Protocol

import numpy as np

from ..errors import BuildError
from ..tokenization import Tokenizer
from . import ntd_table
from . import sample as search_sample
from . import suffix_array as sa
from .corpus import Document
from .format import (
    Manifest,
    ShardInfo,
    describe_shard_files,
    ptr_width_for,
    separator,
    shard_file_names,
)
from .progress import Progress
from .sidecar import shard_identity

#: Peak bytes per token byte while sorting: the bytes themselves + an int32 SA entry per byte.
SORT_BYTES_PER_BYTE = 5

# ----------------------------------------------------------------------------- tokenizing

_worker_tokenizer: Tokenizer | None = None
_worker_dtype: np.dtype | None = None


def init_worker(tokenizer: Tokenizer, dtype: str) -> None:
    global _worker_tokenizer, _worker_dtype
    _worker_tokenizer = tokenizer
    _worker_dtype = np.dtype(dtype)


def encode_texts(texts: list[str]) -> list[bytes]:
    assert _worker_tokenizer is not None and _worker_dtype is not None
    return [np.asarray(ids, dtype=_worker_dtype).tobytes()
            for ids in _worker_tokenizer.encode_batch(texts)]


def encode_batch(tokenizer: Tokenizer, dtype: str, texts: list[str]) -> list[bytes]:
    """The token bytes (``dtype``) of each text: one batch of a build's tokenizing."""
    init_worker(tokenizer, dtype)
    return encode_texts(texts)


class ShardSink(Protocol):
    """Where a build writes one shard's documents (:class:`ShardWriter`: files here)."""

    name: str
    num_docs: int

    @property
    def positions(self) -> int:
        """Token positions written so far, separators included."""

    def add(self, doc: Document | None, token_bytes: bytes) -> None:
        """Append one document (``doc``: its metadata, if the index keeps it)."""

    def close(self) -> ClosedShard:
        """Finish writing (durably): the shard, ready to sort."""


class BuildRunner(Protocol):
    """Where a build's heavy work runs, when not in this process and its pools: tokenizing
    batches, writing and sorting shards (``anygram.index.ray_build`` runs them on a Ray
    cluster), and the directories that hold them."""

    #: Shards sorting at once (the build waits for the oldest beyond that).
    sorts_in_flight: int
    #: What a resumed build must have been started with too (e.g. the placement).
    params: dict[str, Any]

    def prepare(self, partial: Path, out: Path, done: list[ShardInfo], *, overwrite: bool,
                resume: bool) -> None:
        """After this machine's ``partial`` directory is prepared (``done``: the shards a
        resumed build keeps): prepare the runner's own."""

    def writer(self, partial: Path, name: str, width: int, metadata: bool,
               sidecars: Sidecars) -> ShardSink:
        """Where shard ``name`` is written."""

    def publish(self, out: Path, manifest: Manifest, files: dict[str, bytes]) -> None:
        """Before this machine's directory is published: publish the runner's own, with the
        ``manifest`` and ``files`` (relative path -> bytes)."""

    def close(self) -> None:
        """Release what the runner holds (the build ended, or failed)."""

    def encode(self, tokenizer: Tokenizer, dtype: str, batches: Iterator[list[str]]
               ) -> Iterator[list[bytes]]:
        """:func:`encode_batch` of every batch, in order."""

    def finish(self, shard: ClosedShard) -> Future[ShardInfo]:
        """:func:`finish_shard` of a written shard, its outcome in the future."""


class ShardWriter:
    """Appends documents to one shard's tokenized/offset/metadata/metaoff files."""

    def __init__(self, directory: Path, name: str, width: int, with_metadata: bool,
                 sidecars: Sidecars) -> None:
        self.directory = directory
        self.name = name
        self.width = width
        self.sidecars = sidecars  # written when it is sorted
        names = shard_file_names(name)
        self.files: dict[str, BinaryIO] = {
            k: open(directory / names[k], "wb")
            for k in ("tokenized", "offset") + (("metadata", "metaoff") if with_metadata else ())
        }
        self.sep = separator(width)
        self.ds_bytes = 0
        self.meta_bytes = 0
        self.num_docs = 0

    @property
    def positions(self) -> int:
        return self.ds_bytes // self.width

    def add(self, doc: Document | None, token_bytes: bytes) -> None:
        self.add_line(metadata_line(doc) if doc is not None and "metadata" in self.files
                      else None, token_bytes)

    def add_line(self, line: bytes | None, token_bytes: bytes) -> None:
        """:meth:`add` of a document whose metadata line (:func:`metadata_line`) is made."""
        f = self.files
        f["offset"].write(self.ds_bytes.to_bytes(8, "little"))
        f["tokenized"].write(self.sep)
        f["tokenized"].write(token_bytes)
        self.ds_bytes += len(self.sep) + len(token_bytes)
        if "metadata" in f and line is not None:
            f["metaoff"].write(self.meta_bytes.to_bytes(8, "little"))
            f["metadata"].write(line)
            self.meta_bytes += len(line)
        self.num_docs += 1

    def close(self) -> ClosedShard:
        for f in self.files.values():
            f.flush()
            os.fsync(f.fileno())
            f.close()
        return ClosedShard(str(self.directory), self.name, self.width, self.ds_bytes,
                           self.num_docs, self.sidecars)


def metadata_line(doc: Document) -> bytes:
    """The line of the metadata file that describes ``doc``."""
    return (json.dumps({"path": doc.path, "linenum": doc.linenum, "metadata": doc.metadata},
                       ensure_ascii=False) + "\n").encode("utf-8")


class ClosedShard(NamedTuple):
    """A shard whose token, offset and metadata files are written: what sorting it needs."""

    directory: str
    name: str
    width: int
    ds_bytes: int
    num_docs: int
    sidecars: Sidecars

    @property
    def positions(self) -> int:
        return self.ds_bytes // self.width

    @property
    def sort_memory(self) -> int:
        """Peak bytes of its sort."""
        return SORT_BYTES_PER_BYTE * self.ds_bytes


def finish_shard(writer: ClosedShard, progress: Progress | None = None,
                 sort_s_per_byte: list[float] | None = None) -> ShardInfo:
    """Sort the shard's suffixes into its table file, check it, write its sidecars and
    describe its files. Run again after a crash, it writes the same files.

    ``sort_s_per_byte``: sort times of the shards before, per byte: the estimate of this sort
    (libdivsufsort reports no progress); this one's is appended."""
    progress = progress if progress is not None else Progress(False)
    sort_s_per_byte = sort_s_per_byte if sort_s_per_byte is not None else []
    directory = Path(writer.directory)
    names = shard_file_names(writer.name)
    ptr_width = ptr_width_for(writer.ds_bytes)
    estimate = sort_s_per_byte[-1] * writer.ds_bytes if sort_s_per_byte else None
    sort_s = sa.build_table(directory / names["tokenized"],
                            directory / names["table"], writer.width, ptr_width,
                            progress=progress, shard=writer.name, sort_estimate_s=estimate)
    if writer.ds_bytes:
        sort_s_per_byte.append(sort_s / writer.ds_bytes)
    files = describe_shard_files(directory, writer.name)
    if writer.sidecars.sample_stride or writer.sidecars.ntd_threshold:
        with progress.phase(f"sidecars of shard {writer.name}"):
            files.update(write_sidecars(directory, writer.name, writer.width, ptr_width,
                                         writer.sidecars, files))
    return ShardInfo(name=writer.name, num_docs=writer.num_docs,
                     num_tokens=writer.positions - writer.num_docs, ds_bytes=writer.ds_bytes,
                     ptr_width=ptr_width, files=files)


class Sidecars(NamedTuple):
    """Which sidecars the build writes beside each shard (0: none)."""

    sample_stride: int  # the search sample's (anygram.index.sample)
    ntd_threshold: int  # the next-token table's (anygram.index.ntd_table)

    def check(self) -> None:
        for name, value in self._asdict().items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise BuildError(f"{name} must be an int >= 0, not {value!r}")


def write_sidecars(directory: Path, shard: str, width: int, ptr_width: int,
                    sidecars: Sidecars, files: dict[str, dict[str, Any]]
                    ) -> dict[str, dict[str, Any]]:
    """Write the shard's sidecars (``files``: its files' manifest entries); their manifest
    entries (size and CRC-32)."""
    names = shard_file_names(shard)
    ds = np.fromfile(directory / names["tokenized"], dtype=np.uint8)
    table = np.memmap(directory / names["table"], dtype=np.uint8, mode="r") \
        if (directory / names["table"]).stat().st_size else np.zeros(0, dtype=np.uint8)
    args = (ds, table, width, ptr_width)
    written = []
    if sidecars.sample_stride:
        path = directory / search_sample.sample_name(shard)
        search_sample.write(path, search_sample.build(*args, stride=sidecars.sample_stride),
                            *args)
        written.append((path, search_sample.crc32_of(path)))
    if sidecars.ntd_threshold:
        path = directory / ntd_table.table_name(shard)
        ntd_table.write(path, ntd_table.build(*args, threshold=sidecars.ntd_threshold), *args,
                        shard_identity(directory, shard, files))
        written.append((path, ntd_table.crc32_of(path)))
    return {p.name: {"size": p.stat().st_size, "crc32": crc} for p, crc in written}
