"""Boolean queries: AND of ORs of phrases, with a proximity window (mixed into the Engine)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine import Engine  # noqa: F401


class CnfQueries:
    """Engine methods for CNF queries: count_cnf, find_cnf, search_docs_cnf, docs_with_all."""
