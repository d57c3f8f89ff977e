"""anygram: unbounded n-gram (∞-gram) queries and exact-match search over suffix-array indexes.

The public API is what this module exports. The names are loaded on first use (PEP 562), so
``import anygram`` and ``anygram --help`` do not pay for numpy, numba or the tokenizers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    AnygramError,
    BuildError,
    ClusterError,
    CorpusError,
    IncompleteIndexError,
    IndexFormatError,
    IndexNotFoundError,
    IndexVersionError,
    InvalidQueryError,
    MissingDependencyError,
    ShardUnavailableError,
    TokenizerError,
    TokenOutOfRangeError,
)

if TYPE_CHECKING:
    from . import cluster
    from .engine import Engine
    from .index.build import build_index, build_index_from_ids, build_index_from_token_files
    from .index.format import Manifest
    from .index.grow import add_documents
    from .query.results import (
        AttributionDoc,
        AttributionResult,
        AttributionSpan,
        CnfCount,
        CnfFindResult,
        CnfHit,
        CnfSearchResult,
        CountResult,
        DocsWithAllResult,
        DocWindow,
        DocWindows,
        FindResult,
        InfGramNextTokenDist,
        InfGramProbResult,
        InfGramTextResult,
        NextTokenDist,
        Occurrence,
        ProbResult,
        SearchResult,
    )
    from .query.text import parse_query
    from .tools import takedown

#: exported name -> (module, attribute in it; None: the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "build_index": ("anygram.index.build", "build_index"),
    "add_documents": ("anygram.index.grow", "add_documents"),
    "build_index_from_ids": ("anygram.index.build", "build_index_from_ids"),
    "build_index_from_token_files": ("anygram.index.build", "build_index_from_token_files"),
    "Manifest": ("anygram.index.format", "Manifest"),
    "Engine": ("anygram.engine", "Engine"),
    "parse_query": ("anygram.query.text", "parse_query"),
    "takedown": ("anygram.tools.takedown", None),
    "cluster": ("anygram.cluster", None),
    **{name: ("anygram.query.results", name) for name in (
        "AttributionDoc", "AttributionResult", "AttributionSpan", "CnfCount", "CnfFindResult",
        "CnfHit", "CnfSearchResult", "CountResult", "DocsWithAllResult", "DocWindow",
        "DocWindows", "FindResult", "InfGramNextTokenDist", "InfGramProbResult",
        "InfGramTextResult", "NextTokenDist", "Occurrence", "ProbResult", "SearchResult")},
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'anygram' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "__version__", "takedown", "cluster", "build_index", "add_documents", "build_index_from_ids",
    "build_index_from_token_files", "Engine", "Manifest", "parse_query",
    "AnygramError", "BuildError", "ClusterError", "CorpusError", "IncompleteIndexError",
    "IndexFormatError",
    "IndexNotFoundError", "IndexVersionError", "InvalidQueryError", "MissingDependencyError",
    "ShardUnavailableError", "TokenizerError", "TokenOutOfRangeError",
    "CountResult", "DocWindow", "DocWindows", "FindResult", "InfGramNextTokenDist",
    "InfGramProbResult", "NextTokenDist", "Occurrence", "ProbResult", "SearchResult",
    "CnfCount", "CnfFindResult", "CnfHit", "CnfSearchResult", "DocsWithAllResult",
    "AttributionDoc", "AttributionResult", "AttributionSpan", "InfGramTextResult",
]
