"""The whole-text routes: creativity, infgram-text, attribute (OLMoTrace), contamination."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import TokenizerError
from ...tools import contamination as tc
from .. import models as m
from ..common import Operation, answer, check_max, check_tokens, query_ids, spans
from ..indexes import ServedIndex
from ..limits import ServerLimits

#: Context tokens on each side of an attributed span's occurrence, by default.
ATTRIBUTE_CTX_LEN = 20
#: An attributed span's most occurrences, by default.
ATTRIBUTE_MAX_CNT = 10


def op_creativity(ix: ServedIndex, req: m.QueryRequest, limits: ServerLimits) -> dict[str, Any]:
    ids = query_ids(ix, req, limits)
    return answer(ix, ids, {"lengths": ix.engine.creativity(ids)})


def op_infgram_text(ix: ServedIndex, req: m.QueryRequest,
                    limits: ServerLimits) -> dict[str, Any]:
    ids = query_ids(ix, req, limits)
    d = ix.engine.infgram_text(ids).to_dict()  # NaN probabilities are None (null) here
    del d["token_ids"]
    return answer(ix, ids, d)


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
    check_max("max_docs", per_span, limits.max_docs)
    ctx = min(ATTRIBUTE_CTX_LEN, limits.max_ctx_len) if req.max_ctx_len is None \
        else req.max_ctx_len
    check_max("max_ctx_len", ctx, limits.max_ctx_len)
    max_cnt = min(ATTRIBUTE_MAX_CNT, limits.max_attribute_cnt) if req.max_cnt is None \
        else req.max_cnt
    check_max("max_cnt", max_cnt, limits.max_attribute_cnt)
    delims = list(req.delim_ids or [])
    check_tokens(len(delims), limits, "delim_ids")
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
    return answer(ix, ids, {"spans": out})


def op_contamination(ix: ServedIndex, req: m.ContaminationRequest,
                     limits: ServerLimits) -> dict[str, Any]:
    max_docs = min(tc.DEFAULT_MAX_DOCS, limits.max_docs) if req.max_docs is None \
        else req.max_docs
    check_max("max_docs", max_docs, limits.max_docs)
    ids = query_ids(ix, req, limits)
    d = tc.example_contamination(ix.engine, ids, n=req.n, max_docs=max_docs).to_dict()
    del d["example"], d["tokens"]  # (a single text; its length is that of token_ids)
    return answer(ix, ids, d)


OPERATIONS = (
    Operation(
        "creativity", m.QueryRequest, op_creativity, m.CreativityAnswer,
        "Longest match at every position of a text",
        "For each position i, the length of the longest prefix of text[i:] that occurs in "
        "the corpus (0: the token never occurs); a match never crosses a document "
        "boundary. The text is bounded by max_query_chars / max_query_tokens.", lane="heavy"),
    Operation(
        "infgram-text", m.QueryRequest, op_infgram_text, m.InfgramTextAnswer,
        "∞-gram of every token of a text",
        "Entry j is infgram-prob(text[:j], text[j]): the longest suffix of the tokens before "
        "it that occurs (suffix_len), its count, the count followed by token j, and their "
        "ratio (null on an empty corpus). One walk over the text.", lane="heavy"),
    Operation(
        "attribute", m.AttributeRequest, op_attribute, m.AttributeAnswer,
        "Rare verbatim spans of a text, with their documents (OLMoTrace)",
        "The maximal spans of the text found verbatim at most max_cnt times (at least "
        "min_len tokens, cut after a delimiter of delim_ids), each with its count, the sum "
        "of its tokens' unigram log-probabilities and its first max_docs occurrences with "
        "their document windows (max_ctx_len tokens each side).", lane="heavy"),
    Operation(
        "contamination", m.ContaminationRequest, op_contamination, m.ContaminationAnswer,
        "How much of a text occurs verbatim in the corpus (benchmark contamination)",
        "The longest run of the text's tokens found in the corpus (longest_match, from "
        "longest_at, its count and up to max_docs documents holding it), and the share of "
        "its tokens inside some n-token window found there (coverage; default n 13, as the "
        "GPT-3 paper), with the covered token spans. One walk over the text.", lane="heavy"),
)
