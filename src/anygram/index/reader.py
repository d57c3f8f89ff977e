"""Opening an index: each shard's files memory-mapped (or read into RAM) as the arrays the
kernels take, checked against the manifest and sampled for damage
(:mod:`anygram.index.checks`), for anygram and infini-gram v4/v6 directories.

Every file opened is a regular file inside the index directory (symbolic links are followed
only when they stay inside it), whatever a manifest says. The layout itself is
:mod:`anygram.index.format`'s.
"""

from __future__ import annotations

import dataclasses
import logging
import mmap
import re
import reprlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import (
    IncompleteIndexError,
    IndexFormatError,
    IndexNotFoundError,
    ShardUnavailableError,
)
from ..kernels.checks import pointers_fit
from . import checks
from .format import (
    ADD_JOURNAL,
    DTYPE_OF_WIDTH,
    MANIFEST_NAME,
    PARTIAL_SUFFIX,
    PROGRESS_NAME,
    TOKEN_WIDTHS,
    WIDTH_OF_DTYPE,
    LoadMethod,
    Manifest,
    ShardInfo,
    inside,
    is_sidecar,
    ptr_width_for,
    read_json_record,
    read_manifest,
    regular_file_size,
    separator,
    shard_file_names,
)
from .sidecar import shard_identity

log = logging.getLogger("anygram")


def _map_file(path: Path, load: LoadMethod) -> np.ndarray:
    """The bytes of a file as a read-only uint8 array (memory-mapped or read into RAM)."""
    size = regular_file_size(path)
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


def _map_u64(path: Path, load: LoadMethod) -> np.ndarray:
    """A file of little-endian u64 (offsets) as a uint64 array."""
    raw = _map_file(path, load)
    if raw.shape[0] % 8:
        raise IndexFormatError(f"{path}: size {raw.shape[0]} is not a multiple of 8 bytes: "
                               "the file is truncated; rebuild the index")
    return raw.view("<u8")


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
    file_suffix: str | None = None  # "0": tokenized.0, ...; None: unsuffixed (v6)
    # Changes when its token or table file is replaced (anygram.index.sidecar.shard_identity)
    identity: bytes = b""
    # The node that keeps its files (an index built with node-local placement), else None
    node: str | None = None

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
            table = self.directory / shard_file_names(self.file_suffix)["table"]
            raise IndexFormatError(f"{table} holds a pointer outside its token file: the "
                                   "index is damaged; run `anygram verify` on it, and "
                                   "rebuild it")
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


class ShardElsewhere(Shard):
    """A shard of a node-local index (``anygram build --placement label``) whose files are
    kept on another node: its sizes and identity, from the manifest, and no arrays. Reading
    one (``ds``, ``sa``, ...) raises :class:`~anygram.errors.ShardUnavailableError`: only
    the cluster's host on its node (:mod:`anygram.cluster`) answers for it."""

    _sizes: tuple[int, int]  # ds_bytes, num_docs

    def __init__(self, directory: Path, info: ShardInfo, width: int, identity: bytes) -> None:
        assert info.node is not None
        for name, value in (("name", info.name), ("directory", directory),
                            ("token_width", width), ("ptr_width", info.ptr_width),
                            ("file_suffix", info.name), ("identity", identity)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "node", info.node)
        object.__setattr__(self, "_sizes", (info.ds_bytes, info.num_docs))

    def _absent(self) -> np.ndarray:
        require_here([self])
        raise AssertionError("unreachable")

    ds = property(_absent)  # type: ignore[assignment]
    sa = property(_absent)  # type: ignore[assignment]
    offsets = property(_absent)  # type: ignore[assignment]
    metadata = property(_absent)  # type: ignore[assignment]
    metaoff = property(_absent)  # type: ignore[assignment]

    @property
    def ds_bytes(self) -> int:
        return int(self._sizes[0])

    @property
    def num_docs(self) -> int:
        return int(self._sizes[1])


def require_here(shards: Sequence[Shard]) -> None:
    """Raise :class:`~anygram.errors.ShardUnavailableError` naming the shards among
    ``shards`` that are kept on other nodes (:class:`ShardElsewhere`), if any."""
    away = [s for s in shards if isinstance(s, ShardElsewhere)]
    if away:
        nodes = ", ".join(sorted({str(s.node) for s in away}))
        raise ShardUnavailableError(
            f"shard(s) {', '.join(s.name for s in away)} of {away[0].directory} are kept on "
            f"node(s) {nodes} (built with --placement label), not on this machine: open the "
            "index on the cluster (anygram.cluster.open, or `anygram serve --ray`)")


