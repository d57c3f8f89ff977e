""":class:`LocalShards`: the shard group of this process, over memory-mapped shard files.

It holds each shard's arrays (:class:`~anygram.shards.shard.LocalShard`) and answers every
:class:`~anygram.shards.base.ShardGroup` method by calling the kernels shard by shard: this is
the only code that loops over shards.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

from .. import kernels
from ..errors import IndexFormatError
from ..index import takedown as takedown_records
from ..index.format import LoadMethod
from ..index.reader import OpenedIndex, Shard, open_index, require_here
from ..kernels import analysis as ka
from ..kernels import batch
from ..kernels.lm import count_of_counts
from . import cnf
from .base import (
    CnfShardPlan,
    NextTokens,
    Occurrences,
    Range,
    ShardGroup,
    ShardSize,
    SpanOccurrences,
    TokenBatch,
    Walk,
    Windows,
)
from .fanout import FanOut
from .shard import LocalShard

_T = TypeVar("_T")

_NO_HIDE = np.zeros(0, dtype=bool)  # document_windows: no window is hidden
_NO_METAOFF = np.zeros(0, dtype=np.uint64)  # document_windows: the shard has no metadata
_EMPTY = np.zeros(0, dtype=np.int64)
_NO_TOKENS = NextTokens(_EMPTY, _EMPTY, 0)

#: The suffix walk's caches when another call holds the real ones: nothing is cached.
_NO_CACHES = ka.new_caches(0, pair_slots=0)
#: Token-pair cache slots per shard: one per 256 positions, at least 16, at most 2^18 (6 MiB).
_MIN_PAIR_SLOTS = 16
_MAX_PAIR_SLOTS = 1 << 18


def _pair_slots(num_positions: int) -> int:
    slots = 1 << max(0, (num_positions // 256 - 1).bit_length())
    return min(max(slots, _MIN_PAIR_SLOTS), _MAX_PAIR_SLOTS)


class LocalShards(ShardGroup):
    """Shards of one or more index directories, opened in this process.

    Args:
        shards: the shard files, in index order.
        vocab_size: sizes the per-shard table of first-token ranges.
        removed: per shard, the sorted local ids of its taken-down documents (default none).
        search_sample: search through each shard's sample (:mod:`anygram.index.sample`),
            read or built on first use; False searches the suffix arrays alone.
        ntd_table: count the next tokens of frequent 1- and 2-token prompts in each shard's
            next-token table (:mod:`anygram.index.ntd_table`), read or built on first use;
            False counts them in the suffix arrays alone.
    """

    def __init__(self, shards: Sequence[Shard], vocab_size: int,
                 removed: Sequence[np.ndarray] | None = None, *,
                 search_sample: bool = True, ntd_table: bool = True) -> None:
        if removed is None:
            removed = [_EMPTY] * len(shards)
        self._members = [LocalShard(s, vocab_size, r, search_sample, ntd_table)
                         for s, r in zip(shards, removed)]
        self.token_width = shards[0].token_width if shards else 1
        self.sizes = tuple(ShardSize(s.name, s.num_positions, s.num_docs, s.ptr_width)
                           for s in shards)
        self._fan = FanOut(len(self._members))
        self._fan.start()  # a just-opened index is cold: its first query runs on the pool
        # The suffix walk's caches are shared by all calls, one at a time (walk_caches).
        self._walk_lock = threading.Lock()

    def with_removed(self, removed: Sequence[np.ndarray]) -> LocalShards:
        """The same shards with other documents taken down; the caches and the thread pool
        are shared with this group."""
        group = LocalShards([], 1)
        group._members = [m.with_removed(r) for m, r in zip(self._members, removed)]
        group.token_width, group.sizes, group._fan = self.token_width, self.sizes, self._fan
        group._walk_lock = self._walk_lock
        return group

    def close(self) -> None:
        self._fan.close()
        self._members = []

    @property
    def files(self) -> tuple[Shard, ...]:
        """The shard files, in order."""
        return tuple(m.files for m in self._members)

    def _each(self, fn: Callable[[LocalShard], _T]) -> list[_T]:
        """``fn`` of every shard, in order (:mod:`anygram.shards.fanout`)."""
        if len(self._members) < 2:
            return [fn(m) for m in self._members]
        return self._fan.map(fn, self._members)

    def _zip(self, fn: Callable[[LocalShard, Any], _T], per_shard: Sequence[Any]) -> list[_T]:
        """``fn`` of every shard and its own argument, in order."""
        if len(self._members) < 2:
            return [fn(m, x) for m, x in zip(self._members, per_shard)]
        return self._fan.map(lambda mx: fn(*mx), list(zip(self._members, per_shard)))

    def _by_shard(self, shards: np.ndarray, values: np.ndarray,
                  fn: Callable[[LocalShard, np.ndarray], np.ndarray]) -> np.ndarray:
        """``fn(shard, values of that shard)`` for each distinct shard, scattered back."""
        out = np.empty(values.shape[0], dtype=np.int64)
        for s, sel in _groups(shards):
            out[sel] = fn(self._members[s], values[sel])
        return out

    # ------------------------------------------------------------------ n-gram searches

    def find(self, q: np.ndarray) -> list[Range]:
        return self._each(lambda m: m.find(q))

    def find_within(self, q: np.ndarray, ranges: Sequence[Range]) -> list[Range]:
        return self._zip(lambda m, r: m.find_within(q, *r), ranges)

    def next_tokens(self, qlen: int, ranges: Sequence[Range],
                    samples: Sequence[int | None]) -> list[NextTokens]:
        def tally(m: LocalShard, job: tuple[Range, int | None]) -> NextTokens:
            (a, b), n = job
            return NextTokens(*m.next_tokens(qlen, a, b, n)) if b > a else _NO_TOKENS
        return self._zip(tally, list(zip(ranges, samples)))

    def longest_suffix(self, q: np.ndarray) -> list[tuple[int, int, int]]:
        return self._each(lambda m: m.longest_suffix(q))

    # ------------------------------------------------------------------ batches

    def find_many(self, qs: np.ndarray, offs: np.ndarray) -> list[np.ndarray]:
        return self._each(lambda m: m.find_many(qs, offs))

    def find_many_within(self, qs: np.ndarray, offs: np.ndarray,
                         ranges: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self._zip(lambda m, r: batch.find_many_within(m.ds, m.sa, m.k, qs, offs, r),
                         ranges)

    def longest_suffix_many(self, qs: np.ndarray, offs: np.ndarray) -> list[np.ndarray]:
        return self._each(lambda m: m.longest_suffix_many(qs, offs))

    def next_tokens_many(self, qlens: np.ndarray, ranges: Sequence[np.ndarray],
                         samples: Sequence[np.ndarray]) -> list[TokenBatch]:
        return self._zip(lambda m, rs: TokenBatch(*m.next_tokens_many(qlens, *rs)),
                         list(zip(ranges, samples)))

    def tabled(self, qlens: np.ndarray, ranges: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self._zip(lambda m, r: m.tabled(qlens, r), list(ranges))

    # ------------------------------------------------------------------ positions, documents

    def positions(self, shard: int, start: int, end: int) -> np.ndarray:
        return self._members[shard].positions(start, end)

    def positions_at(self, shards: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        w = self.token_width
        return self._by_shard(shards, ranks, lambda m, r: kernels.positions_at(m.sa, m.k, w, r))

    def docs_at(self, shards: np.ndarray, positions: np.ndarray) -> np.ndarray:
        return self._by_shard(shards, positions, LocalShard.docs_at)

    def doc_starts(self, shards: np.ndarray, docs: np.ndarray) -> np.ndarray:
        w = np.uint64(self.token_width)
        return self._by_shard(shards, docs, lambda m, d: (m.offsets[d] // w).astype(np.int64))

    def doc_span(self, shard: int, doc: int) -> tuple[int, int]:
        return self._members[shard].doc_span(doc)

    def is_removed(self, shard: int, docs: np.ndarray) -> np.ndarray:
        return self._members[shard].is_removed(docs)

    def num_removed(self) -> int:
        return sum(int(m.removed.shape[0]) for m in self._members)

    def tokens(self, shard: int, start: int, end: int) -> np.ndarray:
        m = self._members[shard]
        return m.ds[start * m.w:end * m.w]

    def occurrences(self, ranges: Sequence[Range], filtered: bool) -> list[Occurrences]:
        def visible(m: LocalShard, r: Range) -> Occurrences:
            a, b = r
            if b <= a or not filtered or m.removed.shape[0] == 0:
                return Occurrences(a, max(b - a, 0), None, None)
            pos = m.positions(a, b)
            keep = ~m.in_removed(pos)
            return Occurrences(a, int(keep.sum()), a + np.flatnonzero(keep), pos[keep])
        return self._zip(visible, ranges)

    def smallest_positions(self, shard: int, start: int, end: int, m: int) -> np.ndarray:
        s = self._members[shard]
        return kernels.smallest_positions(s.sa, s.k, s.w, start, end, m)

    def windows(self, shards: np.ndarray, docs: np.ndarray | None, anchors: np.ndarray,
                query_len: int, before: int, after: int, around_match: bool
                ) -> list[tuple[int, np.ndarray | slice, Windows]]:
        out = []
        for s, sel in _groups(shards):
            m = self._members[s]
            anchor = anchors[sel]
            local = np.full(anchor.shape[0], -1, dtype=np.int64) if docs is None else docs[sel]
            hide = _NO_HIDE
            if m.removed.shape[0]:
                hide = m.is_removed(m.docs_at(anchor) if docs is None else local)
            md, mo = m.files.metadata, m.files.metaoff
            text_md: memoryview | None = None  # slices of a memoryview are the cheapest
            if md is None or mo is None:
                mo = _NO_METAOFF
            else:
                text_md = md.data
            table, tokens = kernels.document_windows(
                m.ds, m.w, m.offsets, m.n, mo, 0 if text_md is None else len(text_md), 0, local,
                anchor, hide, query_len, before, after, around_match)
            out.append((s, sel, Windows(table, tokens, hide, text_md)))
        return out

    def metadata_lines(self, shard: int) -> tuple[np.ndarray, np.ndarray] | None:
        files = self._members[shard].files
        if files.metadata is None or files.metaoff is None:
            return None
        return files.metadata, files.metaoff

    # ------------------------------------------------------------------ CNF queries

    def cnf_count(self, plans: Sequence[CnfShardPlan], d: int) -> list[int]:
        return self._zip(lambda m, p: cnf.count(m, p, d), plans)

    def cnf_matches(self, plans: Sequence[CnfShardPlan], d: int) -> list[np.ndarray]:
        return self._zip(lambda m, p: cnf.matches(m, p, d), plans)

    def cnf_check(self, plans: Sequence[CnfShardPlan], anchors: Sequence[np.ndarray],
                  d: int) -> list[np.ndarray]:
        return self._zip(lambda m, pa: cnf.check_sampled(m, pa[0], pa[1], d),
                         list(zip(plans, anchors)))

    def cnf_removed_hits(self, plans: Sequence[CnfShardPlan]) -> list[int]:
        return self._zip(cnf.removed_hits, plans)

    def docs_with_all(self, plans: Sequence[CnfShardPlan]) -> list[np.ndarray]:
        return self._zip(cnf.docs_with_all, plans)

    def docs_with_all_sampled(self, plans: Sequence[CnfShardPlan], r: int,
                              positions: Sequence[np.ndarray]
                              ) -> list[tuple[np.ndarray, np.ndarray]]:
        return self._zip(lambda m, pp: cnf.docs_sampled(m, pp[0], r, pp[1]),
                         list(zip(plans, positions)))

    def phrase_lengths(self, shards: np.ndarray, positions: np.ndarray,
                       phrases: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros(positions.shape[0], dtype=np.int64)
        w = self.token_width
        for i, (s, p) in enumerate(zip(shards.tolist(), positions.tolist())):
            ds = self._members[s].ds
            # The phrases are prefix-free: exactly one of them starts at a match (none: the
            # suffix array gave a position that is no match, a damaged index).
            length = next((q.shape[0] // w for q in phrases
                           if np.array_equal(ds[p * w:p * w + q.shape[0]], q)), None)
            if length is None:
                raise IndexFormatError(f"shard {s} holds no match at position {p}, where its "
                                       "suffix array says: the index is damaged; run "
                                       "`anygram verify` on it")
            out[i] = length
        return out

    # ------------------------------------------------------------------ whole-text analyses

    @contextmanager
    def _walk_caches(self) -> Iterator[list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        """The suffix walk's per-shard caches, held for one call. They must not be used by
        two calls at once: a call that finds them busy gets empty ones (same answers,
        uncached searches) instead of waiting."""
        if not self._walk_lock.acquire(blocking=False):
            yield [_NO_CACHES] * len(self._members)
            return
        try:
            for m in self._members:
                if m.walk_caches is None:
                    # The first-token table is the one count & co. fill too.
                    m.walk_caches = (m.first, *ka.new_caches(0, pair_slots=_pair_slots(m.n))[1:])
            yield [m.walk_caches for m in self._members]  # type: ignore[misc]  # all set
        finally:
            self._walk_lock.release()

    def suffix_walk(self, q: np.ndarray, cuts: np.ndarray) -> list[Walk]:
        with self._walk_caches() as caches:
            return self._zip(lambda m, c: Walk(*ka.suffix_walk(m.ds, m.sa, m.k, m.w, q, cuts,
                                                               *c)[:3]), caches)

    def span_ranges(self, q: np.ndarray, left: np.ndarray, right: np.ndarray
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
        with self._walk_caches() as caches:
            return self._zip(lambda m, c: ka.span_ranges(m.ds, m.sa, m.k, m.w, q, left, right,
                                                         *c), caches)

    def span_occurrences(self, ranges: Sequence[tuple[np.ndarray, np.ndarray]]
                         ) -> list[SpanOccurrences]:
        def located(m: LocalShard, r: tuple[np.ndarray, np.ndarray]) -> SpanOccurrences:
            lo, hi = r
            sizes = np.maximum(hi - lo, 0)
            span = np.repeat(np.arange(lo.shape[0]), sizes)
            # The ranks lo[i]..hi[i]-1 of every span, one after the other.
            ranks = np.arange(span.shape[0]) + (lo - (np.cumsum(sizes) - sizes))[span]
            pos = kernels.positions_at(m.sa, m.k, m.w, ranks)
            docs = m.docs_at(pos)
            if m.removed.shape[0]:  # drop the occurrences in taken-down documents
                keep = ~m.is_removed(docs)
                span, pos, docs = span[keep], pos[keep], docs[keep]
            return SpanOccurrences(span, pos, docs)
        return self._zip(located, ranges)

    # ------------------------------------------------------------------ language models

    def token_pairs(self, ranges: Sequence[Range] | None, k: int
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
        if ranges is None:
            return self._each(lambda m: _pairs(m, np.arange(m.n, dtype=np.int64), k))
        return self._zip(lambda m, r: _pairs(m, np.sort(m.positions(*r)) - 1, k), ranges)

    def count_of_counts(self, order: int, top: int, continuation: bool,
                        windows: Sequence[np.ndarray | None]) -> np.ndarray:
        removed = [_removed_bytes(m) for m in self._members]
        return count_of_counts([(m.ds, m.sa, m.k) for m in self._members], self.token_width,
                               order, top, continuation=continuation, windows=windows,
                               removed=removed)


def _groups(shards: np.ndarray) -> list[tuple[int, np.ndarray | slice]]:
    """``(shard, selector)`` for each distinct shard of ``shards``, ascending.

    A single shard (the common case) selects everything with a slice: no mask, no copy.
    """
    distinct = sorted(set(shards.tolist()))  # a set beats np.unique on the hits of a page
    if len(distinct) == 1:
        return [(distinct[0], slice(None))]
    return [(s, np.flatnonzero(shards == s)) for s in distinct]


def _pairs(m: LocalShard, left: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For occurrences of a k-token string at positions ``left + 1``: the token before each
    (the separator = ``<s>``) and the token after it (separator / shard end = END), outside
    taken-down documents. Both as int64 with the separator id."""
    toks = m.ds.view(f"<u{m.w}")
    sep = (1 << (8 * m.w)) - 1
    if m.removed.shape[0]:
        left = left[~m.is_removed(m.docs_at(left))]
    after = left + 1 + k
    inside = after < toks.shape[0]
    nxt = np.full(left.shape[0], sep, dtype=np.int64)
    nxt[inside] = toks[after[inside]]
    return toks[left].astype(np.int64), nxt


