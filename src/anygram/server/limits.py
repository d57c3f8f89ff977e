"""Per-request bounds of the HTTP server: what one request may ask for, and how long it may run."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import Any


def _default_workers() -> int:
    return max(2, min(8, os.cpu_count() or 2))


def _default_heavy_workers() -> int:
    return max(1, _default_workers() // 2)


@dataclass(frozen=True)
class ServerLimits:
    """Bounds on the work one request can ask for (defaults follow infini-gram's public API).

    Query-size bounds are checked before any engine call; a request over one answers
    ``422 LimitExceededError``. Engine calls cannot be interrupted, so these bounds, not the
    time budget, are what keep a request cheap: ``timeout_s`` only stops *waiting* for it.

    Attributes:
        max_query_chars: characters of a text query (CNF: the whole text).
        max_query_tokens: tokens of a query once tokenized (CNF: all terms together).
        max_cnf_clauses: clauses (ANDed) of a CNF query.
        max_cnf_terms: terms (ORed) in one clause of a CNF query.
        max_support: largest ``max_support`` (occurrences sampled by an approximate ntd).
        default_top / max_top: next-token entries returned by ntd (default / largest).
        default_docs / max_docs: document hits per search page (default / largest).
        max_offset: deepest search page offset.
        max_sorted: most occurrences a search may read for ``order=position`` (~1 ns each;
            use the default ``order=random``, or ``rank``, above it).
        default_disp_len / max_disp_len: tokens of a document (``/docs/{id}``) or of a
            ``max_disp_len`` window (default / largest).
        max_ctx_len: largest ``max_ctx_len`` (context tokens on each side of a match).
        max_clause_freq: largest ``max_clause_freq`` of a CNF query.
        max_diff_tokens: largest ``max_diff_tokens`` (proximity window) of a CNF query.
        max_attribute_cnt: largest ``max_cnt`` of an attribution (``/attribute``, and
            infini-gram's ``attribute``): each kept span's occurrences are located.
        max_batch: queries in one ``/batch`` request (each within the query bounds).
        max_body_bytes: request body size (``413`` above it): it bounds a batch too.
        timeout_s: time budget of one request, queueing included (``504`` after it).
        workers: threads running the light requests, the n-gram statistics (numba kernels
            release the GIL): see :mod:`anygram.server.pool` for the two lanes.
        max_pending: light requests admitted at once, running or waiting for a thread; one
            more is answered ``503`` at once instead of queueing.
        heavy_workers: threads running the heavy requests (search, documents, CNF, the
            whole-text analyses), apart from the light ones so they cannot starve them.
        max_heavy_pending: heavy requests admitted at once (``503`` above it).
    """

    max_query_chars: int = 1000
    max_query_tokens: int = 500
    max_cnf_clauses: int = 4
    max_cnf_terms: int = 4
    max_support: int = 1000
    default_top: int = 100
    max_top: int = 1000
    default_docs: int = 5
    max_docs: int = 10
    max_offset: int = 10_000
    max_sorted: int = 10_000_000
    default_disp_len: int = 1000
    max_disp_len: int = 10_000
    max_ctx_len: int = 1000
    max_clause_freq: int = 500_000
    max_diff_tokens: int = 1000
    max_attribute_cnt: int = 1000
    max_batch: int = 1000
    max_body_bytes: int = 64 * 1024
    timeout_s: float = 10.0
    workers: int = _default_workers()
    max_pending: int = 64
    heavy_workers: int = _default_heavy_workers()
    max_heavy_pending: int = 16

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "timeout_s":
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
            else:
                ok = type(value) is int and value > 0
            if not ok:
                raise ValueError(f"ServerLimits.{f.name} must be a positive number, not {value!r}")
        for default, most in (("default_top", "max_top"), ("default_docs", "max_docs"),
                              ("default_disp_len", "max_disp_len")):
            if getattr(self, default) > getattr(self, most):
                raise ValueError(f"ServerLimits.{default} must not exceed {most}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