def _open_shard(directory: Path, shard: str | None, width: int, load: LoadMethod,
                files: dict[str, dict[str, Any]] | None = None) -> Shard:
    """Map one shard's files and check their sizes (their content is
    :func:`_check_sampled`'s). ``files``: the manifest's entries of the shard, if any."""
    names = shard_file_names(shard)
    path = {kind: inside(directory, name, "shard file") for kind, name in names.items()}
    ds = _map_file(path["tokenized"], load)
    sa = _map_file(path["table"], load)
    offsets = _map_u64(path["offset"], load)
    if ds.shape[0] % width:
        raise IndexFormatError(f"{path['tokenized']}: size {ds.shape[0]} is not a multiple of "
                               f"the token width {width}: the file is truncated; rebuild the "
                               "index")
    n_pos = ds.shape[0] // width
    if sa.shape[0] % max(n_pos, 1) or (n_pos == 0 and sa.shape[0]):
        raise IndexFormatError(f"{path['table']}: size {sa.shape[0]} is not a multiple of "
                               f"{n_pos} positions: rebuild the index")
    ptr_width = sa.shape[0] // n_pos if n_pos else ptr_width_for(0)
    if n_pos and not 1 <= ptr_width <= 8:
        raise IndexFormatError(f"{path['table']}: {ptr_width}-byte pointers are not supported "
                               "(1 to 8): rebuild the index")
    md = mt = None
    if path["metadata"].exists() and path["metaoff"].exists():
        md = _map_file(path["metadata"], load)
        mt = _map_u64(path["metaoff"], load)
    opened = Shard(name=shard if shard is not None else directory.name, directory=directory,
                   ds=ds, sa=sa, offsets=offsets, token_width=width, ptr_width=ptr_width,
                   metadata=md, metaoff=mt, file_suffix=shard,
                   identity=shard_identity(directory, shard, files))
    return opened


def _check_sampled(shard: Shard) -> Shard:
    """A sample of a just-mapped shard's content (its first token a separator, then
    :func:`anygram.index.checks.check_documents` and ``check_table``): a damaged or hostile
    index fails here, with a clear error."""
    w = shard.token_width
    if shard.ds_bytes and bytes(shard.ds[:w]) != separator(w):
        tokens = shard.directory / shard_file_names(shard.file_suffix)["tokenized"]
        raise IndexFormatError(f"{tokens} does not start with a document separator: it is "
                               f"not a {DTYPE_OF_WIDTH[w]} index file (wrong token_dtype?)")
    checks.check_documents(shard, checks.OPEN_SAMPLES)
    checks.check_table(shard, checks.OPEN_SAMPLES)
    return shard


def _check_against_manifest(directory: Path, info: ShardInfo, width: int) -> None:
    """File sizes against the manifest, before mapping them (their checksums are
    ``anygram verify``'s: reading whole files on open would cost O(documents))."""
    for kind in ("tokenized", "table", "offset"):
        if shard_file_names(info.name)[kind] not in info.files:
            raise IndexFormatError(f"{directory / MANIFEST_NAME} lists no {kind} file for shard "
                                   f"{info.name}: rebuild the index")
    for name, entry in info.files.items():
        if is_sidecar(name):
            continue  # never required: checked, and rebuilt when needed, on first use
        p = inside(directory, name, "shard file")
        size = regular_file_size(p)
        if size != entry["size"]:
            raise IndexFormatError(f"{p} has {size} bytes, the manifest says {entry['size']}: "
                                   "the file was changed or truncated; rebuild the index")
    expected = width * (info.num_tokens + info.num_docs)
    if info.ds_bytes != expected:
        raise IndexFormatError(f"{directory / MANIFEST_NAME} is inconsistent (shard {info.name})")


def _check_opened(directory: Path, info: ShardInfo, shard: Shard) -> None:
    """The manifest's counts against the files as opened."""
    found = {"ds_bytes": shard.ds_bytes, "num_docs": shard.num_docs,
             "ptr_width": shard.ptr_width if shard.num_positions else info.ptr_width}
    for key, value in found.items():
        if getattr(info, key) != value:
            raise IndexFormatError(f"{directory / MANIFEST_NAME} says shard {info.name} has "
                                   f"{key} {getattr(info, key)}, its files {value}: rebuild "
                                   "the index")


