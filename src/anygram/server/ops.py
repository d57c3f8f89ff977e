"""The operations behind the routes: parse a request, call the engine, build a JSON dict.

Handlers are plain functions ``(index, request, limits) -> dict`` that run in a worker
thread; they raise, and :mod:`anygram.server.errors` turns what they raise into an answer.
:data:`OPERATIONS` is the allow-list of the ``/v1/{index}/...`` routes and
:data:`~anygram.server.infini_gram_api.COMPAT_QUERY_TYPES` the allow-list of infini-gram's
``query_type`` values: nothing is ever looked up by a name the client sent. The ``POST /``
payload handlers (infini-gram's API) live in :mod:`anygram.server.infini_gram_api`; this
module holds :class:`ServedIndex`, the request checks they share and the ``/v1`` handlers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel

from ..compat import InfiniGramEngine
from ..errors import AnygramError, InvalidQueryError, TokenizerError
from ..query.cnf import DEFAULT_MAX_CLAUSE_FREQ, DEFAULT_MAX_DIFF_TOKENS
from ..query.engine import Engine
from ..query.text import parse_query
from . import models as m
from .errors import DocumentNotFoundError, LimitExceededError
from .limits import ServerLimits

# ----------------------------------------------------------------------------- indexes


class ServedIndex:
    """One named index: its engine and, made on first use, an infini-gram compat engine."""

    def __init__(self, name: str, engine: Engine) -> None:
        self.name = name
        self.engine = engine
        self._compat: InfiniGramEngine | None = None
        self._compat_lock = threading.Lock()

    @property
    def has_tokenizer(self) -> bool:
        return self.engine.tokenizer is not None

    def token_text(self, token_id: int) -> str | None:
        """One token decoded (None without a tokenizer)."""
        if self.engine.tokenizer is None:
            return None
        try:
            return self.engine.decode([token_id])
        except AnygramError:
            return None

    def token_texts(self, ids: Sequence[int]) -> list[str] | None:
        """Each token decoded on its own (None without a tokenizer)."""
        if self.engine.tokenizer is None:
            return None
        return [self.token_text(t) or "" for t in ids]

    def text(self, ids: Sequence[int]) -> str | None:
        if self.engine.tokenizer is None:
            return None
        try:
            return self.engine.decode(list(ids))
        except AnygramError:
            return None

    def info(self, operations: Sequence[str]) -> dict[str, Any]:
        e = self.engine
        tok = e.tokenizer
        return {"name": self.name, "token_dtype": e.token_dtype, "vocab_size": e.vocab_size,
                "eos_id": e.eos_id, "tokenizer": tok.spec() if tok is not None else None,
                "num_shards": e.num_shards, "num_docs": e.num_docs, "num_tokens": e.num_tokens,
                "operations": list(operations)}

    def compat(self) -> InfiniGramEngine:
        """infini-gram's engine API over the same index directories (opened once, lazily)."""
        with self._compat_lock:
            if self._compat is None:
                e = self.engine
                dirs = list(dict.fromkeys(str(s.directory) for s in e.shards))
                id_max = (1 << (8 * e.token_width)) - 1
                eos = e.eos_id if e.eos_id is not None else 0
                self._compat = InfiniGramEngine(
                    index_dir=dirs, eos_token_id=eos, token_dtype=e.token_dtype,
                    vocab_size=min(max(e.vocab_size, eos + 1), id_max),
                    bow_ids=None if e.tokenizer is None else e.tokenizer.word_start_ids())
            return self._compat


# ----------------------------------------------------------------------------- helpers


def _check_text(text: str, limits: ServerLimits, what: str = "query") -> None:
    if len(text) > limits.max_query_chars:
        raise LimitExceededError(f"{what} is {len(text)} characters; this server takes at most "
                                 f"{limits.max_query_chars}")


def _check_tokens(n: int, limits: ServerLimits, what: str = "query") -> None:
    if n > limits.max_query_tokens:
        raise LimitExceededError(f"{what} is {n} tokens; this server takes at most "
                                 f"{limits.max_query_tokens}")


def _check_max(name: str, value: int | None, most: int) -> None:
    if value is not None and value > most:
        raise LimitExceededError(f"{name}={value} is over this server's limit of {most}")


