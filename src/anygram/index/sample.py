"""The search sample of a shard (:mod:`anygram.kernels.sample`) as a sidecar file.

``sample.{s}`` (``sample`` for an infini-gram v6 directory) holds every ``stride``-th suffix of
``table.{s}`` with its first ``m`` bytes and its offset: a 64-byte header (magic, format
version, stride, ``m``, the number of samples, a CRC-32 of the rest, and the shard's
fingerprint: its token and table sizes and widths), then the keys (``n x m`` bytes), the
lengths (``n`` bytes), zeros to a multiple of 8 bytes, and the offsets (``n`` little-endian
int64). ``(m + 9) / stride`` bytes a token: 0.1 B at the defaults (stride 256, 16 bytes).

A searching process maps the file (reading it is not needed to open the index or to answer
a first query: a cold query faults in the dozen pages of the sample its bisection touches)
and asks the kernel to read the rest ahead, so that it soon is in memory.

`build` writes it; an index without one (an older anygram index, infini-gram's) gets it on
first use, next to the index when the directory is writable, else in the user's cache
directory, else in memory only. It is never required and never trusted: a missing or stale
one (its header or fingerprint disagrees with the shard) is rebuilt; a damaged one, or one
of an index rebuilt to the same sizes, is caught by the search itself, which checks the
bracket the sample gives against the suffix array (:mod:`anygram.kernels.sample`), falls
back to the plain search and drops the sample; ``anygram verify`` compares its CRC. (No
entry is spot-checked on load: on a cold index that was a quarter of a first search's
reads, and the searches check what they use.) infini-gram ignores the file (it finds
its files by the words ``tokenized``, ``table``, ``offset``, ``metadata``, ``metaoff`` and
``unigram``).
"""

from __future__ import annotations

import logging
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..kernels import sample as kernels
from . import sidecar
from .format import DEFAULT_SAMPLE_KEY_BYTES, DEFAULT_SAMPLE_STRIDE, SAMPLE_NAME

log = logging.getLogger(__name__)

_MAGIC = b"AGSAMPLE"
_VERSION = 2
# magic, version, stride, key bytes, count, crc32, ds bytes, sa bytes, token width, ptr width
_HEADER = struct.Struct("<8sIIIQIQQII")
_HEADER_SIZE = 64


@dataclass(frozen=True, eq=False)
class Sample:
    """A shard's search sample (read-only arrays, mapped or built), and the count of the
    searches it misled (``faults[0]``, kept by the kernels)."""

    stride: int
    keys: np.ndarray  # uint8 [n, m]
    lens: np.ndarray  # uint8 [n]
    ptrs: np.ndarray  # int64 [n]
    faults: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.lens.nbytes + self.ptrs.nbytes)


def sample_name(shard: str | None) -> str:
    """The sidecar's file name: ``sample.0`` for shard ``"0"``, ``sample`` for v6 (None)."""
    return SAMPLE_NAME if shard is None else f"{SAMPLE_NAME}.{shard}"


def build(ds: np.ndarray, sa: np.ndarray, token_width: int, ptr_width: int, *,
          stride: int = DEFAULT_SAMPLE_STRIDE, key_bytes: int = DEFAULT_SAMPLE_KEY_BYTES) -> Sample:
    """The sample of a shard's arrays (one read of every ``stride``-th suffix)."""
    if stride < 1 or not 1 <= key_bytes <= 255:
        raise ValueError(f"stride must be >= 1 and key_bytes in 1..255, not {stride}, "
                         f"{key_bytes}")
    keys, lens, ptrs = kernels.build_sample(ds, sa, ptr_width, stride, key_bytes)
    for a in (keys, lens, ptrs):
        a.flags.writeable = False  # as a mapped one: the kernels compile once for both
    return Sample(stride, keys, lens, ptrs)


def write(path: Path, sample: Sample, ds: np.ndarray, sa: np.ndarray, token_width: int,
          ptr_width: int) -> None:
    """Write the sidecar atomically (a temporary file in the same directory, renamed)."""
    n = sample.ptrs.shape[0]
    pad = b"\0" * (-(n * sample.keys.shape[1] + n) % 8)  # the offsets 8-byte aligned
    body = (sample.keys.tobytes() + sample.lens.tobytes() + pad
            + sample.ptrs.astype("<i8").tobytes())
    header = _HEADER.pack(_MAGIC, _VERSION, sample.stride, sample.keys.shape[1],
                          sample.ptrs.shape[0], zlib.crc32(body),
                          *sidecar.fingerprint(ds, sa, token_width, ptr_width))
    sidecar.write_atomic(path, header, _HEADER_SIZE, [body])


def read(path: Path, ds: np.ndarray, sa: np.ndarray, token_width: int,
         ptr_width: int) -> Sample | None:
    """The sidecar at ``path``, mapped, if it is this shard's; None (and a log line) when it
    is missing or stale. O(1): its header is checked (the searches check the entries they
    use)."""
    def check(header: bytes, size: int) -> str | None:
        return _check(header, size, ds, sa, token_width, ptr_width)

    mapped = sidecar.map_usable(path, _HEADER_SIZE, check, log, "search sample")
    if mapped is None:
        return None
    header, raw = mapped
    _, _, stride, m, n, *_ = _HEADER.unpack_from(header)
    at = _HEADER_SIZE
    keys = np.frombuffer(raw, dtype=np.uint8, count=n * m, offset=at).reshape(n, m)
    lens = np.frombuffer(raw, dtype=np.uint8, count=n, offset=at + n * m)
    ptrs = np.frombuffer(raw, dtype=np.int64, count=n, offset=at + sidecar.padded(n * (m + 1)))
    return Sample(stride, keys, lens, ptrs)


def crc32_of(path: Path) -> int:
    """The CRC-32 a sidecar's header records (of everything after the header)."""
    return sidecar.crc32_in_header(path, _HEADER.unpack_from, 5, _HEADER_SIZE)


def _check(header: bytes, size: int, ds: np.ndarray, sa: np.ndarray, token_width: int,
           ptr_width: int) -> str | None:
    if len(header) < _HEADER_SIZE:
        return "it is truncated"
    magic, version, stride, m, n, _, *fingerprint = _HEADER.unpack_from(header)
    if magic != _MAGIC or version != _VERSION:
        return "not a search sample of this anygram version"
    if tuple(fingerprint) != sidecar.fingerprint(ds, sa, token_width, ptr_width):
        return "it was made for another shard (sizes differ): the index was rebuilt"
    total = sa.shape[0] // ptr_width if ptr_width else 0
    if stride < 1 or m < 1 or n != -(-total // stride):
        return "its header is inconsistent"
    if size != _HEADER_SIZE + sidecar.padded(n * (m + 1)) + 8 * n:
        return "its size does not match its header (a truncated file)"
    return None


def load_or_build(directory: Path, shard: str | None, ds: np.ndarray, sa: np.ndarray,
                  token_width: int, ptr_width: int) -> Sample:
    """The shard's sample: its sidecar (beside the index, or in the cache), else built now and
    written where it can be (next time it is read)."""
    return sidecar.load_or_build(
        directory, sample_name(shard), lambda p: read(p, ds, sa, token_width, ptr_width),
        lambda: build(ds, sa, token_width, ptr_width),
        lambda p, smp: write(p, smp, ds, sa, token_width, ptr_width), log, "search sample")


def forget(directory: Path, shard: str | None) -> None:
    """Delete a shard's sidecars (beside the index and in the cache), where allowed: a
    sample found to mislead searches is rebuilt on the next use."""
    sidecar.forget(directory, sample_name(shard))
