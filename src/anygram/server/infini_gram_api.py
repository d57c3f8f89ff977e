"""The infini-gram API (``POST /``): dispatch an infini-gram payload, shape its answer.

:func:`run_compat` answers a payload in infini-gram's response shape, through the index's
:class:`~anygram.compat.InfiniGramEngine` (:meth:`ServedIndex.compat
<anygram.server.indexes.ServedIndex.compat>`). :data:`COMPAT_QUERY_TYPES` and
:data:`COMPAT_CNF_QUERY_TYPES` are the allow-list of infini-gram's ``query_type`` values:
nothing is ever looked up by a name the client sent. The size checks and CNF parsing are the
``/v1`` routes' own (:mod:`anygram.server.common`, :mod:`anygram.server.operations`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import InvalidQueryError
from . import models as m
from .common import check_text, check_tokens, spans
from .errors import BadRequestError, LimitExceededError, QueryTypeNotImplementedError
from .indexes import ServedIndex
from .limits import ServerLimits
from .operations.analyses import ATTRIBUTE_MAX_CNT, word_starts
from .operations.cnf import cnf_ids, cnf_options, max_diff_tokens

# ----------------------------------------------------------------------------- infini-gram API


def _compat_ids(ix: ServedIndex, p: m.InfiniGramRequest, limits: ServerLimits) -> list[int]:
    if (p.query is None) == (p.query_ids is None):
        raise BadRequestError("Exactly one of query and query_ids must be present")
    if p.query is not None:
        check_text(p.query, limits)
        ids = ix.engine.tokenize(p.query)
    else:
        raw = p.query_ids or []
        ids = [int(x) for x in raw]  # type: ignore[arg-type]
    check_tokens(len(ids), limits)
    return ids


def _checked(result: dict[str, Any]) -> dict[str, Any]:
    if "error" in result:
        raise InvalidQueryError(result["error"])
    return result


def _support(p: m.InfiniGramRequest, limits: ServerLimits) -> int | None:
    if p.max_support is not None and not 0 < p.max_support <= limits.max_support:
        raise LimitExceededError(f"max_support must be an integer in [1, {limits.max_support}]")
    return p.max_support


def _non_empty(ids: list[int]) -> None:
    if not ids:
        raise InvalidQueryError("Please provide a non-empty query: for prob and infgram_prob "
                                "the last token is the continuation")


def _tokens_of_entries(ix: ServedIndex, result: dict[str, Any]) -> dict[str, Any]:
    for token_id, entry in result["result_by_token_id"].items():
        entry["token"] = ix.token_text(token_id)
    return result


def compat_count(ix: ServedIndex, ids: list[int], p: m.InfiniGramRequest,
                 limits: ServerLimits) -> dict[str, Any]:
    return _checked(ix.compat().count(input_ids=ids))


def compat_find(ix: ServedIndex, ids: list[int], p: m.InfiniGramRequest,
                limits: ServerLimits) -> dict[str, Any]:
    r = _checked(ix.compat().find(input_ids=ids))
    r["segment_by_shard"] = [list(seg) for seg in r["segment_by_shard"]]
    return r


def compat_prob(ix: ServedIndex, ids: list[int], p: m.InfiniGramRequest,
                limits: ServerLimits) -> dict[str, Any]:
    _non_empty(ids)
    return _checked(ix.compat().prob(prompt_ids=ids[:-1], cont_id=ids[-1]))


def compat_ntd(ix: ServedIndex, ids: list[int], p: m.InfiniGramRequest,
               limits: ServerLimits) -> dict[str, Any]:
    r = _checked(ix.compat().ntd(prompt_ids=ids, max_support=_support(p, limits)))
    return _tokens_of_entries(ix, r)


def compat_infgram_prob(ix: ServedIndex, ids: list[int], p: m.InfiniGramRequest,
                        limits: ServerLimits) -> dict[str, Any]:
    _non_empty(ids)
    r = _checked(ix.compat().infgram_prob(prompt_ids=ids[:-1], cont_id=ids[-1]))
    prompt = ids[:-1]
    r["longest_suffix"] = ix.text(prompt[len(prompt) - r["suffix_len"]:])
    return r


def compat_infgram_ntd(ix: ServedIndex, ids: list[int], p: m.InfiniGramRequest,
                       limits: ServerLimits) -> dict[str, Any]:
    r = _checked(ix.compat().infgram_ntd(prompt_ids=ids, max_support=_support(p, limits)))
    r["longest_suffix"] = ix.text(ids[len(ids) - r["suffix_len"]:])
    return _tokens_of_entries(ix, r)


def _compat_window(p: m.InfiniGramRequest, limits: ServerLimits) -> int | None:
    """``max_disp_len``, once it and ``maxnum`` are checked against the server limits
    (infini-gram's ranges)."""
    for name, value, most in (("maxnum", p.maxnum, limits.max_docs),
                              ("max_disp_len", p.max_disp_len, limits.max_disp_len)):
        if value is not None and not 0 < value <= most:
            raise LimitExceededError(f"{name} must be an integer in [1, {most}]")
    return p.max_disp_len


def _compat_spans(ix: ServedIndex, token_ids: list[int],
                  clauses: Sequence[Sequence[Sequence[int]]]) -> list[list[Any]] | None:
    """infini-gram's ``spans``: ``[text, label]`` pairs, the label the index (as a string) of
    the clause whose phrase the text is, or None (the /v1 routes' :func:`spans`, reshaped)."""
    cut = spans(ix, token_ids, clauses)
    if cut is None:
        return None
    return [[sp["text"], None if sp["clause"] is None else str(sp["clause"])] for sp in cut]


def _message(r: dict[str, Any]) -> str:
    if r["cnt"] == 0:
        return "0 occurrences found"
    return (f"{'Approximately ' if r['approx'] else ''}{r['cnt']} occurrences found. "
            f"Displaying the documents of occurrences #{r['idxs']}")


def _with_spans(ix: ServedIndex, r: dict[str, Any],
                clauses: Sequence[Sequence[Sequence[int]]]) -> dict[str, Any]:
    r["message"] = _message(r)
    for doc in r["documents"]:
        doc["spans"] = _compat_spans(ix, doc["token_ids"], clauses)
    return r


def _required(p: m.InfiniGramRequest, *names: str) -> list[int]:
    values = [getattr(p, n) for n in names]
    if any(v is None for v in values):
        raise BadRequestError(f"query_type {p.query_type!r} needs {' and '.join(names)}")
    return values


def compat_search_docs(ix: ServedIndex, ids: list[int], p: m.InfiniGramRequest,
                       limits: ServerLimits) -> dict[str, Any]:
    r = _checked(ix.compat().search_docs(input_ids=ids, maxnum=p.maxnum,
                                         max_disp_len=_compat_window(p, limits)))
    return _with_spans(ix, r, [[ids]] if ids else [])


def compat_get_doc_by_rank(ix: ServedIndex, ids: list[int], p: m.InfiniGramRequest,
                           limits: ServerLimits) -> dict[str, Any]:
    window = _compat_window(p, limits)
    s, rank = _required(p, "s", "rank")
    r = _checked(ix.compat().get_doc_by_rank(s=s, rank=rank, max_disp_len=window))
    r["spans"] = _compat_spans(ix, r["token_ids"], [[ids]] if ids else [])
    return r


def compat_creativity(ix: ServedIndex, ids: list[int], p: m.InfiniGramRequest,
                      limits: ServerLimits) -> dict[str, Any]:
    return _checked(ix.compat().creativity(input_ids=ids))


def compat_attribute(ix: ServedIndex, ids: list[int], p: m.InfiniGramRequest,
                     limits: ServerLimits) -> dict[str, Any]:
    max_cnt = min(ATTRIBUTE_MAX_CNT, limits.max_attribute_cnt) if p.max_cnt is None \
        else p.max_cnt
    if not 0 < max_cnt <= limits.max_attribute_cnt:
        raise LimitExceededError(f"max_cnt must be an integer in [1, {limits.max_attribute_cnt}]")
    delims = list(p.delim_ids or [])
    check_tokens(len(delims), limits, "delim_ids")
    if p.enforce_bow:
        word_starts(ix)  # a clear error when the index has no tokenizer to tell them
    return _checked(ix.compat().attribute(input_ids=ids, delim_ids=delims,
                                          min_len=1 if p.min_len is None else p.min_len,
                                          max_cnt=max_cnt, enforce_bow=bool(p.enforce_bow)))


CompatHandler = Callable[[ServedIndex, list[int], m.InfiniGramRequest, ServerLimits],
                         dict[str, Any]]
CnfHandler = Callable[[ServedIndex, list[list[list[int]]], m.InfiniGramRequest, ServerLimits],
                      dict[str, Any]]

# ----------------------------------------------------------------------------- CNF payloads


def _compat_cnf(ix: ServedIndex, p: m.InfiniGramRequest,
                limits: ServerLimits) -> tuple[list[list[list[int]]], dict[str, int]]:
    """The payload's query as a CNF (a plain query is one clause of one phrase) and its caps."""
    if (p.query is None) == (p.query_ids is None):
        raise BadRequestError("Exactly one of query and query_ids must be present")
    for name, value, most in (("max_clause_freq", p.max_clause_freq, limits.max_clause_freq),
                              ("max_diff_tokens", p.max_diff_tokens, limits.max_diff_tokens)):
        if value is not None and not 0 < value <= most:
            raise LimitExceededError(f"{name} must be an integer in [1, {most}]")
    raw = p.query_ids
    if raw is not None and not (raw and isinstance(raw[0], list)):
        raw = [[[int(x) for x in raw]]]  # type: ignore[arg-type]
    req = m.CnfRequest(query=p.query, query_ids=raw,  # type: ignore[arg-type]
                       max_clause_freq=p.max_clause_freq, max_diff_tokens=p.max_diff_tokens,
                       seed=0)
    cnf = cnf_ids(ix, req, limits)
    opts = cnf_options(req, limits)
    return cnf, {"max_clause_freq": opts["max_clause_freq"],
                 "max_diff_tokens": max_diff_tokens(req, limits)}


def compat_count_cnf(ix: ServedIndex, cnf: list[list[list[int]]], p: m.InfiniGramRequest,
                     limits: ServerLimits, caps: dict[str, int]) -> dict[str, Any]:
    """infini-gram's ``count`` of a CNF query: ``{"count", "approx"}``."""
    return _checked(ix.compat().count_cnf(cnf, **caps))


def compat_find_cnf(ix: ServedIndex, cnf: list[list[list[int]]], p: m.InfiniGramRequest,
                    limits: ServerLimits, caps: dict[str, int]) -> dict[str, Any]:
    """``{"cnt", "approx", "ptrs_by_shard"}`` (byte offsets, as infini-gram's)."""
    return _checked(ix.compat().find_cnf(cnf, **caps))


def compat_search_docs_cnf(ix: ServedIndex, cnf: list[list[list[int]]],
                           p: m.InfiniGramRequest, limits: ServerLimits,
                           caps: dict[str, int]) -> dict[str, Any]:
    r = _checked(ix.compat().search_docs_cnf(cnf, maxnum=p.maxnum,
                                             max_disp_len=_compat_window(p, limits), **caps))
    return _with_spans(ix, r, cnf)


def compat_get_doc_by_ptr(ix: ServedIndex, cnf: list[list[list[int]]], p: m.InfiniGramRequest,
                          limits: ServerLimits, caps: dict[str, int]) -> dict[str, Any]:
    window = _compat_window(p, limits)
    s, ptr = _required(p, "s", "ptr")
    r = _checked(ix.compat().get_doc_by_ptr(s=s, ptr=ptr, max_disp_len=window))
    r["spans"] = _compat_spans(ix, r["token_ids"], cnf)
    return r


#: infini-gram ``query_type`` -> handler of a plain (token list) query: with
#: :data:`COMPAT_CNF_QUERY_TYPES`, the only query types the ``POST /`` route runs.
COMPAT_QUERY_TYPES: dict[str, CompatHandler] = {
    "count": compat_count,
    "find": compat_find,
    "prob": compat_prob,
    "ntd": compat_ntd,
    "infgram_prob": compat_infgram_prob,
    "infgram_ntd": compat_infgram_ntd,
    "search_docs": compat_search_docs,
    "get_doc_by_rank": compat_get_doc_by_rank,
    "creativity": compat_creativity,
    "attribute": compat_attribute,
}

#: infini-gram ``query_type`` -> handler of a CNF query. ``count`` and ``search_docs`` come
#: here when the query is CNF (``" AND "`` / ``" OR "`` in the text, or triply nested ids), as
#: infini-gram maps them to their ``_cnf`` versions; the others always take a CNF (a plain
#: query is one clause of one phrase).
COMPAT_CNF_QUERY_TYPES: dict[str, Callable[..., dict[str, Any]]] = {
    "count": compat_count_cnf,
    "search_docs": compat_search_docs_cnf,
    "search_docs_cnf": compat_search_docs_cnf,
    "find_cnf": compat_find_cnf,
    "get_doc_by_ptr": compat_get_doc_by_ptr,
}
_ALWAYS_CNF = ("search_docs_cnf", "find_cnf", "get_doc_by_ptr")

#: infini-gram query types this server knows of but does not implement (501): none now.
COMPAT_NOT_YET: tuple[str, ...] = ()


def _is_cnf(p: m.InfiniGramRequest) -> bool:
    if p.query is not None:
        return " AND " in p.query or " OR " in p.query
    return bool(p.query_ids) and isinstance(p.query_ids[0], list)  # type: ignore[index]


def run_compat(ix: ServedIndex, p: m.InfiniGramRequest, limits: ServerLimits) -> dict[str, Any]:
    """Answer an infini-gram API payload in infini-gram's response shape."""
    supported = list(dict.fromkeys([*COMPAT_QUERY_TYPES, *COMPAT_CNF_QUERY_TYPES]))
    qt = p.query_type
    if qt not in COMPAT_QUERY_TYPES and qt not in COMPAT_CNF_QUERY_TYPES:
        if qt in COMPAT_NOT_YET:
            raise QueryTypeNotImplementedError(
                f"query_type {qt!r} is not supported by this server yet; supported: "
                f"{', '.join(supported)}")
        raise BadRequestError(f"Invalid query_type: {qt!r}; supported: {', '.join(supported)}")
    if qt in _ALWAYS_CNF or (qt in COMPAT_CNF_QUERY_TYPES and _is_cnf(p)):
        cnf, caps = _compat_cnf(ix, p, limits)
        result = COMPAT_CNF_QUERY_TYPES[qt](ix, cnf, p, limits, caps)
        result["token_ids"] = cnf
        result["tokens"] = ([[ix.token_texts(t) for t in clause] for clause in cnf]
                            if ix.has_tokenizer else None)
        return result
    if _is_cnf(p):
        raise InvalidQueryError(f"query_type {qt!r} does not take a CNF query (AND / OR)")
    ids = _compat_ids(ix, p, limits)
    result = COMPAT_QUERY_TYPES[qt](ix, ids, p, limits)
    result["token_ids"] = ids
    result["tokens"] = ix.token_texts(ids)
    return result
