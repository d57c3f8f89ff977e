"""Request and response models of the HTTP API (they make the OpenAPI schema and its examples).

A request model serves both methods of a route: the JSON body of ``POST``, and the query
string of ``GET`` through :func:`from_query_string` (where ``query_ids`` may be written
``1,2,3`` or repeated).
Bounds that depend on :class:`~anygram.server.ServerLimits` are checked by the handlers
(``422 LimitExceededError``); the models check types and signs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal, TypeVar, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    create_model,
    model_validator,
)

_IDS_SPLIT = re.compile(r"[,\s]+")
_M = TypeVar("_M", bound=BaseModel)


_INT_TEXT = re.compile(r"-?[0-9]+(\.0+)?")  # (10.0 is an integer to JSON schema)


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected an integer, not a boolean")
    if isinstance(value, str) and not _INT_TEXT.fullmatch(value):
        # (pydantic's lax mode takes "1_000", " 1" and "+1" for ints: the schema says
        # integer, so a query string's value must be written as one)
        raise ValueError("expected an integer written in digits, e.g. 100")
    return value


#: An int that is not a JSON boolean (pydantic's lax mode would take true as 1), nor a
#: string other than digits.
Int = Annotated[int, BeforeValidator(_not_bool)]


def _not_number(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError("expected a boolean, not a number")
    return value


#: An Int of at least 0, and of at least 1. (An optional field's bounds must sit in its type,
#: before the validator: ``Field(None, ge=0)`` on ``Int | None`` validates, but its schema
#: says ``"ge"``, which JSON schema does not know, instead of ``"minimum"``.)
NonNegInt = Annotated[int, Field(ge=0), BeforeValidator(_not_bool)]
PosInt = Annotated[int, Field(ge=1), BeforeValidator(_not_bool)]


#: A JSON boolean, or "true"/"false" in a query string; never a number (lax mode takes 0).
Bool = Annotated[bool, BeforeValidator(_not_number)]


def _split_ids(value: Any) -> Any:
    """``"1,2,3"`` or ``["1,2", "3"]`` (a query string) -> ``["1", "2", "3"]``; else unchanged."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and value and all(isinstance(x, str) for x in value):
        out: list[str] = []
        for item in value:
            out.extend(p for p in _IDS_SPLIT.split(item.strip()) if p)
        return out
    return value


def from_query_string(model: type[_M]) -> type[_M]:
    """``model`` as a query string (``GET``) gives it: the fields of its
    ``query_string_forms`` written in their query-string form (ids as ``1,2,3``, CNF clauses
    as JSON text) are parsed first. A JSON body (``POST``) takes them as the schema says: a
    list of ids there holds integers, not strings."""
    forms: dict[str, Callable[[Any], Any]] = getattr(model, "query_string_forms", {})
    if not forms:
        return model

    def parse(cls: type[_M], data: Any) -> Any:
        if isinstance(data, dict):
            return {k: forms[k](v) if k in forms else v for k, v in data.items()}
        return data

    validators: dict[str, Any] = {
        "_query_string": model_validator(mode="before")(classmethod(parse))}  # type: ignore[arg-type]
    return cast("type[_M]", create_model(model.__name__, __base__=model,
                                         __validators__=validators))


# ----------------------------------------------------------------------------- requests


def _one_of(a: str, a_type: str, b: str, b_type: str) -> dict[str, Any]:
    """JSON schema: exactly one of two optional fields is given (not null)."""
    return {"oneOf": [{"required": [a], "properties": {a: {"type": a_type}}},
                      {"required": [b], "properties": {b: {"type": b_type}}}]}


_QUERY_ONE_OF = _one_of("query", "string", "query_ids", "array")
_CONT_ONE_OF = _one_of("cont", "string", "cont_id", "integer")


