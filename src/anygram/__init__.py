"""anygram: unbounded n-gram (∞-gram) queries and exact-match search over suffix-array indexes.

The public API is what this module exports.
"""

__version__ = "0.1.0"

# (after __version__: the submodules read it)
from .analysis_results import AttributionDoc, AttributionResult, AttributionSpan, InfGramTextResult
from .build import build_index, build_index_from_ids
from .cnf_results import (
    CnfCount,
    CnfFindResult,
    CnfHit,
    CnfSearchResult,
    DocsWithAllResult,
)
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
from .format import Manifest
from .query_text import parse_query
from .results import (
    CountResult,
    DocWindow,
    FindResult,
    InfGramNextTokenDist,
    InfGramProbResult,
    NextTokenDist,
    Occurrence,
    ProbResult,
    SearchResult,
)

__all__ = [
    "__version__", "build_index", "build_index_from_ids", "Engine", "Manifest", "parse_query",
    "AnygramError", "BuildError", "CorpusError", "IncompleteIndexError", "IndexFormatError",
    "IndexNotFoundError", "IndexVersionError", "InvalidQueryError", "TokenizerError",
    "TokenOutOfRangeError",
    "CountResult", "DocWindow", "FindResult", "InfGramNextTokenDist", "InfGramProbResult",
    "NextTokenDist", "Occurrence", "ProbResult", "SearchResult",
    "CnfCount", "CnfFindResult", "CnfHit", "CnfSearchResult", "DocsWithAllResult",
    "AttributionDoc", "AttributionResult", "AttributionSpan", "InfGramTextResult",
]
