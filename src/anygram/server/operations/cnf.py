"""The CNF routes: cnf/count, cnf/search, cnf/docs-with-all (``A AND B OR C``)."""

from __future__ import annotations

from typing import Any

from ...errors import InvalidQueryError, TokenizerError
from ...query.cnf import DEFAULT_MAX_CLAUSE_FREQ, DEFAULT_MAX_DIFF_TOKENS
from ...query.text import parse_query
from .. import models as m
from ..common import Operation, check_max, check_text, check_tokens, page_size, spans
from ..errors import LimitExceededError
from ..indexes import ServedIndex
from ..limits import ServerLimits


def cnf_ids(ix: ServedIndex, req: m.CnfRequest, limits: ServerLimits) -> list[list[list[int]]]:
    """The request's CNF as token ids, within the shape and size limits."""
    if req.query is not None:
        check_text(req.query, limits)
        if ix.engine.tokenizer is None:
            raise TokenizerError("this index has no tokenizer: give the CNF as query_ids")
        cnf = parse_query(req.query, ix.engine.tokenizer)  # type: ignore[arg-type]
    else:
        cnf = [[list(p) for p in clause] for clause in req.query_ids or []]
    if len(cnf) > limits.max_cnf_clauses:
        raise LimitExceededError(f"the query has {len(cnf)} clauses (AND); this server takes "
                                 f"at most {limits.max_cnf_clauses}")
    for i, clause in enumerate(cnf):
        if len(clause) > limits.max_cnf_terms:
            raise LimitExceededError(f"clause {i + 1} has {len(clause)} terms (OR); this "
                                     f"server takes at most {limits.max_cnf_terms} per clause")
    check_tokens(sum(len(p) for clause in cnf for p in clause), limits)
    return cnf


def cnf_options(req: m.CnfRequest, limits: ServerLimits) -> dict[str, Any]:
    freq = (min(DEFAULT_MAX_CLAUSE_FREQ, limits.max_clause_freq) if req.max_clause_freq is None
            else req.max_clause_freq)
    check_max("max_clause_freq", freq, limits.max_clause_freq)
    return {"max_clause_freq": freq, "seed": req.seed}


def max_diff_tokens(req: m.CnfRequest, limits: ServerLimits) -> int:
    d = (min(DEFAULT_MAX_DIFF_TOKENS, limits.max_diff_tokens) if req.max_diff_tokens is None
         else req.max_diff_tokens)
    check_max("max_diff_tokens", d, limits.max_diff_tokens)
    return d


def _cnf_answer(ix: ServedIndex, cnf: list[list[list[int]]],
                result: dict[str, Any]) -> dict[str, Any]:
    clauses = ([[ix.text(p) or "" for p in clause] for clause in cnf]
               if ix.has_tokenizer else None)
    return {"ok": True, "index": ix.name, **result, "token_ids": cnf, "clauses": clauses}


def op_cnf_count(ix: ServedIndex, req: m.CnfRequest, limits: ServerLimits) -> dict[str, Any]:
    opts = cnf_options(req, limits)
    diff = max_diff_tokens(req, limits)
    cnf = cnf_ids(ix, req, limits)
    r = ix.engine.count_cnf(cnf, max_diff_tokens=diff, anchor=req.anchor, **opts)
    return _cnf_answer(ix, cnf, r.to_dict())


def op_cnf_search(ix: ServedIndex, req: m.CnfSearchRequest,
                  limits: ServerLimits) -> dict[str, Any]:
    opts = cnf_options(req, limits)
    diff = max_diff_tokens(req, limits)
    max_docs = page_size(req, limits)
    cnf = cnf_ids(ix, req, limits)
    r = ix.engine.search_docs_cnf(cnf, max_docs=max_docs, offset=req.offset, order=req.order,
                                  max_diff_tokens=diff, anchor=req.anchor, **opts)
    d = r.to_dict()
    hits = []
    for hit in r.hits:
        assert hit.window is not None  # a CNF search's hits come with their window
        w = hit.window.to_dict()
        mark = ((w["match_offset"], w["match_len"]) if w.get("match_offset") is not None
                else None)
        hits.append({**w, "shard": hit.shard, "pos": hit.pos, "doc_id": hit.doc_id,
                     "spans": spans(ix, w["token_ids"], cnf, mark)})
    d["hits"] = hits
    return _cnf_answer(ix, cnf, d)


def op_docs_with_all(ix: ServedIndex, req: m.DocsWithAllRequest,
                     limits: ServerLimits) -> dict[str, Any]:
    opts = cnf_options(req, limits)
    check_max("max_ids", req.max_ids, limits.max_docs * 100)
    if req.anchor is not None:
        raise InvalidQueryError("anchor has no meaning here: every clause is looked for in "
                                "the whole document")
    cnf = cnf_ids(ix, req, limits)
    r = ix.engine.count_docs_with_all(cnf, return_ids=req.max_ids > 0, **opts)
    d = r.to_dict()
    if req.max_ids:
        d["doc_ids"] = list(d["doc_ids"] or [])[:req.max_ids]
    return _cnf_answer(ix, cnf, d)


OPERATIONS = (
    Operation(
        "cnf/count", m.CnfRequest, op_cnf_count, m.CnfCountAnswer, "Count a CNF query",
        "Matches of `A AND B OR C`: occurrences of the anchor clause (the rarest, unless "
        "`anchor` names one) with every other clause in the same document within "
        "max_diff_tokens tokens. Exact, or an unbiased estimate (approx) when the rarest "
        "clause occurs over max_clause_freq times.", lane="heavy"),
    Operation(
        "cnf/search", m.CnfSearchRequest, op_cnf_search, m.CnfSearchAnswer,
        "Search documents with a CNF query",
        "One page of the matches of a CNF query with their documents; `spans` label each "
        "matched phrase with its clause.", lane="heavy"),
    Operation(
        "cnf/docs-with-all", m.DocsWithAllRequest, op_docs_with_all, m.DocsWithAllAnswer,
        "Count the documents containing every clause",
        "Documents in which every clause occurs anywhere (no proximity limit); optionally "
        "their first ids.", lane="heavy"),
)
