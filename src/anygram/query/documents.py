"""Document retrieval and document search (mixed into :class:`anygram.Engine`).

Terms: ``pos`` is a token position in a shard's token array (separators included: position 0
is the first document's separator), ``rank`` an index into a shard's suffix array, and
``doc_id`` the global document number (shards in order). Windows are cut from documents
with one of infini-gram's two conventions:

- ``max_ctx_len=c`` (the default, ``c=100``): ``[pos - c, pos + query_len + c)``, so the whole
  match is always in the window;
- ``max_disp_len=d``: ``d // 2`` tokens before the match start and ``ceil(d / 2)`` from it
  (the match is cut when it is longer than that);

both clipped to the document (a window never holds a separator).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple, get_args

import numpy as np

from .. import kernels
from ..errors import InvalidQueryError
from .core import EngineCore, Query
from .results import DocWindow, SearchResult

Order = Literal["position", "random", "rank"]
ORDERS: tuple[str, ...] = get_args(Order)

#: Context tokens on each side of a match when neither max_ctx_len nor max_disp_len is given.
DEFAULT_MAX_CTX_LEN = 100
#: order="position" reads every occurrence (~1 ns each): refused above this many (use
#: "random" or "rank").
DEFAULT_MAX_SORTED = 50_000_000

_U64 = (1 << 64) - 1
# order="position" picks the first pages of a shard's occurrences with a bounded heap (one
# pass) while the page ends before count / this; beyond, partitioning is cheaper.
_HEAP_FRACTION = 8
_UNBOUNDED = 1 << 62  # a window reach longer than any document, that fits the kernels' int64


class _Window(NamedTuple):
    """How far a window reaches around a match that starts at ``pos``."""

    before: int  # tokens kept before pos
    after: int  # tokens kept from pos on, or from the end of the match when around_match
    around_match: bool


def _check_int(value: object, what: str, lo: int, hi: int | None = None) -> int:
    """``value`` as an int in ``[lo, hi)`` (``hi=None``: unbounded), else InvalidQueryError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InvalidQueryError(f"{what} must be an int, not {type(value).__name__} {value!r}")
    v = int(value)
    if v < lo or (hi is not None and v >= hi):
        valid = f"{lo}..{hi - 1}" if hi is not None else f">= {lo}"
        if hi is not None and hi <= lo:
            valid = "none: it is empty"
        raise InvalidQueryError(f"{what} is {v}; valid values are {valid}")
    return v


