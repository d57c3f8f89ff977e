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
            return {"rs": self.native.creativity_rs(input_ids)}
        except AnygramError as e:
            return {"error": str(e)}

    def attribute(self, input_ids: list[int], delim_ids: Iterable[int], min_len: int,
                  max_cnt: int, enforce_bow: bool) -> dict[str, Any]:
        """OLMoTrace's spans: ``{'spans': [{'l', 'r', 'length', 'count',
        'unigram_logprob_sum', 'docs': [{'s', 'ptr'}]}]}`` (see
        :meth:`anygram.Engine.attribute` and ``docs/analyses.md``). A span's ``docs`` are its
        occurrences as infini-gram lists them: byte pointers, shard by shard, in suffix-array
        order. ``enforce_bow`` uses the word starts of ``bow_ids_path`` (none without it:
        then no span is found)."""
        err = self._attribute_args(input_ids, delim_ids, min_len, max_cnt, enforce_bow)
        if err is not None:
            return err
        try:
            r = self.native.attribute(input_ids, delim_ids=delim_ids,  # type: ignore[arg-type]
                                      min_len=min_len, max_cnt=max_cnt, enforce_bow=enforce_bow,
                                      bow_ids=self._bow_ids if enforce_bow else None)
            out = r.to_infini_gram(self.native.token_width)
            for span in out["spans"]:
                listed = {(d["s"], d["ptr"]) for d in span["docs"]}  # takedowns honoured
                span["docs"] = self._occurrences(input_ids[span["l"]:span["r"]], listed)
        except AnygramError as e:
            return {"error": str(e)}
        return out

    def _attribute_args(self, input_ids: Any, delim_ids: Any, min_len: Any, max_cnt: Any,
                        enforce_bow: Any) -> dict[str, str] | None:
        """infini-gram's checks of ``attribute``'s arguments: an error dict, or None."""
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
        return None

    def _occurrences(self, span_ids: list[int],
                     among: set[tuple[int, int]] | None = None) -> list[dict[str, int]]:
        """The occurrences of ``span_ids`` as infini-gram's ``{'s', 'ptr'}`` (its shard numbers,
        byte pointers), shard by shard in suffix-array order; only those ``among`` the
        ``(our shard, byte pointer)`` pairs given, if any."""
        f = self.native.find(span_ids)
        w = self.native.token_width
        out = []
        for s, ours in enumerate(self._shard_order):
            for pos in self.native.positions(ours, *f.ranges[ours]).tolist():
                if among is None or (ours, pos * w) in among:
                    out.append({"s": s, "ptr": pos * w})
        return out
