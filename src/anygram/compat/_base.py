"""Shared state and argument checks of :class:`anygram.compat.InfiniGramEngine`'s mixins.

:class:`_Base` declares the attributes the constructor (:mod:`._core`) sets, and holds the
checks that several concerns share (token ids, CNF queries), worded as infini-gram's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import Engine

_WIDTH_OF_DTYPE = {"u8": 1, "u16": 2, "u32": 4}


def _positive_int(x: Any) -> bool:
    return type(x) is int and x > 0


class _Base:
    """The engine's state (set by ``__init__`` in :mod:`._core`) and its shared checks."""

    token_id_max: int
    eos_token_id: int
    vocab_size: int
    max_support: int
    max_clause_freq: int
    max_diff_tokens: int
    maxnum: int
    max_disp_len: int
    exact_ntd: bool
    _bow_ids: np.ndarray
    native: Engine  # anygram's engine over the same index
    # infini-gram's C++ engine object (``engine.engine`` in scripts): a
    # :class:`~anygram.compat.CppEngine`, which calls back into this class (hence not typed).
    engine: Any
    _index_dirs: list[str]
    _shard_order: list[int]
    _ig_shard_of: dict[int, int]
    _ig_doc_base: list[int]

    # ------------------------------------------------------------------ checks (infini-gram's)

    def _ids_ok(self, ids: Any) -> bool:
        return type(ids) is list and all(
            type(q) is int and 0 <= q <= self.token_id_max for q in ids)

    def _id_ok(self, token: Any) -> bool:
        return type(token) is int and 0 <= token <= self.token_id_max

    def _ids_error(self, name: str, non_empty_wording: bool = False) -> dict[str, str]:
        what = "a non-empty list" if non_empty_wording else "a list"
        return {"error": f"{name} must be {what} of integers in range [0, {self.token_id_max}]"}

    def _shard(self, s: Any) -> int | dict[str, str]:
        """infini-gram's shard number ``s`` as ours, or an error."""
        n = len(self._shard_order)
        if not (type(s) is int and 0 <= s < n):
            return {"error": f"s must be an integer in range [0, {n})"}
        return self._shard_order[s]

    # ------------------------------------------------------------------ CNF checks

    def _cnf_ok(self, cnf: Any) -> bool:
        return type(cnf) is list and len(cnf) > 0 and all(
            type(clause) is list and len(clause) > 0 and all(
                type(p) is list and len(p) > 0 and self._ids_ok(p) for p in clause)
            for clause in cnf)

    def _cnf_args(self, cnf: Any, max_clause_freq: Any, max_diff_tokens: Any
                  ) -> tuple[int, int] | dict[str, str]:
        """The CNF caps with their defaults, checked as infini-gram checks them (or an error)."""
        if max_clause_freq is None:
            max_clause_freq = self.max_clause_freq
        if max_diff_tokens is None:
            max_diff_tokens = self.max_diff_tokens
        if not _positive_int(max_clause_freq):
            return {"error": "max_clause_freq must be a positive integer"}
        if not _positive_int(max_diff_tokens):
            return {"error": "max_diff_tokens must be a positive integer"}
        if not self._cnf_ok(cnf):
            return {"error": "cnf must be a non-empty, triply-nested list of integers in range "
                             f"[0, {self.token_id_max}]"}
        return max_clause_freq, max_diff_tokens