def query_ids(ix: ServedIndex, req: m.QueryRequest, limits: ServerLimits) -> list[int]:
    """The request's query as token ids, within the size limits."""
    if req.query is not None:
        _check_text(req.query, limits)
        ids = ix.engine.tokenize(req.query)
    else:
        ids = list(req.query_ids or [])
    _check_tokens(len(ids), limits)
    return ids


def _answer(ix: ServedIndex, ids: list[int], result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": True, "index": ix.name, **result, "token_ids": ids}
    tokens = ix.token_texts(ids)
    if tokens is not None:
        out["tokens"] = tokens
    return out


def _cont_id(ix: ServedIndex, req: m.ProbRequest, limits: ServerLimits) -> int:
    if req.cont_id is not None:
        return req.cont_id
    assert req.cont is not None
    _check_text(req.cont, limits, "cont")
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


# ----------------------------------------------------------------------------- operations


def op_count(ix: ServedIndex, req: m.QueryRequest, limits: ServerLimits) -> dict[str, Any]:
    ids = query_ids(ix, req, limits)
    return _answer(ix, ids, ix.engine.count(ids).to_dict())


def op_find(ix: ServedIndex, req: m.QueryRequest, limits: ServerLimits) -> dict[str, Any]:
    ids = query_ids(ix, req, limits)
    return _answer(ix, ids, ix.engine.find(ids).to_dict())


def op_prob(ix: ServedIndex, req: m.ProbRequest, limits: ServerLimits) -> dict[str, Any]:
    ids = query_ids(ix, req, limits)
    cont = _cont_id(ix, req, limits)
    out = {**ix.engine.prob(ids, cont).to_dict(), "cont_id": cont,
           "cont_token": ix.token_text(cont)}
    return _answer(ix, ids, out)


def op_infgram_prob(ix: ServedIndex, req: m.ProbRequest,
                    limits: ServerLimits) -> dict[str, Any]:
    ids = query_ids(ix, req, limits)
    cont = _cont_id(ix, req, limits)
    r = ix.engine.infgram_prob(ids, cont)
    suffix = ids[len(ids) - r.suffix_len:]
    out = {**r.to_dict(), "cont_id": cont, "cont_token": ix.token_text(cont),
           "suffix_ids": suffix, "longest_suffix": ix.text(suffix)}
    return _answer(ix, ids, out)


def _top(req: m.NtdRequest, limits: ServerLimits) -> int:
    top = limits.default_top if req.top is None else req.top
    _check_max("top", top, limits.max_top)
    _check_max("max_support", req.max_support, limits.max_support)
    return top


def op_ntd(ix: ServedIndex, req: m.NtdRequest, limits: ServerLimits) -> dict[str, Any]:
    top = _top(req, limits)
    ids = query_ids(ix, req, limits)
    d = ix.engine.ntd(ids, max_support=req.max_support).to_dict()
    return _answer(ix, ids, _with_token_texts(ix, d, top))


def op_infgram_ntd(ix: ServedIndex, req: m.NtdRequest, limits: ServerLimits) -> dict[str, Any]:
    top = _top(req, limits)
    ids = query_ids(ix, req, limits)
    r = ix.engine.infgram_ntd(ids, max_support=req.max_support)
    suffix = ids[len(ids) - r.suffix_len:]
    d = {**r.to_dict(), "suffix_ids": suffix, "longest_suffix": ix.text(suffix)}
    return _answer(ix, ids, _with_token_texts(ix, d, top))


# ----------------------------------------------------------------------------- documents


def _check_window(req: Any, limits: ServerLimits) -> None:
    _check_max("max_disp_len", req.max_disp_len, limits.max_disp_len)
    _check_max("max_ctx_len", req.max_ctx_len, limits.max_ctx_len)


def _page_size(req: Any, limits: ServerLimits) -> int:
    max_docs = limits.default_docs if req.max_docs is None else req.max_docs
    _check_max("max_docs", max_docs, limits.max_docs)
    _check_max("offset", req.offset, limits.max_offset)
    return max_docs


def spans(ix: ServedIndex, ids: list[int], clauses: Sequence[Sequence[Sequence[int]]],
          marked: tuple[int, int] | None = None) -> list[dict[str, Any]] | None:
    """``ids`` cut into decoded spans, each labelled with the clause it matches (or None).

    ``marked`` (offset, length) is a search hit's own match (maybe clipped by the window):
    labelled clause 0 with ``hit: true``. Then every other occurrence of a phrase is
    labelled, longest phrase first. None without a tokenizer.
    """
    if not ix.has_tokenizer:
        return None
    labels: list[tuple[int, bool] | None] = [None] * len(ids)
    if marked is not None:
        start, length = marked
        labels[start:start + length] = [(0, True)] * length
    phrases = sorted(((list(p), c) for c, clause in enumerate(clauses) for p in clause if p),
                     key=lambda pc: -len(pc[0]))
    i = 0
    while i < len(ids):
        for p, c in phrases:
            if ids[i] == p[0] and ids[i:i + len(p)] == p:
                for j in range(i, i + len(p)):
                    if labels[j] is None:
                        labels[j] = (c, False)
                i += len(p)
                break
        else:
            i += 1
    out: list[dict[str, Any]] = []
    start = 0
    for k in range(1, len(ids) + 1):
        if k == len(ids) or labels[k] != labels[start]:
            label = labels[start]
            span: dict[str, Any] = {"text": ix.text(ids[start:k]) or "",
                                    "clause": None if label is None else label[0]}
            if label is not None and label[1]:
                span["hit"] = True
            out.append(span)
            start = k
    return out


def op_search(ix: ServedIndex, req: m.SearchRequest, limits: ServerLimits) -> dict[str, Any]:
    max_docs = _page_size(req, limits)
    _check_window(req, limits)
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
    return _answer(ix, ids, d)


def op_get_doc(ix: ServedIndex, doc_id: int, req: m.DocRequest,
               limits: ServerLimits) -> dict[str, Any]:
    if not 0 <= doc_id < ix.engine.num_docs:
        raise DocumentNotFoundError(f"no document {doc_id} in index {ix.name!r}: its "
                                    f"documents are 0..{ix.engine.num_docs - 1}")
    max_tokens = limits.default_disp_len if req.max_tokens is None else req.max_tokens
    _check_max("max_tokens", max_tokens, limits.max_disp_len)
    return {"ok": True, "index": ix.name,
            **ix.engine.get_doc(doc_id, max_tokens=max_tokens).to_dict()}


# ----------------------------------------------------------------------------- whole text

#: Context tokens on each side of an attributed span's occurrence, by default.
ATTRIBUTE_CTX_LEN = 20
#: An attributed span's most occurrences, by default.
ATTRIBUTE_MAX_CNT = 10


def op_creativity(ix: ServedIndex, req: m.QueryRequest, limits: ServerLimits) -> dict[str, Any]:
    ids = query_ids(ix, req, limits)
    return _answer(ix, ids, {"lengths": ix.engine.creativity(ids)})


def op_infgram_text(ix: ServedIndex, req: m.QueryRequest,
                    limits: ServerLimits) -> dict[str, Any]:
    ids = query_ids(ix, req, limits)
    d = ix.engine.infgram_text(ids).to_dict()  # NaN probabilities are None (null) here
    del d["token_ids"]
    return _answer(ix, ids, d)


def _attribution_doc(ix: ServedIndex, doc: Any) -> dict[str, Any]:
    w = doc.window
    if w is None:
        return {"doc_id": doc.doc_id, "shard": doc.shard, "pos": doc.pos}
    out = {**w.to_dict(), "pos": doc.pos}
    mark = (w.match_offset, w.match_len) if w.match_offset is not None else None
    out["spans"] = (spans(ix, list(w.token_ids), [], mark)
                    if w.token_ids and not w.removed else None)
    return out


def word_starts(ix: ServedIndex) -> np.ndarray:
    """The word-start ids ``enforce_bow`` aligns to: the index tokenizer's whitespace-led
    tokens (computed once per tokenizer)."""
    if ix.engine.tokenizer is None:
        raise TokenizerError("enforce_bow needs word starts, and this index has no tokenizer "
                             "to tell them: send enforce_bow false")
    return ix.engine.tokenizer.word_start_ids()


def op_attribute(ix: ServedIndex, req: m.AttributeRequest,
                 limits: ServerLimits) -> dict[str, Any]:
    per_span = limits.default_docs if req.max_docs is None else req.max_docs
    _check_max("max_docs", per_span, limits.max_docs)
    ctx = min(ATTRIBUTE_CTX_LEN, limits.max_ctx_len) if req.max_ctx_len is None \
        else req.max_ctx_len
    _check_max("max_ctx_len", ctx, limits.max_ctx_len)
    max_cnt = min(ATTRIBUTE_MAX_CNT, limits.max_attribute_cnt) if req.max_cnt is None \
        else req.max_cnt
    _check_max("max_cnt", max_cnt, limits.max_attribute_cnt)
    delims = list(req.delim_ids or [])
    _check_tokens(len(delims), limits, "delim_ids")
    ids = query_ids(ix, req, limits)
    r = ix.engine.attribute(ids, delim_ids=delims, min_len=req.min_len, max_cnt=max_cnt,
                            max_docs_per_span=per_span, with_context=per_span > 0,
                            max_ctx_len=ctx, enforce_bow=req.enforce_bow,
                            bow_ids=word_starts(ix) if req.enforce_bow else None)
    out = []
    for s in r.spans:
        d = s.to_dict()
        d["text"] = ix.text(ids[s.start:s.end])
        d["docs"] = [_attribution_doc(ix, doc) for doc in s.docs]
        out.append(d)
    return _answer(ix, ids, {"spans": out})


# ----------------------------------------------------------------------------- CNF


def cnf_ids(ix: ServedIndex, req: m.CnfRequest, limits: ServerLimits) -> list[list[list[int]]]:
    """The request's CNF as token ids, within the shape and size limits."""
    if req.query is not None:
        _check_text(req.query, limits)
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
    _check_tokens(sum(len(p) for clause in cnf for p in clause), limits)
    return cnf


def _cnf_options(req: m.CnfRequest, limits: ServerLimits) -> dict[str, Any]:
    freq = (min(DEFAULT_MAX_CLAUSE_FREQ, limits.max_clause_freq) if req.max_clause_freq is None
            else req.max_clause_freq)
    _check_max("max_clause_freq", freq, limits.max_clause_freq)
    return {"max_clause_freq": freq, "seed": req.seed}


def _diff(req: m.CnfRequest, limits: ServerLimits) -> int:
    d = (min(DEFAULT_MAX_DIFF_TOKENS, limits.max_diff_tokens) if req.max_diff_tokens is None
         else req.max_diff_tokens)
    _check_max("max_diff_tokens", d, limits.max_diff_tokens)
    return d


def _cnf_answer(ix: ServedIndex, cnf: list[list[list[int]]],
                result: dict[str, Any]) -> dict[str, Any]:
    clauses = ([[ix.text(p) or "" for p in clause] for clause in cnf]
               if ix.has_tokenizer else None)
    return {"ok": True, "index": ix.name, **result, "token_ids": cnf, "clauses": clauses}


def op_cnf_count(ix: ServedIndex, req: m.CnfRequest, limits: ServerLimits) -> dict[str, Any]:
    opts = _cnf_options(req, limits)
    diff = _diff(req, limits)
    cnf = cnf_ids(ix, req, limits)
    return _cnf_answer(ix, cnf, ix.engine.count_cnf(cnf, max_diff_tokens=diff, **opts).to_dict())


def op_cnf_search(ix: ServedIndex, req: m.CnfSearchRequest,
                  limits: ServerLimits) -> dict[str, Any]:
    opts = _cnf_options(req, limits)
    diff = _diff(req, limits)
    max_docs = _page_size(req, limits)
    cnf = cnf_ids(ix, req, limits)
    r = ix.engine.search_docs_cnf(cnf, max_docs=max_docs, offset=req.offset, order=req.order,
                                  max_diff_tokens=diff, **opts)
    d = r.to_dict()
    need = [h for h in r.hits if h.window is None]
    # Hits come with their document window, or (older engines) are fetched here.
    windows = iter(ix.engine.get_docs_by_pos([(h.shard, h.pos) for h in need], query_len=1,
                                             max_ctx_len=min(diff + 50, limits.max_ctx_len))
                   if need else [])
    hits = []
    for hit in r.hits:
        window = hit.window if hit.window is not None else next(windows)
        w = window.to_dict()
        mark = ((w["match_offset"], w["match_len"]) if w.get("match_offset") is not None
                else None)
        hits.append({**w, "shard": hit.shard, "pos": hit.pos, "doc_id": hit.doc_id,
                     "spans": spans(ix, w["token_ids"], cnf, mark)})
    d["hits"] = hits
    return _cnf_answer(ix, cnf, d)


def op_docs_with_all(ix: ServedIndex, req: m.DocsWithAllRequest,
                     limits: ServerLimits) -> dict[str, Any]:
    opts = _cnf_options(req, limits)
    _check_max("max_ids", req.max_ids, limits.max_docs * 100)
    cnf = cnf_ids(ix, req, limits)
    r = ix.engine.count_docs_with_all(cnf, return_ids=req.max_ids > 0, **opts)
    d = r.to_dict()
    if req.max_ids:
        d["doc_ids"] = list(d["doc_ids"] or [])[:req.max_ids]
    return _cnf_answer(ix, cnf, d)


@dataclass(frozen=True)
class Operation:
    """One ``/v1/{index}/<path>`` route (GET and POST)."""

    path: str
    request: type[BaseModel]
    handler: Callable[[ServedIndex, Any, ServerLimits], dict[str, Any]]
    answer: type[BaseModel]
    summary: str
    description: str


OPERATIONS: dict[str, Operation] = {op.path: op for op in (
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
)}

#: Document and CNF operations, served when the engine has them (checked by our own fixed
#: method names, once, at import).
OPTIONAL_OPERATIONS: tuple[tuple[str, Operation], ...] = (
    ("search_docs", Operation(
        "search", m.SearchRequest, op_search, m.SearchAnswer, "Search documents",
        "The exact count of a phrase and one page of its occurrences, each with its "
        "document window; `spans` cut the window into matched and unmatched text. Pages "
        "are distinct and reproducible (order=random is seeded).")),
    ("count_cnf", Operation(
        "cnf/count", m.CnfRequest, op_cnf_count, m.CnfCountAnswer, "Count a CNF query",
        "Matches of `A AND B OR C`: occurrences of the first clause with every other clause "
        "in the same document within max_diff_tokens tokens. Exact, or an unbiased "
        "estimate (approx) when the rarest clause occurs over max_clause_freq times.")),
    ("search_docs_cnf", Operation(
        "cnf/search", m.CnfSearchRequest, op_cnf_search, m.CnfSearchAnswer,
        "Search documents with a CNF query",
        "One page of the matches of a CNF query with their documents; `spans` label each "
        "matched phrase with its clause.")),
    ("creativity", Operation(
        "creativity", m.QueryRequest, op_creativity, m.CreativityAnswer,
        "Longest match at every position of a text",
        "For each position i, the length of the longest prefix of text[i:] that occurs in "
        "the corpus (0: the token never occurs); a match never crosses a document "
        "boundary. The text is bounded by max_query_chars / max_query_tokens.")),
    ("infgram_text", Operation(
        "infgram-text", m.QueryRequest, op_infgram_text, m.InfgramTextAnswer,
        "∞-gram of every token of a text",
        "Entry j is infgram-prob(text[:j], text[j]): the longest suffix of the tokens before "
        "it that occurs (suffix_len), its count, the count followed by token j, and their "
        "ratio (null on an empty corpus). One walk over the text.")),
    ("attribute", Operation(
        "attribute", m.AttributeRequest, op_attribute, m.AttributeAnswer,
        "Rare verbatim spans of a text, with their documents (OLMoTrace)",
        "The maximal spans of the text found verbatim at most max_cnt times (at least "
        "min_len tokens, cut after a delimiter of delim_ids), each with its count, the sum "
        "of its tokens' unigram log-probabilities and its first max_docs occurrences with "
        "their document windows (max_ctx_len tokens each side).")),
    ("count_docs_with_all", Operation(
        "cnf/docs-with-all", m.DocsWithAllRequest, op_docs_with_all, m.DocsWithAllAnswer,
        "Count the documents containing every clause",
        "Documents in which every clause occurs anywhere (no proximity limit); optionally "
        "their first ids.")),
)
for _method, _op in OPTIONAL_OPERATIONS:
    if hasattr(Engine, _method):
        OPERATIONS[_op.path] = _op

#: ``/v1/{index}/docs/{doc_id}`` is served when the engine has ``get_doc``.
HAS_GET_DOC = hasattr(Engine, "get_doc")
