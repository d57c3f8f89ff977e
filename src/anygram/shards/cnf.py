"""Running a CNF query on one shard: reading clause occurrences from the suffix array,
marking them in bitmaps, scanning and probing the text around anchors, by the plan the cost
model picks (:mod:`anygram.shards.cnf_costs`). Semantics and plans: ``docs/cnf.md``.

A shard runs a :class:`CnfShardPlan`: the query's phrases and where they occur in that shard.
Every function here works on one :class:`~anygram.shards.shard.LocalShard`; a match needs
every clause in one document, and a document never spans shards, so shards are independent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import kernels
from ..kernels import cnf as kernels_cnf
from .base import CnfShardPlan
from .cnf_costs import check_plan, choose, docs_costs, split_partners
from .shard import LocalShard

# ----------------------------------------------------------------------------- matches


def count(shard: LocalShard, plan: CnfShardPlan, d: int) -> int:
    """The number of matches in the shard. The ``marks`` plan counts without storing the
    matches (unless some partners are looked up after the sweep), and so does an anchor with
    one partner, driven by the partner; otherwise they are listed."""
    n = {j: plan.count(j) for j in plan.required}
    if min(n.values()) == 0:
        return 0
    kind, r = choose(n, d, shard.n, count_only=True, force=plan.force)
    if kind == "marks":
        return _marks(shard, plan, d, store=False)[0]
    if kind == "driver" and len(n) == 2:
        centers, lo, hi = shard.live(shard.sorted_positions(list(plan.ranges[r])))
        return int(kernels.count_phrase_starts(
            shard.ds, shard.w, np.maximum(centers - d, lo), np.minimum(centers + d + 1, hi),
            *plan.flat([0])))
    return int(matches(shard, plan, d, (kind, r)).shape[0])


def matches(shard: LocalShard, plan: CnfShardPlan, d: int,
            how: tuple[str, int] | None = None) -> np.ndarray:
    """The matching anchor positions of the shard, ascending, by the plan ``how`` (by default
    the cheapest, :func:`~anygram.shards.cnf_costs.choose`)."""
    n = {j: plan.count(j) for j in plan.required}
    if min(n.values()) == 0:  # a match needs every clause in one document: this shard
        return np.zeros(0, dtype=np.int64)
    kind, r = how or choose(n, d, shard.n, force=plan.force)
    if kind == "marks":
        return _marks(shard, plan, d, store=True)[1]
    if kind == "anchors":
        anchors, lo, hi = shard.live(shard.sorted_positions(list(plan.ranges[0])))
        return anchors[_check(shard, plan, anchors, lo, hi, d)]
    # Driven by clause r: the anchors within d of an occurrence of r (in its document) are
    # found by scanning around those occurrences; they have their r-partner already.
    centers, clo, chi = shard.live(shard.sorted_positions(list(plan.ranges[r])))
    hp, _, hw = _scan(shard, plan, np.maximum(centers - d, clo),
                      np.minimum(centers + d + 1, chi), [0])
    rest = [j for j in plan.required[1:] if j != r]
    return hp[_check(shard, plan, hp, clo[hw], chi[hw], d, rest)]


def check_sampled(shard: LocalShard, plan: CnfShardPlan, anchors: np.ndarray,
                  d: int) -> np.ndarray:
    """Those of the sampled ascending anchor positions that are in live documents and have
    every required partner within ``d``."""
    pos, lo, hi = shard.live(anchors)
    return pos[_check(shard, plan, pos, lo, hi, d)]


def removed_hits(shard: LocalShard, plan: CnfShardPlan) -> int:
    """Occurrences of clause 0 inside the shard's taken-down documents (scanned)."""
    if shard.removed.shape[0] == 0:
        return 0
    hp, _, _ = _scan(shard, plan, *shard.doc_bounds(shard.removed), [0])
    return int(hp.shape[0])


# ----------------------------------------------------------------------------- documents