class QueryRequest(BaseModel):
    """A query given as text (``query``) or as token ids (``query_ids``): exactly one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "natural language"}, {"query_ids": [110, 97, 116]}], **_QUERY_ONE_OF})

    query: str | None = Field(
        None, description="Text, tokenized with the index's tokenizer. \"\" is the empty "
                          "query (it matches every position). Give exactly one of `query` "
                          "and `query_ids`.")
    query_ids: list[Int] | None = Field(
        None, description="Token ids. In a query string: `query_ids=1,2,3` (empty: the "
                          "empty query). Give exactly one of `query` and `query_ids`.")
    #: In a query string, ids are written ``1,2,3`` (or the parameter repeated).
    query_string_forms: ClassVar[dict[str, Callable[[Any], Any]]] = {"query_ids": _split_ids}

    @model_validator(mode="after")
    def _exactly_one(self) -> QueryRequest:
        if (self.query is None) == (self.query_ids is None):
            raise ValueError("give exactly one of query (text) or query_ids (token ids)")
        return self


class ProbRequest(QueryRequest):
    """A prompt (text or ids) and the next token (``cont``: text of one token, or ``cont_id``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "natural languag", "cont": "e"},
        {"query_ids": [110, 97, 116], "cont_id": 117}], "allOf": [_QUERY_ONE_OF, _CONT_ONE_OF]})

    cont: str | None = Field(None, description="The next token as text (exactly one token). "
                                               "Give exactly one of `cont` and `cont_id`.")
    cont_id: Int | None = Field(None, description="The next token as a token id.")

    @model_validator(mode="after")
    def _one_cont(self) -> ProbRequest:
        if (self.cont is None) == (self.cont_id is None):
            raise ValueError("give exactly one of cont (text of one token) or cont_id")
        return self


class NtdRequest(QueryRequest):
    """A prompt (text or ids), and how many next tokens to return."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "natural languag", "top": 10},
        {"query_ids": [110, 97, 116], "max_support": 1000}], **_QUERY_ONE_OF})

    top: NonNegInt | None = Field(
        None, description="Return the `top` most frequent next tokens (default and maximum: see "
                          "/v1/limits).")
    max_support: PosInt | None = Field(
        None, description="Count only this many evenly spaced occurrences when the prompt occurs "
                          "more often (`approx: true`). Default: exact.")


class ContaminationRequest(QueryRequest):
    """A text (or ids) whose verbatim overlap with the corpus is wanted."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "what is the capital of France? Paris", "n": 8},
        {"query_ids": [110, 97, 116, 117], "n": 2, "max_docs": 3}], **_QUERY_ONE_OF})

    n: PosInt = Field(13, description="Window length: a token is covered when some n-token "
                                      "window of the text holding it occurs in the corpus.")
    max_docs: NonNegInt | None = Field(
        None, description="Documents named that hold the longest run (default 5, at most "
                          "max_docs).")


class AttributeRequest(QueryRequest):
    """A text (or ids) whose rare verbatim spans are wanted, with their documents."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "the cat sat on the log", "max_cnt": 10, "min_len": 2},
        {"query_ids": [110, 97, 116, 117], "delim_ids": [46], "max_docs": 2,
         "max_ctx_len": 10},
        {"query": "the cat sat on the log", "enforce_bow": True}], **_QUERY_ONE_OF})

    min_len: Int = Field(1, ge=0, description="Shortest span kept (tokens).")
    max_cnt: PosInt | None = Field(
        None, description="Most occurrences a kept span may have (default 10, at most "
                          "max_attribute_cnt).")
    delim_ids: list[Int] | None = Field(
        None, description="Token ids a span may end with but not run past. In a query "
                          "string: `delim_ids=46,10`.")
    max_docs: NonNegInt | None = Field(
        None, description="Occurrences listed per span, with their windows (default and maximum: "
                          "default_docs / max_docs).")
    max_ctx_len: NonNegInt | None = Field(
        None, description="Tokens of context on each side of a span's occurrence (default 20).")
    enforce_bow: Bool = Field(False, description="Spans start and end at word starts: the "
                                                 "tokens of the index's tokenizer that begin "
                                                 "with whitespace (needs a tokenizer).")

    #: In a query string, ``delim_ids`` too is written ``46,10``.
    query_string_forms: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "query_ids": _split_ids, "delim_ids": _split_ids}


class InfiniGramRequest(BaseModel):
    """infini-gram's public API payload (``POST https://api.infini-gram.io/``).

    Other fields infini-gram clients send (``engine``, ``source``, ``timestamp``, ...) are
    accepted and ignored.
    """

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"index": "v4_pileval_llama", "query_type": "count", "query": "University of Washington"},
        {"index": "v4_pileval_llama", "query_type": "ntd", "query_ids": [5, 6, 7],
         "max_support": 1000},
        {"corpus": "v4_pileval_llama", "query_type": "infgram_prob", "query": "natural language"},
    ]})

    index: str | None = Field(None, description="The index name (see GET /v1/indexes).")
    corpus: str | None = Field(None, description="Old name of `index`.")
    query_type: str = Field(description="count, find, prob, ntd, infgram_prob, infgram_ntd, "
                                        "search_docs, search_docs_cnf, find_cnf, "
                                        "get_doc_by_rank, get_doc_by_ptr, creativity, "
                                        "attribute.")
    query: str | None = Field(None, description="Text query. For prob and infgram_prob the "
                                                "last token is the continuation.")
    query_ids: list[Int] | list[list[list[Int]]] | None = Field(
        None, description="Token ids, or a triply nested CNF (clauses of phrases).")
    max_support: Int | None = None
    max_clause_freq: Int | None = None
    max_diff_tokens: Int | None = None
    maxnum: Int | None = None
    max_disp_len: Int | None = None
    s: Int | None = None
    rank: Int | None = None
    ptr: Int | None = None
    delim_ids: list[Int] | None = Field(None, description="attribute: token ids a span may "
                                                          "end with but not run past.")
    min_len: Int | None = Field(None, description="attribute: shortest span (default 1).")
    max_cnt: Int | None = Field(None, description="attribute: most occurrences of a span "
                                                  "(default 10).")
    enforce_bow: Bool | None = Field(None, description="attribute: align spans to word "
                                                       "starts (the index's tokenizer's "
                                                       "whitespace-led tokens; needs one).")


# ----------------------------------------------------------------------------- responses


class ErrorBody(BaseModel):
    """The one error shape of every route."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"ok": False, "error": "query_ids has token id 300; valid ids are 0..254 for this "
                               "index", "type": "TokenOutOfRangeError", "status": 400}]})

    ok: bool = Field(description="Always false.")
    error: str = Field(description="What went wrong, and what to do.")
    type: str = Field(description="The exception class.")
    status: int = Field(description="The HTTP status code, repeated.")


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")

    ok: bool = Field(description="Always true.")
    index: str = Field(description="The index name.")
    token_ids: list[int] = Field(description="The query's token ids.")
    tokens: list[str] | None = Field(None, description="Each token decoded (indexes with a "
                                                       "tokenizer only).")
    latency_ms: float = Field(description="Time spent answering (engine and decoding), ms.")


