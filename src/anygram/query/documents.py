"""Document retrieval and document search: :class:`DocumentSearch`.

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
from ..shards import Occurrences, merge
from .core import Query, Searcher
from .results import DocWindow, DocWindows, SearchResult

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


def window_spec(max_disp_len: int | None, max_ctx_len: int | None) -> _Window:
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


class DocumentSearch:
    """Documents by id, by position and by suffix-array rank, and phrase search, over a
    :class:`~anygram.query.core.Searcher` (the public methods are :class:`anygram.Engine`'s,
    documented there)."""

    def __init__(self, core: Searcher) -> None:
        self._core = core

    # ------------------------------------------------------------------ retrieval

    def get_docs(self, doc_ids: Sequence[int] | np.ndarray, max_tokens: int | None,
                 decode: bool) -> list[DocWindow]:
        if isinstance(doc_ids, np.ndarray):
            doc_ids = doc_ids.tolist()
        if isinstance(doc_ids, (str, bytes)) or not isinstance(doc_ids, Sequence):
            raise InvalidQueryError(f"doc_ids must be a list of ints, not "
                                    f"{type(doc_ids).__name__}")
        limit = None if max_tokens is None else _check_int(max_tokens, "max_tokens", 0)
        # A document prefix is a window anchored at the document start with nothing before.
        window = _Window(0, limit if limit is not None else _UNBOUNDED, around_match=False)
        located = [self._core.locate_doc(d) for d in doc_ids]
        shards = np.array([s for s, _ in located], dtype=np.int64)
        local = np.array([d for _, d in located], dtype=np.int64)
        return self.windows(shards, local, None, 0, window, decode)

    def get_docs_by_pos(self, requests: Sequence[tuple[int, int]] | np.ndarray,
                        query_len: int, max_disp_len: int | None, max_ctx_len: int | None,
                        decode: bool) -> list[DocWindow]:
        qlen = _check_int(query_len, "query_len", 0)
        window = window_spec(max_disp_len, max_ctx_len)
        shards, pos = self._requests(requests, "pos")
        local = self._docs_of(shards, pos, pos, "pos")
        return self.windows(shards, local, pos, qlen, window, decode)

    def get_docs_by_rank(self, requests: Sequence[tuple[int, int]] | np.ndarray,
                         query_len: int, max_disp_len: int | None, max_ctx_len: int | None,
                         decode: bool) -> list[DocWindow]:
        qlen = _check_int(query_len, "query_len", 0)
        window = window_spec(max_disp_len, max_ctx_len)
        shards, ranks = self._requests(requests, "rank")
        pos = self._core.shards.positions_at(shards, ranks)
        local = self._docs_of(shards, pos, ranks, "rank")
        return self.windows(shards, local, pos, qlen, window, decode)

    # ------------------------------------------------------------------ search

    def search(self, query: Query, max_docs: int, offset: int, order: Order, seed: int,
               max_disp_len: int | None, max_ctx_len: int | None, max_sorted: int,
               decode: bool) -> SearchResult:
        core = self._core
        ids = core.ids(query, "query", allow_empty=False)
        max_docs = _check_int(max_docs, "max_docs", 0)
        offset = _check_int(offset, "offset", 0)
        if order not in ORDERS:
            raise InvalidQueryError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
            raise InvalidQueryError(f"seed must be an int, not {type(seed).__name__}")
        max_sorted = _check_int(max_sorted, "max_sorted", 1)
        window = window_spec(max_disp_len, max_ctx_len)

        q = core.bytes(ids)
        # Occurrences in taken-down documents are filtered out, which locates every
        # occurrence of a shard that has some, O(count); the takedown index tells first, in
        # O(|q| log), whether any occurrence is removed at all (usually none is).
        filtered = core.takedown is None or core.removed_count(q) > 0
        occ = core.shards.occurrences(core.ranges(q), filtered)
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
            shards, ranks = merge.ranks_of(occ, seq)
            pos = core.shards.positions_at(shards, ranks)
        hits = self.windows(shards, None, pos, len(ids), window, decode)
        return SearchResult(count=count, hits=hits, offset=offset,
                            next_offset=offset + n if offset + n < count else None)

    # ------------------------------------------------------------------ windows

    def windows(self, shards: np.ndarray, local: np.ndarray | None,
                match_pos: np.ndarray | None, query_len: int, window: _Window,
                decode: bool) -> list[DocWindow]:
        """One :class:`DocWindow` per ``(shards[i], local[i])``, around ``match_pos[i]``.

        Without ``match_pos`` each window is anchored at its document's first token; without
        ``local`` (a search's hits) the documents are those holding ``match_pos``. The shard
        layer cuts every window of a shard in one kernel call (documents, bounds, metadata
        ranges and tokens): the Python work left per window is slicing the page and building
        its result.
        """
        core = self._core
        n = shards.shape[0]
        anchor = np.full(n, -1, dtype=np.int64) if match_pos is None else match_pos
        out: list[DocWindow | None] = [None] * n
        tok = core.tokenizer if decode else None
        for s, sel, (table, tokens, hide, text_md) in core.shards.windows(
                shards, local, anchor, query_len, window.before, window.after,
                window.around_match):
            base = core.doc_base[s]
            rows = table.tolist()
            page = tokens.view(core.dtype)
            if tok is not None:
                tok.check_range(page)  # once for the page: each window then decodes unchecked
            at = range(n) if isinstance(sel, slice) else sel.tolist()
            anchors = [None] * len(rows) if match_pos is None else anchor[sel].tolist()
            gone = hide.tolist() if hide.shape[0] else [False] * len(rows)
            cut = 0
            for i, (doc_id, doc_len, start, ntok, moff, mlen, m_lo, m_hi), mp, hidden in zip(
                    at, rows, anchors, gone):
                if hidden:
                    out[i] = DocWindow(base + doc_id, s, doc_len, 0, [], None, False, mp, None,
                                       0, None, True)
                    continue
                ids = page[cut:cut + ntok]
                cut += ntok
                text, lossy = None, False
                if tok is not None:
                    ids = ids.tolist()  # decoding needs the list: the window keeps it
                    text = tok.decode(ids, checked=False)
                    lossy = "\ufffd" in text
                # The token ids and the metadata line are materialised when first read.
                out[i] = DocWindow(base + doc_id, s, doc_len, start, ids, text, lossy, mp,
                                   None if moff < 0 else moff, mlen,
                                   None if text_md is None else text_md[m_lo:m_hi])
        return DocWindows(out)  # type: ignore[arg-type]  # every slot was filled

    # ------------------------------------------------------------------ helpers

    def _requests(self, requests: object, what: str) -> tuple[np.ndarray, np.ndarray]:
        """``(shards, values)`` of validated ``(shard, pos)`` or ``(shard, rank)`` pairs.

        Positions and ranks both run over ``0..num_positions-1`` of their shard.
        """
        pairs = _pairs(requests, what)
        sizes = self._core.shards.sizes
        shards = [_check_int(s, "shard", 0, len(sizes)) for s, _ in pairs]
        values = [_check_int(v, f"{what} of shard {s}", 0, sizes[s].num_positions)
                  for s, (_, v) in zip(shards, pairs)]
        return np.array(shards, dtype=np.int64), np.array(values, dtype=np.int64)

    def _docs_of(self, shards: np.ndarray, pos: np.ndarray, values: np.ndarray,
                 what: str) -> np.ndarray:
        """The local document holding each ``(shards[i], pos[i])``, with InvalidQueryError
        for a position that is a separator. ``values`` and ``what`` are what the caller
        asked for (positions or ranks), for the error message."""
        group = self._core.shards
        local = group.docs_at(shards, pos)
        # A document's separator sits at the position recorded for it.
        bad = np.flatnonzero(group.doc_starts(shards, local) == pos)
        if bad.shape[0]:
            i = int(bad[0])
            s = int(shards[i])
            raise InvalidQueryError(
                f"{what} {int(values[i])} of shard {s} points at the separator before "
                f"document {self._core.doc_id(s, int(local[i]))}, not at a token (that "
                f"document's tokens start at position {int(pos[i]) + 1})")
        return local

    def _page_by_position(self, occ: list[Occurrences], offset: int, n: int
                          ) -> tuple[np.ndarray, np.ndarray]:
        """``(shards, positions)`` of occurrences ``[offset, offset + n)`` in corpus order."""
        group = self._core.shards
        shards, pos = [], []
        for s, lo, hi in merge.page_slices([o.visible for o in occ], offset, n):
            o = occ[s]
            if hi * _HEAP_FRACTION > o.visible:  # a deep page: fewer than 8 (page end)
                located = o.positions if o.positions is not None else \
                    group.positions(s, o.start, o.start + o.visible)
                page = _sorted_slice(located, lo, hi)
            elif o.positions is not None:  # filtered around taken-down documents
                page = kernels.smallest(o.positions, hi)[lo:]
            else:  # an early page: one pass over the table, whatever the count
                page = group.smallest_positions(s, o.start, o.start + o.visible, hi)[lo:]
            shards.append(np.full(page.shape[0], s, dtype=np.int64))
            pos.append(page)
        if not pos:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(shards), np.concatenate(pos)