def docs_with_all(shard: LocalShard, plan: CnfShardPlan) -> np.ndarray:
    """Local ids of the live documents that hold every clause, ascending, by the cheapest
    plan of :func:`~anygram.shards.cnf_costs.docs_costs`. (A clause implied by another is
    held wherever that one is: only the required clauses are looked for.)"""
    req = plan.required
    n = {j: plan.count(j) for j in req}
    if min(n.values()) == 0:
        return np.zeros(0, dtype=np.int64)
    r = min(req, key=lambda j: (n[j], j))
    # Plans: the documents of every clause from the suffix array, intersected ("merge"); the
    # documents of the rarest clause scanned whole for the others ("windows"); every clause
    # marked, each document tested ("marks").
    costs = docs_costs(n, shard.n, shard.offsets.shape[0])
    how = min(costs, key=lambda p: costs[p])  # min keeps the first of equal costs
    force = plan.force
    if force is not None:
        how = ("merge" if force == "merge" else
               "marks" if force in ("marks", "marks_split") else "windows")
    if how == "marks":
        rarest_first = sorted(req, key=lambda j: (n[j], j))
        return kernels_cnf.docs_with_marks(
            _mark(shard, plan, rarest_first), shard.offsets, shard.w, shard.n, shard.removed)
    if how == "merge":
        docs = _clause_docs(shard, plan, req[0])
        for j in req[1:]:
            docs = np.intersect1d(docs, _clause_docs(shard, plan, j), assume_unique=True)
        return docs[~shard.is_removed(docs)]
    docs = _clause_docs(shard, plan, r)
    docs = docs[~shard.is_removed(docs)]
    others = [j for j in req if j != r]
    mask = np.full(docs.shape[0], 1 << r, dtype=np.int64)
    if others and docs.shape[0]:
        _, hb, hw = _scan(shard, plan, *shard.doc_bounds(docs), others)
        np.bitwise_or.at(mask, hw, hb)
    return docs[mask == sum(1 << j for j in req)]