class CountAnswer(_Answer):
    count: int
    approx: bool


class FindAnswer(_Answer):
    count: int
    ranges: list[list[int]] = Field(description="Per shard, the suffix-array rank range "
                                                "[start, end) of the query.")


class ProbAnswer(_Answer):
    prompt_count: int
    cont_count: int
    prob: float | None = Field(description="null when the prompt never occurs.")
    cont_id: int
    cont_token: str | None = None


class InfgramProbAnswer(ProbAnswer):
    suffix_len: int = Field(description="Tokens of the longest suffix of the prompt that "
                                        "occurs (0: unigram).")
    suffix_ids: list[int]
    longest_suffix: str | None = Field(None, description="That suffix decoded.")


class NextToken(BaseModel):
    model_config = ConfigDict(extra="allow")

    token_id: int
    count: int
    prob: float
    token: str | None = None


class NtdAnswer(_Answer):
    prompt_count: int
    end_count: int = Field(description="Occurrences of the prompt at a document end.")
    approx: bool
    distinct_next_tokens: int
    next_tokens: list[NextToken] = Field(description="By decreasing count, cut to `top`.")


class InfgramNtdAnswer(NtdAnswer):
    suffix_len: int
    suffix_ids: list[int]
    longest_suffix: str | None = None


BatchOp = Literal["count", "prob", "ntd", "infgram-prob", "infgram-ntd"]


class BatchQueryRequest(BaseModel):
    """One query of a batch: ``query`` or ``query_ids``; for prob and infgram-prob also
    ``cont`` or ``cont_id``."""

    model_config = ConfigDict(extra="forbid")

    query: str | None = Field(None, description="Text (the index's tokenizer).")
    query_ids: list[Int] | None = Field(None, description="Or token ids.")
    cont: str | None = Field(None, description="prob, infgram-prob: the next token as text "
                                               "(exactly one token).")
    cont_id: Int | None = Field(None, description="Or as a token id.")


