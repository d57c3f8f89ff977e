"""Whole-text analyses: ``creativity`` and ``attribute`` (OLMoTrace)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import AnygramError
from ._base import _Base, _positive_int


class _AnalysesMixin(_Base):
    """``creativity`` and ``attribute``."""

    # ------------------------------------------------------------------ whole-text analyses

    def creativity(self, input_ids: list[int]) -> dict[str, Any]:
        """``{'rs': [...]}``: ``rs[i]`` is the end of the longest match starting at ``i``
        (``rs[i] == i``: token ``i`` never occurs); the empty text gives ``[]``."""
        if not self._ids_ok(input_ids):
            return self._ids_error("input_ids")
        try:
            return {"rs": self.engine.creativity_rs(input_ids)}
        except AnygramError as e:
            return {"error": str(e)}

    def attribute(self, input_ids: list[int], delim_ids: Iterable[int], min_len: int,
                  max_cnt: int, enforce_bow: bool) -> dict[str, Any]:
        """OLMoTrace's spans: ``{'spans': [{'l', 'r', 'length', 'count',
        'unigram_logprob_sum', 'docs': [{'s', 'ptr'}]}]}`` (byte pointers; see
        :meth:`anygram.Engine.attribute` and ``docs/analyses.md``). ``enforce_bow`` uses the
        word starts of ``bow_ids_path`` (none without it: then no span is found)."""
        if not self._ids_ok(input_ids):
            return self._ids_error("input_ids")
        if not self._ids_ok(delim_ids):
            return self._ids_error("delim_ids")
        if not (type(min_len) is int and min_len >= 0):
            return {"error": "min_len must be a non-negative integer"}
        if not _positive_int(max_cnt):
            return {"error": "max_cnt must be a positive integer"}
        if type(enforce_bow) is not bool:
            return {"error": "enforce_bow must be a boolean"}
        try:
            r = self.engine.attribute(input_ids, delim_ids=delim_ids,  # type: ignore[arg-type]
                                      min_len=min_len, max_cnt=max_cnt, enforce_bow=enforce_bow,
                                      bow_ids=self._bow_ids if enforce_bow else None)
        except AnygramError as e:
            return {"error": str(e)}
        out = r.to_infini_gram(self.engine.token_width)
        for span in out["spans"]:
            span["docs"] = sorted(({"s": self._ig_shard_of[d["s"]], "ptr": d["ptr"]}
                                   for d in span["docs"]), key=lambda d: (d["s"], d["ptr"]))
        return out
