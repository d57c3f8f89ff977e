"""Opening an index: each shard's files memory-mapped (or read into RAM) as the arrays the
kernels take, checked against the manifest, for anygram and infini-gram v4/v6 directories.

The layout itself is :mod:`anygram.index.format`'s.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import (
    IncompleteIndexError,
    IndexFormatError,
    IndexNotFoundError,
)
from ..fileio import sha256_file
from ..kernels.checks import pointers_fit
from .format import (
    DTYPE_OF_WIDTH,
    MANIFEST_NAME,
    PARTIAL_SUFFIX,
    TOKEN_WIDTHS,
    WIDTH_OF_DTYPE,
    LoadMethod,
    Manifest,
    ShardInfo,
    ptr_width_for,
    read_manifest,
    separator,
    shard_file_names,
)
from .sample import SAMPLE_NAME


def _map_file(path: Path, load: LoadMethod) -> np.ndarray:
    """The bytes of a file as a read-only uint8 array (memory-mapped or read into RAM)."""
    size = path.stat().st_size
    if size == 0:
        return np.zeros(0, dtype=np.uint8)
    if load == "ram":
        arr = np.fromfile(path, dtype=np.uint8)
        arr.flags.writeable = False
        return arr
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if hasattr(mm, "madvise"):
        # Binary searches touch pages at random; read-ahead would only waste I/O.
        mm.madvise(mmap.MADV_RANDOM)
    return np.frombuffer(mm, dtype=np.uint8)


@dataclass(frozen=True, eq=False)
class Shard:
    """One shard's arrays, ready for the kernels. All offsets into ``ds`` are in bytes."""

    name: str
    directory: Path
    ds: np.ndarray  # uint8: the token bytes
    sa: np.ndarray  # uint8: the suffix array, ptr_width bytes per entry
    offsets: np.ndarray  # uint64: byte offset of each document's separator
    token_width: int
    ptr_width: int
    metadata: np.ndarray | None  # uint8 bytes of metadata.{s}
    metaoff: np.ndarray | None  # uint64

    @property
    def ds_bytes(self) -> int:
        return int(self.ds.shape[0])

    def pointers(self, start: int, end: int) -> np.ndarray:
        """The byte offsets stored at suffix-array ranks ``[start, end)``, as uint64.

        Vectorised: a whole-word width is a view of the table, any other width is widened
        to 8 bytes first (little-endian, so the high bytes are zero). Raises IndexFormatError
        when one of them is not a token offset of the shard (a damaged table): what this
        returns is safe to index with.
        """
        k = self.ptr_width
        raw = self.sa[start * k:max(end, start) * k]
        if k in (1, 2, 4, 8):
            out = raw.view(f"<u{k}").astype(np.uint64)
        else:
            wide = np.zeros((raw.shape[0] // k, 8), dtype=np.uint8)
            wide[:, :k] = raw.reshape(-1, k)
            out = wide.view("<u8").reshape(-1)
        if not pointers_fit(out, self.ds_bytes, self.token_width):
            raise IndexFormatError(f"{self.directory}: the suffix array of shard {self.name} "
                                   "holds a pointer outside its token file: the index is "
                                   "damaged; run `anygram verify` on it, and rebuild it")
        return out

    @property
    def num_positions(self) -> int:
        """Token positions (suffix-array entries), separators included."""
        return self.ds_bytes // self.token_width

    @property
    def num_docs(self) -> int:
        return int(self.offsets.shape[0])

    @property
    def num_tokens(self) -> int:
        """Document tokens, separators excluded."""
        return self.num_positions - self.num_docs


def _open_shard(directory: Path, shard: str | None, width: int, load: LoadMethod) -> Shard:
    names = shard_file_names(shard)
    ds = _map_file(directory / names["tokenized"], load)
    sa = _map_file(directory / names["table"], load)
    offsets = _map_file(directory / names["offset"], load).view(np.uint64)
    where = directory / names["tokenized"]
    if ds.shape[0] % width:
        raise IndexFormatError(f"{where}: size {ds.shape[0]} is not a multiple of the token "
                               f"width {width}: the file is truncated; rebuild the index")
    n_pos = ds.shape[0] // width
    if n_pos and sa.shape[0] % n_pos:
        raise IndexFormatError(f"{directory / names['table']}: size {sa.shape[0]} is not a "
                               f"multiple of {n_pos} positions: rebuild the index")
    ptr_width = sa.shape[0] // n_pos if n_pos else ptr_width_for(0)
    if n_pos and not 1 <= ptr_width <= 8:
        raise IndexFormatError(f"{directory / names['table']}: {ptr_width}-byte pointers are "
                               "not supported (1 to 8): rebuild the index")
    if ds.shape[0] and bytes(ds[:width]) != separator(width):
        raise IndexFormatError(f"{where} does not start with a document separator: it is not a "
                               f"{DTYPE_OF_WIDTH[width]} index file (wrong token_dtype?)")
    if offsets.shape[0] and (int(offsets[0]) != 0 or int(offsets[-1]) >= max(ds.shape[0], 1)):
        raise IndexFormatError(f"{directory / names['offset']} does not match {where}: "
                               "rebuild the index")
    md = mt = None
    if (directory / names["metadata"]).exists() and (directory / names["metaoff"]).exists():
        md = _map_file(directory / names["metadata"], load)
        mt = _map_file(directory / names["metaoff"], load).view(np.uint64)
    return Shard(name=shard if shard is not None else directory.name, directory=directory,
                 ds=ds, sa=sa, offsets=offsets, token_width=width, ptr_width=ptr_width,
                 metadata=md, metaoff=mt)


def _check_against_manifest(directory: Path, info: ShardInfo, width: int) -> None:
    for name, entry in info.files.items():
        if name.startswith(SAMPLE_NAME):
            continue  # never required: checked, and rebuilt when needed, on first use
        p = directory / name
        if not p.exists():
            raise IndexFormatError(f"{p} is missing: the index is incomplete; rebuild it")
        size = p.stat().st_size
        if size != entry["size"]:
            raise IndexFormatError(f"{p} has {size} bytes, the manifest says {entry['size']}: "
                                   "the file was changed or truncated; rebuild the index")
        if "sha256" in entry and sha256_file(p) != entry["sha256"]:
            raise IndexFormatError(f"{p} does not match its checksum in the manifest: "
                                   "the file was changed; rebuild the index")
    expected = width * (info.num_tokens + info.num_docs)
    if info.ds_bytes != expected:
        raise IndexFormatError(f"{directory / MANIFEST_NAME} is inconsistent (shard {info.name})")


_SUFFIXED = re.compile(r"^tokenized\.(\d+)$")


def _infer_width(directory: Path, shard: str | None) -> int:
    """Token width of a manifest-less (infini-gram) shard from its file sizes.

    ``|table| = k * |tokenized| / w`` and infini-gram's builder uses ``k = ptr_width_for``;
    other candidates are tried when that rule does not fit, and the separator at offset 0 must
    be ``w`` bytes of 0xff.
    """
    names = shard_file_names(shard)
    d = (directory / names["tokenized"]).stat().st_size
    t = (directory / names["table"]).stat().st_size
    if d == 0:
        return 1
    with open(directory / names["tokenized"], "rb") as f:
        head = f.read(4)
    fits = [w for w in TOKEN_WIDTHS
            if d % w == 0 and head[:w] == separator(w)[: len(head[:w])]
            and t % (d // w) == 0 and 1 <= t // (d // w) <= 8]
    preferred = [w for w in fits if t // (d // w) == ptr_width_for(d)]
    if len(preferred) == 1:
        return preferred[0]
    if len(fits) == 1:
        return fits[0]
    raise IndexFormatError(
        f"cannot tell the token width of {directory / names['tokenized']} from its size: "
        "pass token_dtype='u8', 'u16' or 'u32'")


def _find_shards(directory: Path) -> list[str | None]:
    """Shard suffixes of an infini-gram directory, in numeric order (v6: [None])."""
    names = {p.name for p in directory.iterdir()}
    suffixed = sorted((m.group(1) for n in names if (m := _SUFFIXED.match(n))), key=int)
    if suffixed:
        return list(suffixed)
    if "tokenized" in names:
        return [None]
    return []


@dataclass(frozen=True)
class OpenedIndex:
    """Every shard of one or more index directories, with what the manifests say."""

    shards: tuple[Shard, ...]
    token_width: int
    manifest: Manifest | None  # the manifest when exactly one anygram directory was opened
    directories: tuple[Path, ...]


def open_index(paths: str | Path | Sequence[str | Path], *, token_dtype: str | None = None,
               load: LoadMethod = "mmap") -> OpenedIndex:
    """Open the shards of one or more index directories (anygram, infini-gram v4 or v6)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise IndexNotFoundError("no index directory given")
    if load not in ("mmap", "ram"):
        raise IndexFormatError(f"load must be 'mmap' or 'ram', not {load!r}")
    want_width = None
    if token_dtype is not None:
        if token_dtype not in WIDTH_OF_DTYPE:
            raise IndexFormatError(f"token_dtype must be one of u8, u16, u32, not {token_dtype!r}")
        want_width = WIDTH_OF_DTYPE[token_dtype]
    shards: list[Shard] = []
    manifests: list[Manifest] = []
    widths: set[int] = set()
    dirs = [Path(p) for p in paths]
    for directory in dirs:
        if not directory.is_dir():
            partial = directory.with_name(directory.name + PARTIAL_SUFFIX)
            if partial.exists():
                raise IncompleteIndexError(
                    f"{directory} was not finished ({partial} holds an interrupted build): "
                    "run the build again with --resume")
            raise IndexNotFoundError(f"no index at {directory}: build one with `anygram build`")
        if (directory / MANIFEST_NAME).exists():
            manifest = read_manifest(directory)
            manifests.append(manifest)
            width = manifest.token_width
            if want_width is not None and want_width != width:
                raise IndexFormatError(f"{directory} holds {DTYPE_OF_WIDTH[width]} tokens, "
                                       f"not {token_dtype}")
            for info in manifest.shards:
                _check_against_manifest(directory, info, width)
                shards.append(_open_shard(directory, info.name, width, load))
            widths.add(width)
            continue
        if directory.name.endswith(PARTIAL_SUFFIX) or (directory / "progress.json").exists():
            raise IncompleteIndexError(f"{directory} is an unfinished build: run the build "
                                       "again with --resume, or delete it and rebuild")
        found = _find_shards(directory)
        if not found:
            raise IndexNotFoundError(f"{directory} holds no index (no {MANIFEST_NAME} and no "
                                     "tokenized.* files): build one with `anygram build`")
        for shard in found:
            names = shard_file_names(shard)
            for kind in ("table", "offset"):
                if not (directory / names[kind]).exists():
                    raise IncompleteIndexError(f"{directory / names[kind]} is missing: the "
                                               "index is incomplete; rebuild it")
            width = want_width or _infer_width(directory, shard)
            widths.add(width)
            shards.append(_open_shard(directory, shard, width, load))
    if len(widths) > 1:
        raise IndexFormatError("the directories hold different token widths "
                               f"({sorted(widths)} bytes): open them separately")
    width = widths.pop() if widths else (want_width or 1)
    return OpenedIndex(shards=tuple(shards), token_width=width,
                       manifest=manifests[0] if len(manifests) == 1 and len(dirs) == 1 else None,
                       directories=tuple(dirs))
