"""Whole-text analyses (mixed into :class:`anygram.Engine`): creativity, the per-token ∞-gram
of a text, and attribution spans. Semantics and algorithm: ``docs/analyses.md``.

All three come from one walk over the text per shard (:func:`anygram.kernels.analysis.
suffix_walk`), which gives, for every end ``j = 0..n``, the start ``S[j]`` of the longest
suffix of ``text[:j]`` that occurs in the corpus and its count ``C[j]``:

- the per-token ∞-gram of token ``j`` is read off ``S[j]``, ``C[j]`` and ``C[j + 1]``;
- ``text[i:j]`` occurs iff ``S[j] <= i``, so the longest match starting at ``i`` (creativity)
  ends at the last ``j`` with ``S[j] <= i`` (``S`` is non-decreasing: a binary search);
- attribution cuts those longest matches and keeps the rare, maximal ones; with word starts
  enforced, the walk runs over the word starts only (*cuts*: spans start and end there), and
  the kept candidates' counts and rank ranges are the walk's own.

Shards combine exactly: a string occurs in the corpus iff it occurs in some shard, so ``S`` is
the minimum over shards of their own starts, and ``C[j]`` sums the counts of the shards whose
own start is ``S[j]`` (the others do not contain that suffix).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from .. import kernels
from ..errors import InvalidQueryError
from ..kernels import analysis as ka
from .core import Query
from .documents import DocumentQueries
from .results import AttributionDoc, AttributionResult, AttributionSpan, InfGramTextResult

_Arrays = tuple[np.ndarray, np.ndarray, int, int]  # a shard as the kernels take it
_Caches = tuple[np.ndarray, np.ndarray, np.ndarray]  # see anygram.kernels.analysis

#: Zero-size caches: the kernels then cache nothing (a call that finds the caches busy).
_NO_CACHES: _Caches = ka.new_caches(0, pair_slots=0)
#: Token-pair cache slots per shard: one per 256 positions, at least 16, at most 2^18 (6 MiB).
_MIN_PAIR_SLOTS = 16
_MAX_PAIR_SLOTS = 1 << 18


class _Walk(NamedTuple):
    """For each cut ``c = cuts[t]`` of a text (increasing token offsets, the last one the
    end of the text ``n``; every offset ``0..n`` for the plain walk): ``starts[t]``, the start
    (a cut) of the longest suffix of ``text[:c]`` from a cut that occurs in the remaining
    documents, and ``counts[t]`` its count. ``ranges``: per main shard, ``(lo, hi)`` arrays,
    that suffix's rank ranges there (empty where the shard's own suffix is shorter; removed
    documents included); ``None`` when the takedown fix-up moved some starts."""

    starts: np.ndarray
    counts: np.ndarray
    ranges: list[tuple[np.ndarray, np.ndarray]] | None


def _pair_slots(num_positions: int) -> int:
    slots = 1 << max(0, (num_positions // 256 - 1).bit_length())
    return min(max(slots, _MIN_PAIR_SLOTS), _MAX_PAIR_SLOTS)


def _combine(walks: list[tuple[np.ndarray, np.ndarray, np.ndarray]], cuts: np.ndarray
             ) -> _Walk:
    """The corpus walk from per-shard walks ``(starts, lows, counts)`` (see the module
    docstring)."""
    if not walks:
        return _Walk(cuts.copy(), np.zeros(cuts.shape[0], dtype=np.int64), [])
    if len(walks) == 1:
        s, lo, c = walks[0]
        return _Walk(s, c, [(lo, lo + c)])
    starts = np.minimum.reduce([s for s, _, _ in walks])
    counts = np.zeros(cuts.shape[0], dtype=np.int64)
    ranges = []
    for s, lo, c in walks:
        c = np.where(s == starts, c, 0)
        counts += c
        ranges.append((lo, lo + c))
    return _Walk(starts, counts, ranges)


def _match_lengths(starts: np.ndarray) -> np.ndarray:
    """Creativity from a walk: for each ``i < n``, ``max{j : starts[j] <= i} - i``."""
    i = np.arange(starts.shape[0] - 1, dtype=np.int64)
    return np.searchsorted(starts, i, side="right") - 1 - i


class _IdSet(NamedTuple):
    """Validated token ids (int64), and whether they are sorted."""

    ids: np.ndarray
    sorted: bool


def _is_sorted(ids: np.ndarray) -> bool:
    return bool((ids[1:] >= ids[:-1]).all())


def _member(values: np.ndarray, ids: _IdSet) -> np.ndarray:
    """``np.isin(values, ids.ids)``. A list of word starts is large, the text short: sorting
    the list on every call would dominate, so a sorted list is bisected, another one goes
    through a lookup table when the ids span a modest range."""
    arr = ids.ids
    if arr.shape[0] == 0:
        return np.zeros(values.shape, dtype=bool)
    if ids.sorted:
        at = np.minimum(np.searchsorted(arr, values), arr.shape[0] - 1)
        return arr[at] == values
    if int(arr.max()) - int(arr.min()) < 1 << 24:
        return np.isin(values, arr, kind="table")
    return np.isin(values, arr)


def _check_int(value: object, what: str, lo: int) -> int:
    """``value`` as an int ``>= lo`` (bools refused), else InvalidQueryError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < lo:
        raise InvalidQueryError(f"{what} must be an int >= {lo}, not {value!r}")
    return int(value)


