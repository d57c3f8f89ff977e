"""CNF queries: ``count_cnf`` and ``find_cnf`` (``search_docs_cnf`` is in :mod:`._documents`)."""

from __future__ import annotations

from typing import Any

from ..errors import AnygramError
from ._base import _Base


class _CnfMixin(_Base):
    """``count_cnf`` and ``find_cnf``."""

    # ------------------------------------------------------------------ CNF

    def count_cnf(self, cnf: list[list[list[int]]], max_clause_freq: int | None = None,
                  max_diff_tokens: int | None = None) -> dict[str, Any]:
        """``{'count', 'approx'}``: matches of a CNF (clauses ANDed, phrases ORed).

        anygram's semantics (``docs/cnf.md``): occurrences of the first clause with every
        other clause in the same document within ``max_diff_tokens``; exact unless the rarest
        clause occurs more than ``max_clause_freq`` times (then an unbiased estimate).
        """
        args = self._cnf_args(cnf, max_clause_freq, max_diff_tokens)
        if isinstance(args, dict):
            return args
        try:
            r = self.engine.count_cnf(cnf, max_clause_freq=args[0], max_diff_tokens=args[1])
        except AnygramError as e:
            return {"error": str(e)}
        return {"count": r.count, "approx": r.approx}

    def find_cnf(self, cnf: list[list[list[int]]], max_clause_freq: int | None = None,
                 max_diff_tokens: int | None = None) -> dict[str, Any]:
        """``{'cnt', 'approx', 'ptrs_by_shard'}``: :meth:`count_cnf` plus, per shard (in
        infini-gram's order), the ascending **byte** offsets of the matching anchor
        occurrences (when ``approx``: the matches among the sampled anchors only).
        """
        args = self._cnf_args(cnf, max_clause_freq, max_diff_tokens)
        if isinstance(args, dict):
            return args
        try:
            r = self.engine.find_cnf(cnf, max_clause_freq=args[0], max_diff_tokens=args[1])
        except AnygramError as e:
            return {"error": str(e)}
        w = self.engine.token_width
        return {"cnt": r.count, "approx": r.approx,
                "ptrs_by_shard": [(r.positions[i] * w).tolist() for i in self._shard_order]}
