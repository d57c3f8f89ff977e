"""The ``/v1/{index}/<path>`` routes, one module per feature: :data:`OPERATIONS`, the
allow-list of paths (nothing is ever looked up by a name the client sent)."""

from __future__ import annotations

from ..common import Operation
from . import analyses, cnf, documents, ngrams
from .documents import op_get_doc

#: Every ``/v1/{index}/<path>`` route (GET and POST), by path, in the order of the docs.
OPERATIONS: dict[str, Operation] = {
    op.path: op for module in (ngrams, documents, cnf, analyses) for op in module.OPERATIONS}

__all__ = ["OPERATIONS", "Operation", "op_get_doc"]
