"""The shard layer's interface: :class:`ShardGroup`, "these shards", and its partial answers.

Every query reaches the data through a group of shards. A group's methods take validated
query arrays (token bytes, rank ranges, positions) and return **per-shard partial answers**:
one entry per shard of the group, in shard order, each small, picklable and independent of the
others, so that partials from several groups (threads, processes, machines) can be put side
by side and merged in any order by :mod:`anygram.shards.merge`. A group never calls back into
the engine.

Terms: a shard's *positions* are its token positions (separators included: position 0 is the
first document's separator), its *ranks* index its suffix array, its *local* documents are
numbered from 0 in the shard; ``q`` is a query as little-endian token bytes (uint8), as the
kernels compare it. A shard's taken-down documents (:mod:`anygram.index.takedown`) are known
to its group: search and retrieval skip them. Counts are raw (taken-down documents
included): the takedown index, a group of its own, tells how much to subtract.

:class:`~anygram.shards.local.LocalShards` is the in-process group (its shards searched on
threads); :class:`anygram.cluster.RemoteShards` a group whose shards are served by Ray actors.
A :class:`GroupOpener` opens an index's groups: :func:`~anygram.shards.local.open_groups` in
this process, :class:`anygram.cluster.RayGroups` on a cluster.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np

if TYPE_CHECKING:
    from ..index.format import LoadMethod
    from ..index.reader import OpenedIndex

#: A suffix-array rank range ``[lo, hi)`` of one shard.
Range = tuple[int, int]


class ShardSize(NamedTuple):
    """What is known of a shard without reading its data."""

    name: str
    num_positions: int  # token positions, separators included
    num_docs: int
    ptr_width: int  # bytes per suffix-array entry


class NextTokens(NamedTuple):
    """The tokens that follow a query's occurrences in one shard."""

    ids: np.ndarray  # distinct next token ids (int64)
    counts: np.ndarray  # occurrences followed by each
    end: int  # occurrences followed by a document end (or the end of the shard)


class TokenBatch(NamedTuple):
    """The tokens that follow each of several queries in one shard: query ``j``'s are
    ``ids[starts[j]:starts[j + 1]]`` with their ``counts``, and ``ends[j]`` its document
    ends."""

    ids: np.ndarray
    counts: np.ndarray
    starts: np.ndarray
    ends: np.ndarray


class Occurrences(NamedTuple):
    """A query's occurrences in one shard outside taken-down documents, in rank order."""

    start: int  # first rank of the query's range
    visible: int  # occurrences outside taken-down documents
    ranks: np.ndarray | None  # their ranks when some were filtered out; None: start + 0..visible
    positions: np.ndarray | None  # their positions, when they had to be located to filter


class Windows(NamedTuple):
    """Document windows of one shard, cut by :func:`anygram.kernels.document_windows`."""

    table: np.ndarray  # one row per window, columns kernels.WINDOW_COLUMNS
    tokens: np.ndarray  # the windows' token bytes, one after the other
    hidden: np.ndarray  # per window: its document is taken down (empty: none is)
    metadata: memoryview | None  # the bytes the table's metadata byte ranges index into


class Walk(NamedTuple):
    """One shard's suffix walk of a text (:func:`anygram.kernels.analysis.suffix_walk`): for
    each cut, the start of the longest suffix that occurs in the shard, its first rank, its
    count."""

    starts: np.ndarray
    lows: np.ndarray
    counts: np.ndarray


class SpanOccurrences(NamedTuple):
    """Where spans of a text occur in one shard, outside taken-down documents."""

    span: np.ndarray  # the span of each occurrence
    positions: np.ndarray
    docs: np.ndarray  # local documents