class TextAnalyses(DocumentQueries):
    """Engine methods that analyse a whole text against the corpus in one call."""

    # ------------------------------------------------------------------ public

    def creativity(self, text: Query) -> list[int]:
        """For each position ``i`` of the text, the length of the longest prefix of
        ``text[i:]`` that occurs in the corpus (its *matching statistics*; 0 where the
        token itself never occurs).

        The result ``m`` satisfies ``m[i + 1] >= m[i] - 1``. Empty text: ``[]``. Honours
        takedowns (only the remaining documents count). Cost: that of :meth:`infgram_text`.
        """
        ids = self._as_ids(text, "text", allow_empty=True)
        return _match_lengths(self._text_walk(ids).starts).tolist()

    def creativity_rs(self, text: Query) -> list[int]:
        """:meth:`creativity` in infini-gram's shape: ``rs[i] = i + creativity[i]``, the end
        of the longest match starting at ``i`` (``rs[i] == i``: nothing occurs there).

        infini-gram's own ``creativity`` under-reports a position whose remaining text sorts
        before every suffix of a shard (it then skips both neighbours of the insertion point
        in that shard and reports 0 for it); this one does not (``docs/analyses.md``).
        """
        ids = self._as_ids(text, "text", allow_empty=True)
        m = _match_lengths(self._text_walk(ids).starts)
        return (m + np.arange(m.shape[0])).tolist()

    def infgram_text(self, text: Query) -> InfGramTextResult:
        """The ∞-gram probability of every token of ``text`` given all the tokens before it.

        Entry ``j`` equals ``infgram_prob(text[:j], text[j])`` (``j = 0`` included: the empty
        prompt gives the unigram over all positions, separators included), in one walk:
        O(n) narrowing searches plus O(log L) fresh searches each time the longest suffix
        (of length L) cannot be extended; see ``docs/analyses.md`` for measured costs.
        With taken-down documents, counts and suffixes see only the remaining documents
        (a slower path, searching where a match lies only in removed documents).
        """
        ids = self._as_ids(text, "text", allow_empty=True)
        starts, counts, _ = self._text_walk(ids)
        n = len(ids)
        prompt = counts[:-1]
        # text[S[j]:j+1] occurs iff the longest suffix ending at j+1 starts at S[j] too.
        cont = np.where(starts[1:] == starts[:-1], counts[1:], 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            prob = np.where(prompt > 0, cont / np.maximum(prompt, 1), np.nan)
        arrays = (np.array(ids, dtype=np.int64), np.arange(n, dtype=np.int64) - starts[:-1],
                  prompt, cont, prob)
        for a in arrays:
            a.setflags(write=False)
        return InfGramTextResult(*arrays)

    def attribute(self, text: Query, *, delim_ids: Iterable[int] = (),
                  min_len: int = 1, max_cnt: int = 10, enforce_bow: bool = False,
                  bow_ids: Iterable[int] | None = None, max_docs_per_span: int | None = None,
                  with_context: bool = False, max_ctx_len: int | None = None,
                  decode: bool = True) -> AttributionResult:
        """OLMoTrace's spans: the maximal pieces of ``text`` found verbatim in the corpus at
        most ``max_cnt`` times, with where they occur (infini-gram's ``attribute``).

        For each start ``l`` (only tokens in ``bow_ids`` when ``enforce_bow``), take the
        longest prefix of ``text[l:]`` that occurs; cut it after the first token of
        ``delim_ids`` inside it (not counting its last token); with ``enforce_bow``, shrink it
        until the token after it is in ``bow_ids`` or the text ends. Keep ``(l, l + len)``
        when ``len >= min_len`` and its count is ``<= max_cnt``; of those, keep each span whose
        end is beyond the end of every span kept before it: the kept spans are exactly the
        candidates not contained in another candidate.

        Args:
            delim_ids: token ids a span may end with but not run past.
            min_len: the shortest span kept (tokens, >= 0).
            max_cnt: the most occurrences a kept span may have (>= 1).
            enforce_bow, bow_ids: align spans to word starts (``bow_ids``: the ids that begin
                a word; by default the tokenizer's :meth:`~anygram.tokenization.Tokenizer.
                word_start_ids`, the tokens that begin with whitespace).
            max_docs_per_span: list at most this many occurrences per span (the first in
                corpus order); ``count`` is still exact.
            with_context, max_ctx_len, decode: give each occurrence its document window
                (:meth:`get_doc_by_pos` with ``query_len`` = the span's length).

        Returns spans by increasing start, each with its count, unigram log-probability sum
        and occurrences. Taken-down documents count for nothing and are never listed.
        Cost: the walk of :meth:`infgram_text` (with ``enforce_bow``, over the word starts
        only: a narrowing search per word), which also gives the candidates' counts (a
        search each only for spans a delimiter cut), and O(count) per kept span to locate
        its occurrences.

        Raises:
            InvalidQueryError: a bad id (in ``text``, ``delim_ids`` or ``bow_ids``), a bad
                limit, ``enforce_bow`` without ``bow_ids`` on an index without a tokenizer.
        """
        ids = self._as_ids(text, "text", allow_empty=True)
        delims = self._id_set(delim_ids, "delim_ids")
        min_len = _check_int(min_len, "min_len", 0)
        max_cnt = _check_int(max_cnt, "max_cnt", 1)
        if max_docs_per_span is not None:
            max_docs_per_span = _check_int(max_docs_per_span, "max_docs_per_span", 0)
        if not isinstance(enforce_bow, (bool, np.bool_)):
            raise InvalidQueryError(f"enforce_bow must be a bool, not {enforce_bow!r}")
        if enforce_bow and bow_ids is None:
            if self.tokenizer is None:
                raise InvalidQueryError("enforce_bow=True needs bow_ids (the token ids that "
                                        "begin a word): this index has no tokenizer to tell")
            bow_ids = self.tokenizer.word_start_ids()
        bows = self._id_set(bow_ids if bow_ids is not None else (), "bow_ids")
        n = len(ids)
        if n == 0:
            return AttributionResult(spans=[])
        toks = np.array(ids, dtype=np.int64)
        q = toks.astype(self._dtype).view(np.uint8)  # self._bytes(ids), from the array
        # Spans start and end at cuts: every offset, or the word starts (and the text's end).
        if enforce_bow:
            cuts = np.append(np.flatnonzero(_member(toks, bows)), n)
        else:
            cuts = np.arange(n + 1, dtype=np.int64)
        with self._analysis_caches() as caches:
            walk = self._walk(q, cuts, caches)
            # From each start l (every cut but the last), text[l:c] occurs iff the walk's
            # start at c is <= l: the span runs to the last such cut (longest match, shrunk
            # to a word end with enforce_bow).
            left = cuts[:-1]
            end = np.searchsorted(walk.starts, left, side="right") - 1  # cut indices
            if delims.ids.shape[0]:
                # Cut after the first delimiter at or after l (n: none), back to a cut.
                at = np.where(_member(toks, delims), np.arange(n), n)
                nxt = np.minimum.accumulate(at[::-1])[::-1][left]
                end = np.minimum(end, np.searchsorted(cuts, nxt + 1, side="right") - 1)
            right = cuts[end]
            wanted = right - left >= min_len
            left, right, end = left[wanted], right[wanted], end[wanted]
            # Only a candidate ending beyond every earlier one can be kept: an earlier
            # (l', r') with r' >= r is either kept itself, and (l, r) lies inside it, or
            # occurs more than max_cnt times, and then so does (l, r), which lies inside it.
            # So the others need no count (typically most: runs of starts share an end).
            need = right > np.maximum.accumulate(np.concatenate(([0], right[:-1])))
            left, right, end = left[need], right[need], end[need]
            ranges, counts = self._candidate_ranges(q, walk, left, right, end, caches)
            # Kept: rare enough, and ending beyond every span kept before.
            rare = np.flatnonzero(counts <= max_cnt)
            keep = rare[right[rare] > np.maximum.accumulate(
                np.concatenate(([0], right[rare][:-1])))]
            # The unigram counts of the tokens inside kept spans (kept starts are distinct,
            # and so are kept ends).
            edge = np.zeros(n + 1, dtype=np.int64)
            edge[left[keep]] += 1
            edge[right[keep]] -= 1
            inside = np.flatnonzero(np.cumsum(edge[:-1]) > 0)
            unigram = np.ones(n, dtype=np.int64)
            unigram[inside] = self._span_ranges(q, inside, inside + 1, caches)[1]
        # count([]): every position of the remaining documents, separators included.
        total = sum(a[3] for a in self._arrays) - sum(a[3] for a in self._minus)
        # log(count) - log(total), as infini-gram computes it; a token of a span occurs.
        logp = np.log(np.maximum(unigram, 1)) - math.log(max(total, 1))
        docs = self._spans_docs([(lo[keep], hi[keep]) for lo, hi in ranges], max_docs_per_span)
        logp_list = logp.tolist()  # summed left to right, as infini-gram does
        spans = []
        for a, b, c, found in zip(left[keep].tolist(), right[keep].tolist(),
                                  counts[keep].tolist(), docs):
            if with_context and found:
                windows = self.get_docs_by_pos([(d.shard, d.pos) for d in found],
                                               query_len=b - a, max_ctx_len=max_ctx_len,
                                               decode=decode)
                found = [AttributionDoc(d.shard, d.pos, d.doc_id, w)
                         for d, w in zip(found, windows)]
            spans.append(AttributionSpan(start=a, end=b, count=c,
                                         unigram_logprob_sum=float(sum(logp_list[a:b])),
                                         docs=tuple(found)))
        return AttributionResult(spans=spans)

    # ------------------------------------------------------------------ internals

    def _id_set(self, ids: Iterable[int], what: str) -> _IdSet:
        """A collection of token ids (any iterable, e.g. a set; an int64 array is not
        copied) as an int64 array, validated like a query. Word-start lists hold tens
        of thousands of ids: this checks them with array operations, not one by one."""
        if isinstance(ids, str):
            raise InvalidQueryError(f"{what} must be a collection of token ids, not a str")
        arr = ids if isinstance(ids, np.ndarray) else np.array(list(ids))
        if arr.shape[0] == 0:
            return _IdSet(np.zeros(0, dtype=np.int64), True)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise InvalidQueryError(f"{what} must hold integer token ids, not {arr.dtype} "
                                    f"values")
        # Sorted (as a word-start list usually is): only the ends need a look.
        ordered = _is_sorted(arr)
        lo, hi = (arr[0], arr[-1]) if ordered else (arr.min(), arr.max())
        if lo < 0 or hi >= self.vocab_size:
            # The engine's own check words the error.
            self._as_ids([int(lo if lo < 0 else hi)], what, allow_empty=False)
        return _IdSet(arr.astype(np.int64, copy=False), ordered)

    @contextmanager
    def _analysis_caches(self) -> Iterator[tuple[list[_Caches], list[_Caches]]]:
        """The kernels' caches of the main and takedown shards, held for one call.

        They are shared by all calls and must not be used by two at once: a call that finds
        them busy gets empty ones (same answers, uncached searches) instead of waiting.
        """
        lock = self.__dict__.setdefault("_analysis_lock", threading.Lock())
        if not lock.acquire(blocking=False):
            yield [_NO_CACHES] * len(self._arrays), [_NO_CACHES] * len(self._minus)
            return
        try:
            caches = self.__dict__.get("_analysis_cache_arrays")
            if caches is None:
                # The main shards share the engine's first-token table with count & co.
                main = [(first, *ka.new_caches(0, pair_slots=_pair_slots(a[3]))[1:])
                        for a, first in zip(self._arrays, self._first)]
                minus = [ka.new_caches(self.vocab_size, pair_slots=_pair_slots(a[3]))
                         for a in self._minus]
                caches = (main, minus)
                self.__dict__["_analysis_cache_arrays"] = caches
            yield caches
        finally:
            lock.release()

    def _text_walk(self, ids: list[int]) -> _Walk:
        """The plain walk (every offset a cut) of a text."""
        with self._analysis_caches() as caches:
            return self._walk(self._bytes(ids), np.arange(len(ids) + 1, dtype=np.int64),
                              caches)

    def _walk(self, q: np.ndarray, cuts: np.ndarray,
              caches: tuple[list[_Caches], list[_Caches]]) -> _Walk:
        """The corpus walk of the text ``q`` over ``cuts``, in the remaining documents."""
        w = self.token_width
        main = _combine([ka.suffix_walk(ds, sa, k, w, q, cuts, *cache)[:3]
                         for (ds, sa, k, _), cache in zip(self._arrays, caches[0])], cuts)
        if not self._minus:
            return main
        # Occurrences in removed documents: the takedown index's walk counts text[S[t]:c]
        # wherever its own start is S[t] (a removed document is also in the main index, so
        # its start is never smaller).
        m = cuts.shape[0]
        removed = np.zeros(m, dtype=np.int64)
        for (ds, sa, k, _), cache in zip(self._minus, caches[1]):
            s, _, cnt, _ = ka.suffix_walk(ds, sa, k, w, q, cuts, *cache)
            removed += np.where(s == main.starts, cnt, 0)
        remaining = main.counts - removed
        if (remaining > 0).all():
            return _Walk(main.starts, remaining, main.ranges)
        # Some longest matches lie only in removed documents: move those starts right, cut by
        # cut, until the suffix remains (the start stays non-decreasing), searching the rest
        # afresh.
        first = np.searchsorted(cuts, main.starts)  # the cut index of each main start
        starts = np.empty(m, dtype=np.int64)
        counts = np.empty(m, dtype=np.int64)
        i = 0
        for t in range(m):
            i = max(i, int(first[t]))
            while True:
                if i == first[t]:
                    c = int(remaining[t])
                else:
                    suffix = q[int(cuts[i]) * w:int(cuts[t]) * w]
                    c = self._count(suffix, self._ranges(suffix))
                if c > 0 or i == t:
                    break
                i += 1
            starts[t] = cuts[i]
            counts[t] = c
        return _Walk(starts, counts, None)

    def _span_ranges(self, q: np.ndarray, left: np.ndarray, right: np.ndarray,
                     caches: tuple[list[_Caches], list[_Caches]]
                     ) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
        """Per main shard the rank ranges of the spans ``q[left[i]:right[i]]`` (tokens), and
        their counts in the remaining documents."""
        w = self.token_width
        ranges = [ka.span_ranges(ds, sa, k, w, q, left, right, *c)
                  for (ds, sa, k, _), c in zip(self._arrays, caches[0])]
        counts = np.zeros(left.shape[0], dtype=np.int64)
        for lo, hi in ranges:
            counts += hi - lo
        for (ds, sa, k, _), c in zip(self._minus, caches[1]):
            lo, hi = ka.span_ranges(ds, sa, k, w, q, left, right, *c)
            counts -= hi - lo
        return ranges, counts

    def _candidate_ranges(self, q: np.ndarray, walk: _Walk, left: np.ndarray,
                          right: np.ndarray, end: np.ndarray,
                          caches: tuple[list[_Caches], list[_Caches]]
                          ) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
        """:meth:`_span_ranges` of the spans ``q[left[i]:right[i]]``, ``right[i]`` the cut
        ``end[i]`` of ``walk``: read off the walk where the span is the longest suffix it
        found there (without delimiters, every span that needs a count: the first start
        whose span ends at a cut is that cut's walk start), searched otherwise."""
        if walk.ranges is None:
            return self._span_ranges(q, left, right, caches)
        counts = walk.counts[end]
        ranges = [(lo[end], hi[end]) for lo, hi in walk.ranges]
        other = np.flatnonzero(walk.starts[end] != left)
        if other.shape[0]:
            found, c = self._span_ranges(q, left[other], right[other], caches)
            counts[other] = c
            for (lo, hi), (flo, fhi) in zip(ranges, found):
                lo[other] = flo
                hi[other] = fhi
        return ranges, counts

    def _spans_docs(self, ranges: list[tuple[np.ndarray, np.ndarray]],
                    limit: int | None) -> list[list[AttributionDoc]]:
        """For each span ``i``, its occurrences in the rank ranges ``ranges[shard][.][i]``
        outside removed documents, in corpus order (shard, then position), at most
        ``limit``. One position and one document lookup per shard for all spans."""
        m = ranges[0][0].shape[0] if ranges else 0
        w = self.token_width
        found: list[tuple[np.ndarray, ...]] = []  # (span, shard, pos, doc id) per shard
        for s, ((_, sa, k, _), (lo, hi)) in enumerate(zip(self._arrays, ranges)):
            sizes = np.maximum(hi - lo, 0)
            span = np.repeat(np.arange(m), sizes)
            if span.shape[0] == 0:
                continue
            # The ranks lo[i]..hi[i]-1 of every span, one after the other.
            ranks = np.arange(span.shape[0]) + (lo - (np.cumsum(sizes) - sizes))[span]
            pos = kernels.positions_at(sa, k, w, ranks)
            local = self.docs_at(s, pos)
            if self._minus:  # drop the occurrences in taken-down documents
                keep = ~self.is_removed(s, local)
                span, pos, local = span[keep], pos[keep], local[keep]
            found.append((span, np.full(span.shape[0], s), pos, local + self.doc_id(s, 0)))
        if not found:
            return [[] for _ in range(m)]
        span, shard, pos, doc = (np.concatenate(x) for x in zip(*found))
        order = np.lexsort((pos, shard, span))
        span = span[order]
        bounds = np.searchsorted(span, np.arange(m + 1)).tolist()  # span i: [bounds[i], ..[i+1])
        if limit is not None:  # the first `limit` occurrences of each span
            nth = np.arange(order.shape[0]) - np.asarray(bounds)[span]
            order = order[nth < limit]
            bounds = np.searchsorted(span[nth < limit], np.arange(m + 1)).tolist()
        found_docs = [AttributionDoc(s, p, d) for s, p, d in
                      zip(shard[order].tolist(), pos[order].tolist(), doc[order].tolist())]
        return [found_docs[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
