"""A CNF query planned over the whole index: its clauses reduced to prefix-free phrase sets and
where they occur (:class:`CnfPlan`), the matches found (:class:`CnfRun`), and the decisions
that span shards: whether to sample, and the sample itself. How one shard runs its part is in
:mod:`anygram.shards.cnf`. See :mod:`anygram.query.cnf`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import kernels
from ...shards import CnfShardPlan, ShardGroup
from ...shards.base import Range
from ...shards.cnf_costs import docs_sample_cheaper, sample_cheaper

#: Tests set this to force one plan on every shard (the names are those of
#: :mod:`anygram.shards.cnf_costs`). None: the cheapest.
FORCE_PLAN: str | None = None
#: Tests set this to force the sample (True) or the exact answer (False) whenever the rarest
#: clause exceeds ``max_clause_freq``. None: whichever the cost model predicts is cheaper.
FORCE_SAMPLE: bool | None = None


@dataclass(frozen=True)
class CnfPlan:
    """A validated CNF, its clauses reduced to prefix-free phrase sets, and where they occur."""

    clauses: list[list[list[int]]]  # [clause][phrase] -> ids; clause 0 is the anchor
    ranges: list[list[list[Range]]]  # [clause][phrase][shard] -> SA rank range
    counts: list[int]  # distinct occurrence positions per clause (taken-down docs included)
    qbytes: list[list[np.ndarray]]  # [clause][phrase] -> little-endian token bytes
    required: list[int]  # the anchor clause, then the partners not implied by another
    anchor: int = 0  # the anchor's place among the clauses as written
    written: tuple[int, ...] = ()  # each clause as written -> its place here

    def shard_count(self, clause: int, shard: int) -> int:
        """Occurrences of a clause in one shard (taken-down documents included)."""
        return sum(rs[shard][1] - rs[shard][0] for rs in self.ranges[clause])

    def for_shards(self, num_shards: int) -> list[CnfShardPlan]:
        """The plan as each shard runs it."""
        qbytes = tuple(tuple(c) for c in self.qbytes)
        required = tuple(self.required)
        return [CnfShardPlan(qbytes, tuple(tuple(rs[s] for rs in c) for c in self.ranges),
                             required, FORCE_PLAN) for s in range(num_shards)]


@dataclass(frozen=True)
class CnfRun:
    """The matches of a plan: per shard, the ascending positions of matching anchors (all of
    them when exact, those among the sample when ``sampled > 0``)."""

    matches: list[np.ndarray] | None  # None when only the count was needed
    estimate: float
    stderr: float
    sampled: int  # 0: exact
    sample_matches: int


def reduce_clause(clause: list[list[int]]) -> list[list[int]]:
    """Drop repeated phrases and phrases that extend another phrase of the clause.

    Two phrases start at the same position only if one is a prefix of the other, and then the
    longer one's occurrences are a subset of the shorter one's. So the occurrences of the kept
    phrases are pairwise disjoint and their union is the clause's: counting, sampling and
    scanning the kept phrases counts each position once.
    """
    kept: list[list[int]] = []
    for p in sorted({tuple(p) for p in clause}, key=lambda t: (len(t), t)):  # deterministic
        if not any(list(p[:len(q)]) == q for q in kept):
            kept.append(list(p))
    return kept


def implies(a: list[list[int]], b: list[list[int]]) -> bool:
    """Whether a phrase of clause ``b`` starts wherever a phrase of clause ``a`` does (each
    phrase of ``a`` extends one of ``b``): then any occurrence of ``a`` is one of ``b``."""
    return all(any(p[:len(q)] == q for q in b) for p in a)


def should_sample(plan: CnfPlan, group: ShardGroup, d: int, cap: int | None,
                  count_only: bool) -> bool:
    """Whether to check ``cap`` sampled anchors instead of all: only when the rarest clause
    occurs more than ``cap`` times and the cost model predicts the sample to be cheaper than
    the exact answer (:func:`~anygram.shards.cnf_costs.sample_cheaper`); a pure function of
    the plan, the index and the arguments."""
    if cap is None or min(plan.counts) <= cap:
        return False
    if FORCE_SAMPLE is not None:
        return FORCE_SAMPLE
    shards = [({j: plan.shard_count(j, s) for j in plan.required}, size.num_positions)
              for s, size in enumerate(group.sizes)]
    return sample_cheaper(shards, d, cap, count_only, FORCE_PLAN)


def should_sample_docs(plan: CnfPlan, group: ShardGroup, r: int, cap: int | None) -> bool:
    """Whether ``count_docs_with_all`` samples ``cap`` occurrences of the rarest clause
    ``r``: only when it occurs more than ``cap`` times and the cost model predicts the sample
    to be cheaper than the exact answer
    (:func:`~anygram.shards.cnf_costs.docs_sample_cheaper`)."""
    if cap is None or plan.counts[r] <= cap or min(plan.counts) == 0:
        return False
    if FORCE_SAMPLE is not None:
        return FORCE_SAMPLE
    shards = [({j: plan.shard_count(j, s) for j in plan.required}, size.num_positions,
               size.num_docs) for s, size in enumerate(group.sizes)]
    return docs_sample_cheaper(shards, r, cap)


def sample(plan: CnfPlan, group: ShardGroup, clause: int, n: int, seed: int
           ) -> list[np.ndarray]:
    """Per shard, the ascending positions of ``n`` occurrences of ``clause`` drawn uniformly
    without replacement from all of its occurrences in all shards.

    The clause's phrases are prefix-free (:func:`reduce_clause`), so the concatenation of
    their rank ranges lists every occurrence position exactly once: drawing distinct indices
    into it draws distinct positions.
    """
    segs = [(s, a, b) for rs in plan.ranges[clause] for s, (a, b) in enumerate(rs) if b > a]
    seg_shard = np.array([s for s, _, _ in segs], dtype=np.int64)
    seg_start = np.array([a for _, a, _ in segs], dtype=np.int64)
    cum = np.concatenate([[0], np.cumsum([b - a for _, a, b in segs])]).astype(np.int64)
    idx = np.random.default_rng(seed).choice(int(cum[-1]), size=n, replace=False)
    seg = np.searchsorted(cum, idx, side="right") - 1
    shards = seg_shard[seg]
    positions = group.positions_at(shards, seg_start[seg] + (idx - cum[seg]))
    return [kernels.sort_positions(positions[shards == s]) for s in range(len(group.sizes))]
