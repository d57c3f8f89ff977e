"""The n-gram routes: count, find, prob, ntd, infgram-prob, infgram-ntd, and their batch."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ...errors import AnygramError, InvalidQueryError
from ...query.results import InfGramNextTokenDist, InfGramProbResult, NextTokenDist, ProbResult
from .. import models as m
from ..common import Operation, answer, check_max, check_text, query_ids, with_query
from ..errors import LimitExceededError, ServerError
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
    return answer(ix, ids, _prob(ix, ids, cont, ix.engine.prob(ids, cont)))


def op_infgram_prob(ix: ServedIndex, req: m.ProbRequest,
                    limits: ServerLimits) -> dict[str, Any]:
    ids = query_ids(ix, req, limits)
    cont = _cont_id(ix, req, limits)
    return answer(ix, ids, _infgram_prob(ix, ids, cont, ix.engine.infgram_prob(ids, cont)))


def _prob(ix: ServedIndex, ids: list[int], cont: int,
          r: ProbResult | InfGramProbResult) -> dict[str, Any]:
    return {**r.to_dict(), "cont_id": cont, "cont_token": ix.token_text(cont)}


def _infgram_prob(ix: ServedIndex, ids: list[int], cont: int,
                  r: InfGramProbResult) -> dict[str, Any]:
    suffix = ids[len(ids) - r.suffix_len:]
    return {**_prob(ix, ids, cont, r), "suffix_len": r.suffix_len, "suffix_ids": suffix,
            "longest_suffix": ix.text(suffix)}


def _top(req: m.NtdRequest | m.BatchRequest, limits: ServerLimits) -> int:
    top = limits.default_top if req.top is None else req.top
    check_max("top", top, limits.max_top)
    check_max("max_support", req.max_support, limits.max_support)
    return top


def op_ntd(ix: ServedIndex, req: m.NtdRequest, limits: ServerLimits) -> dict[str, Any]:
    top = _top(req, limits)
    ids = query_ids(ix, req, limits)
    return answer(ix, ids, _ntd(ix, ids, ix.engine.ntd(ids, max_support=req.max_support), top))


def op_infgram_ntd(ix: ServedIndex, req: m.NtdRequest, limits: ServerLimits) -> dict[str, Any]:
    top = _top(req, limits)
    ids = query_ids(ix, req, limits)
    r = ix.engine.infgram_ntd(ids, max_support=req.max_support)
    return answer(ix, ids, _infgram_ntd(ix, ids, r, top))


def _ntd(ix: ServedIndex, ids: list[int], r: NextTokenDist, top: int) -> dict[str, Any]:
    return _with_token_texts(ix, r.to_dict(), top)


def _infgram_ntd(ix: ServedIndex, ids: list[int], r: InfGramNextTokenDist,
                 top: int) -> dict[str, Any]:
    suffix = ids[len(ids) - r.suffix_len:]
    d = {**r.to_dict(), "suffix_ids": suffix, "longest_suffix": ix.text(suffix)}
    return _with_token_texts(ix, d, top)


# ----------------------------------------------------------------------------- batches


def op_batch(ix: ServedIndex, req: m.BatchRequest, limits: ServerLimits) -> dict[str, Any]:
    """Many queries of one kind: each checked as its single route checks it (a bad one
    rejects the batch, named ``queries[i]``), then one engine batch call."""
    if len(req.queries) > limits.max_batch:
        raise LimitExceededError(f"the batch has {len(req.queries)} queries; this server "
                                 f"takes at most {limits.max_batch}")
    engine, op = ix.engine, req.op
    dist = op in ("ntd", "infgram-ntd")
    if dist:
        top = _top(req, limits)
    elif req.top is not None or req.max_support is not None:
        raise InvalidQueryError("top and max_support are parameters of ntd and infgram-ntd "
                                "batches")
    ids, conts = [], []
    for i, q in enumerate(req.queries):
        with _batch_item(i):
            if (q.query is None) == (q.query_ids is None):
                raise InvalidQueryError("give exactly one of query (text) or query_ids")
            if not dist and op != "count":
                if (q.cont is None) == (q.cont_id is None):
                    raise InvalidQueryError("give exactly one of cont (text of one token) or "
                                            "cont_id")
                conts.append(_cont_id(ix, q, limits))  # type: ignore[arg-type]
            elif q.cont is not None or q.cont_id is not None:
                raise InvalidQueryError(f"cont and cont_id belong to prob and infgram-prob, "
                                        f"not {op}")
            ids.append(query_ids(ix, q, limits))  # type: ignore[arg-type]
    results: list[dict[str, Any]]
    if op == "count":
        results = [r.to_dict() for r in engine.count_many(ids)]
    elif op == "prob":
        results = [_prob(ix, q, c, r)
                   for q, c, r in zip(ids, conts, engine.prob_many(list(zip(ids, conts))))]
    elif op == "infgram-prob":
        results = [_infgram_prob(ix, q, c, r) for q, c, r in zip(
            ids, conts, engine.infgram_prob_many(list(zip(ids, conts))))]
    elif op == "ntd":
        results = [_ntd(ix, q, r, top)
                   for q, r in zip(ids, engine.ntd_many(ids, max_support=req.max_support))]
    else:
        results = [_infgram_ntd(ix, q, r, top) for q, r in zip(
            ids, engine.infgram_ntd_many(ids, max_support=req.max_support))]
    return {"ok": True, "index": ix.name, "op": op,
            "results": [with_query(ix, q, r) for q, r in zip(ids, results)]}


@contextmanager
def _batch_item(i: int) -> Iterator[None]:
    """Name the batch item an error raised inside is about."""
    try:
        yield
    except (AnygramError, ServerError) as exc:
        raise type(exc)(f"queries[{i}]: {exc}") from exc


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
    Operation("batch", m.BatchRequest, op_batch, m.BatchAnswer,
              "Many n-gram queries at once",
              "`op` (count, prob, ntd, infgram-prob, infgram-ntd) of every query in "
              "`queries`: each answer as the single route's, in order, from one engine call "
              "per shard (sorted for locality). At most max_batch queries, each within the "
              "query limits; a bad query rejects the batch, named `queries[i]`.",
              lane="heavy", methods=("POST",)),
)
