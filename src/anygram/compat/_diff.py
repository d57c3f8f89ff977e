"""``InfiniGramEngineDiff``: infini-gram's takedown engine (a main index and a *diff* index of
documents to hide), as OLMoTrace (allenai/infinigram-api) uses it.

As in infini-gram 2.6.0: every query answers from the main index, except that

- ``get_docs_by_ptrs_2_grouped`` (OLMoTrace's document fetch) blocks a window (``blocked``
  True, no ``token_ids``) when the diff index holds the same window around the same span;
- ``creativity`` and ``attribute`` count a prefix as matched only while it occurs more often
  in the main index than in the diff index, so text found only in the hidden documents is
  not attributed.

(anygram's own takedowns, :mod:`anygram.tools.takedown`, hide documents from every answer
without a second index.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ..errors import AnygramError
from ..query.analyses import sum_in_order
from ._cpp_engine import CppEngineDiff
from ._engine import InfiniGramEngine


class InfiniGramEngineDiff(InfiniGramEngine):
    """infini-gram's ``InfiniGramEngineDiff(index_dir, index_dir_diff, eos_token_id, ...)``:
    the arguments of :class:`InfiniGramEngine`, with ``index_dir_diff`` (a str or a list of
    str) second; see the module doc. ``diff`` is the engine over the diff index."""

    def __init__(self, index_dir: str | list[str], index_dir_diff: str | list[str],
                 eos_token_id: int, *args: Any, **kwargs: Any) -> None:
        if type(index_dir_diff) is str:
            index_dir_diff = [index_dir_diff]
        if not (type(index_dir_diff) is list and all(type(d) is str for d in index_dir_diff)):
            raise ValueError("index_dir_diff must be a str or a list of str")
        super().__init__(index_dir, eos_token_id, *args, **kwargs)
        self.diff = InfiniGramEngine(index_dir_diff, eos_token_id, *args, **kwargs)

    def _cpp_engine(self) -> CppEngineDiff:
        return CppEngineDiff(self)

    # ------------------------------------------------------------------ documents

    def get_docs_by_ptrs_2_grouped(self, requests: list[dict[str, Any]]) -> Any:
        """OLMoTrace's fetch: for each request ``{'docs': [{'s', 'ptr'}], 'span_ids',
        'needle_len', 'max_ctx_len'}``, the list of :meth:`get_doc_by_ptr_2` windows of its
        docs; a window whose tokens equal a window of the diff index around an occurrence of
        ``span_ids`` (same ``needle_len`` and ``max_ctx_len``) comes back ``blocked`` with no
        ``token_ids``."""
        if not (type(requests) is list and all(
                type(r) is dict and {"docs", "span_ids", "needle_len", "max_ctx_len"} <= set(r)
                and type(r["docs"]) is list
                and all(type(d) is dict and {"s", "ptr"} <= set(d) for d in r["docs"])
                for r in requests)):
            return {"error": "requests must be a list of {'docs': [{'s', 'ptr'}], 'span_ids', "
                             "'needle_len', 'max_ctx_len'} dicts"}
        out = []
        for r in requests:
            nl, ctx = r["needle_len"], r["max_ctx_len"]
            main = self.get_docs_by_ptrs_2([(d["s"], d["ptr"], nl, ctx) for d in r["docs"]])
            if isinstance(main, dict):
                return main
            hidden = self._diff_windows(r["span_ids"], nl, ctx)
            if isinstance(hidden, dict):
                return hidden
            for doc in main:
                if tuple(doc["token_ids"]) in hidden:
                    doc["token_ids"] = []
                    doc["blocked"] = True
            out.append(main)
        return out

    def _diff_windows(self, span_ids: Any, needle_len: int, max_ctx_len: int
                      ) -> set[tuple[int, ...]] | dict[str, str]:
        """The token windows around every occurrence of ``span_ids`` in the diff index."""
        found = self.diff.find(span_ids)
        if "error" in found:
            return found  # type: ignore[no-any-return]
        wanted = [(s, rank, needle_len, max_ctx_len)
                  for s, (lo, hi) in enumerate(found["segment_by_shard"])
                  for rank in range(lo, hi)]
        windows = self.diff.get_docs_by_ranks_2(wanted)
        if isinstance(windows, dict):
            return windows
        return {tuple(w["token_ids"]) for w in windows}

    # ------------------------------------------------------------------ analyses

    def creativity(self, input_ids: list[int]) -> dict[str, Any]:
        """:meth:`InfiniGramEngine.creativity`, each match shortened until it occurs more
        often in the main index than in the diff index."""
        got = super().creativity(input_ids)
        if "error" in got:
            return got
        try:
            return {"rs": [i + self._visible(input_ids, i, r - i)
                           for i, r in enumerate(got["rs"])]}
        except AnygramError as e:
            return {"error": str(e)}

    def attribute(self, input_ids: list[int], delim_ids: Iterable[int], min_len: int,
                  max_cnt: int, enforce_bow: bool) -> dict[str, Any]:
        """:meth:`InfiniGramEngine.attribute`, each start's match shortened (after its
        delimiter and word-start cuts) until it occurs more often in the main index than in
        the diff index, as infini-gram's diff engine does; counts and occurrences are the
        main index's."""
        err = self._attribute_args(input_ids, delim_ids, min_len, max_cnt, enforce_bow)
        if err is not None:
            return err
        try:
            return {"spans": self._diff_spans(list(input_ids), set(delim_ids), min_len,
                                              max_cnt, enforce_bow)}
        except AnygramError as e:
            return {"error": str(e)}

    def _diff_spans(self, ids: list[int], delims: set[int], min_len: int, max_cnt: int,
                    enforce_bow: bool) -> list[dict[str, Any]]:
        """infini-gram's span selection (``docs/analyses.md``) with the diff cut."""
        n = len(ids)
        bows = set(self._bow_ids.tolist())
        rs = self.native.creativity_rs(ids)
        spans: list[dict[str, Any]] = []
        last_end = 0
        for start in range(n):
            if enforce_bow and ids[start] not in bows:
                continue
            length = rs[start] - start
            # Cut after the first delimiter (the prefix's last token does not count).
            cut = next((p for p in range(start, start + length - 1) if ids[p] in delims), None)
            if cut is not None:
                length = cut - start + 1
            if enforce_bow:
                while length > 0 and start + length < n and ids[start + length] not in bows:
                    length -= 1
            length = self._visible(ids, start, length)
            if length < min_len:
                continue
            count = self.native.count(ids[start:start + length]).count
            if count > max_cnt or start + length <= last_end:
                continue
            last_end = start + length
            spans.append({"l": start, "r": start + length, "length": length, "count": count,
                          "unigram_logprob_sum": self._logprob_sum(ids[start:start + length]),
                          "docs": self._occurrences(ids[start:start + length])})
        return spans

    def _visible(self, ids: list[int], start: int, length: int) -> int:
        """``length`` shortened until ``ids[start:start + length]`` occurs more often in the
        main index than in the diff index (0 if it never does)."""
        while length > 0:
            span = ids[start:start + length]
            hidden = self.diff.native.count(span).count
            if hidden == 0 or self.native.count(span).count > hidden:
                break
            length -= 1
        return length

    def _logprob_sum(self, span: list[int]) -> float:
        """Σ log(count(token) / count([])), left to right (as infini-gram with
        ``precompute_unigram_logprobs=True``)."""
        total = math.log(max(self.native.count([]).count, 1))
        return sum_in_order(math.log(max(self.native.count([t]).count, 1)) - total
                            for t in span)
