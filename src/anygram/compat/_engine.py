"""infini-gram's ``InfiniGramEngine`` over an :class:`anygram.Engine` (see the package doc)."""

from __future__ import annotations

from ._analyses import _AnalysesMixin
from ._cnf import _CnfMixin
from ._core import _CoreMixin


class InfiniGramEngine(_CoreMixin, _CnfMixin, _AnalysesMixin):
    """infini-gram's ``InfiniGramEngine`` API over an :class:`anygram.Engine` (see module doc).

    Args are infini-gram's; two keyword-only ones are new. ``exact_ntd``: when True (the
    default) ``ntd``/``infgram_ntd`` count every occurrence; when False they sample
    ``max_support`` occurrences above that count, like infini-gram (but with anygram's
    sampler). ``bow_ids``: word-start ids for ``attribute(enforce_bow=True)``, given directly
    (e.g. ``engine.tokenizer.word_start_ids()``), added to those of ``bow_ids_path``.

    Raises:
        ValueError: a bad constructor argument, or ``version != 4``.
        anygram.IndexNotFoundError, anygram.IndexFormatError: the index cannot be opened.
    """
