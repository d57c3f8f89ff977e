"""A build's directories on disk: ``<out>.partial``, where it writes, prepared and cleaned;
and its publication, the manifest written last and the directory renamed to ``<out>``.

The same steps run on the build's own machine and, for an index whose shards are kept on
the nodes of a cluster (:mod:`anygram.index.ray_build`), on each node.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Collection
from pathlib import Path

from ..errors import BuildError
from . import takedown
from .format import (
    ADD_JOURNAL,
    ADD_PREFIX,
    MANIFEST_NAME,
    PARTIAL_SUFFIX,
    PROGRESS_NAME,
    SIDECAR_NAMES,
    Manifest,
    write_manifest,
)

#: A file the build leaves in its partial directory to recognise it from elsewhere (a
#: node that sees the same directory: a shared filesystem); removed before publishing.
BUILD_ID_NAME = "build-id"

# What an index directory holds: its shard files, manifest, tokenizer copy, takedown records
# and build progress (and their temporary names). --overwrite deletes nothing else.
_INDEX_ENTRY = re.compile("|".join([
    r"(tokenized|table|offset|metadata|metaoff)(\.[0-9]+)?",
    re.escape(MANIFEST_NAME) + r"(\.tmp)?",
    "tokenizer",
    re.escape(takedown.RECORD_NAME) + r"(\.tmp)?",
    re.escape(takedown.LOCK_NAME),
    r"takedown-[0-9]+(\.partial)?",
    "(" + "|".join(SIDECAR_NAMES) + r")(\.[0-9]+)?(\.[0-9]+\.[0-9]+\.tmp)?",
    re.escape(PROGRESS_NAME) + r"(\.tmp)?",
    re.escape(BUILD_ID_NAME),
    re.escape(ADD_PREFIX) + r".+",
    re.escape(ADD_JOURNAL) + r"(\.tmp)?",
]))


def partial_of(out: Path) -> Path:
    """Where the build of ``out`` writes."""
    return out.with_name(out.name + PARTIAL_SUFFIX)


def prepare(out: Path, *, overwrite: bool, resume: bool) -> Path:
    """The partial directory of a build of ``out``, created; an unfinished build's there
    removed unless ``resume``. Raises BuildError when ``out`` exists and not ``overwrite``,
    or when either holds files that are not an index's (they would be deleted)."""
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise BuildError(f"{out} already exists: choose another output, or pass "
                             "--overwrite to replace the index there")
        check_replaceable(out)
    partial = partial_of(out)
    if partial.exists() or partial.is_symlink():
        check_index_files(partial, "an unfinished build")
        if not resume:
            shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    return partial


def remove_leftovers(partial: Path, keep: Collection[str]) -> None:
    """Delete the files in ``partial`` but ``keep`` (the finished shards' files) and the
    build's own records: files of shards that did not finish."""
    for leftover in partial.iterdir():
        if leftover.is_file() and leftover.name not in {*keep, PROGRESS_NAME, BUILD_ID_NAME}:
            leftover.unlink()


def write_files(partial: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (relative path -> bytes: the tokenizer's copy) into ``partial``."""
    for name, data in files.items():
        path = partial / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def publish(partial: Path, out: Path, manifest: Manifest) -> None:
    """Write the manifest into ``partial`` (the completion marker: last) and rename it to
    ``out``, replacing the index there (``overwrite`` was checked by :func:`prepare`)."""
    (partial / PROGRESS_NAME).unlink(missing_ok=True)
    (partial / BUILD_ID_NAME).unlink(missing_ok=True)
    write_manifest(partial, manifest)
    if out.exists() or out.is_symlink():
        check_replaceable(out)  # again: the directory may have changed during the build
        # Moved into a fresh directory of its own, so no name of the user's is clobbered.
        trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.replaced-", dir=out.parent))
        os.replace(out, trash / out.name)
        os.replace(partial, out)
        shutil.rmtree(trash)
    else:
        os.replace(partial, out)


def check_index_files(directory: Path, what: str) -> None:
    """Raise BuildError unless ``directory`` is a real directory (not a link) holding only
    the files of an index (or of ``what``: a build in progress)."""
    if directory.is_symlink() or not directory.is_dir():
        kind = "a symbolic link" if directory.is_symlink() else "not a directory"
        raise BuildError(f"{directory} is {kind}: the build replaces only a directory "
                         f"holding {what}; move it away or choose another --out")
    strangers = sorted(p.name for p in directory.iterdir() if not _INDEX_ENTRY.fullmatch(p.name))
    if strangers:
        shown = ", ".join(strangers[:5]) + (", ..." if len(strangers) > 5 else "")
        raise BuildError(f"{directory} holds files that are not part of {what} ({shown}): "
                         "the build would delete them; move them away or choose another "
                         "--out")


def check_replaceable(out: Path) -> None:
    """Raise BuildError unless ``out`` holds an index, and nothing else: what --overwrite may
    delete (never a working directory, a home directory or a file)."""
    check_index_files(out, "an index")
    if not (out / MANIFEST_NAME).is_file() and not any(out.glob("tokenized*")):
        raise BuildError(f"{out} holds no index (no {MANIFEST_NAME}, no tokenized files): "
                         "--overwrite replaces only an index; choose another --out")
