"""Document retrieval and document search (mixed into :class:`anygram.Engine`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine import Engine  # noqa: F401


class DocumentQueries:
    """Engine methods that return documents: retrieval by id / rank / position, search."""
