"""The exceptions anygram raises, one tree with a common base.

::

    AnygramError                      catch-all for callers
    ├── IndexNotFoundError            (also FileNotFoundError) no index at that path
    ├── IndexFormatError              files missing, sizes disagree, manifest unreadable
    │   ├── IndexVersionError         manifest written by a newer/unknown format version
    │   └── IncompleteIndexError      the build did not finish (no manifest, partial files)
    ├── InvalidQueryError             (also ValueError) malformed query or argument
    │   └── TokenOutOfRangeError      an id outside the index's vocabulary
    ├── TokenizerError                tokenizer file missing/unreadable, or no tokenizer for text
    ├── CorpusError                   an input file cannot be read or parsed
    ├── BuildError                    index construction failed (e.g. the SA library failed)
    └── MissingDependencyError        (also ImportError) an optional package is not installed

Every message says what to do next.
"""

from __future__ import annotations


class AnygramError(Exception):
    """Base class of every error raised by anygram."""


class IndexNotFoundError(AnygramError, FileNotFoundError):
    """No index exists at the given path."""


class IndexFormatError(AnygramError):
    """The index exists but its files are missing, inconsistent or unreadable."""


class IndexVersionError(IndexFormatError):
    """The index was written in a format version this anygram does not read."""


class IncompleteIndexError(IndexFormatError):
    """The index build did not finish (the completion manifest is absent)."""


class InvalidQueryError(AnygramError, ValueError):
    """A query or argument is malformed (wrong type, empty where not allowed, bad option).

    Attributes:
        item: when the error is about one query of a batch (``Engine.count_many`` ...), its
            index in the batch; None otherwise.
    """

    item: int | None = None


class TokenOutOfRangeError(InvalidQueryError):
    """A token id is negative or not below the index's vocabulary size."""


class TokenizerError(AnygramError):
    """A tokenizer could not be loaded or used."""


class CorpusError(AnygramError):
    """An input corpus file could not be read or parsed."""


class BuildError(AnygramError):
    """Index construction failed."""


class ClusterError(AnygramError):
    """A Ray cluster could not be reached or used (anygram.cluster, --ray)."""


class ShardUnavailableError(ClusterError):
    """Some shards of a cluster-served index did not answer (their node is gone, or they
    did not answer in time): the message names them. Nothing is answered without them."""


class MissingDependencyError(AnygramError, ImportError):
    """A feature needs an optional package that is not installed; the message names the
    extra that brings it (``pip install 'anygram[server]'``)."""
