"""Documents: ``get_doc*`` (and their ``_2`` and batch forms), ``search_docs`` and
``search_docs_cnf``, answered as infini-gram's ``DocResult`` dicts."""

from __future__ import annotations

import bisect
from typing import Any

from ..errors import AnygramError
from ..query.results import DocWindow
from ._base import _Base, _positive_int


class _DocumentsMixin(_Base):
    """The document fetches and searches, and the ``DocResult`` reshaping they share."""

    # ------------------------------------------------------------------ documents: reshaping

    def _doc(self, win: DocWindow) -> dict[str, Any]:
        """An anygram :class:`DocWindow` as infini-gram's ``DocResult`` dict."""
        local = win.doc_id - self.native.doc_id(win.shard, 0)
        doc_ix = self._ig_doc_base[self._ig_shard_of[win.shard]] + local
        if win.removed:
            return {"doc_ix": doc_ix, "doc_len": win.doc_len, "disp_len": 0,
                    "needle_offset": 0, "metadata": "", "token_ids": [], "blocked": True}
        return {"doc_ix": doc_ix, "doc_len": win.doc_len, "disp_len": len(win.token_ids),
                "needle_offset": 0 if win.match_offset is None else win.match_offset,
                "metadata": win.metadata_line or "",
                "token_ids": win.token_ids, "blocked": False}  # a fresh list: no copy

    def _page_args(self, maxnum: Any, max_disp_len: Any) -> tuple[int, int] | dict[str, str]:
        """``(maxnum, max_disp_len)`` of a search, defaults filled in, or an error dict."""
        if maxnum is None:
            maxnum = self.maxnum
        if not _positive_int(maxnum):
            return {"error": "maxnum must be a positive integer"}
        disp = self._disp_len(max_disp_len)
        return disp if isinstance(disp, dict) else (maxnum, disp)

    def _disp_len(self, max_disp_len: Any) -> int | dict[str, str]:
        if max_disp_len is None:
            max_disp_len = self.max_disp_len
        if not _positive_int(max_disp_len):
            return {"error": "max_disp_len must be a positive integer"}
        return max_disp_len

    def _rank(self, s: Any, rank: Any) -> tuple[int, int] | dict[str, str]:
        shard = self._shard(s)
        if isinstance(shard, dict):
            return shard
        tok_cnt = self.native.shards[shard].num_positions
        if not (type(rank) is int and 0 <= rank < tok_cnt):
            # (sic: infini-gram's message says ptr)
            return {"error": f"ptr must be an integer in range [0, {tok_cnt})"}
        return shard, rank

    def _ptr(self, s: Any, ptr: Any) -> tuple[int, int] | dict[str, str]:
        """``(our shard, token position)`` of a byte pointer, or an error (misaligned too)."""
        shard = self._shard(s)
        if isinstance(shard, dict):
            return shard
        w = self.native.token_width
        ds_size = self.native.shards[shard].num_positions * w
        if not (type(ptr) is int and 0 <= ptr < ds_size and ptr % w == 0):
            what = "an even integer" if w == 2 else (
                "an integer" if w == 1 else f"a multiple of {w} (the token width)")
            return {"error": f"ptr must be {what} in range [0, {ds_size})"}
        return shard, ptr // w

    def _doc_ix(self, doc_ix: Any) -> int | dict[str, str]:
        """infini-gram's ``doc_ix`` as our global document id, or an error."""
        total = self._ig_doc_base[-1]
        if not (type(doc_ix) is int and 0 <= doc_ix < total):
            return {"error": f"doc_ix must be an integer in range [0, {total})"}
        ig = bisect.bisect_right(self._ig_doc_base, doc_ix) - 1
        return self.native.doc_id(self._shard_order[ig], doc_ix - self._ig_doc_base[ig])

    @staticmethod
    def _ctx(needle_len: Any, max_ctx_len: Any) -> dict[str, str] | None:
        if not (type(needle_len) is int and needle_len >= 0):
            return {"error": "needle_len must be a non-negative integer"}
        return _DocumentsMixin._ctx_only(max_ctx_len)

    @staticmethod
    def _ctx_only(max_ctx_len: Any) -> dict[str, str] | None:
        if not (type(max_ctx_len) is int and max_ctx_len >= 0):
            return {"error": "max_ctx_len must be a non-negative integer"}
        return None

    @staticmethod
    def _pairs(requests: Any, size: int) -> list[tuple[Any, ...]] | dict[str, str]:
        if not (type(requests) is list and all(
                isinstance(r, (list, tuple)) and len(r) == size for r in requests)):
            return {"error": f"requests must be a list of {size}-tuples"}
        return [tuple(r) for r in requests]

    def _windows(self, fetch: Any, *args: Any, **kwargs: Any) -> list[dict[str, Any]] | dict:
        try:
            return [self._doc(w) for w in fetch(*args, decode=False, **kwargs)]
        except AnygramError as e:
            return {"error": str(e)}

    def _by_pos(self, requests: list[tuple[int, int]], *, ranks: bool, query_len: int = 0,
                max_disp_len: int | None = None, max_ctx_len: int | None = None
                ) -> list[dict[str, Any]] | dict[str, str]:
        if not requests:
            return []
        fetch = self.native.get_docs_by_rank if ranks else self.native.get_docs_by_pos
        return self._windows(fetch, requests, query_len=query_len,
                             max_disp_len=max_disp_len, max_ctx_len=max_ctx_len)

    def _by_pos_2(self, requests: Any, ranks: bool) -> list[dict[str, Any]] | dict[str, str]:
        """The ``_2`` batches: one fetch per distinct ``(needle_len, max_ctx_len)``."""
        reqs = self._pairs(requests, 4)
        if isinstance(reqs, dict):
            return reqs
        located = []
        for s, x, needle_len, max_ctx_len in reqs:
            err = self._ctx(needle_len, max_ctx_len)
            if err is not None:
                return err
            at = self._rank(s, x) if ranks else self._ptr(s, x)
            if isinstance(at, dict):
                return at
            located.append((at, needle_len, max_ctx_len))
        out: list[dict[str, Any] | None] = [None] * len(located)
        for key in dict.fromkeys((n, c) for _, n, c in located):
            idx = [i for i, (_, n, c) in enumerate(located) if (n, c) == key]
            got = self._by_pos([located[i][0] for i in idx], ranks=ranks, query_len=key[0],
                               max_ctx_len=key[1])
            if isinstance(got, dict):
                return got
            for i, d in zip(idx, got):
                out[i] = d
        return out  # type: ignore[return-value]

    # ------------------------------------------------------------------ documents

    def get_doc_by_rank(self, s: int, rank: int, max_disp_len: int | None = None
                        ) -> dict[str, Any]:
        """``DocResult`` of the occurrence at suffix-array ``rank`` of shard ``s``: a window of
        ``max_disp_len // 2`` tokens before it and ``ceil(max_disp_len / 2)`` from it,
        clipped to its document."""
        got = self.get_docs_by_ranks([(s, rank)], max_disp_len)
        return got if isinstance(got, dict) else got[0]

    def get_docs_by_ranks(self, list_of_s_and_rank: list[tuple[int, int]],
                          max_disp_len: int | None = None) -> Any:
        """:meth:`get_doc_by_rank` of each ``(s, rank)`` (all checked first)."""
        return self._docs_at(list_of_s_and_rank, self._rank, True, max_disp_len)

    def get_doc_by_ptr(self, s: int, ptr: int, max_disp_len: int | None = None
                       ) -> dict[str, Any]:
        """``DocResult`` of the token at **byte** offset ``ptr`` of shard ``s`` (a multiple of
        the token width), windowed as :meth:`get_doc_by_rank`."""
        got = self.get_docs_by_ptrs([(s, ptr)], max_disp_len)
        return got if isinstance(got, dict) else got[0]

    def get_docs_by_ptrs(self, list_of_s_and_ptr: list[tuple[int, int]],
                         max_disp_len: int | None = None) -> Any:
        """:meth:`get_doc_by_ptr` of each ``(s, ptr)`` (all checked first)."""
        return self._docs_at(list_of_s_and_ptr, self._ptr, False, max_disp_len)

    def _docs_at(self, pairs: list[tuple[int, int]], locate: Any, ranks: bool,
                 max_disp_len: int | None) -> Any:
        """Windows of ``(s, rank)`` or ``(s, ptr)`` pairs, located by ``locate``; the first
        invalid argument gives its error dict and nothing is read."""
        disp = self._disp_len(max_disp_len)
        if isinstance(disp, dict):
            return disp
        reqs = self._pairs(pairs, 2)
        if isinstance(reqs, dict):
            return reqs
        located = []
        for s, x in reqs:
            at = locate(s, x)
            if isinstance(at, dict):
                return at
            located.append(at)
        return self._by_pos(located, ranks=ranks, max_disp_len=disp)

    def get_doc_by_ix(self, doc_ix: int, max_disp_len: int | None = None) -> dict[str, Any]:
        """``DocResult`` of the first ``max_disp_len`` tokens of document ``doc_ix``."""
        got = self.get_docs_by_ixs([doc_ix], max_disp_len)
        return got if isinstance(got, dict) else got[0]

    def get_docs_by_ixs(self, list_of_doc_ix: list[int],
                        max_disp_len: int | None = None) -> Any:
        """:meth:`get_doc_by_ix` of each id (all checked first)."""
        disp = self._disp_len(max_disp_len)
        if isinstance(disp, dict):
            return disp
        return self._by_ixs([(d, disp) for d in list_of_doc_ix]
                            if type(list_of_doc_ix) is list else list_of_doc_ix)

    def _by_ixs(self, requests: Any) -> Any:
        reqs = self._pairs(requests, 2)
        if isinstance(reqs, dict):
            return {"error": "list_of_doc_ix must be a list of integers"} \
                if type(requests) is not list else reqs
        ids: list[tuple[int, int]] = []
        for doc_ix, n in reqs:
            err = self._ctx_only(n)
            if err is not None:
                return err
            got = self._doc_ix(doc_ix)
            if isinstance(got, dict):
                return got
            ids.append((got, n))
        out: list[dict[str, Any] | None] = [None] * len(ids)
        for n in dict.fromkeys(n for _, n in ids):
            idx = [i for i, (_, m) in enumerate(ids) if m == n]
            windows = self._windows(self.native.get_docs, [ids[i][0] for i in idx],
                                    max_tokens=n)
            if isinstance(windows, dict):
                return windows
            for i, d in zip(idx, windows):
                out[i] = d
        return out

    def get_doc_by_rank_2(self, s: int, rank: int, needle_len: int,
                          max_ctx_len: int) -> dict[str, Any]:
        """``DocResult`` of ``[pos - max_ctx_len, pos + needle_len + max_ctx_len)`` around the
        occurrence at ``rank``, clipped to its document."""
        got = self.get_docs_by_ranks_2([(s, rank, needle_len, max_ctx_len)])
        return got if isinstance(got, dict) else got[0]

    def get_docs_by_ranks_2(self, requests: list[tuple[int, int, int, int]]) -> Any:
        """:meth:`get_doc_by_rank_2` of each ``(s, rank, needle_len, max_ctx_len)``."""
        return self._by_pos_2(requests, ranks=True)

    def get_doc_by_ptr_2(self, s: int, ptr: int, needle_len: int,
                         max_ctx_len: int) -> dict[str, Any]:
        """:meth:`get_doc_by_rank_2` at a **byte** offset (a multiple of the token width)."""
        got = self.get_docs_by_ptrs_2([(s, ptr, needle_len, max_ctx_len)])
        return got if isinstance(got, dict) else got[0]

    def get_docs_by_ptrs_2(self, requests: list[tuple[int, int, int, int]]) -> Any:
        """:meth:`get_doc_by_ptr_2` of each ``(s, ptr, needle_len, max_ctx_len)``."""
        return self._by_pos_2(requests, ranks=False)

    def get_doc_by_ix_2(self, doc_ix: int, max_ctx_len: int) -> dict[str, Any]:
        """``DocResult`` of the first ``max_ctx_len`` tokens of document ``doc_ix`` (as
        infini-gram: the name is misleading)."""
        got = self.get_docs_by_ixs_2([(doc_ix, max_ctx_len)])
        return got if isinstance(got, dict) else got[0]

    def get_docs_by_ixs_2(self, requests: list[tuple[int, int]]) -> Any:
        """:meth:`get_doc_by_ix_2` of each ``(doc_ix, max_ctx_len)``."""
        return self._by_ixs(requests)

    # ------------------------------------------------------------------ search

    def search_docs(self, input_ids: list[int], maxnum: int | None = None,
                    max_disp_len: int | None = None, *, seed: int = 0) -> dict[str, Any]:
        """``{'cnt', 'approx', 'idxs', 'documents'}``: the exact count of a phrase and up to
        ``maxnum`` of its occurrences as ``DocResult`` windows (as :meth:`get_doc_by_rank`).

        Unlike infini-gram, which samples ``maxnum`` occurrences **with replacement** from an
        unseeded RNG, the hits are **distinct** (``min(maxnum, cnt)`` of them) and come in a
        reproducible pseudo-random order fixed by ``seed`` (anygram's seeded permutation);
        ``idxs`` are their indices in that order (``[0, 1, ...]``). Occurrences inside
        taken-down documents are not counted. The empty query gives an error dict.
        """
        page = self._page_args(maxnum, max_disp_len)
        if isinstance(page, dict):
            return page
        maxnum, disp = page
        if not self._ids_ok(input_ids):
            return self._ids_error("input_ids")
        try:
            r = self.native.search_docs(input_ids, max_docs=maxnum, order="random", seed=seed,
                                        max_disp_len=disp, decode=False)
        except AnygramError as e:
            return {"error": str(e)}
        return {"cnt": r.count, "approx": r.approx,
                "idxs": list(range(r.offset, r.offset + len(r.hits))),
                "documents": [self._doc(h) for h in r.hits]}
