"""The query engine: :class:`Engine`, anygram's public Python API.

A thin façade: it opens an index (:mod:`anygram.index`) as shard groups
(:mod:`anygram.shards`), and each method validates its arguments and hands them to the
feature that answers it: the n-gram queries (:mod:`anygram.query.ngrams`), documents and
search (:mod:`anygram.query.documents`), CNF queries (:mod:`anygram.query.cnf`), whole-text
analyses (:mod:`anygram.query.analyses`) and language models (:mod:`anygram.lm`), all over one
:class:`~anygram.query.core.Searcher`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .errors import InvalidQueryError, TokenizerError
from .index import takedown as takedown_records
from .index.format import DTYPE_OF_WIDTH, MANIFEST_NAME, LoadMethod, read_manifest
from .index.reader import OpenedIndex, Shard, open_index
from .lm.generation import Generator, Model
from .lm.kneser_ney import Discount, KneserNey
from .lm.results import KNNextTokenDist, KNProbResult
from .query import ngrams
from .query.analyses import TextAnalyses
from .query.cnf import (
    DEFAULT_MAX_CLAUSE_FREQ,
    DEFAULT_MAX_DIFF_TOKENS,
    CnfQuery,
    CnfSearch,
)
from .query.cnf import Order as CnfOrder
from .query.core import Query, Searcher, TokenIds, check_vocab_size
from .query.documents import DEFAULT_MAX_SORTED, DocumentSearch, Order
from .query.results import (
    AttributionResult,
    CnfCount,
    CnfFindResult,
    CnfSearchResult,
    CountResult,
    DocsWithAllResult,
    DocWindow,
    FindResult,
    InfGramNextTokenDist,
    InfGramProbResult,
    InfGramTextResult,
    NextTokenDist,
    ProbResult,
    SearchResult,
)
from .shards import GroupOpener, open_groups
from .tokenization import Tokenizer, load_tokenizer

__all__ = ["Engine", "Query", "TokenIds"]

_E = TypeVar("_E", bound="Engine")


class Engine:
    """Exact n-gram and ∞-gram queries over an index of one or more shards.

    Open with :meth:`Engine.open`. Queries take token ids (a list or a numpy array), or
    text when the index has a tokenizer. Results are frozen dataclasses.

    >>> eng = Engine.open("idx/")                       # doctest: +SKIP
    >>> eng.count([5, 6, 7])                            # doctest: +SKIP
    CountResult(count=76, approx=False)
    """

    def __init__(self, index: OpenedIndex, core: Searcher, *, load: LoadMethod = "mmap",
                 takedown: bool = True, search_sample: bool = True,
                 ntd_table: bool = True, groups: GroupOpener = open_groups) -> None:
        self._index = index
        self._open_groups = groups
        self._files = index.shards
        self._directories = index.directories
        self._load = load
        self._honour_takedown = takedown
        self._search_sample = search_sample
        self._ntd_table = ntd_table
        self._records = [takedown_records.record_path(d) for d in self._directories]
        self._manifests = [str(Path(d) / MANIFEST_NAME) for d in self._directories]
        self._seen = self._signature()
        self._refresh_lock = threading.Lock()
        self._use(core)

    def _use(self, core: Searcher) -> None:
        """Answer with ``core``: the features are made over it (their caches, such as the
        Kneser-Ney counts, depend on which documents are taken down)."""
        documents = DocumentSearch(core)
        kn = KneserNey(core)
        self._documents, self._cnf, self._analyses, self._kn, self._generator = (
            documents, CnfSearch(core, documents), TextAnalyses(core, documents), kn,
            Generator(core, kn))
        self._core = core

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(cls: type[_E], path: str | Path | Sequence[str | Path], *,
             token_dtype: str | None = None, load: LoadMethod = "mmap",
             tokenizer: str | Path | Tokenizer | None = None, vocab_size: int | None = None,
             eos_id: int | None = None, takedown: bool = True,
             search_sample: bool = True, ntd_table: bool = True,
             force_tokenizer: bool = False, groups: GroupOpener | None = None) -> _E:
        """Open an index: an anygram directory, or infini-gram v4/v6 directories.

        Args:
            path: one index directory or a list of them (all their shards are queried as one
                corpus). Their tokenizer, vocabulary
                and end-of-document id are those their manifests agree on (indexes built
                with different tokenizers are refused: open them separately).
            token_dtype: ``"u8"``/``"u16"``/``"u32"``; only needed for an infini-gram index
                whose width cannot be inferred from its file sizes.
            load: ``"mmap"`` (default, pages are read on demand) or ``"ram"``.
            tokenizer: a tokenizer spec for text queries; defaults to the manifest's, which
                is loaded on the first text query (a query of ids never pays for it). One
                unlike the manifest's is refused (TokenizerError) unless ``force_tokenizer``:
                its ids would not be the index's.
            vocab_size: valid ids are ``0..vocab_size-1``; defaults to the manifest's value,
                or everything but the separator id for an index without a manifest.
            eos_id: the id that stands for a document end (used by the compat layer).
            takedown: honour the documents taken down with :mod:`anygram.tools.takedown` (the
                default); False shows the index as built.
            force_tokenizer: use ``tokenizer`` even though the index was built with another.
            search_sample: search each shard through its search sample
                (:mod:`anygram.index.sample`: a small in-memory top level over the suffix
                array, so that a search reads few pages of a cold index), read or built on
                first use; False searches the suffix arrays alone. Answers are the same.
            ntd_table: answer the exact next-token distributions of the frequent 1- and
                2-token prompts of each shard from its next-token table
                (:mod:`anygram.index.ntd_table`: their counts, kept at build time), read or
                built on first use (one pass over each suffix array); False counts them in
                the suffix arrays. Answers are the same.
            groups: what opens the shards: by default this process maps them
                (:func:`anygram.shards.open_groups`); :class:`anygram.cluster.RayGroups` has
                them served by Ray actors (see :func:`anygram.cluster.open`). Answers are the
                same.

        Raises:
            IndexNotFoundError, IncompleteIndexError, IndexFormatError, TokenizerError.
        """
        opener: GroupOpener = open_groups if groups is None else groups
        index = open_index(path, token_dtype=token_dtype, load=load)
        built = _BuildFacts.of(index)
        tok: Tokenizer | Callable[[], Tokenizer] | None
        if tokenizer is None and built.tokenizer is not None:
            spec, base = built.tokenizer
            tok = lambda: load_tokenizer(spec, base_dir=base)  # noqa: E731  (loaded on use)
        elif isinstance(tokenizer, (str, Path, dict)):
            tok = load_tokenizer(tokenizer)  # asked for: its errors belong to the open
        elif tokenizer is None or isinstance(tokenizer, Tokenizer):
            tok = tokenizer
        else:
            raise TokenizerError(f"tokenizer must be a spec, a path or a Tokenizer, not "
                                 f"{type(tokenizer).__name__}")
        if tok is not None and not callable(tok) and built.tokenizer is not None \
                and not force_tokenizer and not _same_tokenizer(tok.spec(), built.tokenizer[0]):
            raise TokenizerError(
                f"this index was built with another tokenizer ({_describe(built.tokenizer[0])}) "
                f"than the one given ({_describe(tok.spec())}): its text queries would count "
                "other tokens. Leave the tokenizer out to use the index's, or force it "
                "(force_tokenizer=True, --force-tokenizer)")
        if vocab_size is None:
            vocab_size = built.vocab_size or (1 << (8 * index.token_width)) - 1
        vocab_size = check_vocab_size(vocab_size, index.token_width)
        shards, removed = opener(index, vocab_size, load=load, takedown=takedown,
                                 search_sample=search_sample, ntd_table=ntd_table)
        core = Searcher(shards, removed, vocab_size=vocab_size,
                        eos_id=eos_id if eos_id is not None else built.eos_id, tokenizer=tok)
        return cls(index, core, load=load, takedown=takedown, search_sample=search_sample,
                   ntd_table=ntd_table, groups=opener)

    def refresh(self) -> bool:
        """Pick up what changed since the index was opened (or last refreshed): takedowns,
        and documents added (``anygram add``) or shards compacted (``anygram compact``); later
        queries see them. Returns whether anything changed.

        Cheap when nothing did (a ``stat`` of each directory's takedown record and manifest),
        so a server calls it before every request; queries already running finish on the
        index they started with. An engine opened with ``takedown=False`` ignores takedowns.
        """
        if self._signature() == self._seen:
            return False
        with self._refresh_lock:
            seen = self._signature()
            if seen == self._seen:
                return False
            old = self._core
            if seen[1] != self._seen[1]:  # the manifests changed: the shards did
                self._index = open_index(list(self._directories), token_dtype=self.token_dtype,
                                         load=self._load)
                self._files = self._index.shards
                reuse = None
            elif not self._honour_takedown:
                self._seen = seen
                return False
            else:
                reuse = old.shards
            shards, removed = self._open_groups(
                self._index, old.vocab_size, load=self._load, takedown=self._honour_takedown,
                search_sample=self._search_sample, ntd_table=self._ntd_table, reuse=reuse)
            self._use(Searcher(shards, removed, vocab_size=old.vocab_size, eos_id=old.eos_id,
                               tokenizer=old.tokenizer_source))
            self._seen = seen
            return True

    def _signature(self) -> tuple[tuple[object, ...], tuple[object, ...]]:
        """What changes when a takedown record or a manifest is replaced (stats)."""
        return (tuple(takedown_records.record_signature(p) for p in self._records),
                tuple(takedown_records.record_signature(p) for p in self._manifests))

    def close(self) -> None:
        """Drop the references to the shard arrays (the maps close when unreferenced).

        Queries on a closed engine raise :class:`InvalidQueryError`.
        """
        self._core.close()
        self._files = ()


    def __enter__(self: _E) -> _E:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle by path: a worker process re-opens the maps instead of copying them.
        core = self._core
        return (_reopen, (type(self), [str(d) for d in self._directories], self.token_dtype,
                          core.vocab_size, core.eos_id))

    def __repr__(self) -> str:
        dirs = ", ".join(str(d) for d in self._directories)
        return (f"<Engine {dirs}: {self.num_shards} shard(s), {self.num_tokens:,} tokens, "
                f"{self.num_docs:,} docs, {self.token_dtype}>")

    @property
    def groups(self) -> GroupOpener:
        """What opened the shards: :func:`anygram.shards.open_groups` (this process), or a
        cluster's :class:`anygram.cluster.RayGroups`."""
        return self._open_groups

    @property
    def token_width(self) -> int:
        """Bytes per token: 1, 2 or 4."""
        return self._core.token_width

    @property
    def vocab_size(self) -> int:
        """Valid query ids are ``0..vocab_size-1``."""
        return self._core.vocab_size

    @property
    def eos_id(self) -> int | None:
        """The id that stands for a document end, if known."""
        return self._core.eos_id

    @property
    def tokenizer(self) -> Tokenizer | None:
        """The tokenizer of text queries, or None."""
        return self._core.tokenizer

    # ------------------------------------------------------------------ properties

    @property
    def token_dtype(self) -> str:
        return DTYPE_OF_WIDTH[self._core.token_width]

    @property
    def num_shards(self) -> int:
        return len(self._files)

    @property
    def num_docs(self) -> int:
        return sum(s.num_docs for s in self._files)

    @property
    def num_tokens(self) -> int:
        """Document tokens in the index, separators excluded."""
        return sum(s.num_tokens for s in self._files)

    @property
    def shards(self) -> tuple[Shard, ...]:
        return self._files

    # ------------------------------------------------------------------ input

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` with the index's tokenizer."""
        return self._core.tokenize(text)

    def decode(self, ids: TokenIds) -> str:
        """Text of token ids with the index's tokenizer (lenient on cut characters)."""
        tok = self._core.tokenizer
        if tok is None:
            raise TokenizerError("this index has no tokenizer to decode with")
        return tok.decode(ids)  # type: ignore[arg-type]  # the tokenizer checks the ids

    # ------------------------------------------------------------------ n-gram queries

    def find(self, query_ids: Query) -> FindResult:
        """Rank ranges of ``query_ids`` in each shard's suffix array, and the total count.

        The empty query matches every position: separators included (as infini-gram).
        """
        return ngrams.find(self._core, self._core.ids(query_ids, "query_ids", allow_empty=True))

    def count(self, query_ids: Query) -> CountResult:
        """Exact number of occurrences of ``query_ids`` (any length) in the corpus.

        ``count([])`` is the number of token positions, document separators included.
        O(|query| log N) per shard.
        """
        return ngrams.count(self._core, self._core.ids(query_ids, "query_ids", allow_empty=True))

    def prob(self, prompt_ids: Query, cont_id: int) -> ProbResult:
        """``P(cont_id | prompt_ids) = count(prompt + [cont]) / count(prompt)``.

        ``prob`` is None when the prompt never occurs. An empty prompt gives the unigram
        probability over all positions (separators included, as infini-gram).
        """
        core = self._core
        prompt = core.ids(prompt_ids, "prompt_ids", allow_empty=True)
        return ngrams.prob(core, prompt, core.token(cont_id, "cont_id"))

    def ntd(self, prompt_ids: Query, *, max_support: int | None = None) -> NextTokenDist:
        """Exact distribution of the tokens that follow ``prompt_ids``.

        Args:
            max_support: when given and the prompt occurs more often than this, count only
                ``max_support`` evenly spaced occurrences (``approx=True``); a 1- or 2-token
                prompt that every shard's next-token table holds is answered exactly
                instead (cheaper than the sample).
        """
        ngrams.check_max_support(max_support)
        return ngrams.ntd(self._core, self._core.ids(prompt_ids, "prompt_ids", allow_empty=True),
                          max_support)

    def infgram_prob(self, prompt_ids: Query, cont_id: int) -> InfGramProbResult:
        """∞-gram probability of ``cont_id``: backs off to the longest occurring suffix.

        ``suffix_len`` is the length of that suffix in tokens (0: the unigram distribution).
        """
        core = self._core
        prompt = core.ids(prompt_ids, "prompt_ids", allow_empty=True)
        return ngrams.infgram_prob(core, prompt, core.token(cont_id, "cont_id"))

    def infgram_ntd(self, prompt_ids: Query, *,
                    max_support: int | None = None) -> InfGramNextTokenDist:
        """Next-token distribution of the longest occurring suffix of ``prompt_ids``."""
        ngrams.check_max_support(max_support)
        prompt = self._core.ids(prompt_ids, "prompt_ids", allow_empty=True)
        return ngrams.infgram_ntd(self._core, prompt, max_support)

    # ------------------------------------------------------------------ batches
    #
    # Many queries in one call: validated first (a bad one rejects the batch, its index in
    # the message), then one kernel call per shard for all of them, sorted for locality;
    # the answers are in input order and equal to the single calls'.

    def count_many(self, queries: Sequence[Query]) -> list[CountResult]:
        """:meth:`count` of each query."""
        return ngrams.count_many(self._core, self._many(queries, "queries"))

    def prob_many(self, pairs: Sequence[tuple[Query, int]]) -> list[ProbResult]:
        """:meth:`prob` of each ``(prompt_ids, cont_id)`` pair."""
        prompts, conts = self._pairs(pairs)
        return ngrams.prob_many(self._core, prompts, conts)

    def ntd_many(self, prompts: Sequence[Query], *,
                 max_support: int | None = None) -> list[NextTokenDist]:
        """:meth:`ntd` of each prompt (``max_support`` as there)."""
        ngrams.check_max_support(max_support)
        return ngrams.ntd_many(self._core, self._many(prompts, "prompts"), max_support)

    def infgram_prob_many(self, pairs: Sequence[tuple[Query, int]]) -> list[InfGramProbResult]:
        """:meth:`infgram_prob` of each ``(prompt_ids, cont_id)`` pair."""
        prompts, conts = self._pairs(pairs)
        return ngrams.infgram_prob_many(self._core, prompts, conts)

    def infgram_ntd_many(self, prompts: Sequence[Query], *,
                         max_support: int | None = None) -> list[InfGramNextTokenDist]:
        """:meth:`infgram_ntd` of each prompt (``max_support`` as there)."""
        ngrams.check_max_support(max_support)
        return ngrams.infgram_ntd_many(self._core, self._many(prompts, "prompts"), max_support)

    def _many(self, queries: Sequence[Query], what: str) -> list[list[int]]:
        if isinstance(queries, (str, bytes)) or not isinstance(queries, Sequence):
            raise InvalidQueryError(f"{what} must be a list of queries, not "
                                    f"{type(queries).__name__}")
        core = self._core
        if not core.closed and all(type(q) is list for q in queries):
            # The usual batch, lists of ints (bools are not ids): checked all at once.
            tokens: list[Any] = [t for q in queries for t in q]
            if set(map(type, tokens)) <= {int} and (not tokens or (
                    min(tokens) >= 0 and max(tokens) < core.vocab_size)):
                return queries  # type: ignore[return-value]  # lists of valid ints
        # Otherwise one by one: the first bad query is named.
        out = []
        for i, q in enumerate(queries):
            with _batch_item(i):
                out.append(core.ids(q, f"{what}[{i}]", allow_empty=True))
        return out

    def _pairs(self, pairs: Sequence[tuple[Query, int]]) -> tuple[list[list[int]], list[int]]:
        if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
            raise InvalidQueryError(f"pairs must be a list of (prompt, cont_id) pairs, not "
                                    f"{type(pairs).__name__}")
        core = self._core
        prompts, conts = [], []
        for i, pair in enumerate(pairs):
            with _batch_item(i):
                if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                    raise InvalidQueryError(f"pairs[{i}] must be a (prompt, cont_id) pair, "
                                            f"not {pair!r}")
                prompts.append(core.ids(pair[0], f"pairs[{i}] prompt", allow_empty=True))
                conts.append(core.token(pair[1], f"pairs[{i}] cont_id"))
        return prompts, conts

    # ------------------------------------------------------------------ document addressing

    def locate_doc(self, doc_id: int) -> tuple[int, int]:
        """``(shard, local index)`` of a global document id."""
        return self._core.locate_doc(doc_id)

    def doc_id(self, shard: int, local: int) -> int:
        """Global id of document ``local`` of ``shard``."""
        return self._core.doc_id(shard, local)

    def doc_span(self, shard: int, local: int) -> tuple[int, int]:
        """Token positions ``[start, end)`` of a document's tokens (its separator excluded)."""
        return self._core.shards.doc_span(shard, local)

    def docs_at(self, shard: int, positions: np.ndarray) -> np.ndarray:
        """Local index of the document holding each token position of ``shard``."""
        pos = np.asarray(positions, dtype=np.int64)
        return self._core.shards.docs_at(np.full(pos.shape[0], shard, dtype=np.int64), pos)

    def doc_starts(self, shard: int, local_docs: np.ndarray) -> np.ndarray:
        """Token position of the separator before each local document of ``shard``."""
        docs = np.asarray(local_docs, dtype=np.int64)
        return self._core.shards.doc_starts(np.full(docs.shape[0], shard, dtype=np.int64), docs)

    def is_removed(self, shard: int, local_docs: np.ndarray) -> np.ndarray:
        """Whether each local document of ``shard`` has been taken down (bool array)."""
        return self._core.shards.is_removed(shard, local_docs)

    def positions(self, shard: int, start: int, end: int) -> np.ndarray:
        """Token positions of suffix-array ranks ``[start, end)`` of ``shard`` (rank order)."""
        return self._core.shards.positions(shard, start, end)

    # ------------------------------------------------------------------ documents and search

    def get_doc(self, doc_id: int, *, max_tokens: int | None = None,
                decode: bool = True) -> DocWindow:
        """Document ``doc_id``: all its tokens, or its first ``max_tokens``.

        The window has ``start=0`` and no match (``match_offset`` is None). With
        ``decode=False`` the text is not decoded (``text=None``). O(document length).

        Raises:
            InvalidQueryError: ``doc_id`` is not an int in ``0..num_docs-1``, or
                ``max_tokens`` is negative.
        """
        return self._documents.get_docs([doc_id], max_tokens, decode)[0]

    def get_docs(self, doc_ids: Sequence[int] | np.ndarray, *,
                 max_tokens: int | None = None, decode: bool = True) -> list[DocWindow]:
        """:meth:`get_doc` of each id, in order. Every id is validated before any is read."""
        return self._documents.get_docs(doc_ids, max_tokens, decode)

    def get_doc_by_pos(self, shard: int, pos: int, *, query_len: int = 0,
                       max_disp_len: int | None = None, max_ctx_len: int | None = None,
                       decode: bool = True) -> DocWindow:
        """The window of the document holding token position ``pos`` of ``shard``.

        ``query_len`` is the length of the match that starts at ``pos`` (clipped to the end of
        its document); the window is cut with ``max_ctx_len`` tokens on each side of the match
        (default 100) or ``max_disp_len`` tokens around its start, clipped to the document.
        O(window length + log documents).

        Raises:
            InvalidQueryError: ``shard`` or ``pos`` out of range (the message gives the range),
                ``pos`` at a document separator, a negative ``query_len``, bad window sizes.
        """
        return self._documents.get_docs_by_pos([(shard, pos)], query_len, max_disp_len,
                                               max_ctx_len, decode)[0]

    def get_docs_by_pos(self, requests: Sequence[tuple[int, int]] | np.ndarray, *,
                        query_len: int = 0, max_disp_len: int | None = None,
                        max_ctx_len: int | None = None,
                        decode: bool = True) -> list[DocWindow]:
        """:meth:`get_doc_by_pos` of each ``(shard, pos)`` pair, in order (all checked first)."""
        return self._documents.get_docs_by_pos(requests, query_len, max_disp_len, max_ctx_len,
                                               decode)

    def get_doc_by_rank(self, shard: int, rank: int, *, query_len: int = 0,
                        max_disp_len: int | None = None, max_ctx_len: int | None = None,
                        decode: bool = True) -> DocWindow:
        """The window of the occurrence at suffix-array ``rank`` of ``shard``.

        Same as :meth:`get_doc_by_pos` at the position stored at that rank (``match_pos``).
        The ranks of a query's occurrences are given by :meth:`find`.

        Raises:
            InvalidQueryError: ``shard`` or ``rank`` out of range, a rank whose suffix starts at
                a document separator, a negative ``query_len``, bad window sizes.
        """
        return self._documents.get_docs_by_rank([(shard, rank)], query_len, max_disp_len,
                                                max_ctx_len, decode)[0]

    def get_docs_by_rank(self, requests: Sequence[tuple[int, int]] | np.ndarray, *,
                         query_len: int = 0, max_disp_len: int | None = None,
                         max_ctx_len: int | None = None,
                         decode: bool = True) -> list[DocWindow]:
        """:meth:`get_doc_by_rank` of each ``(shard, rank)`` pair, in order (all checked first)."""
        return self._documents.get_docs_by_rank(requests, query_len, max_disp_len, max_ctx_len,
                                                decode)

    def search_docs(self, query: Query, *, max_docs: int = 10, offset: int = 0,
                    order: Order = "position", seed: int = 0,
                    max_disp_len: int | None = None, max_ctx_len: int | None = None,
                    max_sorted: int = DEFAULT_MAX_SORTED, decode: bool = True) -> SearchResult:
        """The occurrences of a phrase: their exact count and one page of them with windows.

        The occurrences (outside taken-down documents) are put in one of three orders, and
        the page ``[offset, offset + max_docs)`` of that order is returned; hits are distinct
        and the same arguments always give the same page, so paging with ``offset`` (or the
        result's ``next_offset``) visits every occurrence exactly once.

        - ``order="position"``: corpus order, by (shard, position). Reads every occurrence
          of the shards holding the page: O(count) time; memory O(offset + max_docs) for
          early pages, O(count) only for a page past count / 8; refused with
          InvalidQueryError above ``max_sorted`` occurrences (default 50,000,000) unless the
          page is empty.
        - ``order="rank"``: suffix-array order, i.e. grouped by what follows the match.
          O(max_docs) after the search.
        - ``order="random"``: a pseudo-random permutation of the occurrences keyed by
          ``seed`` (a Feistel network over ``[0, count)``): a reproducible uniform-looking
          sample without repeats. O(max_docs) after the search.

        Each hit's window is cut as in :meth:`get_doc_by_pos` with ``query_len=len(query)``
        (``max_ctx_len`` tokens each side, default 100, or ``max_disp_len``);
        ``match_offset`` and ``match_len`` locate the match in it, and ``decode=False``
        skips decoding the text. ``max_docs=0`` gives the count alone. When the query occurs
        inside taken-down documents (one more search, in the takedown index, tells), its
        occurrences in the shards holding them are all located to filter them out
        (O(count in those shards)), whatever the order. The search itself is
        O(|query| log N) per shard.

        >>> r = eng.search_docs("natural language", max_docs=2, order="random")  # doctest: +SKIP
        >>> [h.match_ids == eng.tokenize("natural language") for h in r.hits]  # doctest: +SKIP
        [True, True]

        Raises:
            InvalidQueryError: an empty query, bad ids, ``max_docs``/``offset`` negative, an
                unknown ``order``, a non-int ``seed``, bad window sizes, or ``order="position"``
                with more than ``max_sorted`` occurrences.
        """
        return self._documents.search(query, max_docs, offset, order, seed, max_disp_len,
                                      max_ctx_len, max_sorted, decode)

    # ------------------------------------------------------------------ CNF queries

    def count_cnf(self, cnf: CnfQuery, *,
                  max_diff_tokens: int = DEFAULT_MAX_DIFF_TOKENS,
                  max_clause_freq: int | None = DEFAULT_MAX_CLAUSE_FREQ, seed: int = 0,
                  leading_space: bool | None = None, anchor: int | None = None) -> CnfCount:
        """Number of matches of a CNF query: occurrences of the anchor clause with every other
        clause in the same document within ``max_diff_tokens`` tokens (start to start).

        The anchor is the rarest clause (the first of equals), so the count of an AND does
        not depend on the order its clauses are written in; ``anchor=i`` anchors on clause
        ``i`` as written (``anchor=0``: the first clause, infini-gram's native API). The
        result says which (``anchor``).

        Args:
            cnf: clauses (AND) of phrases (OR), each phrase token ids or text, e.g.
                ``[[[5, 6], [7]], [[8]]]``; or a text query ``"a AND b OR c"`` (OR binds
                tighter, see :mod:`anygram.query.text`).
            max_diff_tokens: the proximity window ``d >= 0``.
            max_clause_freq: a latency bound (the default, 50,000, is infini-gram's cap):
                when the rarest clause occurs more than this often and the cost model
                predicts that checking this many sampled anchor occurrences costs less than
                the exact answer (summed over the shards), they are sampled and the count is
                an unbiased estimate (``approx=True``); otherwise the answer is exact
                (``approx=False``). The choice depends only on the query, the index and the
                arguments. None: always exact.
            seed: seeds the sample (same seed, same answer).
            leading_space: how text terms are tokenized (:func:`~anygram.query.text.term_encoder`).
            anchor: the clause the matches are counted at (its place as written), or None
                for the rarest.

        A single clause counts its distinct occurrence positions (a position where two of its
        phrases start counts once), exactly and in O(phrases x log N) (plus a scan of the
        taken-down documents, if any). Otherwise, per shard, the cheapest of: O(count(r) x d)
        driven by a clause ``r`` whose partners are looked up in the text (so a frequent
        partner of a rare clause costs nothing extra), or O(sum of the counts) reading the
        clauses from the suffix array; when sampled, O(cap x d) or O(cap + partner counts).
        See ``docs/cnf.md``.

        Raises:
            InvalidQueryError, TokenOutOfRangeError, TokenizerError (text without a tokenizer).
        """
        return self._cnf.count(cnf, max_diff_tokens, max_clause_freq, seed, leading_space,
                               anchor)

    def find_cnf(self, cnf: CnfQuery, *,
                 max_diff_tokens: int = DEFAULT_MAX_DIFF_TOKENS,
                 max_clause_freq: int | None = DEFAULT_MAX_CLAUSE_FREQ, seed: int = 0,
                 leading_space: bool | None = None,
                 anchor: int | None = None) -> CnfFindResult:
        """The matches of a CNF query (as :meth:`count_cnf`) and where they are: per shard, the
        ascending token positions of the matching anchor occurrences.

        When ``approx``, the positions are the matches among the sampled anchors only. Unlike
        :meth:`count_cnf`, a single clause is capped too (its positions are the output).
        Cost: as :meth:`count_cnf`, plus the output.
        """
        return self._cnf.find(cnf, max_diff_tokens, max_clause_freq, seed, leading_space,
                              anchor)

    def search_docs_cnf(self, cnf: CnfQuery, *, max_docs: int = 10, offset: int = 0,
                        order: CnfOrder = "position", seed: int = 0,
                        max_diff_tokens: int = DEFAULT_MAX_DIFF_TOKENS,
                        max_clause_freq: int | None = DEFAULT_MAX_CLAUSE_FREQ,
                        max_disp_len: int | None = None, max_ctx_len: int | None = None,
                        decode: bool = True, leading_space: bool | None = None,
                        anchor: int | None = None) -> CnfSearchResult:
        """A page of the matches of a CNF query, each with its document window.

        Hits are distinct anchor occurrences (as :meth:`find_cnf`), reproducible and pageable:
        ``order="position"`` lists them by (shard, position); ``order="random"`` in a
        pseudo-random order fixed by ``seed`` (the seeded permutation of
        :meth:`search_docs`, so pages with the same seed never overlap). ``offset`` and
        ``max_docs`` select the page, ``next_offset`` names the next one. ``seed`` also seeds
        the sample when the cap samples (``approx``: then only the sampled matches can be
        paged, ``total_hits``). Windows are cut around the anchor phrase as in
        :meth:`get_doc_by_pos` (``max_ctx_len`` tokens each side, default 100, or
        ``max_disp_len``); ``decode=False`` skips decoding.

        Cost: as :meth:`find_cnf`, plus O(max_docs x window) for the page.
        """
        return self._cnf.search(cnf, max_docs, offset, order, seed, max_diff_tokens,
                                max_clause_freq, max_disp_len, max_ctx_len, decode, leading_space,
                                anchor)

    def count_docs_with_all(self, cnf: CnfQuery, *,
                            max_clause_freq: int | None = DEFAULT_MAX_CLAUSE_FREQ,
                            seed: int = 0, return_ids: bool = False,
                            leading_space: bool | None = None) -> DocsWithAllResult:
        """Number of documents in which every clause occurs at least once (anywhere in the
        document: a document-level AND with no proximity limit), and optionally their ids.

        Exact, per shard by the cheapest plan: the documents holding the rarest clause R,
        read from R's occurrences and scanned whole for the other clauses (O(count(R) +
        their tokens)); every clause's documents from the suffix array, intersected
        (O(sum of counts)); or every clause marked in bitmaps of the shard's positions and
        each document tested for a mark of each (O(sum of counts + clauses x (positions / 64
        + documents)), no sort).

        When R occurs more than ``max_clause_freq`` times and the cost model predicts the
        sample to cost less than the exact answer (it scans the sampled documents whole),
        that many occurrences of R are sampled uniformly without replacement; each
        contributes ``[its document has every clause] / (occurrences of R in that
        document)``, scaled by ``count(R) / sampled``: an unbiased estimate of the number of
        documents (``approx=True``; ``doc_ids`` are then the matching documents met in the
        sample). Cost O(cap + tokens of the sampled documents).
        """
        return self._cnf.docs_with_all(cnf, max_clause_freq, seed, return_ids, leading_space)

    # ------------------------------------------------------------------ whole-text analyses

    def creativity(self, text: Query) -> list[int]:
        """For each position ``i`` of the text, the length of the longest prefix of
        ``text[i:]`` that occurs in the corpus (its *matching statistics*; 0 where the
        token itself never occurs).

        The result ``m`` satisfies ``m[i + 1] >= m[i] - 1``. Empty text: ``[]``. Honours
        takedowns (only the remaining documents count). Cost: that of :meth:`infgram_text`.
        """
        return self._analyses.creativity(text).tolist()

    def creativity_rs(self, text: Query) -> list[int]:
        """:meth:`creativity` in infini-gram's shape: ``rs[i] = i + creativity[i]``, the end
        of the longest match starting at ``i`` (``rs[i] == i``: nothing occurs there).

        infini-gram's own ``creativity`` under-reports a position whose remaining text sorts
        before every suffix of a shard (it then skips both neighbours of the insertion point
        in that shard and reports 0 for it); this one does not (``docs/analyses.md``).
        """
        m = self._analyses.creativity(text)
        return (m + np.arange(m.shape[0])).tolist()

    def infgram_text(self, text: Query) -> InfGramTextResult:
        """The ∞-gram probability of every token of ``text`` given all the tokens before it.

        Entry ``j`` equals ``infgram_prob(text[:j], text[j])`` (``j = 0`` included: the empty
        prompt gives the unigram over all positions, separators included), in one walk:
        O(n) narrowing searches plus O(log L) fresh searches each time the longest suffix
        (of length L) cannot be extended; see ``docs/analyses.md`` for measured costs.
        With taken-down documents, counts and suffixes see only the remaining documents
        (a slower path, searching where a match lies only in removed documents).
        """
        return self._analyses.infgram_text(text)

    def attribute(self, text: Query, *, delim_ids: Iterable[int] = (),
                  min_len: int = 1, max_cnt: int = 10, enforce_bow: bool = False,
                  bow_ids: Iterable[int] | None = None, max_docs_per_span: int | None = None,
                  with_context: bool = False, max_ctx_len: int | None = None,
                  decode: bool = True) -> AttributionResult:
        """OLMoTrace's spans: the maximal pieces of ``text`` found verbatim in the corpus at
        most ``max_cnt`` times, with where they occur (infini-gram's ``attribute``).

        For each start ``l`` (only tokens in ``bow_ids`` when ``enforce_bow``), take the
        longest prefix of ``text[l:]`` that occurs; cut it after the first token of
        ``delim_ids`` inside it (not counting its last token); with ``enforce_bow``, shrink it
        until the token after it is in ``bow_ids`` or the text ends. Keep ``(l, l + len)``
        when ``len >= min_len`` and its count is ``<= max_cnt``; of those, keep each span whose
        end is beyond the end of every span kept before it: the kept spans are exactly the
        candidates not contained in another candidate.

        Args:
            delim_ids: token ids a span may end with but not run past.
            min_len: the shortest span kept (tokens, >= 0).
            max_cnt: the most occurrences a kept span may have (>= 1).
            enforce_bow, bow_ids: align spans to word starts (``bow_ids``: the ids that begin
                a word; by default the tokenizer's :meth:`~anygram.tokenization.Tokenizer.
                word_start_ids`, the tokens that begin with whitespace).
            max_docs_per_span: list at most this many occurrences per span (the first in
                corpus order); ``count`` is still exact.
            with_context, max_ctx_len, decode: give each occurrence its document window
                (:meth:`get_doc_by_pos` with ``query_len`` = the span's length).

        Returns spans by increasing start, each with its count, unigram log-probability sum
        and occurrences. Taken-down documents count for nothing and are never listed.
        Cost: the walk of :meth:`infgram_text` (with ``enforce_bow``, over the word starts
        only: a narrowing search per word), which also gives the candidates' counts (a
        search each only for spans a delimiter cut), and O(count) per kept span to locate
        its occurrences.

        Raises:
            InvalidQueryError: a bad id (in ``text``, ``delim_ids`` or ``bow_ids``), a bad
                limit, ``enforce_bow`` without ``bow_ids`` on an index without a tokenizer.
        """
        return self._analyses.attribute(text, delim_ids, min_len, max_cnt, enforce_bow, bow_ids,
                                        max_docs_per_span, with_context, max_ctx_len, decode)

    # ------------------------------------------------------------------ language models

    def kn_prob(self, prompt_ids: Query, cont_id: int, *, n: int = 3,
                discount: Discount = None) -> KNProbResult:
        """Interpolated Kneser-Ney ``P(cont_id | prompt_ids)`` of order ``n`` (>= 2).

        ``cont_id`` may be :data:`END` (-1) for the document end. ``discount``: one ``D`` for
        every order, or ``n - 1`` values for orders ``2..n``, or ``"estimate"``
        (:meth:`estimate_discounts` of ``n``, computed once per engine); default
        :data:`DEFAULT_DISCOUNT` (0.75). Sums to 1 over all ids and END.
        """
        return self._kn.prob(prompt_ids, cont_id, n, discount)

    def kn_ntd(self, prompt_ids: Query, *, n: int = 3,
               discount: Discount = None, top_k: int | None = None,
               full: bool = False) -> KNNextTokenDist:
        """Interpolated Kneser-Ney next-token distribution of order ``n`` (>= 2).

        The explicit tokens are, by default, the followers of the last prompt token (every
        token that gets mass beyond the unigram base; the whole support for an empty
        prompt); with ``top_k`` the ``top_k`` most probable tokens of the whole
        distribution; with ``full`` every token of nonzero probability. ``leftover`` is the
        mass of the others (spread over them in proportion to ``P_0``).
        """
        return self._kn.ntd(prompt_ids, n, discount, top_k, full)

    def estimate_discounts(self, n: int, *, sample: int | None = None,
                           seed: int = 0) -> dict[int, float]:
        """Kneser-Ney discounts of orders ``2..n`` from the corpus: ``{order: D}``.

        ``D = n1 / (n1 + 2 n2)`` (Ney; Chen & Goodman), with ``n1`` / ``n2`` the numbers of
        k-gram types (``k`` = the order) counted once / twice: raw occurrence counts at the
        top order ``n``, continuation counts ``N1+(• g)`` (distinct predecessors, ``<s>``
        included) below it, as the model uses them. A k-gram is ``k - 1`` document tokens
        followed by a token or the document end. ``D`` is in ``[0, 1]``; it falls back to
        :data:`DEFAULT_DISCOUNT` when ``n1 + 2 n2 = 0``. Taken-down documents are excluded.

        Exact for any number of shards: each shard's suffix array is walked once per order
        (O(k · N) byte compares), and each type it counts once or twice is looked up in the
        other shards (a galloping search from the previous type's rank, so the shards are
        merged in key order), which adds its occurrences there or finds that an earlier shard
        holds it (a type is counted by the first shard where it occurs). One shard: one walk;
        S shards: the walks plus ``S - 1`` lookups per rare type, O(S · k · N) in all (two
        shards: ~2x the time of the walks alone). Memory: O(1 M) candidates at a time.

        ``sample``: read only about that many suffix-array ranks per order: windows of
        :data:`SAMPLE_WINDOW` consecutive ranks drawn with ``seed``, uniformly without
        replacement among the windows of all the shards. A type is counted, with its exact
        count over all the shards, when its position (the rank of its first ``k`` tokens in the
        first shard holding it) falls in a drawn window, so every type has the same chance
        (the fraction of windows drawn) to be counted, however many shards hold it: ``D`` is a
        ratio, estimated from an unbiased selection of types without scaling. None (or at
        least the whole table) is exact. Results are cached on the engine per ``(n, sample, seed)``.
        """
        return self._kn.estimate_discounts(n, sample, seed)

    def generate(self, prompt_ids: Query, *, max_new_tokens: int = 50,
                 model: Model = "infgram", n: int = 5, temperature: float = 1.0,
                 top_k: int | None = None, seed: int | Sequence[int] | None = 0,
                 stop_at_doc_end: bool = True,
                 discount: Discount = None) -> list[int]:
        """Sample up to ``max_new_tokens`` tokens after the prompt; returns the new tokens.

        ``model``: ``"infgram"`` (the next-token distribution of the longest occurring suffix
        of everything so far), ``"ngram"`` (of the last ``n - 1`` tokens, backing off to
        shorter contexts while the context never occurs) or ``"kn"`` (Kneser-Ney of order
        ``n``). ``top_k`` keeps the ``top_k`` most probable tokens (ties: smaller id first);
        ``temperature`` divides the log-probabilities (0: greedy). ``seed`` seeds a
        :func:`numpy.random.default_rng` (an int or a sequence of ints). A sampled document
        end stops the generation when ``stop_at_doc_end``; otherwise the end is never
        sampled. Generation also stops when no token can follow.
        """
        return self._generator.generate_many([prompt_ids], [seed], max_new_tokens, model, n,
                                             temperature, top_k, stop_at_doc_end, discount)[0]

    def generate_batch(self, prompts: Sequence[Query], *, max_new_tokens: int = 50,
                       model: Model = "infgram", n: int = 5, temperature: float = 1.0,
                       top_k: int | None = None, seed: int = 0,
                       seeds: Sequence[int | Sequence[int]] | None = None,
                       stop_at_doc_end: bool = True,
                       discount: Discount = None) -> list[list[int]]:
        """:meth:`generate` for many prompts, sharing the distributions they meet.

        Prompt ``i`` is sampled with ``seeds[i]``, or with ``(seed, i)`` when ``seeds`` is
        None: ``generate_batch(ps, seed=s)[i] == generate(ps[i], seed=(s, i))``.
        """
        if isinstance(prompts, (str, np.ndarray)) or not isinstance(prompts, Sequence):
            raise InvalidQueryError("prompts must be a list of prompts")
        if seeds is None:
            seeds = [(seed, i) for i in range(len(prompts))]
        elif isinstance(seeds, str) or not isinstance(seeds, Sequence):
            raise InvalidQueryError("seeds must be a list (one seed per prompt) or None")
        elif len(seeds) != len(prompts):
            raise InvalidQueryError(f"{len(seeds)} seeds for {len(prompts)} prompts")
        return self._generator.generate_many(list(prompts), list(seeds), max_new_tokens, model,
                                             n, temperature, top_k, stop_at_doc_end, discount)


@contextmanager
def _batch_item(i: int) -> Iterator[None]:
    """Tag an :class:`InvalidQueryError` raised inside with the batch item it is about."""
    try:
        yield
    except InvalidQueryError as exc:
        exc.item = i
        raise


def _reopen(cls: type[_E], dirs: list[str], token_dtype: str, vocab_size: int,
            eos_id: int | None) -> _E:
    return cls.open(dirs, token_dtype=token_dtype, vocab_size=vocab_size, eos_id=eos_id)


@dataclass(frozen=True)
class _BuildFacts:
    """What the manifests of the opened directories agree on."""

    tokenizer: tuple[dict[str, Any], Path] | None  # the spec, and the directory it is in
    vocab_size: int | None
    eos_id: int | None

    @classmethod
    def of(cls, index: OpenedIndex) -> _BuildFacts:
        if index.manifest is not None:  # one anygram directory
            m = index.manifest
            return cls((m.tokenizer, index.directories[0]) if m.tokenizer else None,
                       m.vocab_size, m.eos_id)
        found = [(read_manifest(d), d) for d in index.directories
                 if (d / MANIFEST_NAME).is_file()]
        if not found or len(found) < len(index.directories):
            return cls(None, None, None)  # (infini-gram directories record none of it)
        specs = [m.tokenizer for m, _ in found]
        if any((a is None) != (b is None) or (a is not None and b is not None
                                              and not _same_tokenizer(a, b))
               for a, b in zip(specs, specs[1:])):
            raise TokenizerError("these indexes were built with different tokenizers ("
                                 + "; ".join(f"{d}: {_describe(s)}" for s, (_, d)
                                             in zip(specs, found))
                                 + "): open them separately")
        first, first_dir = found[0]
        vocab = {m.vocab_size for m, _ in found}
        eos = {m.eos_id for m, _ in found}
        return cls((first.tokenizer, first_dir) if first.tokenizer else None,
                   max(vocab), eos.pop() if len(eos) == 1 else None)


def _same_tokenizer(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two tokenizer specs tokenize alike: the same kind, file contents (sha256) and
    options (where the file lies does not matter)."""
    return {k: v for k, v in a.items() if k != "file"} == \
        {k: v for k, v in b.items() if k != "file"}


def _describe(spec: dict[str, Any] | None) -> str:
    if spec is None:
        return "none"
    name = spec.get("file")
    return f"{spec.get('kind')} {Path(name).name}" if name else str(spec.get("kind"))
