"""The infini-gram API (``POST /``): dispatch an infini-gram payload, shape its answer.

:func:`run_compat` answers a payload as infini-gram's API server does, through the index's
:class:`~anygram.compat.InfiniGramEngine` (:meth:`ServedIndex.compat
<anygram.server.indexes.ServedIndex.compat>`). :data:`COMPAT_QUERY_TYPES` and
:data:`COMPAT_CNF_QUERY_TYPES` are the allow-list of infini-gram's ``query_type`` values:
nothing is ever looked up by a name the client sent. The size checks are the ``/v1`` routes'
own (:mod:`anygram.server.common`, :mod:`anygram.server.operations`).

Text is handled as infini-gram's server handles it (unlike the ``/v1`` routes): a query (or
each term of ``A AND B OR C``, split on exactly ``" AND "`` then ``" OR "``) is tokenized with
a space in front for GPT-2-style tokenizers, and without the lone word-start token ``"▁"``
for SentencePiece / Llama-style ones; a ``bytes`` index reads ``"\\xNN"`` as the byte ``NN``.
``tokens`` are the vocabulary's pieces (``"▁natural"``, ``"Ġnatural"``), ``spans`` cut a
document at each occurrence of the query's phrases as infini-gram cuts it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import InvalidQueryError
from ..tokenization import Tokenizer
from . import models as m
from .common import check_text, check_tokens
from .errors import BadRequestError, LimitExceededError, QueryTypeNotImplementedError
from .indexes import ServedIndex
from .limits import ServerLimits
from .operations.analyses import ATTRIBUTE_MAX_CNT, word_starts
from .operations.cnf import cnf_ids, cnf_options, max_diff_tokens
from .pool import Lane

# ----------------------------------------------------------------------------- text, as infini-gram

#: A byte written as ``\xNN`` in a query to a ``bytes`` index (infini-gram's u8 server).
_BYTE_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")


def _tokenizer(ix: ServedIndex) -> Tokenizer:
    tok = ix.engine.tokenizer
    if tok is None:
        ix.engine.tokenize("")  # raises TokenizerError, with the engine's message
    assert tok is not None
    return tok


def _marks_word_starts(tok: Tokenizer) -> bool:
    """Whether the tokenizer puts the word-start mark ``"▁"`` on a text's first word itself
    (SentencePiece, Llama-style ``tokenizer.json``), as infini-gram's "llama" tokenizer."""
    first = tok.pieces(tok.encode("a")[:1])
    return tok.kind == "sentencepiece" or (bool(first) and first[0].startswith("▁"))


def ig_tokenize(ix: ServedIndex, text: str) -> list[int]:
    """``text`` as infini-gram's API server tokenizes a query or a CNF term (module doc)."""
    tok = _tokenizer(ix)
    if tok.kind == "bytes":
        parts = _BYTE_ESCAPE.split(text)  # text, hex digits, text, ...
        return [i for k, part in enumerate(parts)
                for i in ([int(part, 16)] if k % 2 else tok.encode(part))]
    if not text:
        return []
    if _marks_word_starts(tok):
        ids = tok.encode(text)
        return ids[1:] if tok.pieces(ids[:1]) == ["▁"] else ids
    return tok.encode(" " + text)


def _pieces(ix: ServedIndex, ids: Sequence[int]) -> list[str] | None:
    """infini-gram's ``tokens``: the vocabulary's pieces (None without a tokenizer)."""
    tok = ix.engine.tokenizer
    return None if tok is None else tok.pieces(ids)


def ig_decode(ix: ServedIndex, ids: Sequence[int]) -> str:
    """Decoded text as infini-gram's server shows it: a ``bytes`` index's invalid UTF-8 as
    ``\\xNN`` escapes, and its control characters but tab and newline escaped the same way."""
    tok = _tokenizer(ix)
    if tok.kind != "bytes":
        return ix.text(ids) or ""
    text = bytes(ids).decode("utf-8", errors="backslashreplace")
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 32 and c not in "\t\n" else c for c in text)


def _cut(ids: list[int], needle: list[int], label: str) -> list[tuple[list[int], str | None]]:
    """``ids`` cut at each occurrence of ``needle`` (left to right, not overlapping)."""
    out: list[tuple[list[int], str | None]] = []
    start = i = 0
    while i + len(needle) <= len(ids):
        if ids[i:i + len(needle)] == needle:
            if i > start:
                out.append((ids[start:i], None))
            out.append((needle, label))
            i = start = i + len(needle)
        else:
            i += 1
    if start < len(ids):
        out.append((ids[start:], None))
    return out


def ig_spans(ix: ServedIndex, token_ids: list[int],
             cnf: Sequence[Sequence[Sequence[int]]]) -> list[list[Any]] | None:
    """infini-gram's ``spans`` of a document window: clause by clause, phrase by phrase, each
    phrase's occurrences are cut out of the text not yet labelled and labelled with the
    clause's index (a string); ``[text, label]`` pairs (label None: no phrase). None without
    a tokenizer."""
    if not ix.has_tokenizer:
        return None
    pieces: list[tuple[list[int], str | None]] = [(list(token_ids), None)]
    for c, clause in enumerate(cnf):
        for needle in clause:
            pieces = [cut for ids, label in pieces
                      for cut in ([(ids, label)] if label is not None or not needle
                                  else _cut(ids, list(needle), str(c)))]
    return [[ig_decode(ix, ids), label] for ids, label in pieces]


