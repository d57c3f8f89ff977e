"""The next-token table of a shard (:mod:`anygram.kernels.ntd_table`) as a sidecar file.

``ntd.{s}`` (``ntd`` for an infini-gram v6 directory) holds the exact next-token counts of
every prompt of 1 and of 2 tokens that occurs at least ``threshold`` times in the shard, so
that an exact ``ntd`` of such a prompt reads its distinct next tokens instead of the suffix
array: a 128-byte header (magic, format version, a CRC-32 of the rest, the shard's fingerprint:
its token and table sizes and widths, the threshold, the numbers of rows and groups, and the
shard's identity, :func:`anygram.index.sidecar.shard_identity`), then the key rows of the
1-token prompts and of the 2-token prompts (int64, ``KEY_COLUMNS`` each), the group counts
(uint32) and the group tokens (token width, little-endian), zeros to a multiple of 8 bytes.
56 bytes a prompt and ``4 + w`` bytes a (prompt, next token) pair: 0.39 B a token on 20M
GPT-2 tokens of source code at the default threshold (256), 0.58 B at 64 (docs/index-format.md).

It is never required and never trusted blindly. Opening checks its header (its fingerprint
and identity: a table made for other data is rebuilt) and the first, middle and last row of
each level against the suffix array; every lookup checks its row against the row's check
value, against the rank range it answers (the counts sum to its length) and against the
suffix array at both ends of the range (:func:`anygram.kernels.ntd_table.table_next_tokens`);
a row that fails is not used, and the table is dropped (deleted, rebuilt on the next open).
``anygram verify`` rebuilds it and compares. `build` writes it; an index without one gets it
on first use (:mod:`anygram.index.sidecar`).
"""

from __future__ import annotations

import logging
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import IndexFormatError
from ..kernels import ntd_table as kernels
from . import sidecar
from .format import DEFAULT_NTD_THRESHOLD, NTD_NAME

log = logging.getLogger(__name__)

_MAGIC = b"AGNTDTAB"
_VERSION = 1
# magic, version, crc32, ds bytes, sa bytes, token width, ptr width, threshold, rows of 1 and
# of 2 tokens, groups, shard identity
_HEADER = struct.Struct("<8sIIQQIIQQQQ16s")
_HEADER_SIZE = 128
_COLS = kernels.KEY_COLUMNS


@dataclass(frozen=True, eq=False)
class NtdTable:
    """A shard's next-token table (read-only arrays, mapped or built;
    :mod:`anygram.kernels.ntd_table`) and the count of lookups that found it wrong
    (``faults[0]``, kept by the batch kernel)."""

    threshold: int
    keys1: np.ndarray  # int64 [n1, KEY_COLUMNS]
    keys2: np.ndarray  # int64 [n2, KEY_COLUMNS]
    counts: np.ndarray  # uint32 [groups]
    ids: np.ndarray  # uint8 [groups * token width]
    faults: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return int(self.keys1.nbytes + self.keys2.nbytes + self.counts.nbytes + self.ids.nbytes)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(keys1, keys2, counts, ids)``, as the kernels take them."""
        return self.keys1, self.keys2, self.counts, self.ids


#: What a shard without a table passes to the batch kernel: a table with no rows (read-only,
#: as a mapped one, so that one compiled kernel serves both).
EMPTY = NtdTable(0, np.zeros((0, _COLS), dtype=np.int64), np.zeros((0, _COLS), dtype=np.int64),
                 np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.uint8))
for _a in EMPTY.arrays():
    _a.flags.writeable = False


def table_name(shard: str | None) -> str:
    """The sidecar's file name: ``ntd.0`` for shard ``"0"``, ``ntd`` for v6 (None)."""
    return NTD_NAME if shard is None else f"{NTD_NAME}.{shard}"


def build(ds: np.ndarray, sa: np.ndarray, token_width: int, ptr_width: int, *,
          threshold: int = DEFAULT_NTD_THRESHOLD) -> NtdTable:
    """The table of a shard's arrays (one pass over its suffix array).

    Raises:
        IndexFormatError: a pointer of the suffix array is outside the shard (damaged).
    """
    if threshold < 1:
        raise ValueError(f"threshold must be >= 1, not {threshold}")
    arrays = kernels.build_ntd_table(ds, sa, ptr_width, token_width, threshold)
    for a in arrays:
        a.flags.writeable = False  # as a mapped one: the kernels compile once for both
    return NtdTable(threshold, *arrays)


def write(path: Path, table: NtdTable, ds: np.ndarray, sa: np.ndarray, token_width: int,
          ptr_width: int, identity: bytes) -> None:
    """Write the sidecar atomically (a temporary file in the same directory, renamed)."""
    body = [a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes() for a in table.arrays()]
    size = sum(len(b) for b in body)
    body.append(b"\0" * (sidecar.padded(size) - size))
    header = _HEADER.pack(_MAGIC, _VERSION, zlib.crc32(b"".join(body)),
                          *sidecar.fingerprint(ds, sa, token_width, ptr_width), table.threshold,
                          table.keys1.shape[0], table.keys2.shape[0], table.counts.shape[0],
                          identity)
    sidecar.write_atomic(path, header, _HEADER_SIZE, body)


