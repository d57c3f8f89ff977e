"""The n-gram routes: count, find, prob, ntd, infgram-prob, infgram-ntd."""

from __future__ import annotations

from typing import Any

from ...errors import InvalidQueryError
from .. import models as m
from ..common import Operation, answer, check_max, check_text, query_ids
from ..indexes import ServedIndex
from ..limits import ServerLimits


def _cont_id(ix: ServedIndex, req: m.ProbRequest, limits: ServerLimits) -> int:
    if req.cont_id is not None:
        return req.cont_id
    assert req.cont is not None
    check_text(req.cont, limits, "cont")
    ids = ix.engine.tokenize(req.cont)
    if len(ids) != 1:
        raise InvalidQueryError(f"cont {req.cont!r} is {len(ids)} tokens {ids}, not exactly "
                                "one: give the text of a single token, or cont_id")
    return ids[0]


def _with_token_texts(ix: ServedIndex, d: dict[str, Any], top: int) -> dict[str, Any]:
    entries = d["next_tokens"]
    d["distinct_next_tokens"] = len(entries)
    entries = entries[:top]
    if ix.has_tokenizer:
        entries = [{**e, "token": ix.token_text(e["token_id"])} for e in entries]
    d["next_tokens"] = entries
    return d


def op_count(ix: ServedIndex, req: m.QueryRequest, limits: ServerLimits) -> dict[str, Any]:
    ids = query_ids(ix, req, limits)
    return answer(ix, ids, ix.engine.count(ids).to_dict())


def op_find(ix: ServedIndex, req: m.QueryRequest, limits: ServerLimits) -> dict[str, Any]:
    ids = query_ids(ix, req, limits)
    return answer(ix, ids, ix.engine.find(ids).to_dict())


def op_prob(ix: ServedIndex, req: m.ProbRequest, limits: ServerLimits) -> dict[str, Any]:
    ids = query_ids(ix, req, limits)
    cont = _cont_id(ix, req, limits)
    out = {**ix.engine.prob(ids, cont).to_dict(), "cont_id": cont,
           "cont_token": ix.token_text(cont)}
    return answer(ix, ids, out)


def op_infgram_prob(ix: ServedIndex, req: m.ProbRequest,
                    limits: ServerLimits) -> dict[str, Any]:
    ids = query_ids(ix, req, limits)
    cont = _cont_id(ix, req, limits)
    r = ix.engine.infgram_prob(ids, cont)
    suffix = ids[len(ids) - r.suffix_len:]
    out = {**r.to_dict(), "cont_id": cont, "cont_token": ix.token_text(cont),
           "suffix_ids": suffix, "longest_suffix": ix.text(suffix)}
    return answer(ix, ids, out)


def _top(req: m.NtdRequest, limits: ServerLimits) -> int:
    top = limits.default_top if req.top is None else req.top
    check_max("top", top, limits.max_top)
    check_max("max_support", req.max_support, limits.max_support)
    return top


def op_ntd(ix: ServedIndex, req: m.NtdRequest, limits: ServerLimits) -> dict[str, Any]:
    top = _top(req, limits)
    ids = query_ids(ix, req, limits)
    d = ix.engine.ntd(ids, max_support=req.max_support).to_dict()
    return answer(ix, ids, _with_token_texts(ix, d, top))


def op_infgram_ntd(ix: ServedIndex, req: m.NtdRequest, limits: ServerLimits) -> dict[str, Any]:
    top = _top(req, limits)
    ids = query_ids(ix, req, limits)
    r = ix.engine.infgram_ntd(ids, max_support=req.max_support)
    suffix = ids[len(ids) - r.suffix_len:]
    d = {**r.to_dict(), "suffix_ids": suffix, "longest_suffix": ix.text(suffix)}
    return answer(ix, ids, _with_token_texts(ix, d, top))


OPERATIONS = (
    Operation("count", m.QueryRequest, op_count, m.CountAnswer,
              "Count an n-gram",
              "Exact number of occurrences of the query. The empty query counts every "
              "token position, document separators included."),
    Operation("prob", m.ProbRequest, op_prob, m.ProbAnswer,
              "Probability of the next token",
              "P(cont | query) = count(query + cont) / count(query); null when the query "
              "never occurs."),
    Operation("ntd", m.NtdRequest, op_ntd, m.NtdAnswer,
              "Next-token distribution",
              "The tokens that follow the query, counted (exact unless max_support is "
              "given), by decreasing count, cut to `top`. end_count counts occurrences at a "
              "document end."),
    Operation("infgram-prob", m.ProbRequest, op_infgram_prob, m.InfgramProbAnswer,
              "∞-gram probability of the next token",
              "Backs off to the longest suffix of the query that occurs (suffix_len tokens, "
              "0: unigram) and gives P(cont | that suffix)."),
    Operation("infgram-ntd", m.NtdRequest, op_infgram_ntd, m.InfgramNtdAnswer,
              "∞-gram next-token distribution",
              "The next-token distribution after the longest suffix of the query that "
              "occurs."),
    Operation("find", m.QueryRequest, op_find, m.FindAnswer,
              "Locate an n-gram",
              "The query's count and, per shard, its suffix-array rank range [start, end)."),
)
