"""anygram: unbounded n-gram (∞-gram) queries and exact-match search over suffix-array indexes.

The public API is what this module exports.
"""

from ._version import __version__
from .engine import Engine
from .errors import (
    AnygramError,
    BuildError,
    CorpusError,
    IncompleteIndexError,
    IndexFormatError,
    IndexNotFoundError,
    IndexVersionError,
    InvalidQueryError,
    TokenizerError,
    TokenOutOfRangeError,
)
from .index.build import build_index, build_index_from_ids
from .index.format import Manifest
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

__all__ = [
    "__version__", "takedown", "build_index", "build_index_from_ids", "Engine", "Manifest",
    "parse_query",
    "AnygramError", "BuildError", "CorpusError", "IncompleteIndexError", "IndexFormatError",
    "IndexNotFoundError", "IndexVersionError", "InvalidQueryError", "TokenizerError",
    "TokenOutOfRangeError",
    "CountResult", "DocWindow", "FindResult", "InfGramNextTokenDist", "InfGramProbResult",
    "NextTokenDist", "Occurrence", "ProbResult", "SearchResult",
    "CnfCount", "CnfFindResult", "CnfHit", "CnfSearchResult", "DocsWithAllResult",
    "AttributionDoc", "AttributionResult", "AttributionSpan", "InfGramTextResult",
]
