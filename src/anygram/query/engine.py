"""The query engine: :class:`Engine`, the public class, composed of the core and its features.

The core (:mod:`anygram.query.core`) opens an index, validates input once, fans out over shards,
merges and builds results; each feature is a mixin over it (documents, CNF queries, text
analyses, language models).
"""

from __future__ import annotations

from ..lm.generation import LanguageModels
from .analyses import TextAnalyses
from .cnf import CnfQueries
from .core import Query, TokenIds
from .documents import DocumentQueries

__all__ = ["Engine", "Query", "TokenIds"]


class Engine(TextAnalyses, CnfQueries, LanguageModels, DocumentQueries):
    """Exact n-gram and ∞-gram queries over an index of one or more shards.

    Open with :meth:`Engine.open`. Queries take token ids (a list or a numpy array), or
    text when the index has a tokenizer. Results are frozen dataclasses.

    >>> eng = Engine.open("idx/")                       # doctest: +SKIP
    >>> eng.count([5, 6, 7])                            # doctest: +SKIP
    CountResult(count=76, approx=False)
    """
