"""What every query builds on: :class:`Searcher`, an opened index seen through the shard layer,
with query validation, the n-gram searches with takedowns applied, and document addressing.

Takedowns: every count is (occurrences in the index's shards) minus (occurrences in the
takedown index, which holds exactly the removed documents): n-grams never cross a document,
so that difference is the count over the documents that remain.
"""

from __future__ import annotations

import bisect
import reprlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidQueryError, TokenizerError, TokenOutOfRangeError
from ..index.format import DTYPE_OF_WIDTH
from ..shards import ShardGroup, merge
from ..shards.base import NextTokens, Range
from ..tokenization import Tokenizer
from .results import NextTokenDist

TokenIds = Sequence[int] | np.ndarray
Query = TokenIds | str

_LE_DTYPE: dict[int, np.dtype[Any]] = {1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4")}


def check_vocab_size(vocab_size: int, token_width: int) -> int:
    """``vocab_size`` if valid for an index of ``token_width``-byte tokens: every id but the
    document separator (all ones) may be a token."""
    separator_id = (1 << (8 * token_width)) - 1
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)) \
            or not 0 < vocab_size <= separator_id:
        raise InvalidQueryError(
            f"vocab_size must be in 1..{separator_id} for a {DTYPE_OF_WIDTH[token_width]} "
            f"index (id {separator_id} is the document separator), not {vocab_size!r}")
    return int(vocab_size)


