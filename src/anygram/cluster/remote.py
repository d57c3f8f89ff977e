""":class:`RemoteShards`: a shard group whose shards are held by hosts in other processes.

The group splits every :class:`~anygram.shards.ShardGroup` call into one call per host
(:class:`~anygram.cluster.host.ShardHost`), each carrying the arguments of that host's
shards only, sends them all at once through a :class:`Transport`, and puts the per-shard
answers back in shard order. It is the whole of the distributed engine's difference from
the local one: the merges (:mod:`anygram.shards.merge`) and every query above them are the
same code, so a cluster answers what one process answers.

A host that does not answer makes the call raise
:class:`~anygram.errors.ShardUnavailableError` naming its shards: an answer without some
shards would be a silent undercount.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ..errors import InvalidQueryError, ShardUnavailableError
from ..shards import (
    CnfShardPlan,
    NextTokens,
    Occurrences,
    Range,
    ShardGroup,
    SpanOccurrences,
    TokenBatch,
    Walk,
    Windows,
)
from .host import GroupFacts, ShardHost

#: One call: (host, group name, method, arguments).
Call = tuple[int, str, str, tuple[Any, ...]]


class HostsUnavailable(Exception):
    """Raised by a transport: these hosts did not answer, for this reason."""

    def __init__(self, hosts: Sequence[int], why: str) -> None:
        super().__init__(why)
        self.hosts = list(hosts)
        self.why = why


class Transport(Protocol):
    """Sends calls to hosts and returns their answers, in order (raising
    :class:`HostsUnavailable` when some host does not answer)."""

    def call_all(self, calls: Sequence[Call]) -> list[Any]: ...


class InProcessTransport:
    """Hosts in this process, their answers pickled and unpickled as over the wire: the
    split and merge logic, tested without a cluster."""

    def __init__(self, hosts: Sequence[ShardHost]) -> None:
        self.hosts = list(hosts)

    def call_all(self, calls: Sequence[Call]) -> list[Any]:
        return [pickle.loads(pickle.dumps(self.hosts[h].call(g, m, a))) for h, g, m, a in calls]


class RemoteShards(ShardGroup):
    """The shards ``members[h]`` (global indexes, in order) of each host ``h``, as one group.

    Args:
        transport: reaches the hosts.
        group: the group's name on the hosts (:data:`~anygram.cluster.host.SHARDS` or
            :data:`~anygram.cluster.host.TAKEDOWN`).
        members: per host, the group's shards it holds (every shard in exactly one host).
        facts: per host, its part's facts (None for a host without members).
    """

    def __init__(self, transport: Transport, group: str, members: Sequence[Sequence[int]],
                 facts: Sequence[GroupFacts | None]) -> None:
        self._transport: Transport | None = transport
        self._group = group
        self._members = [list(m) for m in members]
        n = sum(len(m) for m in self._members)
        self._host_of = np.zeros(n, dtype=np.int64)
        self._local_of = np.zeros(n, dtype=np.int64)
        sizes: list[Any] = [None] * n
        for h, (shards, f) in enumerate(zip(self._members, facts)):
            for i, s in enumerate(shards):
                self._host_of[s], self._local_of[s] = h, i
                sizes[s] = f.sizes[i] if f is not None else None
        if any(s is None for s in sizes) or sorted(s for m in self._members for s in m) != \
                list(range(n)):
            raise ValueError("every shard must be held by exactly one host, with its facts")
        self.sizes = tuple(sizes)
        widths = {f.token_width for f in facts if f is not None}
        self.token_width = widths.pop() if len(widths) == 1 else 1

    @property
    def members(self) -> list[list[int]]:
        """Per host, the shards it holds."""
        return [list(m) for m in self._members]

    def close(self) -> None:
        self._transport = None

    # ------------------------------------------------------------------ dispatch

    def _send(self, calls: list[tuple[int, str, tuple[Any, ...]]]) -> list[Any]:
        """Answers of ``(host, method, args)`` calls on this group, in order."""
        if self._transport is None:
            raise InvalidQueryError("this engine is closed: open the index again")
        try:
            return self._transport.call_all([(h, self._group, m, a) for h, m, a in calls])
        except HostsUnavailable as exc:
            shards = sorted(s for h in exc.hosts for s in self._members[h])
            names = ", ".join(self.sizes[s].name for s in shards)
            raise ShardUnavailableError(
                f"shard(s) {names} of this index did not answer ({exc.why}): no answer is "
                "given without them; retry when their node is back") from None

    def _hosts(self) -> list[int]:
        return [h for h, m in enumerate(self._members) if m]

    def _all(self, method: str, *args: Any) -> list[Any]:
        """A per-shard method with the same arguments for every shard."""
        hosts = self._hosts()
        return self._scatter(hosts, self._send([(h, method, args) for h in hosts]))

    def _split(self, method: str, args: tuple[Any, ...], per_shard: Sequence[int]) -> list[Any]:
        """A per-shard method whose arguments at ``per_shard`` hold one value per shard."""
        hosts = self._hosts()
        calls = []
        for h in hosts:
            mine = list(args)
            for i in per_shard:
                mine[i] = [args[i][s] for s in self._members[h]]
            calls.append((h, method, tuple(mine)))
        return self._scatter(hosts, self._send(calls))

    def _scatter(self, hosts: list[int], answers: list[list[Any]]) -> list[Any]:
        out: list[Any] = [None] * len(self.sizes)
        for h, part in zip(hosts, answers):
            for s, x in zip(self._members[h], part):
                out[s] = x
        return out

    def _one(self, method: str, shard: int, *args: Any) -> Any:
        """A method of one shard."""
        if not 0 <= shard < len(self.sizes):
            raise IndexError(f"shard {shard} out of range")
        h = int(self._host_of[shard])
        return self._send([(h, method, (int(self._local_of[shard]), *args))])[0]

    def _by_host(self, shards: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """``(host, selector)`` of the pairs whose shard each host holds."""
        hosts = self._host_of[shards]
        return [(h, np.flatnonzero(hosts == h)) for h in np.unique(hosts).tolist()]

    def _pairs(self, method: str, shards: np.ndarray, values: np.ndarray,
               *args: Any) -> np.ndarray:
        """A method over ``(shards[i], values[i])`` pairs returning one int64 per pair."""
        out = np.zeros(values.shape[0], dtype=np.int64)
        parts = self._by_host(shards)
        answers = self._send([(h, method, (self._local_of[shards[sel]], values[sel], *args))
                              for h, sel in parts])
        for (_, sel), a in zip(parts, answers):
            out[sel] = a
        return out

    # ------------------------------------------------------------------ n-gram searches

    def find(self, q: np.ndarray) -> list[Range]:
        return self._all("find", q)

    def find_within(self, q: np.ndarray, ranges: Sequence[Range]) -> list[Range]:
        return self._split("find_within", (q, ranges), [1])

    def next_tokens(self, qlen: int, ranges: Sequence[Range],
                    samples: Sequence[int | None]) -> list[NextTokens]:
        return self._split("next_tokens", (qlen, ranges, samples), [1, 2])

    def longest_suffix(self, q: np.ndarray) -> list[tuple[int, int, int]]:
        return self._all("longest_suffix", q)

    # ------------------------------------------------------------------ batches

    def find_many(self, qs: np.ndarray, offs: np.ndarray) -> list[np.ndarray]:
        return self._all("find_many", qs, offs)

    def find_many_within(self, qs: np.ndarray, offs: np.ndarray,
                         ranges: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self._split("find_many_within", (qs, offs, ranges), [2])

    def longest_suffix_many(self, qs: np.ndarray, offs: np.ndarray) -> list[np.ndarray]:
        return self._all("longest_suffix_many", qs, offs)

    def next_tokens_many(self, qlens: np.ndarray, ranges: Sequence[np.ndarray],
                         samples: Sequence[np.ndarray]) -> list[TokenBatch]:
        return self._split("next_tokens_many", (qlens, ranges, samples), [1, 2])

    def tabled(self, qlens: np.ndarray, ranges: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self._split("tabled", (qlens, ranges), [1])

    # ------------------------------------------------------------------ positions, documents

    def positions(self, shard: int, start: int, end: int) -> np.ndarray:
        return self._one("positions", shard, start, end)  # type: ignore[no-any-return]

    def positions_at(self, shards: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        return self._pairs("positions_at", shards, ranks)

    def docs_at(self, shards: np.ndarray, positions: np.ndarray) -> np.ndarray:
        return self._pairs("docs_at", shards, positions)

    def doc_starts(self, shards: np.ndarray, docs: np.ndarray) -> np.ndarray:
        return self._pairs("doc_starts", shards, docs)

    def doc_span(self, shard: int, doc: int) -> tuple[int, int]:
        return self._one("doc_span", shard, doc)  # type: ignore[no-any-return]

    def is_removed(self, shard: int, docs: np.ndarray) -> np.ndarray:
        return self._one("is_removed", shard, docs)  # type: ignore[no-any-return]

    def num_removed(self) -> int:
        return sum(self._send([(h, "num_removed", ()) for h in self._hosts()]))

    def tokens(self, shard: int, start: int, end: int) -> np.ndarray:
        return self._one("tokens", shard, start, end)  # type: ignore[no-any-return]

    def occurrences(self, ranges: Sequence[Range], filtered: bool) -> list[Occurrences]:
        return self._split("occurrences", (ranges, filtered), [0])

    def smallest_positions(self, shard: int, start: int, end: int, m: int) -> np.ndarray:
        return self._one("smallest_positions", shard, start, end, m)  # type: ignore[no-any-return]

    def windows(self, shards: np.ndarray, docs: np.ndarray | None, anchors: np.ndarray,
                query_len: int, before: int, after: int, around_match: bool
                ) -> list[tuple[int, np.ndarray | slice, Windows]]:
        parts = self._by_host(shards)
        answers = self._send([
            (h, "windows", (self._local_of[shards[sel]], None if docs is None else docs[sel],
                            anchors[sel], query_len, before, after, around_match))
            for h, sel in parts])
        out: list[tuple[int, np.ndarray | slice, Windows]] = []
        for (h, sel), answer in zip(parts, answers):
            for local, sub, (table, tokens, hidden, lines) in answer:
                out.append((self._members[h][local], sel[sub],
                            Windows(table, tokens, hidden,
                                    None if lines is None else memoryview(lines))))
        out.sort(key=lambda x: x[0])
        return out

    def metadata_lines(self, shard: int) -> tuple[np.ndarray, np.ndarray] | None:
        return self._one("metadata_lines", shard)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ CNF queries

    def cnf_count(self, plans: Sequence[CnfShardPlan], d: int) -> list[int]:
        return self._split("cnf_count", (plans, d), [0])

    def cnf_matches(self, plans: Sequence[CnfShardPlan], d: int) -> list[np.ndarray]:
        return self._split("cnf_matches", (plans, d), [0])

    def cnf_check(self, plans: Sequence[CnfShardPlan], anchors: Sequence[np.ndarray],
                  d: int) -> list[np.ndarray]:
        return self._split("cnf_check", (plans, anchors, d), [0, 1])

    def cnf_removed_hits(self, plans: Sequence[CnfShardPlan]) -> list[int]:
        return self._split("cnf_removed_hits", (plans,), [0])

    def docs_with_all(self, plans: Sequence[CnfShardPlan]) -> list[np.ndarray]:
        return self._split("docs_with_all", (plans,), [0])

    def docs_with_all_sampled(self, plans: Sequence[CnfShardPlan], r: int,
                              positions: Sequence[np.ndarray]
                              ) -> list[tuple[np.ndarray, np.ndarray]]:
        return self._split("docs_with_all_sampled", (plans, r, positions), [0, 2])

    def phrase_lengths(self, shards: np.ndarray, positions: np.ndarray,
                       phrases: Sequence[np.ndarray]) -> np.ndarray:
        return self._pairs("phrase_lengths", shards, positions, phrases)

    # ------------------------------------------------------------------ whole-text analyses

    def suffix_walk(self, q: np.ndarray, cuts: np.ndarray) -> list[Walk]:
        return self._all("suffix_walk", q, cuts)

    def span_ranges(self, q: np.ndarray, left: np.ndarray, right: np.ndarray
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
        return self._all("span_ranges", q, left, right)

    def span_occurrences(self, ranges: Sequence[tuple[np.ndarray, np.ndarray]]
                         ) -> list[SpanOccurrences]:
        return self._split("span_occurrences", (ranges,), [0])

    # ------------------------------------------------------------------ language models

    def token_pairs(self, ranges: Sequence[Range] | None, k: int
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
        if ranges is None:
            return self._all("token_pairs", None, k)
        return self._split("token_pairs", (ranges, k), [0])

    def count_of_counts(self, order: int, top: int, continuation: bool,
                        windows: Sequence[np.ndarray | None]) -> np.ndarray:
        # Count-of-counts are of n-grams over all shards at once: they do not merge from
        # per-shard answers.
        raise InvalidQueryError("estimating Kneser-Ney discounts (estimate_discounts, "
                                "discount='estimate') is not available on a cluster-served "
                                "index: give the discounts, or open the index with "
                                "Engine.open on one machine")
