"""``InfiniGramEngine.engine``: infini-gram's C++ engine object, as a thin layer over anygram.

infini-gram's Python ``InfiniGramEngine`` wraps a C++ engine (``infini_gram.cpp_engine.
Engine_U16`` ...) in ``.engine``, and scripts call it directly: ``engine.engine.
get_total_doc_cnt()``, ``engine.engine.get_num_shards()``, ``engine.engine.get_tok_cnt(s=0)``.
:class:`CppEngine` offers every public method of infini-gram 2.6.0's bindings, with their
argument names and their result objects: attribute access (``r.count``, ``r.cnt``,
``r.segment_by_shard``, ``d.token_ids``, ...) on the classes below, named as the bindings'.

Each method answers through the compat engine's own method of the same name (so the
numbers are the compat layer's, see ``docs/compat.md``). The C++ engine trusts its
arguments (a bad one can crash the process); here a bad argument raises
:class:`~anygram.errors.InvalidQueryError` (a ``ValueError``) with the compat layer's message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidQueryError

if TYPE_CHECKING:
    from ._base import _Base


# ------------------------------------------------------------------------ result objects


@dataclass(slots=True)
class FindResult:
    cnt: int
    segment_by_shard: list[tuple[int, int]]


@dataclass(slots=True)
class FindCnfResult:
    cnt: int
    approx: bool
    ptrs_by_shard: list[list[int]]


@dataclass(slots=True)
class CountResult:
    count: int
    approx: bool


@dataclass(slots=True)
class ProbResult:
    prompt_cnt: int
    cont_cnt: int
    prob: float


@dataclass(slots=True)
class InfgramProbResult:
    prompt_cnt: int
    cont_cnt: int
    prob: float
    suffix_len: int


@dataclass(slots=True)
class DistTokenResult:
    cont_cnt: int
    prob: float


@dataclass(slots=True)
class DistResult:
    prompt_cnt: int
    result_by_token_id: dict[int, DistTokenResult]
    approx: bool


@dataclass(slots=True)
class InfgramDistResult:
    prompt_cnt: int
    result_by_token_id: dict[int, DistTokenResult]
    approx: bool
    suffix_len: int


@dataclass(slots=True)
class DocResult:
    doc_ix: int
    doc_len: int
    disp_len: int
    needle_offset: int
    metadata: str
    token_ids: list[int]
    blocked: bool = False


@dataclass(slots=True)
class SearchDocsResult:
    cnt: int
    approx: bool
    idxs: list[int]
    docs: list[DocResult]


@dataclass(slots=True)
class CreativityResult:
    rs: list[int]


@dataclass(slots=True)
class AttributionDoc:
    s: int
    ptr: int


@dataclass(slots=True)
class AttributionSpan:
    l: int  # noqa: E741 (infini-gram's name)
    r: int
    length: int
    count: int
    unigram_logprob_sum: float
    docs: list[AttributionDoc] = field(default_factory=list)


@dataclass(slots=True)
class AttributionResult:
    spans: list[AttributionSpan]


@dataclass(slots=True)
class DatastoreShard:
    """One shard's sizes (infini-gram's ``DatastoreShard``) and its arrays (numpy views)."""

    tok_cnt: int
    ds_size: int
    ptr_size: int
    doc_cnt: int
    mt_size: int
    ds: np.ndarray
    sa: np.ndarray
    od: np.ndarray
    mt: np.ndarray | None
    om: np.ndarray | None


# ------------------------------------------------------------------------ the engine object


def _ok(got: Any) -> Any:
    """``got`` unless it is the compat layer's ``{'error': message}``, which is raised."""
    if isinstance(got, dict) and set(got) == {"error"}:
        raise InvalidQueryError(got["error"])
    return got


def _doc(d: dict[str, Any]) -> DocResult:
    return DocResult(**d)


def _docs(ds: list[dict[str, Any]]) -> list[DocResult]:
    return [DocResult(**d) for d in _ok(ds)]


def _dist(d: dict[str, Any]) -> dict[int, DistTokenResult]:
    return {t: DistTokenResult(**e) for t, e in d["result_by_token_id"].items()}