def _check_shard_set(directory: Path, manifest: Manifest) -> None:
    """The manifest lists exactly the shards whose token files are in the directory, but for
    the shards an interrupted ``anygram add`` was moving in (its journal names them, and they
    are numbered above every listed one): the index is as it was before that add
    (:mod:`anygram.index.grow`)."""
    on_disk = {m.group(1) for p in directory.iterdir() if (m := _SUFFIXED.match(p.name))}
    listed = {s.name for s in manifest.shards}
    if on_disk - listed and (directory / ADD_JOURNAL).is_file():
        top = max((int(s) for s in listed), default=-1)
        journal = read_json_record(inside(directory, ADD_JOURNAL, "add journal"),
                                   "add journal")
        pending = set(journal.get("shards", [])) if isinstance(journal, dict) else set()
        leftovers = {s for s in on_disk - listed if s in pending and int(s) > top}
        if leftovers:
            log.warning("%s holds shard(s) %s that an interrupted `anygram add` was moving "
                        "in: ignored (the next add removes them)", directory,
                        ", ".join(sorted(leftovers, key=int)))
            on_disk -= leftovers
    listed -= {s.name for s in manifest.shards if _kept_elsewhere(directory, s)}
    if on_disk != listed:
        extra, missing = sorted(on_disk - listed, key=int), sorted(listed - on_disk, key=int)
        raise IndexFormatError(
            f"{directory / MANIFEST_NAME} does not list the shards in {directory}"
            + (f" (not listed: {', '.join(extra)})" if extra else "")
            + (f" (missing: {', '.join(missing)})" if missing else "") + ": rebuild the index")


_SUFFIXED = re.compile(r"^tokenized\.(\d+)$")


def _kept_elsewhere(directory: Path, info: ShardInfo) -> bool:
    """Whether the manifest places the shard on a node and none of its files is here."""
    return info.node is not None and not any(
        (directory / name).exists() for name in shard_file_names(info.name).values())


def _infer_width(directory: Path, shard: str | None) -> int:
    """Token width of a manifest-less (infini-gram) shard from its file sizes.

    ``|table| = k * |tokenized| / w`` and infini-gram's builder uses ``k = ptr_width_for``;
    other candidates are tried when that rule does not fit, and the separator at offset 0 must
    be ``w`` bytes of 0xff.
    """
    names = shard_file_names(shard)
    d = regular_file_size(inside(directory, names["tokenized"], "shard file"))
    t = regular_file_size(inside(directory, names["table"], "shard file"))
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
        "pass token_dtype u8, u16 or u32")


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


def _refuse_unfinished(directory: Path) -> None:
    if directory.name.endswith(PARTIAL_SUFFIX) or (directory / PROGRESS_NAME).exists():
        raise IncompleteIndexError(f"{directory} is an unfinished build: run the build "
                                   "again with --resume, or delete it and rebuild")


def _open_anygram(directory: Path, load: LoadMethod, want_width: int | None
                  ) -> tuple[Manifest, list[Shard]]:
    manifest = read_manifest(directory)
    try:
        _check_shard_set(directory, manifest)
    except IndexFormatError:
        # An add or a compaction may have committed between reading the manifest and
        # listing the directory: read it again, once.
        again = read_manifest(directory)
        if again == manifest:
            raise
        manifest = again
        _check_shard_set(directory, manifest)
    width = manifest.token_width
    if want_width is not None and want_width != width:
        raise IndexFormatError(f"{directory} holds {DTYPE_OF_WIDTH[width]} tokens, "
                               f"not {DTYPE_OF_WIDTH[want_width]}")

    shards: list[Shard] = []
    for info in manifest.shards:
        if _kept_elsewhere(directory, info):
            shards.append(ShardElsewhere(directory, info, width,
                                         shard_identity(directory, info.name, info.files)))
            continue
        _check_against_manifest(directory, info, width)
        shard = _open_shard(directory, info.name, width, load, info.files)
        _check_opened(directory, info, shard)
        if info.node is not None:
            shard = dataclasses.replace(shard, node=info.node)
        shards.append(shard)
    return manifest, shards