def read(path: Path, ds: np.ndarray, sa: np.ndarray, token_width: int, ptr_width: int,
         identity: bytes) -> NtdTable | None:
    """The sidecar at ``path``, mapped, if it is this shard's; None (and a log line) when it
    is missing or stale. O(1): its header and six rows are checked (the lookups check the
    rows they use)."""
    def check(header: bytes, size: int) -> str | None:
        return _check(header, size, ds, sa, token_width, ptr_width, identity)

    mapped = sidecar.map_usable(path, _HEADER_SIZE, check, log, "next-token table")
    if mapped is None:
        return None
    header, raw = mapped
    threshold, n1, n2, g = _HEADER.unpack_from(header)[7:11]
    at = _HEADER_SIZE
    keys1 = np.frombuffer(raw, dtype="<i8", count=n1 * _COLS, offset=at).reshape(n1, _COLS)
    at += keys1.nbytes
    keys2 = np.frombuffer(raw, dtype="<i8", count=n2 * _COLS, offset=at).reshape(n2, _COLS)
    at += keys2.nbytes
    counts = np.frombuffer(raw, dtype="<u4", count=g, offset=at)
    ids = np.frombuffer(raw, dtype=np.uint8, count=g * token_width, offset=at + counts.nbytes)
    table = NtdTable(threshold, keys1, keys2, counts, ids)
    if not _agrees(table, ds, sa, token_width, ptr_width):
        log.warning("ignoring the next-token table %s: it does not match the shard's table",
                    path)
        return None
    return table


def crc32_of(path: Path) -> int:
    """The CRC-32 a sidecar's header records (of everything after the header)."""
    return sidecar.crc32_in_header(path, _HEADER.unpack_from, 2, _HEADER_SIZE)


def _check(header: bytes, size: int, ds: np.ndarray, sa: np.ndarray, token_width: int,
           ptr_width: int, identity: bytes) -> str | None:
    if len(header) < _HEADER_SIZE:
        return "it is truncated"
    magic, version, _, *rest = _HEADER.unpack_from(header)
    if magic != _MAGIC or version != _VERSION:
        return "not a next-token table of this anygram version"
    fingerprint, (threshold, n1, n2, g, made_for) = tuple(rest[:4]), rest[4:]
    if fingerprint != sidecar.fingerprint(ds, sa, token_width, ptr_width) \
            or made_for != identity:
        return "it was made for other data: the index was rebuilt or changed"
    total = sa.shape[0] // ptr_width if ptr_width else 0
    if threshold < 1 or n1 + n2 > 2 * total or g > 2 * total:
        return "its header is inconsistent"
    if size != _HEADER_SIZE + sidecar.padded(8 * _COLS * (n1 + n2) + (4 + token_width) * g):
        return "its size does not match its header (a truncated file)"
    return None


def _agrees(table: NtdTable, ds: np.ndarray, sa: np.ndarray, token_width: int,
            ptr_width: int) -> bool:
    """Spot-check the first, middle and last rows of each level against the suffix array:
    each as a lookup of its own range (:func:`anygram.kernels.ntd_table.table_next_tokens`),
    whose ends must also be the ends of its prompt's range."""
    total = sa.shape[0] // ptr_width if ptr_width else 0
    for qlen, keys in ((token_width, table.keys1), (2 * token_width, table.keys2)):
        n = keys.shape[0]
        for j in {0, n // 2, n - 1} if n else ():
            lo = int(keys[j, kernels.LO])
            first, m = int(keys[j, kernels.FIRST]), int(keys[j, kernels.GROUPS])
            if not (0 <= lo < total and 0 <= first and m >= 0
                    and first + m <= table.counts.shape[0]):
                return False
            hi = lo + int(keys[j, kernels.END]) + int(table.counts[first:first + m].sum())
            if hi > total:
                return False
            try:
                status = kernels.table_next_tokens(ds, sa, ptr_width, token_width, qlen, lo, hi,
                                                   *table.arrays())[0]
            except IndexFormatError:
                return False
            if status != kernels.FOUND or not kernels.range_is_whole(
                    ds, sa, ptr_width, token_width, qlen, lo, hi):
                return False
    return True


def load_or_build(directory: Path, shard: str | None, ds: np.ndarray, sa: np.ndarray,
                  token_width: int, ptr_width: int, identity: bytes) -> NtdTable | None:
    """The shard's table: its sidecar (beside the index, or in the cache), else built now and
    written where it can be (next time it is read); None (and a log line) when the shard's
    suffix array is too damaged to build one."""
    def made() -> NtdTable | None:
        try:
            return build(ds, sa, token_width, ptr_width)
        except IndexFormatError as e:
            log.warning("no next-token table for %s: %s", directory / table_name(shard), e)
            return None

    def keep(path: Path, table: NtdTable | None) -> None:
        if table is not None:
            write(path, table, ds, sa, token_width, ptr_width, identity)

    return sidecar.load_or_build(
        directory, table_name(shard),
        lambda p: read(p, ds, sa, token_width, ptr_width, identity), made, keep, log,
        "next-token table")


def forget(directory: Path, shard: str | None) -> None:
    """Delete a shard's table (beside the index and in the cache), where allowed: one found
    wrong is rebuilt on the next open."""
    sidecar.forget(directory, table_name(shard))
