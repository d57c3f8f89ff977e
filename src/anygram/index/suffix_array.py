"""Suffix-array construction: the only module that calls the C library (libdivsufsort).

We use the libdivsufsort build that the ``pydivsufsort`` wheel ships, called through ctypes
on the raw little-endian token bytes. Sorting the bytes gives exactly infini-gram's order
(``memcmp`` of suffixes), so the table is byte-identical to the one its indexer writes.
Peak memory: the token bytes plus a 4-byte (8-byte above 2 GiB) entry per byte.
"""

from __future__ import annotations

import ctypes
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import BuildError
from .progress import Progress

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


def write_pointers(sa: np.ndarray, ptr_width: int, path: Path,
                   step: Callable[[int], None] | None = None) -> None:
    """Write ``sa`` as ``ptr_width``-byte little-endian integers (infini-gram's table file).
    ``step(n)`` is called as each ``n`` more entries are written."""
    with open(path, "wb") as f:
        if sa.dtype.itemsize == ptr_width and sys.byteorder == "little":
            sa.tofile(f)  # already the file's layout (entries are non-negative): no copy
            if step is not None:
                step(sa.shape[0])
            return
        for start in range(0, sa.shape[0], _CHUNK):
            chunk = sa[start:start + _CHUNK].astype("<u8")
            f.write(np.ascontiguousarray(chunk.view(np.uint8).reshape(-1, 8)[:, :ptr_width])
                    .tobytes())
            if step is not None:
                step(chunk.shape[0])


def check_table(tokenized: Path, table: Path, token_width: int, ptr_width: int,
                samples: int = 4096) -> int:
    """Check a written table against its token file: its size, and the order and alignment
    of ``samples`` evenly spaced pairs of neighbouring entries (by their first 32 bytes).

    Returns the number of pairs checked.

    Raises:
        BuildError: the table is not the suffix array of the token file.
    """
    n_bytes = tokenized.stat().st_size
    positions = n_bytes // token_width
    if table.stat().st_size != positions * ptr_width:
        raise BuildError(f"{table} holds {table.stat().st_size} bytes, not {positions} "
                         f"pointers of {ptr_width} bytes: rebuild the index")
    if positions < 2:
        return 0
    data = np.memmap(tokenized, dtype=np.uint8, mode="r")
    table_bytes = np.memmap(table, dtype=np.uint8, mode="r").reshape(positions, ptr_width)
    try:
        ranks = np.unique(np.linspace(0, positions - 2, min(samples, positions - 1))
                          .astype(np.int64))
        little = np.zeros((2 * ranks.shape[0], 8), dtype=np.uint8)
        little[:, :ptr_width] = table_bytes[np.concatenate([ranks, ranks + 1])]
        ptrs = little.view("<u8").ravel().astype(np.int64)
        if (ptrs % token_width).any() or ptrs.max() >= n_bytes:
            raise BuildError(f"{table} holds pointers that are not token starts of "
                             f"{tokenized}: rebuild the index")
        # The first 32 bytes of each suffix, -1 past the end (a proper prefix sorts first).
        at = ptrs[:, None] + np.arange(32)
        heads = np.where(at < n_bytes, data[np.minimum(at, n_bytes - 1)].astype(np.int16), -1)
        a, b = heads[:ranks.shape[0]], heads[ranks.shape[0]:]
        differ = a != b
        first = differ.argmax(axis=1)
        rows = np.arange(ranks.shape[0])
        wrong = differ[rows, first] & (a[rows, first] > b[rows, first])
        if wrong.any():
            i = int(ranks[wrong.argmax()])
            raise BuildError(f"{table}: entries {i} and {i + 1} are not in suffix order "
                             "(a damaged write?): rebuild the index")
    finally:
        del data, table_bytes
    return int(ranks.shape[0])


def build_table(tokenized: Path, table: Path, token_width: int, ptr_width: int, *,
                progress: Progress | None = None, shard: str = "0",
                sort_estimate_s: float | None = None) -> float:
    """Build ``table`` (the suffix array file) for the token file ``tokenized``, then check it
    (:func:`check_table`). ``progress`` shows the phases (sorting, writing, verifying) of
    shard ``shard``; ``sort_estimate_s`` is the sort's expected time, if known. Returns the
    seconds the sort took."""
    progress = progress if progress is not None else Progress(enabled=False)
    size = tokenized.stat().st_size
    if size == 0:
        table.write_bytes(b"")
        return 0.0
    data = np.memmap(tokenized, dtype=np.uint8, mode="r")
    try:
        started = time.perf_counter()
        with progress.phase(f"sorting shard {shard}", total=size, unit="bytes",
                            estimate_s=sort_estimate_s) as step:
            sa = token_suffix_array(np.asarray(data), token_width)
            step(size)
        sort_s = time.perf_counter() - started
        with progress.phase(f"writing shard {shard}", total=sa.shape[0], unit="pointers") as step:
            write_pointers(sa, ptr_width, table, step)
        del sa
    finally:
        del data
    with progress.phase(f"verifying shard {shard}", unit="pairs checked") as step:
        step(check_table(tokenized, table, token_width, ptr_width))
    return sort_s