def _open_infini_gram(directory: Path, load: LoadMethod, want_width: int | None
                      ) -> list[Shard]:
    found = _find_shards(directory)
    if not found:
        raise IndexNotFoundError(f"{directory} holds no index (no {MANIFEST_NAME} and no "
                                 "tokenized.* files): build one with `anygram build`")
    shards = []
    for shard in found:
        names = shard_file_names(shard)
        for kind in ("table", "offset"):
            if not (directory / names[kind]).exists():
                raise IncompleteIndexError(f"{directory / names[kind]} is missing: the "
                                           "index is incomplete; rebuild it")
        width = want_width or _infer_width(directory, shard)
        shards.append(_open_shard(directory, shard, width, load))
    return shards


def _checked(shards: list[Shard]) -> list[Shard]:
    """``shards`` after :func:`_check_sampled`, the pages the checks read requested from
    storage first, all together (:func:`anygram.index.checks.prefetch`): on a cold index
    they would otherwise be read one after another, a few dozen per shard. The first error
    in ``shards``' order is raised."""
    checks.prefetch(shards, checks.OPEN_SAMPLES)
    return [_check_sampled(s) for s in shards]


def open_index(paths: str | Path | Sequence[str | Path], *, token_dtype: str | None = None,
               load: LoadMethod = "mmap", sample_checks: Collection[int] | None = None
               ) -> OpenedIndex:
    """Open the shards of one or more index directories (anygram, infini-gram v4 or v6).

    Every shard's files are checked against the manifest; a sample of their entries is read
    and checked too, for the shards in ``sample_checks`` (their indexes; default all): a
    process that serves some shards of an index (:mod:`anygram.cluster`) reads no others.

    Raises:
        IndexNotFoundError, IncompleteIndexError (an unfinished build: a ``*.partial``
        directory, or one holding ``progress.json``), IndexFormatError (damaged, inconsistent
        or hostile: a file outside the directory, not a regular file, a sampled entry out of
        range or out of order, ...).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not isinstance(paths, Sequence) or not all(isinstance(p, (str, Path)) for p in paths):
        raise IndexNotFoundError(f"an index is a directory path or a list of them, not "
                                 f"{reprlib.repr(paths)}")
    if not paths:
        raise IndexNotFoundError("no index directory given")
    if not isinstance(load, str) or load not in ("mmap", "ram"):
        raise IndexFormatError(f"load must be 'mmap' or 'ram', not {reprlib.repr(load)}")
    want_width = None
    if token_dtype is not None:
        if not isinstance(token_dtype, str) or token_dtype not in WIDTH_OF_DTYPE:
            raise IndexFormatError("token_dtype must be one of u8, u16, u32, not "
                                   f"{reprlib.repr(token_dtype)}")
        want_width = WIDTH_OF_DTYPE[token_dtype]
    shards: list[Shard] = []
    manifests: list[Manifest] = []
    widths: set[int] = set()
    dirs = [Path(p) for p in paths]
    seen: dict[Path, Path] = {}
    for directory in dirs:
        if not directory.is_dir():
            partial = directory.with_name(directory.name + PARTIAL_SUFFIX)
            if partial.exists():
                raise IncompleteIndexError(
                    f"{directory} was not finished ({partial} holds an interrupted build): "
                    "run the build again with --resume")
            raise IndexNotFoundError(f"no index at {directory}: build one with `anygram build`")
        real = directory.resolve()
        if real in seen:
            raise IndexFormatError(f"{directory} is given twice (as {seen[real]} too): every "
                                   "count would be doubled")
        seen[real] = directory
        _refuse_unfinished(directory)
        if (directory / MANIFEST_NAME).exists():
            manifest, found = _open_anygram(directory, load, want_width)
            manifests.append(manifest)
            widths.add(manifest.token_width)
        else:
            found = _open_infini_gram(directory, load, want_width)
            widths.update(s.token_width for s in found)
        shards += found
    if len(widths) > 1:
        raise IndexFormatError("the directories hold different token widths "
                               f"({sorted(widths)} bytes): open them separately")
    width = widths.pop() if widths else (want_width or 1)
    _checked([s for i, s in enumerate(shards) if (sample_checks is None or i in sample_checks)
              and not isinstance(s, ShardElsewhere)])
    return OpenedIndex(shards=tuple(shards), token_width=width,
                       manifest=manifests[0] if len(manifests) == 1 and len(dirs) == 1 else None,
                       directories=tuple(dirs))
