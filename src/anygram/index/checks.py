"""The structural checks of a shard: what every open samples, and what ``anygram verify``
reads in full (:mod:`anygram.index.verify`).

On open they cost a few dozen random reads per shard, whatever its size: enough to refuse a
truncated,
zeroed or shuffled file, a pointer table of another shard, offsets out of order, with
:class:`~anygram.errors.IndexFormatError` before any query reads them. :func:`prefetch` has
the pages they read requested from storage together, in two rounds for all the shards of an
index, rather than one page fault after another. What the samples miss,
the kernels refuse when they meet it (a pointer outside the shard raises there too), so a
damaged index gives errors, never memory corruption; only ``verify`` rules out a wrong answer.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from ..errors import IndexFormatError
from ..kernels.checks import (
    first_bad_offset,
    first_bad_rank,
    first_missing_separator,
)
from .format import separator, shard_file_names


class ShardView(Protocol):
    """What the checks read of a shard (:class:`anygram.index.reader.Shard`, read-only)."""

    @property
    def directory(self) -> Path: ...

    @property
    def file_suffix(self) -> str | None: ...

    @property
    def ds(self) -> np.ndarray: ...

    @property
    def sa(self) -> np.ndarray: ...

    @property
    def offsets(self) -> np.ndarray: ...

    @property
    def metadata(self) -> np.ndarray | None: ...

    @property
    def metaoff(self) -> np.ndarray | None: ...

    @property
    def token_width(self) -> int: ...

    @property
    def ptr_width(self) -> int: ...

    @property
    def num_docs(self) -> int: ...

    @property
    def num_positions(self) -> int: ...

    @property
    def ds_bytes(self) -> int: ...

    def pointers(self, start: int, end: int) -> np.ndarray: ...

#: Suffix-array pairs and documents sampled per shard on open.
OPEN_SAMPLES = 4
#: Bytes compared per sampled pair of adjacent suffixes on open (verify compares them whole).
OPEN_ORDER_BYTES = 256


def _damaged(shard: ShardView, kind: str, what: str) -> IndexFormatError:
    path = shard.directory / shard_file_names(shard.file_suffix)[kind]
    return IndexFormatError(f"{path} is damaged: {what}; run `anygram verify` on the index, "
                            "and rebuild it")


def _spread(n: int, samples: int | None) -> list[tuple[int, int, int]]:
    """``(start, stop, step)`` ranges over ``range(n)``: all of it (``samples=None``), or
    about ``samples`` evenly spaced indexes and the last one."""
    if n <= 0:
        return []
    if samples is None:
        return [(0, n, 1)]
    return [(0, n, max(1, n // samples)), (n - 1, n, 1)]


def _picked(n: int, samples: int | None) -> Iterator[int]:
    """The indexes :func:`_spread` picks."""
    for start, stop, step in _spread(n, samples):
        yield from range(start, stop, step)


def _separator_boundary(shard: ShardView) -> range:
    """The ranks around the first separator the suffix array sorts last (they sort last, one
    per document): :func:`check_documents` reads them."""
    first = shard.num_positions - shard.num_docs
    return range(max(first - 1, 0), first + min(shard.num_docs, 1))


def check_documents(shard: ShardView, samples: int | None) -> None:
    """Separator offsets: as many as the separators the suffix array sorts last (checked at
    the boundary only: the order is :func:`check_table`'s), in order,
    aligned, inside the token file, each at a separator; the metadata line offsets: one per
    document, in order, inside the metadata file.
    ``samples=None`` checks every document; else about ``samples`` of them."""
    n, w = shard.num_docs, shard.token_width
    if n == 0 and shard.ds_bytes:
        raise _damaged(shard, "offset", "no documents, yet the token file is not empty")
    # Separators sort last (0xff is the largest byte), one per document: the last n ranks
    # start with one, the rank before does not.
    first = shard.num_positions - n
    if [_at_separator(shard, r) for r in _separator_boundary(shard)] != \
            [False] * (first > 0) + [True] * (n > 0):
        raise _damaged(shard, "offset", f"{n} documents, but the suffix array does not end "
                       f"with {n} separators")
    bad_offset = _kernel_or_code(first_bad_offset, samples)
    for start, stop, step in _spread(n, samples):
        d = bad_offset(shard.offsets, shard.ds_bytes, w, w, start, stop, step)
        if d >= 0:
            raise _damaged(shard, "offset", f"document {d}'s offset {int(shard.offsets[d])} "
                           f"is out of order, misaligned or past the token file")
    missing_separator = _kernel_or_code(first_missing_separator, samples)
    for start, stop, step in _spread(n, samples):
        d = missing_separator(shard.offsets, shard.ds, w, start, stop, step)
        if d >= 0:
            raise _damaged(shard, "offset", f"document {d} does not start at a separator")
    if shard.metaoff is None or shard.metadata is None:
        return
    if shard.metaoff.shape[0] != n:
        raise _damaged(shard, "metaoff", f"{shard.metaoff.shape[0]} metadata lines for {n} "
                       "documents")
    size = shard.metadata.shape[0]
    for start, stop, step in _spread(n, samples):
        d = bad_offset(shard.metaoff, size + 1, 1, 0, start, stop, step)
        if d >= 0:
            raise _damaged(shard, "metaoff", f"document {d}'s metadata offset "
                           f"{int(shard.metaoff[d])} is out of order or past the metadata")


def _kernel_or_code(kernel: Callable[..., int], samples: int | None) -> Callable[..., int]:
    """A check's kernel for a whole pass; for an open's few samples, the kernel's own code run
    by Python: they do not pay for loading the kernel (tens of milliseconds in a new
    process). (Only for kernels that call no other kernel.)"""
    return kernel if samples is None else cast(Any, kernel).py_func


def _first_bad_rank(shard: ShardView, ranks: range, max_bytes: int) -> int:
    """:func:`~anygram.kernels.checks.first_bad_rank` over ``ranks``, in Python (its kernel
    calls others, which :func:`_kernel_or_code` cannot run as code)."""
    n, w = shard.ds_bytes, shard.token_width
    for r in ranks:
        p, q = _raw_pointer(shard, r), _raw_pointer(shard, r + 1)
        if p >= n or q >= n or p % w or q % w or p == q:
            return r
        end = n if max_bytes < 0 else max_bytes
        # bytes compare as suffixes do: a proper prefix sorts first
        if bytes(shard.ds[p:p + end]) > bytes(shard.ds[q:q + end]):
            return r
    return -1


def _raw_pointer(shard: ShardView, rank: int) -> int:
    """The byte offset stored at ``rank``, unchecked."""
    k = shard.ptr_width
    return int.from_bytes(bytes(shard.sa[rank * k:(rank + 1) * k]), "little")


def _pointer(shard: ShardView, rank: int) -> int:
    """The byte offset stored at ``rank``: a token offset of the shard, else
    IndexFormatError (as ``Shard.pointers``, without loading its kernel)."""
    p = _raw_pointer(shard, rank)
    if p >= shard.ds_bytes or p % shard.token_width:
        raise _damaged(shard, "table", "it holds a pointer outside its token file")
    return p


def _at_separator(shard: ShardView, rank: int) -> bool:
    """Whether the suffix at ``rank`` starts with a separator (its pointer is checked)."""
    p = _pointer(shard, rank)
    return bytes(shard.ds[p:p + shard.token_width]) == separator(shard.token_width)


def check_table(shard: ShardView, samples: int | None, max_bytes: int = OPEN_ORDER_BYTES,
                start: int = 0, stop: int | None = None) -> None:
    """Suffix-array entries of ranks ``[start, stop)`` (default: all): token offsets of the
    shard, each suffix strictly before the next rank's (compared over ``max_bytes`` bytes;
    -1: whole). ``samples=None`` checks every rank; else about that many and the last."""
    n = shard.num_positions
    stop = n if stop is None else min(stop, n)
    if stop <= start:
        return
    _pointer(shard, start)  # raises for an entry outside the shard
    _pointer(shard, stop - 1)
    last = min(stop, n - 1)  # first_bad_rank compares rank r with r + 1
    for a, b, step in _spread(last - start, samples):
        r = (first_bad_rank(shard.ds, shard.sa, shard.ptr_width, shard.token_width,
                            start + a, start + b, step, max_bytes)
             if samples is None else _first_bad_rank(shard, range(start + a, start + b, step),
                                                     max_bytes))
        if r >= 0:
            raise _damaged(shard, "table", f"the entries at ranks {r} and {r + 1} are not "
                           "token offsets of the shard in suffix order")


def prefetch(shards: Sequence[ShardView], samples: int) -> None:
    """Ask storage at once for the pages that :func:`check_documents` and :func:`check_table`
    will read of ``shards`` (``samples`` each, as on open): first the sampled suffix-array
    entries and offsets of every shard, then the token bytes they point at.

    The checks read a few dozen pages a shard, each a page fault that holds the GIL (they
    run as Python code: no kernel to load on open), so on a cold index they would wait on
    one read after another, ~25 per shard. Requested together, the reads overlap: the
    checks wait about two reads' time, whatever the number of shards. A hint
    (``MADV_WILLNEED``), which changes no answer: what it leaves out is read when touched;
    shards read into RAM need none.
    """
    planned = []
    for s in shards:
        n, k = s.num_positions, s.ptr_width
        # What check_table compares (its first and last entries, each sampled rank and the
        # next) and check_documents' separator boundary.
        ranks = sorted(r for r in {0, n - 1, *_separator_boundary(s),
                                   *(r + i for r in _picked(n - 1, samples) for i in (0, 1))}
                       if 0 <= r < n)
        docs = list(_picked(s.num_docs, samples))
        sa = _requester(s.sa)
        for r in ranks:
            sa(r * k, k)
        for table in (s.offsets, s.metaoff):
            ask = _requester(table)
            for d in docs:
                ask(max(d - 1, 0) * 8, 16)  # first_bad_offset reads d and d - 1
        planned.append((s, ranks, docs))
    for s, ranks, docs in planned:
        ds = _requester(s.ds)
        if ds is _ignore:
            continue
        for r in ranks:
            ds(_raw_pointer(s, r), OPEN_ORDER_BYTES)
        for d in docs:
            ds(int(s.offsets[d]), s.token_width)


def _ignore(start: int, length: int) -> None:
    """A request for bytes already in memory."""


def _requester(arr: np.ndarray | None) -> Callable[[int, int], None]:
    """``ask(start, length)``: request bytes ``[start, start + length)`` of ``arr`` from
    storage, without waiting for them (bounds clipped); :func:`_ignore` when ``arr`` is not
    a memory map of a file (read into RAM, empty, or None)."""
    mapped = None if arr is None else arr.base
    while mapped is not None and not isinstance(mapped, mmap.mmap):
        # an array's base: an array, the memoryview it was made from, that view's mmap
        mapped = mapped.obj if isinstance(mapped, memoryview) else getattr(mapped, "base", None)
    if arr is None or not isinstance(mapped, mmap.mmap) or not hasattr(mapped, "madvise") \
            or not arr.nbytes:
        return _ignore
    at = _address(arr) - _address(np.frombuffer(mapped, dtype=np.uint8))
    end = at + arr.nbytes
    page = mmap.PAGESIZE

    def ask(start: int, length: int) -> None:
        lo = max(at + start, at) // page * page
        hi = min(at + start + length, end)
        if lo < hi:
            mapped.madvise(mmap.MADV_WILLNEED, lo, hi - lo)

    return ask


def _address(arr: np.ndarray) -> int:
    """Where ``arr``'s data starts in memory (not ``arr.ctypes``: it imports ctypes)."""
    return int(arr.__array_interface__["data"][0])


