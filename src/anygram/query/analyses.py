"""Whole-text analyses (:class:`TextAnalyses`): creativity, the per-token ∞-gram of a text, and
attribution spans. Semantics and algorithm: ``docs/analyses.md``.

All three come from one walk over the text per shard (:func:`anygram.kernels.analysis.
suffix_walk`), which gives, for every end ``j = 0..n``, the start ``S[j]`` of the longest
suffix of ``text[:j]`` that occurs in the corpus and its count ``C[j]``:

- the per-token ∞-gram of token ``j`` is read off ``S[j]``, ``C[j]`` and ``C[j + 1]``;
- ``text[i:j]`` occurs iff ``S[j] <= i``, so the longest match starting at ``i`` (creativity)
  ends at the last ``j`` with ``S[j] <= i`` (``S`` is non-decreasing: a binary search);
- attribution cuts those longest matches and keeps the rare, maximal ones; with word starts
  enforced, the walk runs over the word starts only (*cuts*: spans start and end there), and
  the kept candidates' counts and rank ranges are the walk's own.

Shards combine exactly (:func:`anygram.shards.merge.walk`): a string occurs in the corpus iff
it occurs in some shard, so ``S`` is the minimum over shards of their own starts, and ``C[j]``
sums the counts of the shards whose own start is ``S[j]`` (the others do not contain that
suffix).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from ..errors import InvalidQueryError
from ..shards import merge
from .core import Query, Searcher
from .documents import DocumentSearch
from .results import AttributionDoc, AttributionResult, AttributionSpan, InfGramTextResult


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


class TextAnalyses:
    """Analyses of a whole text over a :class:`~anygram.query.core.Searcher` (the public
    methods are :class:`anygram.Engine`'s, documented there)."""

    def __init__(self, core: Searcher, documents: DocumentSearch) -> None:
        self._core = core
        self._documents = documents

    def creativity(self, text: Query) -> np.ndarray:
        """The longest match starting at each position of the text."""
        ids = self._core.ids(text, "text", allow_empty=True)
        return _match_lengths(self._text_walk(ids).starts)

    def infgram_text(self, text: Query) -> InfGramTextResult:
        ids = self._core.ids(text, "text", allow_empty=True)
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

    def attribute(self, text: Query, delim_ids: Iterable[int], min_len: int, max_cnt: int,
                  enforce_bow: bool, bow_ids: Iterable[int] | None,
                  max_docs_per_span: int | None, with_context: bool,
                  max_ctx_len: int | None, decode: bool) -> AttributionResult:
        core = self._core
        ids = core.ids(text, "text", allow_empty=True)
        delims = self._id_set(delim_ids, "delim_ids")
        min_len = _check_int(min_len, "min_len", 0)
        max_cnt = _check_int(max_cnt, "max_cnt", 1)
        if max_docs_per_span is not None:
            max_docs_per_span = _check_int(max_docs_per_span, "max_docs_per_span", 0)
        if not isinstance(enforce_bow, (bool, np.bool_)):
            raise InvalidQueryError(f"enforce_bow must be a bool, not {enforce_bow!r}")
        if enforce_bow and bow_ids is None:
            if core.tokenizer is None:
                raise InvalidQueryError("enforce_bow=True needs bow_ids (the token ids that "
                                        "begin a word): this index has no tokenizer to tell")
            bow_ids = core.tokenizer.word_start_ids()
        bows = self._id_set(bow_ids if bow_ids is not None else (), "bow_ids")
        n = len(ids)
        if n == 0:
            return AttributionResult(spans=[])
        toks = np.array(ids, dtype=np.int64)
        q = toks.astype(core.dtype).view(np.uint8)  # core.bytes(ids), from the array
        # Spans start and end at cuts: every offset, or the word starts (and the text's end).
        if enforce_bow:
            cuts = np.append(np.flatnonzero(_member(toks, bows)), n)
        else:
            cuts = np.arange(n + 1, dtype=np.int64)
        walk = self._walk(q, cuts)
        # From each start l (every cut but the last), text[l:c] occurs iff the walk's start
        # at c is <= l: the span runs to the last such cut (longest match, shrunk to a word
        # end with enforce_bow).
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
        # Only a candidate ending beyond every earlier one can be kept: an earlier (l', r')
        # with r' >= r is either kept itself, and (l, r) lies inside it, or occurs more than
        # max_cnt times, and then so does (l, r), which lies inside it. So the others need no
        # count (typically most: runs of starts share an end).
        need = right > np.maximum.accumulate(np.concatenate(([0], right[:-1])))
        left, right, end = left[need], right[need], end[need]
        ranges, counts = self._candidate_ranges(q, walk, left, right, end)
        # Kept: rare enough, and ending beyond every span kept before.
        rare = np.flatnonzero(counts <= max_cnt)
        keep = rare[right[rare] > np.maximum.accumulate(
            np.concatenate(([0], right[rare][:-1])))]
        # The unigram counts of the tokens inside kept spans (kept starts are distinct, and
        # so are kept ends).
        edge = np.zeros(n + 1, dtype=np.int64)
        edge[left[keep]] += 1
        edge[right[keep]] -= 1
        inside = np.flatnonzero(np.cumsum(edge[:-1]) > 0)
        unigram = np.ones(n, dtype=np.int64)
        unigram[inside] = self._span_ranges(q, inside, inside + 1)[1]
        # count([]): every position of the remaining documents, separators included.
        total = core.num_positions()
        # log(count) - log(total), as infini-gram computes it; a token of a span occurs.
        logp = np.log(np.maximum(unigram, 1)) - math.log(max(total, 1))
        docs = merge.spans_in_order(
            core.shards.span_occurrences([(lo[keep], hi[keep]) for lo, hi in ranges]),
            core.doc_base, int(keep.shape[0]), max_docs_per_span)
        logp_list = logp.tolist()  # summed left to right, as infini-gram does
        spans = []
        for a, b, c, rows in zip(left[keep].tolist(), right[keep].tolist(),
                                 counts[keep].tolist(), docs):
            found = [AttributionDoc(s, p, d) for s, p, d in rows]
            if with_context and found:
                windows = self._documents.get_docs_by_pos(
                    [(d.shard, d.pos) for d in found], b - a, None, max_ctx_len, decode)
                found = [AttributionDoc(d.shard, d.pos, d.doc_id, w)
                         for d, w in zip(found, windows)]
            spans.append(AttributionSpan(start=a, end=b, count=c,
                                         unigram_logprob_sum=sum_in_order(logp_list[a:b]),
                                         docs=tuple(found)))
        return AttributionResult(spans=spans)

    # ------------------------------------------------------------------ internals

    def _id_set(self, ids: Iterable[int], what: str) -> _IdSet:
        """A collection of token ids (any iterable, e.g. a set; an int64 array is not
        copied) as an int64 array, validated like a query. Word-start lists hold tens
        of thousands of ids: this checks them with array operations, not one by one."""
        if isinstance(ids, str):
            raise InvalidQueryError(f"{what} must be a collection of token ids, not a str")
        try:
            arr = ids if isinstance(ids, np.ndarray) else np.array(list(ids))
        except (TypeError, ValueError):  # not iterable, or ragged
            raise InvalidQueryError(f"{what} must be a collection of token ids, not "
                                    f"{type(ids).__name__}") from None
        if arr.ndim == 1 and arr.shape[0] == 0:
            return _IdSet(np.zeros(0, dtype=np.int64), True)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise InvalidQueryError(f"{what} must hold integer token ids, not {arr.dtype} "
                                    f"values")
        # Sorted (as a word-start list usually is): only the ends need a look.
        ordered = _is_sorted(arr)
        lo, hi = (arr[0], arr[-1]) if ordered else (arr.min(), arr.max())
        if lo < 0 or hi >= self._core.vocab_size:
            # The engine's own check words the error.
            self._core.ids([int(lo if lo < 0 else hi)], what, allow_empty=False)
        return _IdSet(arr.astype(np.int64, copy=False), ordered)

    def _text_walk(self, ids: list[int]) -> _Walk:
        """The plain walk (every offset a cut) of a text."""
        return self._walk(self._core.bytes(ids), np.arange(len(ids) + 1, dtype=np.int64))

    def _walk(self, q: np.ndarray, cuts: np.ndarray) -> _Walk:
        """The corpus walk of the text ``q`` over ``cuts``, in the remaining documents."""
        core = self._core
        starts, counts, ranges = merge.walk(core.shards.suffix_walk(q, cuts), cuts)
        if core.takedown is None:
            return _Walk(starts, counts, ranges)
        # Occurrences in removed documents: the takedown index's walk counts text[S[t]:c]
        # wherever its own start is S[t] (a removed document is also in the main index, so
        # its start is never smaller).
        remaining = counts - merge.counts_at(core.takedown.suffix_walk(q, cuts), starts)
        if (remaining > 0).all():
            return _Walk(starts, remaining, ranges)
        # Some longest matches lie only in removed documents: move those starts right, cut by
        # cut, until the suffix remains (the start stays non-decreasing), searching the rest
        # afresh.
        w = core.token_width
        m = cuts.shape[0]
        first = np.searchsorted(cuts, starts)  # the cut index of each corpus start
        fixed = np.empty(m, dtype=np.int64)
        fixed_counts = np.empty(m, dtype=np.int64)
        i = 0
        for t in range(m):
            i = max(i, int(first[t]))
            while True:
                if i == first[t]:
                    c = int(remaining[t])
                else:
                    c = core.search_count(q[int(cuts[i]) * w:int(cuts[t]) * w])
                if c > 0 or i == t:
                    break
                i += 1
            fixed[t] = cuts[i]
            fixed_counts[t] = c
        return _Walk(fixed, fixed_counts, None)

    def _span_ranges(self, q: np.ndarray, left: np.ndarray, right: np.ndarray
                     ) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
        """Per shard the rank ranges of the spans ``q[left[i]:right[i]]`` (tokens), and
        their counts in the remaining documents."""
        core = self._core
        ranges = core.shards.span_ranges(q, left, right)
        counts = merge.span_counts(ranges, left.shape[0])
        if core.takedown is not None:
            counts -= merge.span_counts(core.takedown.span_ranges(q, left, right),
                                        left.shape[0])
        return ranges, counts

    def _candidate_ranges(self, q: np.ndarray, walk: _Walk, left: np.ndarray,
                          right: np.ndarray, end: np.ndarray
                          ) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
        """:meth:`_span_ranges` of the spans ``q[left[i]:right[i]]``, ``right[i]`` the cut
        ``end[i]`` of ``walk``: read off the walk where the span is the longest suffix it
        found there (without delimiters, every span that needs a count: the first start
        whose span ends at a cut is that cut's walk start), searched otherwise."""
        if walk.ranges is None:
            return self._span_ranges(q, left, right)
        counts = walk.counts[end]
        ranges = [(lo[end], hi[end]) for lo, hi in walk.ranges]
        other = np.flatnonzero(walk.starts[end] != left)
        if other.shape[0]:
            found, c = self._span_ranges(q, left[other], right[other])
            counts[other] = c
            for (lo, hi), (flo, fhi) in zip(ranges, found):
                lo[other] = flo
                hi[other] = fhi
        return ranges, counts


def sum_in_order(values: Iterable[float]) -> float:
    """``values`` added left to right, as infini-gram does (Python 3.12's ``sum`` of floats
    compensates its rounding, so its last digits would differ by version)."""
    total = 0.0
    for v in values:
        total += v
    return total