def _removed_bytes(m: LocalShard) -> tuple[np.ndarray, np.ndarray] | None:
    """Byte intervals ``[start, end)`` of the taken-down documents (sorted), or None."""
    if m.removed.shape[0] == 0:
        return None
    bounds = np.append(m.offsets.astype(np.int64), m.ds.shape[0])
    return bounds[m.removed], bounds[m.removed + 1]


def open_groups(index: OpenedIndex, vocab_size: int, *, load: LoadMethod = "mmap",
                takedown: bool = True, search_sample: bool = True, ntd_table: bool = True,
                reuse: ShardGroup | None = None, only: Sequence[int] | None = None,
                with_takedown: bool = True) -> tuple[LocalShards, LocalShards | None]:
    """The shard group of an opened index and, when documents are taken down (and
    ``takedown``), the group of its takedown indexes, whose counts are subtracted.

    Each directory's takedown record (:mod:`anygram.index.takedown`) gives the global ids of
    its removed documents (numbered from the directory's first document) and the index that
    holds exactly them. ``search_sample``, ``ntd_table``: as :class:`LocalShards`'s.
    ``reuse``: the group as opened before with the same ``only`` (a takedown changed since),
    whose caches the new one shares when it is a :class:`LocalShards`. ``only``: the indexes
    of the shards to open (default all), in that order; ``with_takedown=False`` leaves the
    takedown group out (None): another process holds it (:mod:`anygram.cluster`).
    """
    shards = index.shards
    removed: list[list[int]] = [[] for _ in shards]
    minus: list[Shard] = []
    if takedown:
        doc_base = np.cumsum([0] + [s.num_docs for s in shards]).tolist()
        for directory in index.directories:
            record = takedown_records.read_record(directory)
            if record is None:
                continue
            first = next(i for i, s in enumerate(shards) if s.directory == directory)
            num_docs = sum(s.num_docs for s in shards if s.directory == directory)
            for doc_id in record["doc_ids"]:
                if not 0 <= doc_id < num_docs:
                    raise IndexFormatError(f"the takedown record of {directory} names document "
                                           f"{doc_id}, which it does not have")
                g = doc_base[first] + doc_id
                shard = bisect.bisect_right(doc_base, g) - 1
                removed[shard].append(g - doc_base[shard])
            gone = open_index(takedown_records.takedown_dir(directory, record), load=load)
            takedown_records.check_takedown_index(
                directory, record, [s for s in shards if s.directory == directory], gone.shards)
            minus += gone.shards
    # (Not np.unique of nothing: numpy >= 2.3 imports numpy.ma in it, ~15 ms of an open.)
    sorted_removed = [np.unique(np.array(r, dtype=np.int64)) if r else _EMPTY for r in removed]
    if only is not None:
        shards = tuple(shards[i] for i in only)
        sorted_removed = [sorted_removed[i] for i in only]
    require_here(shards)
    group = (reuse.with_removed(sorted_removed) if isinstance(reuse, LocalShards) else
             LocalShards(shards, vocab_size, sorted_removed, search_sample=search_sample,
                         ntd_table=ntd_table))
    return group, (LocalShards(minus, vocab_size, search_sample=search_sample,
                               ntd_table=ntd_table) if minus and with_takedown else None)
