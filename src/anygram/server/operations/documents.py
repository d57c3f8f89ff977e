"""The document routes: phrase search, and a document by id."""

from __future__ import annotations

from typing import Any

from .. import models as m
from ..common import Operation, answer, check_max, check_window, page_size, query_ids, spans
from ..errors import DocumentNotFoundError, LimitExceededError
from ..indexes import ServedIndex
from ..limits import ServerLimits


def op_search(ix: ServedIndex, req: m.SearchRequest, limits: ServerLimits) -> dict[str, Any]:
    max_docs = page_size(req, limits)
    check_window(req, limits)
    ids = query_ids(ix, req, limits)
    if req.order == "position" and ids:
        n = ix.engine.count(ids).count
        if n > limits.max_sorted:
            raise LimitExceededError(f"the query occurs {n:,} times; order=position sorts at "
                                     f"most {limits.max_sorted:,} on this server: use "
                                     "order=random or order=rank")
    r = ix.engine.search_docs(ids, max_docs=max_docs, offset=req.offset, order=req.order,
                              seed=req.seed, max_disp_len=req.max_disp_len,
                              max_ctx_len=req.max_ctx_len)
    d = r.to_dict()
    for hit, h in zip(r.hits, d["hits"]):
        mark = (hit.match_offset, hit.match_len) if hit.match_offset is not None else None
        h["spans"] = spans(ix, hit.token_ids, [[ids]], mark)
    return answer(ix, ids, d)


def op_get_doc(ix: ServedIndex, doc_id: int, req: m.DocRequest,
               limits: ServerLimits) -> dict[str, Any]:
    if not 0 <= doc_id < ix.engine.num_docs:
        raise DocumentNotFoundError(f"no document {doc_id} in index {ix.name!r}: its "
                                    f"documents are 0..{ix.engine.num_docs - 1}")
    max_tokens = limits.default_disp_len if req.max_tokens is None else req.max_tokens
    check_max("max_tokens", max_tokens, limits.max_disp_len)
    return {"ok": True, "index": ix.name,
            **ix.engine.get_doc(doc_id, max_tokens=max_tokens).to_dict()}


OPERATIONS = (
    Operation(
        "search", m.SearchRequest, op_search, m.SearchAnswer, "Search documents",
        "The exact count of a phrase and one page of its occurrences, each with its "
        "document window; `spans` cut the window into matched and unmatched text. Pages "
        "are distinct and reproducible (order=random is seeded).", lane="heavy"),
)