def check_removed_documents(ids: np.ndarray, shards: Sequence[ShardView],
                            minus: Sequence[ShardView], where: str) -> None:
    """Raise IndexFormatError unless ``ids`` (sorted global ids, from a takedown record) are
    documents of ``shards`` (one index directory's, in order) and ``minus`` (its takedown
    index) holds one document per id, as long as that document: a takedown index of another
    record or index would make counts and search disagree. ``where`` names them."""
    n_docs = sum(s.num_docs for s in shards)
    if ids.shape[0] and ids[-1] >= n_docs:
        raise IndexFormatError(f"{where}: document {int(ids[-1])} is not one of the index's "
                               f"{n_docs}; take the documents down again")
    want, base = [np.zeros(0, np.int64)], 0
    for s in shards:
        local = ids[(ids >= base) & (ids < base + s.num_docs)] - base
        want.append(_document_bytes(s)[local])
        base += s.num_docs
    got = [np.zeros(0, np.int64)] + [_document_bytes(s) for s in minus]
    if any(s.token_width != m.token_width for s in shards for m in minus) or \
            not np.array_equal(np.concatenate(got), np.concatenate(want)):
        raise IndexFormatError(f"{where}: the takedown index does not hold the documents the "
                               "record lists; take the documents down again (anygram "
                               "takedown --undo, then the ids again)")


def _document_bytes(shard: ShardView) -> np.ndarray:
    """Bytes of each document of a shard, its separator included."""
    return np.diff(np.append(shard.offsets.astype(np.int64), shard.ds_bytes))