class BatchRequest(BaseModel):
    """Many queries of one kind, answered together (one engine call per shard)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"op": "count", "queries": [{"query": "natural language"}, {"query_ids": [110, 97]}]},
        {"op": "prob", "queries": [{"query": "natural languag", "cont": "e"}]},
        {"op": "ntd", "queries": [{"query": "natural"}], "top": 5, "max_support": 1000}]})

    op: BatchOp = Field(description="The query kind: what its single route answers.")
    queries: list[BatchQueryRequest] = Field(
        description="The queries (at most max_batch: see /v1/limits).")
    top: NonNegInt | None = Field(None, description="ntd, infgram-ntd: as their `top`.")
    max_support: PosInt | None = Field(None, description="ntd, infgram-ntd: as their "
                                                         "`max_support`.")


class BatchAnswer(BaseModel):
    ok: bool = Field(description="Always true.")
    index: str
    op: BatchOp
    results: list[dict[str, Any]] = Field(
        description="One per query, in order: the single route's answer without ok, index "
                    "and latency_ms.")
    latency_ms: float


class IndexInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    token_dtype: str
    vocab_size: int
    eos_id: int | None
    tokenizer: dict[str, Any] | None
    num_shards: int
    num_docs: int
    num_tokens: int
    operations: list[str] = Field(description="The routes /v1/{index}/... this server has.")


class IndexesAnswer(BaseModel):
    ok: bool
    indexes: list[IndexInfo]


# ----------------------------------------------------------------------------- documents


class SearchRequest(QueryRequest):
    """A phrase (text or ids) and which page of its occurrences to show, with what window."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "natural language", "max_docs": 5},
        {"query_ids": [110, 97, 116], "order": "position", "offset": 10, "max_ctx_len": 50}],
        **_QUERY_ONE_OF})

    max_docs: NonNegInt | None = Field(
        None, description="Hits per page (default and maximum: see /v1/limits).")
    offset: Int = Field(0, ge=0, description="First hit of the page (`next_offset` of the "
                                             "previous page).")
    order: Literal["random", "position", "rank"] = Field(
        "random", description="random: a pseudo-random order fixed by `seed` (cheap); "
                              "position: corpus order (reads every occurrence: refused above "
                              "max_sorted); rank: suffix-array order.")
    seed: Int = Field(0, ge=0, le=2**63 - 1, description="Seed of order=random.")
    max_disp_len: PosInt | None = Field(
        None, description="Window of this many tokens around the match start.")
    max_ctx_len: NonNegInt | None = Field(
        None, description="Or: this many tokens on each side of the match (default 100).")


class DocRequest(BaseModel):
    """How much of a document to return."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: NonNegInt | None = Field(
        None, description="The document's first `max_tokens` tokens (default and maximum: "
                          "default_disp_len / max_disp_len).")


def _parse_nested(value: Any) -> Any:
    """A CNF given as JSON text in a query string (``query_ids=[[[1,2]],[[3]]]``)."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError("query_ids must be a JSON list of clauses, e.g. "
                             "[[[1, 2], [3]], [[4]]]") from None
    return value