def ig_cnf(ix: ServedIndex, text: str) -> list[list[list[int]]]:
    """A text CNF query as infini-gram's server reads it: split on ``" AND "``, then each part
    on ``" OR "``, each term tokenized with :func:`ig_tokenize` (nothing stripped)."""
    return [[ig_tokenize(ix, term) for term in part.split(" OR ")]
            for part in text.split(" AND ")]


# ----------------------------------------------------------------------------- infini-gram API


def _compat_ids(ix: ServedIndex, p: m.InfiniGramRequest, limits: ServerLimits) -> list[int]:
    if (p.query is None) == (p.query_ids is None):
        raise BadRequestError("Exactly one of query and query_ids must be present")
    if p.query is not None:
        check_text(p.query, limits)
        ids = ig_tokenize(ix, p.query)
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
    """Each next token's ``token``: its piece, GPT-2's ``"Ġ"`` shown as a space (as infini-gram)."""
    entries = result["result_by_token_id"]
    pieces = _pieces(ix, list(entries))
    for i, entry in enumerate(entries.values()):
        entry["token"] = None if pieces is None else pieces[i].replace("Ġ", " ")
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
    r["longest_suffix"] = _suffix_text(ix, prompt, r["suffix_len"])
    return r


def compat_infgram_ntd(ix: ServedIndex, ids: list[int], p: m.InfiniGramRequest,
                       limits: ServerLimits) -> dict[str, Any]:
    r = _checked(ix.compat().infgram_ntd(prompt_ids=ids, max_support=_support(p, limits)))
    r["longest_suffix"] = _suffix_text(ix, ids, r["suffix_len"])
    return _tokens_of_entries(ix, r)


def _suffix_text(ix: ServedIndex, ids: list[int], n: int) -> str | None:
    return ig_decode(ix, ids[len(ids) - n:]) if ix.has_tokenizer else None


def _compat_window(p: m.InfiniGramRequest, limits: ServerLimits) -> int | None:
    """``max_disp_len``, once it and ``maxnum`` are checked against the server limits
    (infini-gram's ranges)."""
    for name, value, most in (("maxnum", p.maxnum, limits.max_docs),
                              ("max_disp_len", p.max_disp_len, limits.max_disp_len)):
        if value is not None and not 0 < value <= most:
            raise LimitExceededError(f"{name} must be an integer in [1, {most}]")
    return p.max_disp_len


def _message(r: dict[str, Any]) -> str:
    if r["cnt"] == 0:
        return "0 occurrences found"
    return (f"{'Approximately ' if r['approx'] else ''}{r['cnt']} occurrences found. "
            f"Displaying the documents of occurrences #{r['idxs']}")


def _with_spans(ix: ServedIndex, r: dict[str, Any],
                clauses: Sequence[Sequence[Sequence[int]]]) -> dict[str, Any]:
    r["message"] = _message(r)
    for doc in r["documents"]:
        doc["spans"] = ig_spans(ix, doc["token_ids"], clauses)
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
    r["spans"] = ig_spans(ix, r["token_ids"], [[ids]] if ids else [])
    return r


def compat_creativity(ix: ServedIndex, ids: list[int], p: m.InfiniGramRequest,
                      limits: ServerLimits) -> dict[str, Any]:
    if not ids:
        raise InvalidQueryError("Please provide a non-empty query for creativity")
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
    if p.query is not None:
        check_text(p.query, limits)
        raw = ig_cnf(ix, p.query)  # type: ignore[assignment]
    elif raw is not None and not (raw and isinstance(raw[0], list)):
        raw = [[[int(x) for x in raw]]]  # type: ignore[arg-type]
    req = m.CnfRequest(query=None, query_ids=raw,  # type: ignore[arg-type]
                       max_clause_freq=p.max_clause_freq, max_diff_tokens=p.max_diff_tokens,
                       seed=0, anchor=None)
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
    r["spans"] = ig_spans(ix, r["token_ids"], cnf)
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


#: Query types answered in the light lane (:mod:`anygram.server.pool`) unless the query is a
#: CNF: the n-gram statistics, as on the ``/v1`` routes.
_LIGHT_QUERY_TYPES = ("count", "find", "prob", "ntd", "infgram_prob", "infgram_ntd")


def compat_lane(p: m.InfiniGramRequest) -> Lane:
    """The lane a payload runs in: that of the ``/v1`` route doing the same work."""
    return "light" if p.query_type in _LIGHT_QUERY_TYPES and not _is_cnf(p) else "heavy"


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
        result["tokens"] = ([[_pieces(ix, t) for t in clause] for clause in cnf]
                            if ix.has_tokenizer else None)
        return result
    if _is_cnf(p):
        raise InvalidQueryError(f"query_type {qt!r} does not take a CNF query (AND / OR)")
    ids = _compat_ids(ix, p, limits)
    result = COMPAT_QUERY_TYPES[qt](ix, ids, p, limits)
    result["token_ids"] = ids
    result["tokens"] = _pieces(ix, ids)
    return result
