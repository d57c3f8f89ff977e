"""One shard in this process: its arrays as the kernels take them, its taken-down documents,
and the per-shard document arithmetic every query kind shares."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np

from .. import kernels
from ..index import ntd_table
from ..index import sample as search_sample
from ..index.ntd_table import NtdTable
from ..index.reader import Shard
from ..index.sample import Sample
from ..index.sidecar import Lazy
from ..kernels import batch
from ..kernels import ntd_table as ntd_kernels
from ..kernels.ntd_table import FOUND, WRONG, table_next_tokens
from ..kernels.sample import find_range_indexed, longest_suffix_sampled

#: Vocabularies up to this size get a per-shard table of each first token's rank range
#: (16 bytes per id), filled in lazily: searches start inside it.
FIRST_TOKEN_TABLE_MAX = 1 << 21

log = logging.getLogger(__name__)

_S = TypeVar("_S")  # a sidecar

_NO_FIRST = np.full((0, 2), -1, dtype=np.int64)  # searches without a first-token table
_NEVER = 1 << 62  # a count no prompt reaches: the threshold of a shard without a table


class LocalShard:
    """A shard's memory maps (:class:`anygram.index.reader.Shard`), unpacked for the
    kernels, with the sorted local ids of its taken-down documents and its sidecars (the
    search sample, the next-token table: :mod:`anygram.index.sidecar`), each loaded on first
    use unless turned off."""

    __slots__ = ("files", "ds", "sa", "k", "w", "n", "offsets", "removed", "_first_rows",
                 "_first", "_removed_spans", "walk_caches", "_sample", "_ntd")

    def __init__(self, files: Shard, vocab_size: int, removed: np.ndarray,
                 use_sample: bool = True, use_ntd_table: bool = True) -> None:
        self.files = files
        self.ds = files.ds
        self.sa = files.sa
        self.k = files.ptr_width
        self.w = files.token_width
        self.n = files.num_positions
        self.offsets = files.offsets
        self._first_rows = vocab_size if vocab_size <= FIRST_TOKEN_TABLE_MAX else 0
        self._first: np.ndarray | None = None
        self.removed = removed
        self._removed_spans: np.ndarray | None = None
        # The suffix walk's caches (anygram.shards.local), made on first use.
        self.walk_caches: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._sample: Lazy[Sample] = Lazy(partial(_sample_of, files) if use_sample else None)
        self._ntd: Lazy[NtdTable] = Lazy(partial(_table_of, files) if use_ntd_table else None)

    def with_removed(self, removed: np.ndarray) -> LocalShard:
        """The same shard with other documents taken down, sharing this one's caches (the
        sidecars, the first-token table, the walk caches): they do not depend on takedowns
        (counts are raw: the takedown index's are subtracted)."""
        other = LocalShard(self.files, 0, removed)
        other._first_rows, other._first = self._first_rows, self._first
        other.walk_caches = self.walk_caches
        other._sample, other._ntd = self._sample, self._ntd
        return other

    @property
    def first(self) -> np.ndarray:
        """The rank range of each first token (-1: not looked up yet), shared by the searches
        that run without a sample and by the suffix walk; made on first use (16 bytes an id:
        not at open)."""
        table = self._first
        if table is None:
            table = self._first = np.full((self._first_rows, 2), -1, dtype=np.int64)
        return table

    @property
    def sample(self) -> Sample | None:
        """The shard's search sample (:mod:`anygram.index.sample`), read or built on first
        use; None when the shard is searched without one."""
        return self._sample.get()

    @property
    def ntd_table(self) -> NtdTable | None:
        """The shard's next-token table (:mod:`anygram.index.ntd_table`), read or built on
        first use; None when next tokens are counted in the suffix array alone."""
        return self._ntd.get()

    # ------------------------------------------------------------------ positions

    def positions(self, start: int, end: int) -> np.ndarray:
        """Token positions of ranks ``[start, end)`` (rank order)."""
        # Vectorised, 15x the byte-assembling kernel's speed on long ranges; offsets are
        # multiples of the token width (1, 2 or 4), so a shift divides exactly.
        shift = np.uint64(self.w.bit_length() - 1)
        return (self.files.pointers(start, end) >> shift).astype(np.int64)

    def sorted_positions(self, ranges: list[tuple[int, int]]) -> np.ndarray:
        """Ascending positions of the ranks of several rank ranges."""
        parts = [self.positions(a, b) for a, b in ranges if b > a]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return kernels.sort_positions(np.concatenate(parts))

    # ------------------------------------------------------------------ documents

    def docs_at(self, pos: np.ndarray) -> np.ndarray:
        """Local document holding each position."""
        return kernels.docs_of(self.offsets, self.w, np.asarray(pos, dtype=np.int64))

    def docs_sorted(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For ascending positions: the document of each and its token range ``[lo, hi)``, in
        one forward walk (~10x faster than a binary search per position)."""
        return kernels.docs_of_sorted(pos, self.offsets, self.w, self.n)

    def doc_span(self, doc: int) -> tuple[int, int]:
        """Token positions ``[start, end)`` of a document's tokens (its separator excluded)."""
        start = int(self.offsets[doc]) // self.w + 1
        end = int(self.offsets[doc + 1]) // self.w if doc + 1 < self.offsets.shape[0] else self.n
        return start, end

    def doc_bounds(self, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Token ranges ``[lo, hi)`` of the given documents: :meth:`doc_span`, vectorised."""
        docs = np.asarray(docs, dtype=np.int64)
        # Index the (memory-mapped, uint64) offsets first: never convert the whole array.
        lo = self.offsets[docs].astype(np.int64) // self.w + 1
        last = docs + 1 >= self.offsets.shape[0]
        hi = np.full(docs.shape[0], self.n, dtype=np.int64)
        hi[~last] = self.offsets[docs[~last] + 1].astype(np.int64) // self.w
        return lo, hi

    def is_removed(self, docs: np.ndarray) -> np.ndarray:
        """Whether each document is taken down (bool array)."""
        removed = self.removed
        docs = np.asarray(docs, dtype=np.int64)
        if removed.shape[0] == 0:
            return np.zeros(docs.shape, dtype=bool)
        i = np.minimum(np.searchsorted(removed, docs), removed.shape[0] - 1)
        return removed[i] == docs

    def in_removed(self, pos: np.ndarray) -> np.ndarray:
        """Whether each position lies in a taken-down document: bisects the spans of the
        removed documents (few) rather than all documents, O(len(pos) log removed)."""
        spans = self._removed_spans
        if spans is None:
            spans = np.stack(self.doc_bounds(self.removed), axis=1) if self.removed.shape[0] \
                else np.zeros((0, 2), dtype=np.int64)
            self._removed_spans = spans
        j = np.searchsorted(spans[:, 0], pos, side="right") - 1
        return (j >= 0) & (pos < spans[np.maximum(j, 0), 1])

    def live(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The (ascending) positions outside taken-down documents, and their documents'
        token ranges."""
        docs, lo, hi = self.docs_sorted(pos)
        if self.removed.shape[0]:
            gone = self.is_removed(docs)
            if gone.any():
                live = ~gone
                return pos[live], lo[live], hi[live]
        return pos, lo, hi

    # ------------------------------------------------------------------ searches

    def find(self, q: np.ndarray) -> tuple[int, int]:
        """The rank range of ``q``: through the sample, else from the first token's range."""
        smp = self.sample
        if smp is None:
            return kernels.find_range_cached(self.ds, self.sa, self.k, q, self.w, self.first)
        # The first-token table is filled from one-token queries only: a longer query does
        # not make it (16 bytes an id, at a cold index's first query).
        first = self.first if self._first is not None or q.shape[0] <= self.w else _NO_FIRST
        found = find_range_indexed(self.ds, self.sa, self.k, q, self.w, first, smp.keys,
                                   smp.lens, smp.ptrs, smp.stride, smp.faults)
        if smp.faults[0]:
            self._distrust(smp)
        return found

    def find_within(self, q: np.ndarray, lo: int, hi: int) -> tuple[int, int]:
        """The rank range of ``q`` inside ``[lo, hi)``, the range of a prefix of it."""
        return kernels.find_range(self.ds, self.sa, self.k, q, lo, hi) if hi > lo else (lo, lo)

    def longest_suffix(self, q: np.ndarray) -> tuple[int, int, int]:
        """The longest suffix of ``q`` that occurs (in tokens) and its rank range."""
        smp = self.sample
        if smp is None:
            return kernels.longest_suffix(self.ds, self.sa, self.k, q, self.w)
        found = longest_suffix_sampled(self.ds, self.sa, self.k, q, self.w, smp.keys, smp.lens,
                                       smp.ptrs, smp.stride, smp.faults)
        if smp.faults[0]:
            self._distrust(smp)
        return found

    def next_tokens(self, qlen: int, lo: int, hi: int, samples: int | None
                    ) -> tuple[np.ndarray, np.ndarray, int]:
        """The tokens after the ``qlen`` query bytes whose whole rank range is ``[lo, hi)``,
        counted (all: from the next-token table when the prompt is in it; or ``samples``
        evenly spaced ranks)."""
        if samples is not None:
            return kernels.sample_next_token_counts(self.ds, self.sa, self.k, qlen, self.w, lo,
                                                    hi, samples)
        if qlen <= 2 * self.w and hi > lo:
            table = self.ntd_table
            if table is not None and hi - lo >= table.threshold:
                status, ids, counts, end = table_next_tokens(
                    self.ds, self.sa, self.k, self.w, qlen, lo, hi, *table.arrays())
                if status == FOUND:
                    return ids, counts, end
                if status == WRONG:
                    self._distrust_table(table)
        return kernels.next_token_counts(self.ds, self.sa, self.k, qlen, self.w, lo, hi)

    # ------------------------------------------------------------------ batches

    def _search_args(self, smp: Sample | None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]:
        """``(first, keys, lens, ptrs, stride, faults)`` for the batch kernels: the
        first-token table, and the sample's arrays (empty ones when there is none)."""
        if smp is None:
            return self.first, *_NO_SAMPLE, np.zeros(1, dtype=np.int64)
        return self.first, smp.keys, smp.lens, smp.ptrs, smp.stride, smp.faults

    def _distrust(self, smp: Sample) -> None:
        """The sample misled a search (its bracket did not hold; the search fell back to the
        plain one): search without it from now on, and have it rebuilt on the next use."""
        self._drop(self._sample, smp, "search sample", "sample.*", "searching",
                   search_sample.forget)

    def _distrust_table(self, table: NtdTable) -> None:
        """A row of the next-token table disagreed with itself or the suffix array (the
        lookup was not used): count in the suffix array from now on, and have the table
        rebuilt on the next open."""
        self._drop(self._ntd, table, "next-token table", "ntd.*", "counting",
                   ntd_table.forget)

    def _drop(self, lazy: Lazy[_S], found: _S, what: str, files: str, doing: str,
              forget: Callable[[Path, str | None], None]) -> None:
        """Stop using a sidecar found wrong (logged once) and delete it."""
        if not lazy.drop(found):
            return
        f = self.files
        log.warning("the %s of shard %s of %s does not match its suffix array (a damaged or "
                    "stale %s): %s without it; it is rebuilt next time the index is opened",
                    what, f.name, f.directory, files, doing)
        forget(f.directory, f.file_suffix)

    def find_many(self, qs: np.ndarray, offs: np.ndarray) -> np.ndarray:
        """The rank range of each of the packed queries (:mod:`anygram.kernels.batch`)."""
        smp = self.sample
        first, keys, lens, ptrs, stride, faults = self._search_args(smp)
        found = batch.find_many(self.ds, self.sa, self.k, self.w, qs, offs, first, keys, lens,
                                ptrs, stride, faults)
        if smp is not None and faults[0]:
            self._distrust(smp)
        return found

    def next_tokens_many(self, qlens: np.ndarray, ranges: np.ndarray, samples: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The next tokens after each query (:func:`anygram.kernels.batch.next_tokens_many`),
        those of exact queries from the next-token table when it holds them."""
        exact_short = qlens.shape[0] and bool(np.any((samples <= 0) & (qlens <= 2 * self.w)))
        table = self.ntd_table if exact_short else None
        use = table if table is not None else ntd_table.EMPTY
        threshold = table.threshold if table is not None else _NEVER
        found = batch.next_tokens_many(self.ds, self.sa, self.k, self.w, qlens, ranges, samples,
                                       threshold, *use.arrays(), use.faults)
        if table is not None and table.faults[0]:
            self._distrust_table(table)
        return found

    def tabled(self, qlens: np.ndarray, ranges: np.ndarray) -> np.ndarray:
        """For each query, whether this shard's next-token table holds its next tokens (or
        the shard holds none of its occurrences)."""
        empty = ranges[:, 1] <= ranges[:, 0]
        short = (qlens <= 2 * self.w) & ~empty
        table = self.ntd_table if bool(np.any(short)) else None
        if table is None:
            return empty
        return ntd_kernels.tabled(qlens, ranges, self.w, table.threshold, table.keys1,
                                  table.keys2)

    def longest_suffix_many(self, qs: np.ndarray, offs: np.ndarray) -> np.ndarray:
        """Each packed query's longest occurring suffix and its rank range, ``[m, 3]``."""
        smp = self.sample
        _, keys, lens, ptrs, stride, faults = self._search_args(smp)
        found = batch.longest_suffix_many(self.ds, self.sa, self.k, self.w, qs, offs, keys,
                                          lens, ptrs, stride, faults)
        if smp is not None and faults[0]:
            self._distrust(smp)
        return found


def _sample_of(f: Shard) -> Sample:
    return search_sample.load_or_build(f.directory, f.file_suffix, f.ds, f.sa, f.token_width,
                                       f.ptr_width)


def _table_of(f: Shard) -> NtdTable | None:
    return ntd_table.load_or_build(f.directory, f.file_suffix, f.ds, f.sa, f.token_width,
                                   f.ptr_width, f.identity)


_NO_SAMPLE = (np.zeros((0, 1), dtype=np.uint8), np.zeros(0, dtype=np.uint8),
              np.zeros(0, dtype=np.int64), 1)
for _a in _NO_SAMPLE[:3]:
    # As a real sample's: one compiled kernel for both.
    _a.flags.writeable = False  # type: ignore[union-attr]