class CppEngine:
    """infini-gram's C++ engine API (``Engine_U8/U16/U32``, ``EngineDiff_*``) over the compat
    engine ``api`` (an :class:`anygram.compat.InfiniGramEngine`); see the module doc."""

    def __init__(self, api: _Base) -> None:
        self._api: Any = api

    # -------------------------------------------------------------- sizes

    def get_num_shards(self) -> int:
        return len(self._api._shard_order)

    def get_tok_cnt(self, s: int) -> int:
        """Token positions of shard ``s`` (separators included)."""
        return self._shard(s).num_positions

    def get_ds_size(self, s: int) -> int:
        """Bytes of shard ``s``'s token file."""
        return self._shard(s).ds_bytes

    def get_total_doc_cnt(self) -> int:
        return int(self._api.get_total_doc_cnt())

    def compute_unigram_counts(self, s: int) -> dict[int, int]:
        return dict(_ok(self._api.compute_unigram_counts(s)))

    def get_new_shards_by_index_dir(self) -> dict[str, list[DatastoreShard]]:
        return self._api.get_new_shards_by_index_dir()  # type: ignore[no-any-return]

    def _shard(self, s: Any) -> Any:
        at = _ok(self._api._shard(s))
        return self._api.native.shards[at]

    # -------------------------------------------------------------- counting

    def find(self, input_ids: list[int]) -> FindResult:
        return FindResult(**_ok(self._api.find(input_ids)))

    def count(self, input_ids: list[int]) -> CountResult:
        return CountResult(**_ok(self._api.count(input_ids)))

    def find_cnf(self, cnf: list[list[list[int]]], max_clause_freq: int,
                 max_diff_tokens: int) -> FindCnfResult:
        return FindCnfResult(**_ok(self._api.find_cnf(cnf, max_clause_freq, max_diff_tokens)))

    def count_cnf(self, cnf: list[list[list[int]]], max_clause_freq: int,
                  max_diff_tokens: int) -> CountResult:
        return CountResult(**_ok(self._api.count_cnf(cnf, max_clause_freq, max_diff_tokens)))

    def prob(self, prompt_ids: list[int], cont_id: int) -> ProbResult:
        return ProbResult(**_ok(self._api.prob(prompt_ids, cont_id)))

    def ntd(self, prompt_ids: list[int], max_support: int) -> DistResult:
        d = _ok(self._api.ntd(prompt_ids, max_support))
        return DistResult(d["prompt_cnt"], _dist(d), d["approx"])

    def infgram_prob(self, prompt_ids: list[int], cont_id: int) -> InfgramProbResult:
        return InfgramProbResult(**_ok(self._api.infgram_prob(prompt_ids, cont_id)))

    def infgram_ntd(self, prompt_ids: list[int], max_support: int) -> InfgramDistResult:
        d = _ok(self._api.infgram_ntd(prompt_ids, max_support))
        return InfgramDistResult(d["prompt_cnt"], _dist(d), d["approx"], d["suffix_len"])

    # -------------------------------------------------------------- documents

    def search_docs(self, input_ids: list[int], maxnum: int,
                    max_disp_len: int) -> SearchDocsResult:
        r = _ok(self._api.search_docs(input_ids, maxnum, max_disp_len))
        return SearchDocsResult(r["cnt"], r["approx"], r["idxs"], _docs(r["documents"]))

    def search_docs_cnf(self, cnf: list[list[list[int]]], maxnum: int, max_disp_len: int,
                        max_clause_freq: int, max_diff_tokens: int) -> SearchDocsResult:
        r = _ok(self._api.search_docs_cnf(cnf, maxnum, max_disp_len, max_clause_freq,
                                          max_diff_tokens))
        return SearchDocsResult(r["cnt"], r["approx"], r["idxs"], _docs(r["documents"]))

    def get_doc_by_rank(self, s: int, rank: int, max_disp_len: int) -> DocResult:
        return _doc(_ok(self._api.get_doc_by_rank(s, rank, max_disp_len)))

    def get_docs_by_ranks(self, list_of_s_and_rank: list[tuple[int, int]],
                          max_disp_len: int) -> list[DocResult]:
        return _docs(self._api.get_docs_by_ranks(list_of_s_and_rank, max_disp_len))

    def get_doc_by_ptr(self, s: int, ptr: int, max_disp_len: int) -> DocResult:
        return _doc(_ok(self._api.get_doc_by_ptr(s, ptr, max_disp_len)))

    def get_docs_by_ptrs(self, list_of_s_and_ptr: list[tuple[int, int]],
                         max_disp_len: int) -> list[DocResult]:
        return _docs(self._api.get_docs_by_ptrs(list_of_s_and_ptr, max_disp_len))

    def get_doc_by_ix(self, doc_ix: int, max_disp_len: int) -> DocResult:
        return _doc(_ok(self._api.get_doc_by_ix(doc_ix, max_disp_len)))

    def get_docs_by_ixs(self, list_of_doc_ix: list[int], max_disp_len: int) -> list[DocResult]:
        return _docs(self._api.get_docs_by_ixs(list_of_doc_ix, max_disp_len))

    def get_doc_by_rank_2(self, s: int, rank: int, needle_len: int,
                          max_ctx_len: int) -> DocResult:
        return _doc(_ok(self._api.get_doc_by_rank_2(s, rank, needle_len, max_ctx_len)))

    def get_docs_by_ranks_2(self, requests: list[tuple[int, int, int, int]]) -> list[DocResult]:
        return _docs(self._api.get_docs_by_ranks_2(requests))

    def get_doc_by_ptr_2(self, s: int, ptr: int, needle_len: int,
                         max_ctx_len: int) -> DocResult:
        return _doc(_ok(self._api.get_doc_by_ptr_2(s, ptr, needle_len, max_ctx_len)))

    def get_docs_by_ptrs_2(self, requests: list[tuple[int, int, int, int]]) -> list[DocResult]:
        return _docs(self._api.get_docs_by_ptrs_2(requests))

    def get_doc_by_ix_2(self, doc_ix: int, max_ctx_len: int) -> DocResult:
        return _doc(_ok(self._api.get_doc_by_ix_2(doc_ix, max_ctx_len)))

    def get_docs_by_ixs_2(self, requests: list[tuple[int, int]]) -> list[DocResult]:
        return _docs(self._api.get_docs_by_ixs_2(requests))

    # -------------------------------------------------------------- analyses

    def creativity(self, input_ids: list[int]) -> CreativityResult:
        return CreativityResult(**_ok(self._api.creativity(input_ids)))

    def attribute(self, input_ids: list[int], delim_ids: list[int], min_len: int,
                  max_cnt: int, enforce_bow: bool) -> AttributionResult:
        r = _ok(self._api.attribute(input_ids, delim_ids, min_len, max_cnt, enforce_bow))
        return AttributionResult([
            AttributionSpan(sp["l"], sp["r"], sp["length"], sp["count"],
                            sp["unigram_logprob_sum"],
                            [AttributionDoc(d["s"], d["ptr"]) for d in sp["docs"]])
            for sp in r["spans"]])


class CppEngineDiff(CppEngine):
    """infini-gram's ``EngineDiff_*``: :class:`CppEngine` plus ``get_docs_by_ptrs_2_grouped``."""

    def get_docs_by_ptrs_2_grouped(
            self, requests: list[tuple[list[tuple[int, int]], list[int], int, int]]
    ) -> list[list[DocResult]]:
        """The C++ form: ``requests`` of ``(docs as (s, ptr) pairs, span_ids, needle_len,
        max_ctx_len)`` tuples."""
        asked = [{"docs": [{"s": s, "ptr": p} for s, p in docs], "span_ids": span_ids,
                  "needle_len": needle_len, "max_ctx_len": max_ctx_len}
                 for docs, span_ids, needle_len, max_ctx_len in requests]
        return [[_doc(d) for d in group]
                for group in _ok(self._api.get_docs_by_ptrs_2_grouped(asked))]