@dataclass(frozen=True)
class CnfShardPlan:
    """A CNF query as one shard runs it: clauses (AND) of prefix-free phrases (OR), clause 0
    the anchor, and each phrase's rank range in this shard."""

    qbytes: tuple[tuple[np.ndarray, ...], ...]  # [clause][phrase] -> little-endian token bytes
    ranges: tuple[tuple[Range, ...], ...]  # [clause][phrase] -> rank range in this shard
    required: tuple[int, ...]  # the anchor clause, then the partners not implied by another
    force: str | None = None  # tests: force a plan (anygram.shards.cnf_costs)

    def count(self, clause: int) -> int:
        """Occurrences of a clause in the shard (taken-down documents included)."""
        return sum(b - a for a, b in self.ranges[clause])

    def flat(self, clause_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The phrases of ``clause_ids`` as the kernels take them: bytes, offsets, clause bits."""
        chunks, bits = [], []
        for j in clause_ids:
            for q in self.qbytes[j]:
                chunks.append(q)
                bits.append(1 << j)
        poff = np.zeros(len(chunks) + 1, dtype=np.int64)
        poff[1:] = np.cumsum([c.shape[0] for c in chunks])
        pbytes = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.uint8)
        return pbytes, poff, np.array(bits, dtype=np.int64)



class ShardGroup(ABC):
    """A group of shards of one index, answering per-shard partials (module docstring).

    Methods that address one shard take its index in the group; methods over
    ``(shards[i], value[i])`` pairs take arrays and return arrays in the same order.
    """

    #: Bytes per token of every shard of the group.
    token_width: int
    #: The sizes of the group's shards, in order.
    sizes: tuple[ShardSize, ...]

    @abstractmethod
    def close(self) -> None:
        """Drop the references to the shards' data; the sizes stay."""

    # ------------------------------------------------------------------ n-gram searches

    @abstractmethod
    def find(self, q: np.ndarray) -> list[Range]:
        """The rank range of ``q`` in each shard (the empty query: every rank)."""

    @abstractmethod
    def find_within(self, q: np.ndarray, ranges: Sequence[Range]) -> list[Range]:
        """The rank range of ``q`` in each shard, searched inside ``ranges`` (those of a prefix
        of ``q``)."""

    @abstractmethod
    def next_tokens(self, qlen: int, ranges: Sequence[Range],
                    samples: Sequence[int | None]) -> list[NextTokens]:
        """The next tokens after the ``qlen`` bytes of each rank range; with ``samples[s]``,
        of that many evenly spaced ranks of shard ``s`` only."""

    @abstractmethod
    def longest_suffix(self, q: np.ndarray) -> list[tuple[int, int, int]]:
        """Per shard, the longest suffix of ``q`` (in tokens) that occurs there, and its
        rank range: ``(length, lo, hi)``."""

    # ------------------------------------------------------------------ batches
    #
    # Many queries in one call per shard, packed: their token bytes one after the other
    # (``qs``) and the start of each (``offs``, one more than the queries).

    @abstractmethod
    def find_many(self, qs: np.ndarray, offs: np.ndarray) -> list[np.ndarray]:
        """Per shard, the rank range of each query: int64 ``[queries, 2]``."""

    @abstractmethod
    def find_many_within(self, qs: np.ndarray, offs: np.ndarray,
                         ranges: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per shard, the rank range of each query inside ``ranges[shard][j]`` (that of a
        prefix of it)."""

    @abstractmethod
    def longest_suffix_many(self, qs: np.ndarray, offs: np.ndarray) -> list[np.ndarray]:
        """Per shard, each query's longest suffix that occurs there (tokens) and its rank
        range: int64 ``[queries, 3]``."""

    @abstractmethod
    def next_tokens_many(self, qlens: np.ndarray, ranges: Sequence[np.ndarray],
                         samples: Sequence[np.ndarray]) -> list[TokenBatch]:
        """Per shard, the next tokens after each query (``qlens[j]`` bytes) in its rank
        range; from ``samples[shard][j]`` evenly spaced ranks when that is positive."""

    @abstractmethod
    def tabled(self, qlens: np.ndarray, ranges: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per shard, for each query (``qlens[j]`` bytes, rank range ``ranges[shard][j]``),
        whether the shard's next-token table holds its next tokens, or the shard holds none
        of its occurrences (bool): where every shard's does, the exact distribution costs
        less than a sample of it."""

    # ------------------------------------------------------------------ positions, documents

    @abstractmethod
    def positions(self, shard: int, start: int, end: int) -> np.ndarray:
        """Token positions of ranks ``[start, end)`` of ``shard``, in rank order (int64)."""

    @abstractmethod
    def positions_at(self, shards: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        """Token position stored at each ``(shards[i], ranks[i])``."""

    @abstractmethod
    def docs_at(self, shards: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Local document holding each ``(shards[i], positions[i])``."""

    @abstractmethod
    def doc_starts(self, shards: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """Position of the separator before each local document ``(shards[i], docs[i])``."""

    @abstractmethod
    def doc_span(self, shard: int, doc: int) -> tuple[int, int]:
        """Token positions ``[start, end)`` of a local document's tokens."""

    @abstractmethod
    def is_removed(self, shard: int, docs: np.ndarray) -> np.ndarray:
        """Whether each local document of ``shard`` is taken down (bool array)."""

    @abstractmethod
    def num_removed(self) -> int:
        """How many documents of the group are taken down."""

    @abstractmethod
    def tokens(self, shard: int, start: int, end: int) -> np.ndarray:
        """The token bytes of positions ``[start, end)`` of ``shard`` (uint8)."""

    @abstractmethod
    def occurrences(self, ranges: Sequence[Range], filtered: bool) -> list[Occurrences]:
        """Per shard, the occurrences in its rank range outside taken-down documents.
        ``filtered=False`` promises that none is taken down (nothing is located)."""

    @abstractmethod
    def smallest_positions(self, shard: int, start: int, end: int, m: int) -> np.ndarray:
        """The ``m`` smallest positions of ranks ``[start, end)`` of ``shard``, ascending."""

    @abstractmethod
    def windows(self, shards: np.ndarray, docs: np.ndarray | None, anchors: np.ndarray,
                query_len: int, before: int, after: int, around_match: bool
                ) -> list[tuple[int, np.ndarray | slice, Windows]]:
        """Document windows around ``(shards[i], anchors[i])`` (anchor -1: the document
        start; ``docs`` the local documents, or None to find them), grouped by shard:
        ``(shard, selector into the inputs, its windows)`` per distinct shard, ascending.
        See :func:`anygram.kernels.document_windows` for the window arithmetic."""

    @abstractmethod
    def metadata_lines(self, shard: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(metadata bytes, metaoff)`` of a shard; None when it has no metadata."""

    # ------------------------------------------------------------------ CNF queries

    @abstractmethod
    def cnf_count(self, plans: Sequence[CnfShardPlan], d: int) -> list[int]:
        """Per shard, the number of matches of its plan (window ``d``)."""

    @abstractmethod
    def cnf_matches(self, plans: Sequence[CnfShardPlan], d: int) -> list[np.ndarray]:
        """Per shard, the ascending positions of the matching anchors."""

    @abstractmethod
    def cnf_check(self, plans: Sequence[CnfShardPlan], anchors: Sequence[np.ndarray],
                  d: int) -> list[np.ndarray]:
        """Per shard, those of the given ascending anchor positions that are outside
        taken-down documents and match."""

    @abstractmethod
    def cnf_removed_hits(self, plans: Sequence[CnfShardPlan]) -> list[int]:
        """Per shard, the occurrences of clause 0 inside taken-down documents."""

    @abstractmethod
    def docs_with_all(self, plans: Sequence[CnfShardPlan]) -> list[np.ndarray]:
        """Per shard, the live local documents holding every clause, ascending."""

    @abstractmethod
    def docs_with_all_sampled(self, plans: Sequence[CnfShardPlan], r: int,
                              positions: Sequence[np.ndarray]
                              ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per shard, for sampled occurrences of clause ``r``: the weight of each and the
        local documents that match (:func:`anygram.shards.cnf.docs_sampled`)."""

    @abstractmethod
    def phrase_lengths(self, shards: np.ndarray, positions: np.ndarray,
                       phrases: Sequence[np.ndarray]) -> np.ndarray:
        """Tokens of the phrase (one of ``phrases``, prefix-free) starting at each position."""

    # ------------------------------------------------------------------ whole-text analyses

    @abstractmethod
    def suffix_walk(self, q: np.ndarray, cuts: np.ndarray) -> list[Walk]:
        """Per shard, the suffix walk of the text ``q`` over ``cuts``."""

    @abstractmethod
    def span_ranges(self, q: np.ndarray, left: np.ndarray, right: np.ndarray
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per shard, the rank ranges ``(lo, hi)`` of the spans ``q[left[i]:right[i]]``."""

    @abstractmethod
    def span_occurrences(self, ranges: Sequence[tuple[np.ndarray, np.ndarray]]
                         ) -> list[SpanOccurrences]:
        """Per shard, every occurrence of every span in its rank ranges, outside taken-down
        documents."""

    # ------------------------------------------------------------------ language models

    @abstractmethod
    def token_pairs(self, ranges: Sequence[Range] | None, k: int
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per shard, for the occurrences of a ``k``-token string in ``ranges`` (None: every
        position, ``k = 0``), outside taken-down documents, in position order: the token
        before each and the token after it, the separator id standing for a document start
        or end."""

    @abstractmethod
    def count_of_counts(self, order: int, top: int, continuation: bool,
                        windows: Sequence[np.ndarray | None]) -> np.ndarray:
        """Count-of-counts of the group's ``order``-grams (:func:`anygram.kernels.lm.
        count_of_counts`), exact over all its shards: a group-wide answer, not per shard."""


class GroupOpener(Protocol):
    """Opens the groups of an index: its shards, and its takedown index (None when no
    document is taken down or ``takedown`` is False). ``reuse``: the shard group this opener
    opened before for the same index (takedowns changed since), whose caches it may share."""

    def __call__(self, index: OpenedIndex, vocab_size: int, *, load: LoadMethod,
                 takedown: bool, search_sample: bool, ntd_table: bool,
                 reuse: ShardGroup | None = None
                 ) -> tuple[ShardGroup, ShardGroup | None]: ...
