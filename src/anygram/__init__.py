"""anygram: unbounded n-gram (∞-gram) queries and exact-match search over suffix-array indexes.

The public API is what this module exports.
"""

__version__ = "0.1.0"

from .build import build_index as build_index  # noqa: E402
from .engine import Engine as Engine  # noqa: E402
from .errors import (  # noqa: E402
    AnygramError as AnygramError,
    BuildError as BuildError,
    CorpusError as CorpusError,
    IncompleteIndexError as IncompleteIndexError,
    IndexFormatError as IndexFormatError,
    IndexNotFoundError as IndexNotFoundError,
    IndexVersionError as IndexVersionError,
    InvalidQueryError as InvalidQueryError,
    TokenizerError as TokenizerError,
    TokenOutOfRangeError as TokenOutOfRangeError,
)
from .format import Manifest as Manifest  # noqa: E402
from .results import (  # noqa: E402
    CountResult as CountResult,
    FindResult as FindResult,
    InfGramNextTokenDist as InfGramNextTokenDist,
    InfGramProbResult as InfGramProbResult,
    NextTokenDist as NextTokenDist,
    ProbResult as ProbResult,
)

__all__ = [
    "__version__", "build_index", "Engine", "Manifest",
    "AnygramError", "BuildError", "CorpusError", "IncompleteIndexError", "IndexFormatError",
    "IndexNotFoundError", "IndexVersionError", "InvalidQueryError", "TokenizerError",
    "TokenOutOfRangeError",
    "CountResult", "FindResult", "InfGramNextTokenDist", "InfGramProbResult", "NextTokenDist",
    "ProbResult",
]