def docs_sampled(shard: LocalShard, plan: CnfShardPlan, r: int, pos: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """For sampled occurrences ``pos`` of clause ``r``: the weight of each (1 / the
    occurrences of ``r`` in its document if the document is live and holds every clause,
    else 0), and the local ids of those matching documents."""
    m = len(plan.qbytes)
    docs = shard.docs_sorted(pos)[0]
    live = ~shard.is_removed(docs)
    udocs, inverse = np.unique(docs[live], return_inverse=True)
    mask = np.zeros(udocs.shape[0], dtype=np.int64)
    n_r = np.zeros(udocs.shape[0], dtype=np.int64)
    if udocs.shape[0]:
        # r is scanned too: its occurrences per document are the weights' denominators.
        _, hb, hw = _scan(shard, plan, *shard.doc_bounds(udocs), range(m))
        np.bitwise_or.at(mask, hw, hb)
        np.add.at(n_r, hw, (hb >> r) & 1)
    good = mask == (1 << m) - 1
    y = np.zeros(pos.shape[0], dtype=np.float64)
    y[live] = np.where(good, 1.0 / np.maximum(n_r, 1), 0.0)[inverse]
    return y, udocs[good]


# ----------------------------------------------------------------------------- internals


def _clause_docs(shard: LocalShard, plan: CnfShardPlan, clause: int) -> np.ndarray:
    """The local documents holding a clause, ascending (taken-down included)."""
    docs = shard.docs_sorted(shard.sorted_positions(list(plan.ranges[clause])))[0]
    return docs[np.concatenate([[True], docs[1:] != docs[:-1]])] if docs.shape[0] else docs


def _scan(shard: LocalShard, plan: CnfShardPlan, lo: np.ndarray, hi: np.ndarray,
          clauses: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`anygram.kernels.phrase_hits` of the given clauses' phrases."""
    return kernels.phrase_hits(shard.ds, shard.w, lo, hi, *plan.flat(clauses))


def _check(shard: LocalShard, plan: CnfShardPlan, anchors: np.ndarray, lo: np.ndarray,
           hi: np.ndarray, d: int, partners: Sequence[int] | None = None) -> np.ndarray:
    """Which anchors (ascending, in live documents ``[lo, hi)``) have every partner clause
    (default: the required ones) within ``d``, found as
    :func:`~anygram.shards.cnf_costs.check_plan` decides: merged clauses first (read and
    sorted, or marked: :func:`anygram.kernels.cnf.verify_marks`), then the text around the
    anchors still alive."""
    if partners is None:
        partners = plan.required[1:]
    ok = np.ones(anchors.shape[0], dtype=bool)
    if not partners or not anchors.shape[0]:
        return ok
    merged, way, marks = check_plan(anchors.shape[0], {j: plan.count(j) for j in partners}, d,
                                    shard.n, plan.force)
    if merged and marks:
        ok = kernels_cnf.verify_marks(anchors, lo, hi, _mark(shard, plan, merged), d)
    elif merged:
        lists = [shard.sorted_positions(list(plan.ranges[j])) for j in merged]
        ok = kernels.verify_anchors(anchors, lo, hi, *_csr(lists), d)
    looked = [j for j in partners if j not in merged]
    if looked and ok.any():
        alive = np.flatnonzero(ok)
        ok[alive] = _look_up(shard, plan, anchors[alive], lo[alive], hi[alive], d, looked,
                             way)
    return ok


def _look_up(shard: LocalShard, plan: CnfShardPlan, anchors: np.ndarray, lo: np.ndarray,
             hi: np.ndarray, d: int, looked: Sequence[int], way: str) -> np.ndarray:
    """Which anchors (ascending, in live documents ``[lo, hi)``) have every clause of
    ``looked`` within ``d``, read from the text around them by ``way``: ``"probe"`` (an
    outward walk) or ``"windows"`` (every hit of ``[a - d, a + d]``)."""
    if way == "probe":
        need = sum(1 << j for j in looked)
        return kernels.probe_anchors(shard.ds, shard.w, anchors, lo, hi, d,
                                     *plan.flat(looked), need)
    hp, hb, _ = _scan(shard, plan, np.maximum(anchors - d, lo),
                      np.minimum(anchors + d + 1, hi), looked)
    return kernels.verify_anchors(anchors, lo, hi, *_csr(_by_clause(hp, hb, looked)), d)


def _marks(shard: LocalShard, plan: CnfShardPlan, d: int, store: bool
           ) -> tuple[int, np.ndarray]:
    """The matches by the ``marks`` plan: the anchors and the partners
    :func:`~anygram.shards.cnf_costs.split_partners` reads are marked in bitmaps of the
    shard's positions and swept together; the other partners are looked up in the text
    around the anchors that pass. Returns the number of matches and, when ``store``, their
    ascending positions."""
    partners = plan.required[1:]
    merged, way, _ = split_partners(plan.count(0), {j: plan.count(j) for j in partners}, d,
                                    shard.n, marks=True, force=plan.force)
    looked = [j for j in partners if j not in merged]
    n_matches, pos = kernels_cnf.sweep_marks(
        _mark(shard, plan, [0, *merged]), shard.offsets, shard.w, shard.n, shard.removed, d,
        store or bool(looked))
    if looked and n_matches:
        _, lo, hi = shard.docs_sorted(pos)  # live already: the sweep dropped the rest
        pos = pos[_look_up(shard, plan, pos, lo, hi, d, looked, way)]
        n_matches = int(pos.shape[0])
    return n_matches, pos


def _mark(shard: LocalShard, plan: CnfShardPlan, clauses: Sequence[int]) -> np.ndarray:
    """The occurrences of the given clauses, marked from their suffix-array ranges
    (:func:`anygram.kernels.cnf.mark_ranks`): one row per clause, in order."""
    rows = [(row, rng) for row, j in enumerate(clauses) for rng in plan.ranges[j]
            if rng[1] > rng[0]]
    return kernels_cnf.mark_ranks(
        shard.sa, shard.k, shard.w,
        np.array([a for _, (a, _) in rows], dtype=np.int64),
        np.array([b for _, (_, b) in rows], dtype=np.int64),
        np.array([row for row, _ in rows], dtype=np.int64), len(clauses), shard.n)


def _csr(lists: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Ascending position lists as :func:`anygram.kernels.verify_anchors` takes them."""
    start = np.zeros(len(lists) + 1, dtype=np.int64)
    start[1:] = np.cumsum([x.shape[0] for x in lists])
    occ = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)
    return occ.astype(np.int64, copy=False), start


def _by_clause(hp: np.ndarray, hb: np.ndarray, clauses: Sequence[int]) -> list[np.ndarray]:
    """Split phrase hits (ascending positions, clause bits) into one list per clause."""
    return [hp[(hb >> j) & 1 == 1] for j in clauses]
