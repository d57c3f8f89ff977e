"""Growing an index without a rebuild: new documents as new shards (``anygram add``), and
small shards merged into larger ones (``anygram compact``).

The new documents are built, with the index's tokenizer and options, as a small index of
their own in a temporary directory inside the index (same filesystem); its shards' files are
then renamed into the index under the next shard numbers, and the index's manifest is
replaced last (written beside, renamed over). So the new documents get the next document
ids, the old ones keep theirs, takedown records stay valid, and the layout stays
infini-gram's (``tokenized.N``, ``table.N``, ...).

Killed at any moment, the index is as it was before or as it is after: before moving files,
the add writes a journal naming the shards it moves in (``add.pending.json``); until the
manifest is replaced, readers see the old one and ignore the shards the journal names
(:mod:`anygram.index.reader`; a shard the manifest does not list and no journal names is
refused as damage), and the next add or compact removes them. Readers that opened the index
before keep their view (their maps and manifest); readers that open it after see the new
documents. Writers (add, compact, takedown) take the index's lock in turn.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BuildError, IndexNotFoundError
from ..tokenization import load_tokenizer
from . import takedown
from .build import build_index, default_shard_positions
from .format import (
    ADD_JOURNAL,
    ADD_PREFIX,
    DEFAULT_NTD_THRESHOLD,
    DEFAULT_SAMPLE_STRIDE,
    MANIFEST_NAME,
    SIDECAR_NAMES,
    Manifest,
    ShardInfo,
    read_manifest,
    shard_file_names,
    write_manifest,
)
from .writing import ClosedShard, Sidecars, finish_shard

log = logging.getLogger("anygram")

_SHARD_FILE = re.compile(r"^(tokenized|table|offset|metadata|metaoff|"
                         + "|".join(SIDECAR_NAMES) + r")\.(\d+)$")


def _refuse_node_local(index: Path, manifest: Manifest, command: str) -> None:
    """Raise BuildError for an index whose shards are kept on the nodes of a cluster: this
    machine has not got them."""
    if any(s.node is not None for s in manifest.shards):
        raise BuildError(f"{index} keeps its shards on the nodes of a cluster (built with "
                         f"--placement label): `anygram {command}` works on an index in one "
                         "directory; build it again instead")


def add_documents(index_dir: str | Path, inputs: str | Path | Sequence[str | Path], *,
                  shard_tokens: int | None = None, workers: int | None = None,
                  text_field: str = "text", txt_mode: str = "file", progress: bool = False,
                  sample_stride: int = DEFAULT_SAMPLE_STRIDE,
                  ntd_threshold: int = DEFAULT_NTD_THRESHOLD) -> Manifest:
    """Add the documents of ``inputs`` (as :func:`~anygram.index.build.build_index` reads
    them) to the index at ``index_dir`` as new shards; returns its new manifest.

    The index's own tokenizer tokenizes them; its metadata setting is kept. Raises
    IndexNotFoundError (no anygram index there: infini-gram indexes have no manifest to
    grow), BuildError, CorpusError, TokenizerError; on any error the index is unchanged.
    """
    index = Path(index_dir)
    if not (index / MANIFEST_NAME).is_file():
        raise IndexNotFoundError(f"no anygram index at {index} (anygram add grows an index "
                                 "`anygram build` made)")
    with takedown.locked(index):
        manifest = read_manifest(index)
        _refuse_node_local(index, manifest, "add")
        remove_leftovers(index, manifest)
        if manifest.tokenizer is None:
            raise BuildError(f"{index} records no tokenizer (it was built from token ids): "
                             "there is no tokenizer to add text documents with")
        tok = load_tokenizer(manifest.tokenizer, base_dir=index)
        started = time.time()
        work = Path(tempfile.mkdtemp(prefix=ADD_PREFIX, dir=index))
        try:
            new = build_index(inputs, work / "new", tokenizer=tok, shard_tokens=shard_tokens,
                              workers=workers, text_field=text_field, txt_mode=txt_mode,
                              metadata=manifest.has_metadata, eos_id=manifest.eos_id,
                              progress=progress, sample_stride=sample_stride,
                              ntd_threshold=ntd_threshold)
            if new.token_width != manifest.token_width:
                raise BuildError(f"the new documents' tokens are {new.token_width} bytes wide, "
                                 f"the index's {manifest.token_width}: not the same tokenizer")
            base = 1 + max((int(s.name) for s in manifest.shards), default=-1)
            moving = [s for s in new.shards if s.num_docs]
            _write_journal(index, [str(base + i) for i in range(len(moving))])
            added = [_moved(work / "new", s, str(base + i), index)
                     for i, s in enumerate(moving)]
            build: dict[str, Any] = dict(manifest.build)
            build["added"] = [*build.get("added", []), {
                "inputs": new.build.get("inputs", []), "shards": [s.name for s in added],
                "docs": sum(s.num_docs for s in added),
                "seconds": round(time.time() - started, 3)}]
            grown = replace(manifest, shards=(*manifest.shards, *added), build=build)
            _fsync_tree(index)  # the moved files on disk before the manifest names them
            write_manifest(index, grown)  # the commit point
            # (the journal stays: a reader that read the old manifest just before may look
            # for it; the next add or compact deletes it)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return grown


def _write_journal(index: Path, shards: list[str]) -> None:
    """Name the shards about to be moved in, durably, before the first is."""
    tmp = index / (ADD_JOURNAL + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"shards": shards}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, index / ADD_JOURNAL)


def _moved(source: Path, shard: ShardInfo, name: str, index: Path) -> ShardInfo:
    """Rename a shard's files from ``source`` into ``index`` as shard ``name`` (the token
    file last: it is what marks a shard present); its manifest entry under that name."""
    renames = {}
    for old in shard.files:
        kind, _ = old.rsplit(".", 1)
        renames[old] = f"{kind}.{name}"
    token_file = shard_file_names(shard.name)["tokenized"]
    for old in sorted(renames, key=lambda n: n == token_file):
        os.replace(source / old, index / renames[old])
    return replace(shard, name=name, files={renames[k]: v for k, v in shard.files.items()})


def remove_leftovers(index: Path, manifest: Manifest) -> list[str]:
    """Delete what an interrupted add left in the index: its temporary directories, its
    journal and the files of the shards it names that the manifest does not list. Their
    names."""
    listed = {s.name for s in manifest.shards}
    pending: set[str] = set()
    journal = index / ADD_JOURNAL
    if journal.is_file():
        with contextlib.suppress(OSError, ValueError):
            pending = set(json.loads(journal.read_text()).get("shards", [])) - listed
    gone = []
    for p in index.iterdir():
        m = _SHARD_FILE.match(p.name)
        if (m and m.group(2) in pending and p.is_file()) or p.name in (
                ADD_JOURNAL, ADD_JOURNAL + ".tmp"):
            p.unlink()
            gone.append(p.name)
        elif p.name.startswith(ADD_PREFIX) and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
            gone.append(p.name)
    if gone:
        log.info("removed what an interrupted add left in %s: %s", index, ", ".join(gone))
    return gone


def compact(index_dir: str | Path, *, shard_tokens: int | None = None,
            sample_stride: int = DEFAULT_SAMPLE_STRIDE,
            ntd_threshold: int = DEFAULT_NTD_THRESHOLD) -> Manifest:
    """Merge runs of consecutive small shards into shards of up to ``shard_tokens`` positions
    (default: a build's), in order, so that every answer and every document id stays the
    same; returns the new manifest (the old one when nothing merges).

    The compacted index is made beside the index (unchanged shards' files hard-linked, merged
    ones concatenated and sorted again), then the two directories are exchanged in one
    atomic ``renameat2(RENAME_EXCHANGE)``: killed at any moment, the index is the old one or
    the new one. Readers that opened it before keep their maps.
    """
    index = Path(index_dir).resolve()  # (a link would be exchanged, not its directory)
    if not (index / MANIFEST_NAME).is_file():
        raise IndexNotFoundError(f"no anygram index at {index}")
    with takedown.locked(index):
        manifest = read_manifest(index)
        _refuse_node_local(index, manifest, "compact")
        remove_leftovers(index, manifest)
        width = manifest.token_width
        budget = shard_tokens if shard_tokens is not None else default_shard_positions(width)
        runs = _runs(manifest.shards, width, budget)
        if len(runs) == len(manifest.shards):
            return manifest
        work = index.with_name(index.name + COMPACT_SUFFIX)
        if work.exists():
            shutil.rmtree(work)
        work.mkdir()
        try:
            shards = []
            for i, run in enumerate(runs):
                name = str(i)
                if len(run) == 1:
                    shards.append(_linked(index, run[0], name, work))
                else:
                    shards.append(_merged(index, run, name, work, width,
                                          Sidecars(sample_stride, ntd_threshold)))
            # What is not a shard's: tokenizer, takedowns, and the lock itself (the same
            # file: writers waiting on it get it after the exchange).
            for entry in index.iterdir():
                if not _SHARD_FILE.match(entry.name) and entry.name != MANIFEST_NAME:
                    _link_tree(entry, work / entry.name)
            build = {**manifest.build, "compacted": [*manifest.build.get("compacted", []), {
                "shards_before": len(manifest.shards), "shards_after": len(shards),
                "shard_tokens": budget}]}
            compacted = replace(manifest, shards=tuple(shards), build=build)
            write_manifest(work, compacted)
            _fsync_tree(work)
            exchange(index, work)  # the commit point
            _fsync_tree(index.parent, files=False)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return compacted


#: Suffix of the directory a compaction is made in, beside the index.
COMPACT_SUFFIX = ".compact.partial"


def _runs(shards: Sequence[ShardInfo], width: int, budget: int) -> list[list[ShardInfo]]:
    """Consecutive shards grouped greedily into runs of at most ``budget`` positions."""
    runs: list[list[ShardInfo]] = []
    size = 0
    for s in shards:
        positions = s.ds_bytes // width
        if runs and size + positions <= budget:
            runs[-1].append(s)
            size += positions
        else:
            runs.append([s])
            size = positions
    return runs


def _linked(index: Path, shard: ShardInfo, name: str, work: Path) -> ShardInfo:
    """A shard kept as it is, renamed ``name`` in ``work`` (its files hard-linked)."""
    files = {}
    for old, entry in shard.files.items():
        kind, _ = old.rsplit(".", 1)
        os.link(index / old, work / f"{kind}.{name}")
        files[f"{kind}.{name}"] = entry
    return replace(shard, name=name, files=files)


def _merged(index: Path, run: Sequence[ShardInfo], name: str, work: Path, width: int,
            sidecars: Sidecars) -> ShardInfo:
    """The shards of ``run`` as one shard ``name`` in ``work``: their token, offset and
    metadata files concatenated (offsets moved), then sorted as a build sorts a shard."""
    names = shard_file_names(name)
    has_meta = all(shard_file_names(s.name)["metadata"] in s.files for s in run)
    ds_base = meta_base = 0
    with ExitStack() as stack:
        out = {k: stack.enter_context(open(work / names[k], "wb"))
               for k in ("tokenized", "offset") + (("metadata", "metaoff") if has_meta else ())}
        for s in run:
            src = shard_file_names(s.name)
            with open(index / src["tokenized"], "rb") as part:
                shutil.copyfileobj(part, out["tokenized"], 1 << 20)
            offsets = np.fromfile(index / src["offset"], dtype="<u8")
            out["offset"].write((offsets + np.uint64(ds_base)).astype("<u8").tobytes())
            ds_base += s.ds_bytes
            if has_meta:
                with open(index / src["metadata"], "rb") as part:
                    shutil.copyfileobj(part, out["metadata"], 1 << 20)
                metaoff = np.fromfile(index / src["metaoff"], dtype="<u8")
                out["metaoff"].write((metaoff + np.uint64(meta_base)).astype("<u8").tobytes())
                meta_base += (index / src["metadata"]).stat().st_size
        for f in out.values():
            f.flush()
            os.fsync(f.fileno())
    closed = ClosedShard(str(work), name, width, ds_base, sum(s.num_docs for s in run),
                         sidecars)
    return finish_shard(closed)


def _fsync_tree(directory: Path, files: bool = True) -> None:
    """``directory``'s files (with ``files``) and the directory itself flushed to disk."""
    if files:
        for p in directory.iterdir():
            if p.is_file() and not p.is_symlink():
                fd = os.open(p, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _link_tree(source: Path, target: Path) -> None:
    """``source`` hard-linked at ``target`` (a directory: its tree)."""
    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, target, copy_function=os.link)
    else:
        os.link(source, target, follow_symlinks=False)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> None:
    """Swap two directories in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); where
    that is missing, two renames (the index is then absent for an instant in between)."""
    libc = ctypes.CDLL(None, use_errno=True)
    swap = getattr(libc, "renameat2", None)
    if swap is not None:
        if swap(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(err, f"cannot exchange {a} and {b}: {os.strerror(err)}")
    aside = a.with_name(a.name + ".old")
    os.replace(a, aside)
    os.replace(b, a)
    os.replace(aside, b)