def _window_spec(max_disp_len: int | None, max_ctx_len: int | None) -> _Window:
    """The window convention chosen by the caller (see the module docstring)."""
    if max_disp_len is not None and max_ctx_len is not None:
        raise InvalidQueryError("give max_disp_len (a window of that many tokens around the "
                                "match start) or max_ctx_len (tokens on each side of the "
                                "match), not both")
    if max_disp_len is not None:
        d = _check_int(max_disp_len, "max_disp_len", 1)
        return _Window(d // 2, d - d // 2, around_match=False)
    c = DEFAULT_MAX_CTX_LEN if max_ctx_len is None else _check_int(max_ctx_len, "max_ctx_len", 0)
    return _Window(c, c, around_match=True)


def _pairs(requests: object, what: str) -> list[tuple[object, object]]:
    """``requests`` as a list of ``(shard, value)`` pairs, else InvalidQueryError."""
    if isinstance(requests, np.ndarray):
        if requests.ndim != 2 or requests.shape[1] != 2:
            raise InvalidQueryError(f"requests must be (shard, {what}) pairs: an array of shape "
                                    f"(n, 2), not {requests.shape}")
        requests = requests.tolist()
    if isinstance(requests, (str, bytes)) or not isinstance(requests, Sequence):
        raise InvalidQueryError(f"requests must be a list of (shard, {what}) pairs, not "
                                f"{type(requests).__name__}")
    pairs = []
    for r in requests:
        if isinstance(r, np.ndarray):
            r = r.tolist()
        if not isinstance(r, (tuple, list)) or len(r) != 2:
            raise InvalidQueryError(f"each request must be a (shard, {what}) pair, not {r!r}")
        pairs.append((r[0], r[1]))
    return pairs


def _sorted_slice(values: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """``np.sort(values)[lo:hi]`` of distinct values in O(len(values) + (hi - lo) log)."""
    if hi <= lo:
        return values[:0]
    if hi - lo == values.shape[0]:
        return np.sort(values)
    # After partitioning at lo and hi - 1, exactly the wanted values lie between them.
    part = np.partition(values, (lo, hi - 1))
    return np.sort(part[lo:hi])


class _Occurrences(NamedTuple):
    """A query's visible occurrences in one shard, in suffix-array (rank) order."""

    start: int  # first rank of the query's range
    visible: int  # occurrences outside taken-down documents
    ranks: np.ndarray | None  # their ranks when some were filtered out; None: start + 0..visible
    positions: np.ndarray | None  # their positions, when they had to be located to filter


class DocumentQueries(EngineCore):
    """Engine methods that return documents: retrieval by id / rank / position, search."""

    # ------------------------------------------------------------------ retrieval

    def get_doc(self, doc_id: int, *, max_tokens: int | None = None,
                decode: bool = True) -> DocWindow:
        """Document ``doc_id``: all its tokens, or its first ``max_tokens``.

        The window has ``start=0`` and no match (``match_offset`` is None). With
        ``decode=False`` the text is not decoded (``text=None``). O(document length).

        Raises:
            InvalidQueryError: ``doc_id`` is not an int in ``0..num_docs-1``, or
                ``max_tokens`` is negative.
        """
        return self.get_docs([doc_id], max_tokens=max_tokens, decode=decode)[0]

    def get_docs(self, doc_ids: Sequence[int] | np.ndarray, *,
                 max_tokens: int | None = None, decode: bool = True) -> list[DocWindow]:
        """:meth:`get_doc` of each id, in order. Every id is validated before any is read."""
        if isinstance(doc_ids, np.ndarray):
            doc_ids = doc_ids.tolist()
        if isinstance(doc_ids, (str, bytes)) or not isinstance(doc_ids, Sequence):
            raise InvalidQueryError(f"doc_ids must be a list of ints, not "
                                    f"{type(doc_ids).__name__}")
        limit = None if max_tokens is None else _check_int(max_tokens, "max_tokens", 0)
        # A document prefix is a window anchored at the document start with nothing before.
        window = _Window(0, limit if limit is not None else _UNBOUNDED, around_match=False)
        located = [self.locate_doc(d) for d in doc_ids]
        shards = np.array([s for s, _ in located], dtype=np.int64)
        local = np.array([d for _, d in located], dtype=np.int64)
        return self._windows(shards, local, None, 0, window, decode)

    def get_doc_by_pos(self, shard: int, pos: int, *, query_len: int = 0,
                       max_disp_len: int | None = None, max_ctx_len: int | None = None,
                       decode: bool = True) -> DocWindow:
        """The window of the document holding token position ``pos`` of ``shard``.

        ``query_len`` is the length of the match that starts at ``pos`` (clipped to the end of
        its document); the window is cut with ``max_ctx_len`` tokens on each side of the match
        (default 100) or ``max_disp_len`` tokens around its start, clipped to the document.
        O(window length + log documents).

        Raises:
            InvalidQueryError: ``shard`` or ``pos`` out of range (the message gives the range),
                ``pos`` at a document separator, a negative ``query_len``, bad window sizes.
        """
        return self.get_docs_by_pos([(shard, pos)], query_len=query_len,
                                    max_disp_len=max_disp_len, max_ctx_len=max_ctx_len,
                                    decode=decode)[0]

    def get_docs_by_pos(self, requests: Sequence[tuple[int, int]] | np.ndarray, *,
                        query_len: int = 0, max_disp_len: int | None = None,
                        max_ctx_len: int | None = None,
                        decode: bool = True) -> list[DocWindow]:
        """:meth:`get_doc_by_pos` of each ``(shard, pos)`` pair, in order (all checked first)."""
        qlen = _check_int(query_len, "query_len", 0)
        window = _window_spec(max_disp_len, max_ctx_len)
        shards, pos = self._requests(requests, "pos")
        local = self._docs_of(shards, pos, pos, "pos")
        return self._windows(shards, local, pos, qlen, window, decode)

    def get_doc_by_rank(self, shard: int, rank: int, *, query_len: int = 0,
                        max_disp_len: int | None = None, max_ctx_len: int | None = None,
                        decode: bool = True) -> DocWindow:
        """The window of the occurrence at suffix-array ``rank`` of ``shard``.

        Same as :meth:`get_doc_by_pos` at the position stored at that rank (``match_pos``).
        The ranks of a query's occurrences are given by :meth:`find`.

        Raises:
            InvalidQueryError: ``shard`` or ``rank`` out of range, a rank whose suffix starts at
                a document separator, a negative ``query_len``, bad window sizes.
        """
        return self.get_docs_by_rank([(shard, rank)], query_len=query_len,
                                     max_disp_len=max_disp_len, max_ctx_len=max_ctx_len,
                                     decode=decode)[0]

    def get_docs_by_rank(self, requests: Sequence[tuple[int, int]] | np.ndarray, *,
                         query_len: int = 0, max_disp_len: int | None = None,
                         max_ctx_len: int | None = None,
                         decode: bool = True) -> list[DocWindow]:
        """:meth:`get_doc_by_rank` of each ``(shard, rank)`` pair, in order (all checked first)."""
        qlen = _check_int(query_len, "query_len", 0)
        window = _window_spec(max_disp_len, max_ctx_len)
        shards, ranks = self._requests(requests, "rank")
        pos = self._positions_at(shards, ranks)
        local = self._docs_of(shards, pos, ranks, "rank")
        return self._windows(shards, local, pos, qlen, window, decode)

    # ------------------------------------------------------------------ search

    def search_docs(self, query: Query, *, max_docs: int = 10, offset: int = 0,
                    order: Order = "position", seed: int = 0,
                    max_disp_len: int | None = None, max_ctx_len: int | None = None,
                    max_sorted: int = DEFAULT_MAX_SORTED, decode: bool = True) -> SearchResult:
        """The occurrences of a phrase: their exact count and one page of them with windows.

        The occurrences (outside taken-down documents) are put in one of three orders, and
        the page ``[offset, offset + max_docs)`` of that order is returned; hits are distinct
        and the same arguments always give the same page, so paging with ``offset`` (or the
        result's ``next_offset``) visits every occurrence exactly once.

        - ``order="position"``: corpus order, by (shard, position). Reads every occurrence
          of the shards holding the page: O(count) time; memory O(offset + max_docs) for
          early pages, O(count) only for a page past count / 8; refused with
          InvalidQueryError above ``max_sorted`` occurrences (default 50,000,000) unless the
          page is empty.
        - ``order="rank"``: suffix-array order, i.e. grouped by what follows the match.
          O(max_docs) after the search.
        - ``order="random"``: a pseudo-random permutation of the occurrences keyed by
          ``seed`` (a Feistel network over ``[0, count)``): a reproducible uniform-looking
          sample without repeats. O(max_docs) after the search.

        Each hit's window is cut as in :meth:`get_doc_by_pos` with ``query_len=len(query)``
        (``max_ctx_len`` tokens each side, default 100, or ``max_disp_len``);
        ``match_offset`` and ``match_len`` locate the match in it, and ``decode=False``
        skips decoding the text. ``max_docs=0`` gives the count alone. When the query occurs
        inside taken-down documents (one more search, in the takedown index, tells), its
        occurrences in the shards holding them are all located to filter them out
        (O(count in those shards)), whatever the order. The search itself is
        O(|query| log N) per shard.

        >>> r = eng.search_docs("natural language", max_docs=2, order="random")  # doctest: +SKIP
        >>> [h.match_ids == eng.tokenize("natural language") for h in r.hits]  # doctest: +SKIP
        [True, True]

        Raises:
            InvalidQueryError: an empty query, bad ids, ``max_docs``/``offset`` negative, an
                unknown ``order``, a non-int ``seed``, bad window sizes, or ``order="position"``
                with more than ``max_sorted`` occurrences.
        """
        ids = self._as_ids(query, "query", allow_empty=False)
        max_docs = _check_int(max_docs, "max_docs", 0)
        offset = _check_int(offset, "offset", 0)
        if order not in ORDERS:
            raise InvalidQueryError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
            raise InvalidQueryError(f"seed must be an int, not {type(seed).__name__}")
        max_sorted = _check_int(max_sorted, "max_sorted", 1)
        window = _window_spec(max_disp_len, max_ctx_len)

        q = self._bytes(ids)
        occ = self._occurrences(q, self._ranges(q))
        count = sum(o.visible for o in occ)
        n = max(0, min(max_docs, count - offset))
        if order == "position":
            if n and count > max_sorted:
                raise InvalidQueryError(
                    f"the query occurs {count:,} times, more than max_sorted={max_sorted:,} "
                    "that order='position' sorts: use order='random' (a seeded sample) or "
                    "order='rank', or raise max_sorted")
            shards, pos = self._page_by_position(occ, offset, n)
        else:
            seq = np.arange(offset, offset + n, dtype=np.int64)
            if order == "random":
                seq = kernels.permute(seq, count, np.uint64(int(seed) & _U64))
            shards, ranks = _ranks_of(occ, seq)
            pos = self._positions_at(shards, ranks)
        hits = self._windows(shards, None, pos, len(ids), window, decode)
        return SearchResult(count=count, hits=hits, offset=offset,
                            next_offset=offset + n if offset + n < count else None)

    # ------------------------------------------------------------------ helpers

    def _requests(self, requests: object, what: str) -> tuple[np.ndarray, np.ndarray]:
        """``(shards, values)`` of validated ``(shard, pos)`` or ``(shard, rank)`` pairs.

        Positions and ranks both run over ``0..num_positions-1`` of their shard.
        """
        pairs = _pairs(requests, what)
        shards = [_check_int(s, "shard", 0, self.num_shards) for s, _ in pairs]
        values = [_check_int(v, f"{what} of shard {s}", 0, self._shards[s].num_positions)
                  for s, (_, v) in zip(shards, pairs)]
        return np.array(shards, dtype=np.int64), np.array(values, dtype=np.int64)

    def _positions_at(self, shards: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        """Token position stored at each ``(shards[i], ranks[i])``."""
        pos = np.empty(ranks.shape[0], dtype=np.int64)
        for s, sel in _groups(shards):
            sh = self._shards[s]
            pos[sel] = kernels.positions_at(sh.sa, sh.ptr_width, sh.token_width, ranks[sel])
        return pos

    def _docs_at(self, shards: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Local document holding each ``(shards[i], pos[i])``."""
        local = np.empty(pos.shape[0], dtype=np.int64)
        for s, sel in _groups(shards):
            local[sel] = self.docs_at(s, pos[sel])
        return local

    def _docs_of(self, shards: np.ndarray, pos: np.ndarray, values: np.ndarray,
                 what: str) -> np.ndarray:
        """:meth:`_docs_at`, with InvalidQueryError for a position that is a separator.

        ``values`` and ``what`` are what the caller asked for (positions or ranks), for the
        error message.
        """
        local = self._docs_at(shards, pos)
        for s, sel in _groups(shards):
            # A document's separator sits at the byte offset recorded for it.
            seps = self._shards[s].offsets[local[sel]] // np.uint64(self.token_width)
            bad = np.flatnonzero(seps.astype(np.int64) == pos[sel])
            if bad.shape[0]:
                i = int(np.arange(pos.shape[0])[sel][bad[0]])
                raise InvalidQueryError(
                    f"{what} {int(values[i])} of shard {s} points at the separator before "
                    f"document {self.doc_id(s, int(local[i]))}, not at a token (that "
                    f"document's tokens start at position {int(pos[i]) + 1})")
        return local

    def _occurrences(self, q: np.ndarray, ranges: list[tuple[int, int]]
                     ) -> list[_Occurrences]:
        """Per shard, the occurrences of ``q`` (rank range ``ranges[s]``) outside removed docs.

        Filtering locates every occurrence of a shard that has removed documents, O(count);
        the takedown index tells first, in O(|q| log), whether any occurrence is removed at
        all (usually none is), and then nothing is located.
        """
        none_removed = bool(self._minus) and self._removed_count(q) == 0
        out = []
        for s, (a, b) in enumerate(ranges):
            if b <= a or none_removed or self._removed[s].shape[0] == 0:
                out.append(_Occurrences(a, max(b - a, 0), None, None))
                continue
            pos = self.positions(s, a, b)
            keep = ~self._in_removed(s, pos)
            out.append(_Occurrences(a, int(keep.sum()), a + np.flatnonzero(keep), pos[keep]))
        return out

    def _in_removed(self, shard: int, pos: np.ndarray) -> np.ndarray:
        """Whether each token position of ``shard`` lies in a taken-down document.

        Bisects the spans of the removed documents (few) rather than all documents:
        O(len(pos) log removed).
        """
        spans = np.array([self.doc_span(shard, d) for d in self._removed[shard].tolist()],
                         dtype=np.int64).reshape(-1, 2)
        j = np.searchsorted(spans[:, 0], pos, side="right") - 1
        return (j >= 0) & (pos < spans[np.maximum(j, 0), 1])

    def _page_by_position(self, occ: list[_Occurrences], offset: int, n: int
                          ) -> tuple[np.ndarray, np.ndarray]:
        """``(shards, positions)`` of occurrences ``[offset, offset + n)`` in corpus order."""
        shards, pos = [], []
        first = 0  # sequence index of the shard's first occurrence
        for s, o in enumerate(occ):
            lo, hi = max(offset - first, 0), min(offset + n - first, o.visible)
            first += o.visible
            if hi <= lo:
                continue  # this shard holds none of the page: do not locate its occurrences
            if hi * _HEAP_FRACTION > o.visible:  # a deep page: fewer than 8 (page end)
                located = o.positions if o.positions is not None else \
                    self.positions(s, o.start, o.start + o.visible)
                page = _sorted_slice(located, lo, hi)
            elif o.positions is not None:  # filtered around taken-down documents
                page = kernels.smallest(o.positions, hi)[lo:]
            else:  # an early page: one pass over the table, whatever the count
                sh = self._shards[s]
                page = kernels.smallest_positions(sh.sa, sh.ptr_width, sh.token_width,
                                                  o.start, o.start + o.visible, hi)[lo:]
            shards.append(np.full(page.shape[0], s, dtype=np.int64))
            pos.append(page)
        if not pos:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(shards), np.concatenate(pos)

    def _windows(self, shards: np.ndarray, local: np.ndarray | None,
                 match_pos: np.ndarray | None, query_len: int, window: _Window,
                 decode: bool) -> list[DocWindow]:
        """One :class:`DocWindow` per ``(shards[i], local[i])``, around ``match_pos[i]``.

        Without ``match_pos`` each window is anchored at its document's first token; without
        ``local`` (a search's hits) the documents are those holding ``match_pos``. All
        windows of a shard come from one kernel call (documents, bounds, metadata ranges and
        tokens): the Python work left per window is slicing the page and building its result.
        """
        n = shards.shape[0]
        anchor = np.full(n, -1, dtype=np.int64) if match_pos is None else match_pos
        out: list[DocWindow | None] = [None] * n
        for s, sel in _groups(shards):
            sh = self._shards[s]
            loc = np.full(anchor[sel].shape[0], -1, dtype=np.int64) if local is None \
                else local[sel]
            hide = _NO_HIDE
            if self._removed[s].shape[0]:
                if local is None:
                    loc = self.docs_at(s, anchor[sel])
                hide = self.is_removed(s, loc)
            md, mo = sh.metadata, sh.metaoff
            text_md: memoryview | None = None  # slices of a memoryview are the cheapest
            if md is None or mo is None:
                mo = _NO_METAOFF
            else:
                text_md = md.data
            table, tokens = kernels.document_windows(
                sh.ds, sh.token_width, sh.offsets, sh.num_positions, mo,
                0 if text_md is None else len(text_md),
                self._doc_base[s], loc, anchor[sel], hide, query_len, window.before,
                window.after, window.around_match)
            rows = table.tolist()
            page = tokens.view(self._dtype)
            tok = self.tokenizer if decode else None
            if tok is not None:
                tok.check_range(page)  # once for the page: each window then decodes unchecked
            at = range(n) if isinstance(sel, slice) else sel.tolist()
            anchors = [None] * len(rows) if match_pos is None else anchor[sel].tolist()
            gone = hide.tolist() if hide.shape[0] else [False] * len(rows)
            cut = 0
            for i, (doc_id, doc_len, start, ntok, moff, mlen, m_lo, m_hi), mp, hidden in zip(
                    at, rows, anchors, gone):
                if hidden:
                    out[i] = DocWindow(doc_id, s, doc_len, 0, [], None, False, mp, None, 0,
                                       None, True)
                    continue
                ids = page[cut:cut + ntok]
                cut += ntok
                text, lossy = None, False
                if tok is not None:
                    ids = ids.tolist()  # decoding needs the list: the window keeps it
                    text = tok.decode(ids, checked=False)
                    lossy = "\ufffd" in text
                # The token ids and the metadata line are materialised when first read.
                out[i] = DocWindow(doc_id, s, doc_len, start, ids, text, lossy, mp,
                                   None if moff < 0 else moff, mlen,
                                   None if text_md is None else text_md[m_lo:m_hi])
        return out  # type: ignore[return-value]  # every slot was filled


_NO_HIDE = np.zeros(0, dtype=bool)  # document_windows: no window is hidden
_NO_METAOFF = np.zeros(0, dtype=np.uint64)  # document_windows: the shard has no metadata


def _groups(shards: np.ndarray) -> list[tuple[int, np.ndarray | slice]]:
    """``(shard, selector)`` for each distinct shard of ``shards``, ascending.

    A single shard (the common case) selects everything with a slice: no mask, no copy.
    """
    distinct = sorted(set(shards.tolist()))  # a set beats np.unique on the hits of a page
    if len(distinct) == 1:
        return [(distinct[0], slice(None))]
    return [(s, np.flatnonzero(shards == s)) for s in distinct]


def _ranks_of(occ: list[_Occurrences], seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(shards, ranks)`` of positions ``seq`` of the rank-ordered occurrence sequence.

    The sequence runs through the shards in order, each shard's occurrences by rank.
    """
    nonempty = [s for s, o in enumerate(occ) if o.visible]
    if len(nonempty) == 1:  # all in one shard (always so with one shard): no lookup needed
        s = nonempty[0]
        o = occ[s]
        ranks = o.start + seq if o.ranks is None else o.ranks[seq]
        return np.full(seq.shape[0], s, dtype=np.int64), ranks
    counts = np.array([o.visible for o in occ], dtype=np.int64)
    ends = np.cumsum(counts)
    shards = np.searchsorted(ends, seq, side="right").astype(np.int64)
    j = seq - (ends - counts)[shards]  # index inside the shard's occurrences
    ranks = np.array([o.start for o in occ], dtype=np.int64)[shards] + j
    for s, o in enumerate(occ):
        if o.ranks is not None:  # some occurrences were filtered out: look the rank up
            sel = shards == s
            ranks[sel] = o.ranks[j[sel]]
    return shards, ranks