class CnfRequest(BaseModel):
    """A CNF query: text with AND / OR (OR binds tighter), or clauses of phrases of ids."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "natural language AND model OR models", "max_diff_tokens": 100},
        {"query_ids": [[[110, 97, 116]], [[109, 111], [108, 97]]]}], **_QUERY_ONE_OF})

    query: str | None = Field(None, description="Text: `A AND B OR C` is A and (B or C). "
                                                "Give exactly one of `query` and "
                                                "`query_ids`.")
    query_ids: list[list[list[Int]]] | None = Field(
        None, description="Clauses (AND) of phrases (OR) of token ids. In a query string: "
                          "JSON, `query_ids=[[[1,2]],[[3]]]`.")
    max_diff_tokens: NonNegInt | None = Field(
        None, description="Every other clause within this many tokens of the anchor (default 100).")
    max_clause_freq: PosInt | None = Field(
        None, description="Exact while the rarest clause occurs at most this often, else an "
                          "unbiased estimate (default 50,000).")
    seed: Int = Field(0, ge=0, le=2**63 - 1, description="Seeds the sample (and the order).")
    anchor: Annotated[int, Field(ge=0, le=64), BeforeValidator(_not_bool)] | None = Field(
        None, description="The clause matches are counted at (its place as written, from 0); "
                          "default: the rarest.")

    #: In a query string, the clauses are JSON text (``query_ids=[[[1,2]],[[3]]]``).
    query_string_forms: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "query_ids": _parse_nested}

    @model_validator(mode="after")
    def _exactly_one(self) -> CnfRequest:
        if (self.query is None) == (self.query_ids is None):
            raise ValueError("give exactly one of query (text) or query_ids (clauses of ids)")
        return self


class CnfSearchRequest(CnfRequest):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "natural language AND model OR models", "max_docs": 5}], **_QUERY_ONE_OF})

    max_docs: NonNegInt | None = Field(
        None, description="Hits per page.")
    offset: Int = Field(0, ge=0, description="First hit of the page.")
    order: Literal["random", "position"] = Field("random", description="Hit order.")


class DocsWithAllRequest(CnfRequest):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "natural AND language", "max_ids": 10}], **_QUERY_ONE_OF})

    max_ids: Int = Field(0, ge=0, description="Also return the first `max_ids` matching "
                                              "document ids (at most max_docs x 100).")


class Span(BaseModel):
    text: str
    clause: int | None = Field(description="Which clause the span matches (0 for a phrase "
                                           "search), null outside matches.")
    hit: bool = Field(False, description="The search hit's own match (absent: false).")


class Hit(BaseModel):
    model_config = ConfigDict(extra="allow")

    doc_id: int
    shard: int
    token_ids: list[int] | None = None
    text: str | None = None
    match_offset: int | None = None
    match_len: int | None = None
    spans: list[Span] | None = Field(None, description="The window cut into matched and "
                                                       "unmatched text (with a tokenizer).")


class SearchAnswer(_Answer):
    count: int
    approx: bool
    offset: int
    next_offset: int | None
    hits: list[Hit]


class DocAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    ok: bool
    index: str
    doc_id: int
    doc_len: int
    token_ids: list[int]
    text: str | None
    metadata: dict[str, Any] | None
    removed: bool
    latency_ms: float


class _CnfAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    ok: bool
    index: str
    count: int
    approx: bool
    estimate: float
    token_ids: list[list[list[int]]] = Field(description="The CNF as token ids.")
    clauses: list[list[str]] | None = Field(None, description="Its phrases decoded.")
    latency_ms: float


class CnfCountAnswer(_CnfAnswer):
    stderr: float
    anchor_count: int
    clause_counts: list[int]


class CnfSearchAnswer(_CnfAnswer):
    total_hits: int
    offset: int
    next_offset: int | None
    hits: list[Hit]


class DocsWithAllAnswer(_CnfAnswer):
    doc_ids: list[int] | None = None


# ----------------------------------------------------------------------------- whole-text analyses


class CreativityAnswer(_Answer):
    lengths: list[int] = Field(description="Per position i, the length of the longest "
                                           "prefix of text[i:] that occurs (0: token i "
                                           "never occurs).")


class InfgramTextAnswer(_Answer):
    suffix_len: list[int] = Field(description="Per token j, the length of the longest suffix "
                                              "of text[:j] that occurs (0: unigram).")
    prompt_count: list[int] = Field(description="Count of that suffix.")
    cont_count: list[int] = Field(description="Count of that suffix followed by token j.")
    prob: list[float | None] = Field(description="cont_count / prompt_count; null when "
                                                 "prompt_count is 0 (an empty corpus).")


class AttributionDocModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    doc_id: int
    shard: int
    pos: int = Field(description="Token position of the occurrence in its shard.")
    token_ids: list[int] | None = Field(None, description="The window (absent with "
                                                          "max_docs=0).")
    text: str | None = None
    spans: list[Span] | None = Field(None, description="The window cut into the span "
                                                       "(clause 0, hit) and the rest.")


class AttributionSpanModel(BaseModel):
    start: int
    end: int
    length: int
    count: int = Field(description="Occurrences of text[start:end] in the corpus.")
    unigram_logprob_sum: float = Field(description="Sum over its tokens of "
                                                   "log(count([t]) / count([])).")
    text: str | None = Field(None, description="The span decoded.")
    docs: list[AttributionDocModel] = Field(description="Its first occurrences in corpus "
                                                        "order (at most max_docs).")


class ContaminationAnswer(_Answer):
    longest_match: int = Field(description="Tokens of the longest run of the text found in "
                                           "the corpus (0: none of its tokens occurs).")
    longest_at: int = Field(description="Where that run starts in the text (-1: none).")
    coverage: float = Field(description="Share of the text's tokens inside some n-token "
                                        "window of it that occurs in the corpus.")
    covered: list[list[int]] = Field(description="The covered token spans [start, end), "
                                                 "ascending.")
    count: int = Field(description="Occurrences of the longest run.")
    docs: list[int] = Field(description="Documents holding the longest run (at most "
                                        "max_docs).")


class AttributeAnswer(_Answer):
    spans: list[AttributionSpanModel] = Field(description="Maximal rare spans, by start.")