class Searcher:
    """An index's shards (and takedown index) as the queries see them.

    Args:
        shards: the index's shard group.
        takedown: the group of its takedown indexes (the removed documents), or None.
        vocab_size: valid query ids are ``0..vocab_size-1``.
        eos_id: the id that stands for a document end (used by the compat layer).
        tokenizer: for text queries, or None; or a function that loads it, called on first
            use (loading a tokenizer takes ~0.1-0.2 s: a query of ids never pays it).
    """

    def __init__(self, shards: ShardGroup, takedown: ShardGroup | None, *, vocab_size: int,
                 eos_id: int | None,
                 tokenizer: Tokenizer | Callable[[], Tokenizer | None] | None) -> None:
        self.shards = shards
        self.takedown = takedown
        self.token_width: int = shards.token_width
        self.vocab_size = check_vocab_size(vocab_size, self.token_width)
        self.eos_id = eos_id
        self._tokenizer = tokenizer
        self._tokenizer_lock = threading.Lock()
        self.dtype = _LE_DTYPE[self.token_width]
        self.closed = False
        # Global id of each shard's first document (doc ids run through shards in order).
        self.doc_base: list[int] = np.cumsum(
            [0] + [s.num_docs for s in shards.sizes]).tolist()

    def close(self) -> None:
        """Drop the shard data; later queries raise InvalidQueryError."""
        self.closed = True
        self.shards.close()
        if self.takedown is not None:
            self.takedown.close()

    # ------------------------------------------------------------------ input

    @property
    def tokenizer_source(self) -> Tokenizer | Callable[[], Tokenizer | None] | None:
        """The tokenizer, or the function that loads it when it has not been loaded yet (for
        a Searcher over the same index)."""
        return self._tokenizer

    @property
    def tokenizer(self) -> Tokenizer | None:
        """The tokenizer of text queries (loaded on first use), or None."""
        tok = self._tokenizer
        if tok is None or isinstance(tok, Tokenizer):
            return tok
        with self._tokenizer_lock:
            if not (self._tokenizer is None or isinstance(self._tokenizer, Tokenizer)):
                self._tokenizer = self._tokenizer()
            return self._tokenizer  # type: ignore[return-value]  # loaded

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` with the index's tokenizer."""
        if self.tokenizer is None:
            raise TokenizerError("this index has no tokenizer: pass token ids, or open it with "
                                 "tokenizer=... (e.g. 'bytes' or a tokenizer.json path)")
        if not isinstance(text, str):
            raise InvalidQueryError(f"text must be a str, not {type(text).__name__}")
        return self.tokenizer.encode(text)

    def ids(self, query: Query, what: str, allow_empty: bool) -> list[int]:
        """Validate a query (ids or text) and return it as a list of ids."""
        if self.closed:
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
                                        f"{type(x).__name__} {reprlib.repr(x)}")
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

    def token(self, token: int, what: str) -> int:
        """Validate one token id."""
        if type(token) is not int and not isinstance(token, np.integer):
            raise InvalidQueryError(f"{what} must be an int token id, not "
                                    f"{type(token).__name__}")
        if not 0 <= int(token) < self.vocab_size:
            raise TokenOutOfRangeError(f"{what} is {token}; valid ids are "
                                       f"0..{self.vocab_size - 1} for this index")
        return int(token)

    def bytes(self, ids: list[int]) -> np.ndarray:
        """Ids as the little-endian token bytes the kernels compare."""
        return np.array(ids, dtype=self.dtype).view(np.uint8)

    # ------------------------------------------------------------------ searches

    def ranges(self, q: np.ndarray) -> list[Range]:
        """The rank range of ``q`` in each shard."""
        return self.shards.find(q)

    def removed_count(self, q: np.ndarray) -> int:
        """Occurrences of ``q`` inside taken-down documents."""
        return merge.total(self.takedown.find(q)) if self.takedown is not None else 0

    def count(self, q: np.ndarray, ranges: Sequence[Range]) -> int:
        """Occurrences of ``q`` in the documents that remain, given its ranges."""
        n = merge.total(ranges)
        return n - merge.total(self.takedown.find(q)) if self.takedown is not None else n

    def search_count(self, q: np.ndarray) -> int:
        """Occurrences of ``q`` in the documents that remain."""
        return self.count(q, self.shards.find(q))

    def dist(self, q: np.ndarray, ranges: Sequence[Range],
             max_support: int | None) -> NextTokenDist:
        """The next-token distribution of ``q`` (its ranges given): exact, or from
        ``max_support`` evenly spaced occurrences when it occurs more often."""
        total = merge.total(ranges)
        qlen = q.shape[0]
        sample = max_support is not None and total > max_support and not self.tabled(
            np.array([qlen]), [np.array([r], dtype=np.int64) for r in ranges])[0]
        samples: list[int | None] = [None] * len(ranges)
        if max_support is not None and sample:
            samples = merge.sample_sizes(ranges, max_support)
        parts = self.shards.next_tokens(qlen, ranges, samples)
        if self.takedown is None:
            return next_token_dist(total, parts, sample)
        removed = self.takedown.find(q)
        return next_token_dist(total, parts, sample, merge.total(removed),
                               self.takedown.next_tokens(qlen, removed, [None] * len(removed)))

    def tabled(self, qlens: np.ndarray, ranges: Sequence[np.ndarray]) -> np.ndarray:
        """For each query (``qlens[j]`` bytes; ``ranges[shard][j]``), whether every shard's
        next-token table holds its exact next tokens: then a ``max_support`` sample is not
        taken, the exact answer being cheaper (a few pages a shard, where a sample reads
        ``max_support`` scattered occurrences)."""
        short = qlens <= 2 * self.token_width
        if not bool(np.any(short)) or not ranges:
            return np.zeros(qlens.shape[0], dtype=bool)
        return short & np.logical_and.reduce(self.shards.tabled(qlens, ranges))

    def longest_suffix(self, q: np.ndarray) -> tuple[int, list[Range]]:
        """Length (tokens) of the longest suffix of ``q`` that occurs in the documents that
        remain, and its ranges."""
        best, ranges = merge.longest_suffix(self.shards.longest_suffix(q))
        if self.takedown is None or best == 0:
            return best, ranges
        w = self.token_width
        n_tok = q.shape[0] // w
        if self.count(q[(n_tok - best) * w:], ranges) > 0:  # usual: not all of it removed
            return best, ranges
        # Invariant: the suffix of length `good` remains (count > 0); `bad` does not.
        good, bad = 0, best
        while bad - good > 1:
            mid = (good + bad) >> 1
            if self.search_count(q[(n_tok - mid) * w:]) > 0:
                good = mid
            else:
                bad = mid
        return good, self.ranges(q[(n_tok - good) * w:])

    def num_positions(self) -> int:
        """Token positions of the documents that remain, separators included (what the
        empty query counts)."""
        n = sum(s.num_positions for s in self.shards.sizes)
        return n - sum(s.num_positions for s in self.takedown.sizes) if self.takedown else n

    # ------------------------------------------------------------------ documents

    def locate_doc(self, doc_id: int) -> tuple[int, int]:
        """``(shard, local index)`` of a global document id."""
        if type(doc_id) is not int and not isinstance(doc_id, np.integer):
            raise InvalidQueryError(f"doc_id must be an int, not {type(doc_id).__name__}")
        n = self.doc_base[-1]
        if not 0 <= doc_id < n:
            raise InvalidQueryError(f"doc_id {doc_id} is out of range: this index has {n} "
                                    f"documents (0..{n - 1})")
        shard = bisect.bisect_right(self.doc_base, int(doc_id)) - 1
        return shard, int(doc_id) - self.doc_base[shard]

    def doc_id(self, shard: int, local: int) -> int:
        """Global id of document ``local`` of ``shard``."""
        return self.doc_base[shard] + local


def next_token_dist(total: int, parts: Sequence[NextTokens], sample: bool,
                    removed_total: int = 0, removed: Sequence[NextTokens] = ()) -> NextTokenDist:
    """The distribution from the shards' next-token tallies (``total`` occurrences), minus
    those of the takedown index (``removed_total`` occurrences)."""
    counts: dict[int, int] = {}
    end_count = merge.add_next_tokens(counts, parts, 1)
    if removed_total:
        end_count += merge.add_next_tokens(counts, removed, -1)
        # Sampled counts minus exact removed counts can dip below zero: clip, it is approx.
        counts = {t: c for t, c in counts.items() if c > 0} if sample else {
            t: c for t, c in counts.items() if c}
        end_count = max(end_count, 0)
    return NextTokenDist(prompt_count=total - removed_total, counts=counts,
                         end_count=end_count, approx=sample)
