"""The engine's core: opening an index, validating queries, the shard searches and the n-gram
queries (find, count, prob, ntd, infgram_*), and token positions to documents.

:class:`EngineCore` is the base of every feature mixin (documents, CNF, analyses, language
models); :class:`anygram.Engine` composes them. This module imports none of them.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .. import kernels
from ..errors import IndexFormatError, InvalidQueryError, TokenizerError, TokenOutOfRangeError
from ..index import takedown
from ..index.format import DTYPE_OF_WIDTH, LoadMethod
from ..index.reader import OpenedIndex, Shard, open_index
from ..tokenization import Tokenizer, load_tokenizer
from .results import (
    CountResult,
    FindResult,
    InfGramNextTokenDist,
    InfGramProbResult,
    NextTokenDist,
    ProbResult,
)

TokenIds = Sequence[int] | np.ndarray
Query = TokenIds | str

_FIRST_TOKEN_TABLE_MAX = 1 << 21
_LE_DTYPE: dict[int, np.dtype[Any]] = {1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4")}

_E = TypeVar("_E", bound="EngineCore")


class EngineCore:
    """Shards, validation and the n-gram queries: what every feature of :class:`anygram.Engine`
    builds on. Not meant to be used alone: open an :class:`anygram.Engine`."""

    def __init__(self, index: OpenedIndex, *, vocab_size: int | None = None,
                 eos_id: int | None = None, tokenizer: Tokenizer | None = None) -> None:
        self._index = index
        self._shards: tuple[Shard, ...] = index.shards
        self.token_width: int = index.token_width
        manifest = index.manifest
        separator_id = (1 << (8 * self.token_width)) - 1
        if vocab_size is None:
            vocab_size = manifest.vocab_size if manifest else separator_id
        if not 0 < vocab_size <= separator_id:
            raise InvalidQueryError(
                f"vocab_size must be in 1..{separator_id} for a {self.token_dtype} index "
                f"(id {separator_id} is the document separator), not {vocab_size}")
        self.vocab_size: int = vocab_size
        self.eos_id: int | None = eos_id if eos_id is not None else (
            manifest.eos_id if manifest else None)
        self.tokenizer: Tokenizer | None = tokenizer
        self._dtype = _LE_DTYPE[self.token_width]
        self._closed = False
        # What the kernels take, per shard, looked up once instead of on every query.
        self._arrays = [(s.ds, s.sa, s.ptr_width, s.num_positions) for s in self._shards]
        # Per shard, the rank range of each first token, filled in lazily (-1 = not yet):
        # searches start inside it. Skipped for huge vocabularies (16 bytes per id).
        table_rows = self.vocab_size if self.vocab_size <= _FIRST_TOKEN_TABLE_MAX else 0
        self._first = [np.full((table_rows, 2), -1, dtype=np.int64) for _ in self._shards]
        # Global id of each shard's first document (doc ids run through shards in order).
        self._doc_base = np.cumsum([0] + [s.num_docs for s in self._shards]).tolist()
        # Per shard, the sorted local indices of taken-down documents (see takedown).
        self._removed: list[np.ndarray] = [np.zeros(0, dtype=np.int64) for _ in self._shards]
        # Kernel arrays of the takedown index (the removed documents), subtracted from counts.
        self._minus: list[tuple[np.ndarray, np.ndarray, int, int]] = []

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(cls: type[_E], path: str | Path | Sequence[str | Path], *,
             token_dtype: str | None = None, load: LoadMethod = "mmap",
             tokenizer: str | Path | Tokenizer | None = None, vocab_size: int | None = None,
             eos_id: int | None = None, takedown: bool = True) -> _E:
        """Open an index: an anygram directory, or infini-gram v4/v6 directories.

        Args:
            path: one index directory or a list of them (all their shards are queried).
            token_dtype: ``"u8"``/``"u16"``/``"u32"``; only needed for an infini-gram index
                whose width cannot be inferred from its file sizes.
            load: ``"mmap"`` (default, pages are read on demand) or ``"ram"``.
            tokenizer: a tokenizer spec for text queries; defaults to the manifest's.
            vocab_size: valid ids are ``0..vocab_size-1``; defaults to the manifest's value,
                or everything but the separator id for an index without a manifest.
            eos_id: the id that stands for a document end (used by the compat layer).
            takedown: honour the documents taken down with :mod:`anygram.tools.takedown` (the
                default); False shows the index as built.

        Raises:
            IndexNotFoundError, IncompleteIndexError, IndexFormatError, TokenizerError.
        """
        index = open_index(path, token_dtype=token_dtype, load=load)
        tok: Tokenizer | None
        if tokenizer is None and index.manifest is not None and index.manifest.tokenizer:
            tok = load_tokenizer(index.manifest.tokenizer, base_dir=index.directories[0])
        elif tokenizer is None or isinstance(tokenizer, (str, Path, dict)):
            tok = load_tokenizer(tokenizer) if tokenizer is not None else None
        else:
            tok = tokenizer
        engine = cls(index, vocab_size=vocab_size, eos_id=eos_id, tokenizer=tok)
        if takedown:
            engine._load_takedowns(load)
        return engine

    def _load_takedowns(self, load: LoadMethod) -> None:
        """Read each directory's takedown record: the removed-doc masks and the minus index."""
        for directory in self._index.directories:
            record = takedown.read_record(directory)
            if record is None:
                continue
            first = next(i for i, s in enumerate(self._shards) if s.directory == directory)
            base = self._doc_base[first]  # global id of this directory's first document
            removed: list[list[int]] = [[] for _ in self._shards]
            for doc_id in record["doc_ids"]:
                shard, local = self.locate_doc(base + doc_id)
                removed[shard].append(local)
            self._removed = [np.union1d(old, np.array(new, dtype=np.int64))
                             for old, new in zip(self._removed, removed)]
            minus = open_index(takedown.takedown_dir(directory, record), load=load)
            if minus.token_width != self.token_width:
                raise IndexFormatError(f"the takedown index of {directory} does not match it: "
                                       "take the documents down again")
            self._minus += [(s.ds, s.sa, s.ptr_width, s.num_positions) for s in minus.shards]

    def close(self) -> None:
        """Drop the references to the shard arrays (the maps close when unreferenced).

        Queries on a closed engine raise :class:`InvalidQueryError`.
        """
        self._shards = ()
        self._arrays = []
        self._minus = []
        self._first = []
        self._closed = True

    def __enter__(self: _E) -> _E:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle by path: a worker process re-opens the maps instead of copying them.
        return (_reopen, (type(self), [str(d) for d in self._index.directories],
                          self.token_dtype, self.vocab_size, self.eos_id))

    def __repr__(self) -> str:
        dirs = ", ".join(str(d) for d in self._index.directories)
        return (f"<Engine {dirs}: {self.num_shards} shard(s), {self.num_tokens:,} tokens, "
                f"{self.num_docs:,} docs, {self.token_dtype}>")

    # ------------------------------------------------------------------ properties

    @property
    def token_dtype(self) -> str:
        return DTYPE_OF_WIDTH[self.token_width]

    @property
    def num_shards(self) -> int:
        return len(self._shards)

    @property
    def num_docs(self) -> int:
        return sum(s.num_docs for s in self._shards)

    @property
    def num_tokens(self) -> int:
        """Document tokens in the index, separators excluded."""
        return sum(s.num_tokens for s in self._shards)

    @property
    def shards(self) -> tuple[Shard, ...]:
        return self._shards

    # ------------------------------------------------------------------ input

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` with the index's tokenizer."""
        if self.tokenizer is None:
            raise TokenizerError("this index has no tokenizer: pass token ids, or open it with "
                                 "tokenizer=... (e.g. 'bytes' or a tokenizer.json path)")
        if not isinstance(text, str):
            raise InvalidQueryError(f"text must be a str, not {type(text).__name__}")
        return self.tokenizer.encode(text)

    def decode(self, ids: TokenIds) -> str:
        """Text of token ids with the index's tokenizer (lenient on cut characters)."""
        if self.tokenizer is None:
            raise TokenizerError("this index has no tokenizer to decode with")
        return self.tokenizer.decode(list(ids))

    def _as_ids(self, query: Query, what: str, allow_empty: bool) -> list[int]:
        """Validate a query and return it as a list of ids."""
        if self._closed:
            raise InvalidQueryError("this engine is closed: open the index again")
        if isinstance(query, str):
            query = self.tokenize(query)
        if isinstance(query, np.ndarray):
            if query.ndim != 1 or not (np.issubdtype(query.dtype, np.integer)
                                       and query.dtype != np.bool_):
                raise InvalidQueryError(f"{what} must be a 1-d array of integer token ids, "
                                        f"not {query.dtype}[{query.shape}]")
            query = query.tolist()
        elif isinstance(query, tuple):
            query = list(query)
        if type(query) is not list:
            raise InvalidQueryError(f"{what} must be a list of token ids or a str, not "
                                    f"{type(query).__name__}")
        for x in query:
            if type(x) is not int:  # the common case is checked first: it is the fast one
                if isinstance(x, np.integer):
                    query = [int(y) for y in query]
                    break
                raise InvalidQueryError(f"{what} must contain integer token ids; found "
                                        f"{type(x).__name__} {x!r}")
        if not query:
            if not allow_empty:
                raise InvalidQueryError(f"{what} must not be empty")
            return query
        lo, hi = min(query), max(query)
        if lo < 0 or hi >= self.vocab_size:
            bad = lo if lo < 0 else hi
            raise TokenOutOfRangeError(f"{what} has token id {bad}; valid ids are "
                                       f"0..{self.vocab_size - 1} for this index")
        return query

    def _as_id(self, token: int, what: str) -> int:
        if type(token) is not int and not isinstance(token, np.integer):
            raise InvalidQueryError(f"{what} must be an int token id, not "
                                    f"{type(token).__name__}")
        if not 0 <= int(token) < self.vocab_size:
            raise TokenOutOfRangeError(f"{what} is {token}; valid ids are "
                                       f"0..{self.vocab_size - 1} for this index")
        return int(token)

    def _bytes(self, ids: list[int]) -> np.ndarray:
        """Ids as the little-endian token bytes the kernels compare."""
        return np.array(ids, dtype=self._dtype).view(np.uint8)

    # ------------------------------------------------------------------ core searches
    #
    # With a takedown, every count is (occurrences in the main shards) minus (occurrences in
    # the takedown index, which holds exactly the removed documents): n-grams never cross a
    # document, so that difference is the count over the documents that remain.

    def _ranges(self, q: np.ndarray) -> list[tuple[int, int]]:
        w = self.token_width
        return [kernels.find_range_cached(ds, sa, k, q, w, first)
                for (ds, sa, k, _), first in zip(self._arrays, self._first)]

    def _narrow(self, q: np.ndarray, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Ranges of ``q`` searched inside the ranges of one of its prefixes."""
        return [kernels.find_range(ds, sa, k, q, a, b) if b > a else (a, a)
                for (ds, sa, k, _), (a, b) in zip(self._arrays, ranges)]

    def _removed_count(self, q: np.ndarray) -> int:
        """Occurrences of ``q`` inside taken-down documents."""
        return sum(b - a for a, b in (kernels.find_range(ds, sa, k, q, 0, n)
                                      for ds, sa, k, n in self._minus))

    def _count(self, q: np.ndarray, ranges: list[tuple[int, int]]) -> int:
        """Occurrences of ``q`` in the documents that remain, given its main ranges."""
        total = sum(b - a for a, b in ranges)
        return total - self._removed_count(q) if self._minus else total

    def _next_tokens(self, arrays: list[tuple[np.ndarray, np.ndarray, int, int]], qlen: int,
                     ranges: list[tuple[int, int]], samples: int | None,
                     counts: dict[int, int], sign: int) -> int:
        """Add ``sign`` x next-token counts of ``ranges`` into ``counts``; return end count.

        With ``samples``, each shard reads its share of that many evenly spaced ranks.
        """
        w = self.token_width
        total = sum(b - a for a, b in ranges)
        end_count = 0
        for (ds, sa, k, _), (a, b) in zip(arrays, ranges):
            if b <= a:
                continue
            if samples is not None:
                n = max(1, -(-samples * (b - a) // total))
                ids, cnts, end = kernels.sample_next_token_counts(ds, sa, k, qlen, w, a, b, n)
            else:
                ids, cnts, end = kernels.next_token_counts(ds, sa, k, qlen, w, a, b)
            end_count += end
            for t, c in zip(ids.tolist(), cnts.tolist()):
                counts[t] = counts.get(t, 0) + sign * c
        return sign * end_count

    def _dist(self, q: np.ndarray, ranges: list[tuple[int, int]],
              max_support: int | None) -> NextTokenDist:
        total = sum(b - a for a, b in ranges)
        sample = max_support is not None and total > max_support
        counts: dict[int, int] = {}
        end_count = self._next_tokens(self._arrays, q.shape[0], ranges,
                                      max_support if sample else None, counts, 1)
        if self._minus:
            removed = [kernels.find_range(ds, sa, k, q, 0, n) for ds, sa, k, n in self._minus]
            total -= sum(b - a for a, b in removed)
            end_count += self._next_tokens(self._minus, q.shape[0], removed, None, counts, -1)
            # Sampled counts minus exact removed counts can dip below zero: clip, it is approx.
            counts = {t: c for t, c in counts.items() if c > 0} if sample else {
                t: c for t, c in counts.items() if c}
            end_count = max(end_count, 0)
        return NextTokenDist(prompt_count=total, counts=counts, end_count=end_count,
                             approx=sample)

    def _longest_suffix(self, q: np.ndarray) -> tuple[int, list[tuple[int, int]]]:
        """Length (tokens) of the longest suffix of ``q`` that occurs, and its ranges."""
        w = self.token_width
        found = [kernels.longest_suffix(ds, sa, k, q, w) for ds, sa, k, _ in self._arrays]
        best = max((f[0] for f in found), default=0)
        if self._minus and best > 0:
            return self._longest_remaining_suffix(q, best)
        # Occurrence is monotone in suffix length, so a shard whose own longest suffix is
        # shorter than `best` has no occurrence of the best suffix.
        return best, [(f[1], f[2]) if f[0] == best else (0, 0) for f in found]

    def _longest_remaining_suffix(self, q: np.ndarray, upper: int
                                  ) -> tuple[int, list[tuple[int, int]]]:
        """Like :meth:`_longest_suffix`, counting only documents that were not taken down."""
        w = self.token_width
        n_tok = q.shape[0] // w
        longest = q[(n_tok - upper) * w:]
        ranges = self._ranges(longest)
        if self._count(longest, ranges) > 0:  # the usual case: the match is not all removed
            return upper, ranges
        # Invariant: the suffix of length `good` remains (count > 0); `bad` does not.
        good, bad = 0, upper
        while bad - good > 1:
            mid = (good + bad) >> 1
            suffix = q[(n_tok - mid) * w:]
            if self._count(suffix, self._ranges(suffix)) > 0:
                good = mid
            else:
                bad = mid
        return good, self._ranges(q[(n_tok - good) * w:])

    # ------------------------------------------------------------------ documents

    def locate_doc(self, doc_id: int) -> tuple[int, int]:
        """``(shard, local index)`` of a global document id."""
        if type(doc_id) is not int and not isinstance(doc_id, np.integer):
            raise InvalidQueryError(f"doc_id must be an int, not {type(doc_id).__name__}")
        if not 0 <= doc_id < self._doc_base[-1]:
            raise InvalidQueryError(f"doc_id {doc_id} is out of range: this index has "
                                    f"{self._doc_base[-1]} documents (0..{self._doc_base[-1] - 1})")
        shard = bisect.bisect_right(self._doc_base, int(doc_id)) - 1
        return shard, int(doc_id) - self._doc_base[shard]

    def doc_id(self, shard: int, local: int) -> int:
        """Global id of document ``local`` of ``shard``."""
        return self._doc_base[shard] + local

    def doc_span(self, shard: int, local: int) -> tuple[int, int]:
        """Token positions ``[start, end)`` of a document's tokens (its separator excluded)."""
        s = self._shards[shard]
        w = s.token_width
        start = int(s.offsets[local]) // w + 1
        end = (int(s.offsets[local + 1]) // w if local + 1 < s.num_docs else s.num_positions)
        return start, end

    def docs_at(self, shard: int, positions: np.ndarray) -> np.ndarray:
        """Local index of the document holding each token position of ``shard``."""
        s = self._shards[shard]
        return kernels.docs_of(s.offsets, s.token_width, np.asarray(positions, dtype=np.int64))

    def is_removed(self, shard: int, local_docs: np.ndarray) -> np.ndarray:
        """Whether each local document of ``shard`` has been taken down (bool array)."""
        removed = self._removed[shard]
        local_docs = np.asarray(local_docs, dtype=np.int64)
        if removed.shape[0] == 0:
            return np.zeros(local_docs.shape, dtype=bool)
        i = np.minimum(np.searchsorted(removed, local_docs), removed.shape[0] - 1)
        return removed[i] == local_docs

    def positions(self, shard: int, start: int, end: int) -> np.ndarray:
        """Token positions of suffix-array ranks ``[start, end)`` of ``shard`` (rank order)."""
        s = self._shards[shard]
        # Vectorised, 15x the byte-assembling kernel's speed on long ranges; offsets are
        # multiples of the token width (1, 2 or 4), so a shift divides exactly.
        shift = np.uint64(s.token_width.bit_length() - 1)
        return (s.pointers(start, end) >> shift).astype(np.int64)

    # ------------------------------------------------------------------ public queries

    def find(self, query_ids: Query) -> FindResult:
        """Rank ranges of ``query_ids`` in each shard's suffix array, and the total count.

        The empty query matches every position: separators included (as infini-gram).
        """
        q = self._bytes(self._as_ids(query_ids, "query_ids", allow_empty=True))
        ranges = self._ranges(q)
        return FindResult(count=self._count(q, ranges), ranges=tuple(ranges))

    def count(self, query_ids: Query) -> CountResult:
        """Exact number of occurrences of ``query_ids`` (any length) in the corpus.

        ``count([])`` is the number of token positions, document separators included.
        O(|query| log N) per shard.
        """
        q = self._bytes(self._as_ids(query_ids, "query_ids", allow_empty=True))
        return CountResult(count=self._count(q, self._ranges(q)))

    def prob(self, prompt_ids: Query, cont_id: int) -> ProbResult:
        """``P(cont_id | prompt_ids) = count(prompt + [cont]) / count(prompt)``.

        ``prob`` is None when the prompt never occurs. An empty prompt gives the unigram
        probability over all positions (separators included, as infini-gram).
        """
        prompt = self._as_ids(prompt_ids, "prompt_ids", allow_empty=True)
        cont = self._as_id(cont_id, "cont_id")
        q = self._bytes(prompt)
        ranges = self._ranges(q)
        prompt_count = self._count(q, ranges)
        full = self._bytes(prompt + [cont])
        cont_count = self._count(full, self._narrow(full, ranges))
        return ProbResult(prompt_count=prompt_count, cont_count=cont_count,
                          prob=cont_count / prompt_count if prompt_count else None)

    def ntd(self, prompt_ids: Query, *, max_support: int | None = None) -> NextTokenDist:
        """Exact distribution of the tokens that follow ``prompt_ids``.

        Args:
            max_support: when given and the prompt occurs more often than this, count only
                ``max_support`` evenly spaced occurrences (``approx=True``).
        """
        _check_max_support(max_support)
        q = self._bytes(self._as_ids(prompt_ids, "prompt_ids", allow_empty=True))
        return self._dist(q, self._ranges(q), max_support)

    def infgram_prob(self, prompt_ids: Query, cont_id: int) -> InfGramProbResult:
        """∞-gram probability of ``cont_id``: backs off to the longest occurring suffix.

        ``suffix_len`` is the length of that suffix in tokens (0: the unigram distribution).
        """
        prompt = self._as_ids(prompt_ids, "prompt_ids", allow_empty=True)
        cont = self._as_id(cont_id, "cont_id")
        q = self._bytes(prompt)
        suffix_len, ranges = self._longest_suffix(q)
        suffix = prompt[len(prompt) - suffix_len:]
        prompt_count = self._count(self._bytes(suffix), ranges)
        full = self._bytes(suffix + [cont])
        cont_count = self._count(full, self._narrow(full, ranges))
        return InfGramProbResult(prompt_count=prompt_count, cont_count=cont_count,
                                 prob=cont_count / prompt_count if prompt_count else None,
                                 suffix_len=suffix_len)

    def infgram_ntd(self, prompt_ids: Query, *,
                    max_support: int | None = None) -> InfGramNextTokenDist:
        """Next-token distribution of the longest occurring suffix of ``prompt_ids``."""
        _check_max_support(max_support)
        prompt = self._as_ids(prompt_ids, "prompt_ids", allow_empty=True)
        q = self._bytes(prompt)
        suffix_len, ranges = self._longest_suffix(q)
        dist = self._dist(q[q.shape[0] - suffix_len * self.token_width:], ranges, max_support)
        return InfGramNextTokenDist(dist=dist, suffix_len=suffix_len)


def _check_max_support(max_support: int | None) -> None:
    if max_support is not None and (type(max_support) is not int or max_support < 1):
        raise InvalidQueryError(f"max_support must be a positive int or None, not {max_support!r}")


def _reopen(cls: type[_E], dirs: list[str], token_dtype: str, vocab_size: int,
            eos_id: int | None) -> _E:
    return cls.open(dirs, token_dtype=token_dtype, vocab_size=vocab_size, eos_id=eos_id)
