"""Suffix-array construction: the only module that calls the C library (libdivsufsort).

We use the libdivsufsort build that the ``pydivsufsort`` wheel ships, called through ctypes
on the raw little-endian token bytes. Sorting the bytes gives exactly infini-gram's order
(``memcmp`` of suffixes), so the table is byte-identical to the one its indexer writes.
Peak memory: the token bytes plus a 4-byte (8-byte above 2 GiB) entry per byte.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import numpy as np

from ..errors import BuildError

_INT32_LIMIT = 2**31 - 1
_CHUNK = 1 << 22  # entries per pass when compacting and writing: bounds the temporaries


def _libraries() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    try:
        from pydivsufsort.dll import libdivsufsort, libdivsufsort64
    except (ImportError, OSError) as e:  # pragma: no cover - install problem
        raise BuildError(f"cannot load libdivsufsort from pydivsufsort ({e}): "
                         "reinstall with `pip install pydivsufsort`") from e
    return libdivsufsort, libdivsufsort64


def byte_suffix_array(data: np.ndarray, *, force64: bool = False) -> np.ndarray:
    """Suffix array (int32 or int64 byte offsets) of a uint8 array, by libdivsufsort."""
    if data.dtype != np.uint8 or data.ndim != 1 or not data.flags["C_CONTIGUOUS"]:
        raise BuildError("byte_suffix_array needs a contiguous 1-d uint8 array")
    n = int(data.shape[0])
    use64 = force64 or n > _INT32_LIMIT
    out = np.empty(n, dtype=np.int64 if use64 else np.int32)
    if n == 0:
        return out
    lib32, lib64 = _libraries()
    fn = lib64.divsufsort64 if use64 else lib32.divsufsort
    idx = ctypes.c_int64 if use64 else ctypes.c_int32
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, idx]
    # The library only reads the text, so a read-only memory map is fine.
    rc = fn(ctypes.c_void_p(data.ctypes.data), ctypes.c_void_p(out.ctypes.data), idx(n))
    if rc != 0:
        raise BuildError(f"libdivsufsort failed with code {rc} on {n} bytes")
    return out


def token_suffix_array(data: np.ndarray, token_width: int, *, force64: bool = False
                       ) -> np.ndarray:
    """Byte offsets of token-aligned suffixes, in bytewise suffix order.

    Sorts all byte suffixes and keeps the aligned ones in place (no second full-size array).
    """
    sa = byte_suffix_array(data, force64=force64)
    if token_width == 1:
        return sa
    kept = 0
    for start in range(0, sa.shape[0], _CHUNK):
        chunk = sa[start:start + _CHUNK]
        aligned = chunk[chunk % token_width == 0]  # a copy, so overlapping writes are safe
        sa[kept:kept + aligned.shape[0]] = aligned
        kept += aligned.shape[0]
    return sa[:kept]


def write_pointers(sa: np.ndarray, ptr_width: int, path: Path) -> None:
    """Write ``sa`` as ``ptr_width``-byte little-endian integers (infini-gram's table file)."""
    with open(path, "wb") as f:
        if sa.dtype.itemsize == ptr_width and sys.byteorder == "little":
            sa.tofile(f)  # already the file's layout (entries are non-negative): no copy
            return
        for start in range(0, sa.shape[0], _CHUNK):
            chunk = sa[start:start + _CHUNK].astype("<u8")
            f.write(np.ascontiguousarray(chunk.view(np.uint8).reshape(-1, 8)[:, :ptr_width])
                    .tobytes())


def build_table(tokenized: Path, table: Path, token_width: int, ptr_width: int) -> None:
    """Build ``table`` (the suffix array file) for the token file ``tokenized``."""
    size = tokenized.stat().st_size
    if size == 0:
        table.write_bytes(b"")
        return
    data = np.memmap(tokenized, dtype=np.uint8, mode="r")
    try:
        sa = token_suffix_array(np.asarray(data), token_width)
        write_pointers(sa, ptr_width, table)
    finally:
        del data
