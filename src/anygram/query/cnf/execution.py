"""Running a CNF plan on the engine's shards: reading occurrences from the suffix array,
sampling anchors, scanning and probing the text around them (mixed into the Engine through
:class:`~anygram.query.cnf.CnfQueries`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ... import kernels
from ...kernels import cnf as kernels_cnf
from ..core import EngineCore
from .plans import (
    _by_clause,
    _check_plan,
    _choose,
    _csr,
    _docs_costs,
    _docs_sample_cheaper,
    _estimate,
    _forced,
    _forced_sample,
    _Plan,
    _Run,
    _sample_cheaper,
    _split_partners,
)


class _CnfExecution(EngineCore):
    """The internals of :class:`~anygram.query.cnf.CnfQueries` that run a plan, shard by shard."""

    def _cnf_doc_bounds(self, shard: int, docs: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Token ranges ``[lo, hi)`` of the given local documents: :meth:`doc_span`,
        vectorized."""
        s = self._shards[shard]
        w = s.token_width
        docs = np.asarray(docs, dtype=np.int64)
        # Index the (memory-mapped, uint64) offsets first: never convert the whole array.
        lo = s.offsets[docs].astype(np.int64) // w + 1
        last = docs + 1 >= s.num_docs
        hi = np.full(docs.shape[0], s.num_positions, dtype=np.int64)
        hi[~last] = s.offsets[docs[~last] + 1].astype(np.int64) // w
        return lo, hi

    def _cnf_positions(self, plan: _Plan, clause: int, shard: int) -> np.ndarray:
        """Ascending positions of a clause's occurrences in a shard (taken-down ones too)."""
        parts = [self.positions(shard, rs[shard][0], rs[shard][1])
                 for rs in plan.ranges[clause] if rs[shard][1] > rs[shard][0]]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return kernels.sort_positions(np.concatenate(parts))

    def _cnf_sample(self, plan: _Plan, clause: int, n: int, seed: int
                    ) -> list[np.ndarray]:
        """Per shard, the ascending positions of ``n`` occurrences of ``clause`` drawn
        uniformly without replacement from all of its occurrences in all shards.

        The clause's phrases are prefix-free (:func:`_reduce`), so the concatenation of their
        rank ranges lists every occurrence position exactly once: drawing distinct indices
        into it draws distinct positions.
        """
        segs = [(s, a, b) for rs in plan.ranges[clause] for s, (a, b) in enumerate(rs) if b > a]
        seg_shard = np.array([s for s, _, _ in segs], dtype=np.int64)
        seg_start = np.array([a for _, a, _ in segs], dtype=np.int64)
        cum = np.concatenate([[0], np.cumsum([b - a for _, a, b in segs])]).astype(np.int64)
        idx = np.random.default_rng(seed).choice(int(cum[-1]), size=n, replace=False)
        seg = np.searchsorted(cum, idx, side="right") - 1
        ranks = seg_start[seg] + (idx - cum[seg])
        out = []
        for s, sh in enumerate(self._shards):
            pos = kernels.positions_at(sh.sa, sh.ptr_width, sh.token_width,
                                       ranks[seg_shard[seg] == s])
            out.append(kernels.sort_positions(pos))
        return out

    def _cnf_docs(self, shard: int, pos: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For ascending positions: :meth:`docs_at` and the :meth:`doc_span` of each, in one
        forward walk (~10x faster than a binary search per position)."""
        sh = self._shards[shard]
        return kernels.docs_of_sorted(pos, sh.offsets, sh.token_width, sh.num_positions)

    def _cnf_clause_docs(self, plan: _Plan, clause: int, shard: int) -> np.ndarray:
        """The local documents holding a clause in a shard, ascending (taken-down included)."""
        docs = self._cnf_docs(shard, self._cnf_positions(plan, clause, shard))[0]
        return docs[np.concatenate([[True], docs[1:] != docs[:-1]])] if docs.shape[0] else docs

    def _cnf_live(self, shard: int, pos: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The (ascending) positions outside taken-down documents, and their documents'
        token ranges."""
        docs, lo, hi = self._cnf_docs(shard, pos)
        gone = self.is_removed(shard, docs)
        if gone.any():
            live = ~gone
            return pos[live], lo[live], hi[live]
        return pos, lo, hi

    def _cnf_scan(self, plan: _Plan, shard: int, lo: np.ndarray, hi: np.ndarray,
                  clauses: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`anygram.kernels.phrase_hits` of the given clauses' phrases in a shard."""
        return kernels.phrase_hits(self._shards[shard].ds, self.token_width, lo, hi,
                                   *plan.flat(clauses))

    def _cnf_check(self, plan: _Plan, shard: int, anchors: np.ndarray,
                   lo: np.ndarray, hi: np.ndarray, d: int,
                   partners: Sequence[int] | None = None) -> np.ndarray:
        """Which anchors (ascending, in live documents ``[lo, hi)``) have every partner
        clause (default: the required ones) within ``d``, found as :func:`_check_plan`
        decides: merged clauses first (read and sorted, or marked:
        :func:`anygram.kernels.cnf.verify_marks`), then the text around the anchors still
        alive."""
        if partners is None:
            partners = plan.required[1:]
        ok = np.ones(anchors.shape[0], dtype=bool)
        if not partners or not anchors.shape[0]:
            return ok
        merged, way, marks = _check_plan(
            anchors.shape[0], {j: plan.shard_count(j, shard) for j in partners}, d,
            self._shards[shard].num_positions)
        if merged and marks:
            ok = kernels_cnf.verify_marks(anchors, lo, hi, self._cnf_mark(plan, shard, merged),
                                          d)
        elif merged:
            lists = [self._cnf_positions(plan, j, shard) for j in merged]
            ok = kernels.verify_anchors(anchors, lo, hi, *_csr(lists), d)
        looked = [j for j in partners if j not in merged]
        if looked and ok.any():
            alive = np.flatnonzero(ok)
            ok[alive] = self._cnf_look_up(plan, shard, anchors[alive], lo[alive], hi[alive],
                                          d, looked, way)
        return ok

    def _cnf_look_up(self, plan: _Plan, shard: int, anchors: np.ndarray,
                     lo: np.ndarray, hi: np.ndarray, d: int, looked: Sequence[int],
                     way: str) -> np.ndarray:
        """Which anchors (ascending, in live documents ``[lo, hi)``) have every clause of
        ``looked`` within ``d``, read from the text around them by ``way``: ``"probe"``
        (an outward walk) or ``"windows"`` (every hit of ``[a - d, a + d]``)."""
        if way == "probe":
            need = sum(1 << j for j in looked)
            return kernels.probe_anchors(self._shards[shard].ds, self.token_width, anchors,
                                         lo, hi, d, *plan.flat(looked), need)
        hp, hb, _ = self._cnf_scan(plan, shard, np.maximum(anchors - d, lo),
                                   np.minimum(anchors + d + 1, hi), looked)
        return kernels.verify_anchors(anchors, lo, hi, *_csr(_by_clause(hp, hb, looked)), d)

    def _cnf_marks(self, plan: _Plan, shard: int, d: int, store: bool
                   ) -> tuple[int, np.ndarray]:
        """The matches of one shard by the ``marks`` plan (:func:`_choose`): the anchors and
        the partners :func:`_split_partners` reads are marked in bitmaps of the shard's
        positions and swept together; the other partners are looked up in the text around
        the anchors that pass. Returns the number of matches and, when ``store``, their
        ascending positions."""
        partners = plan.required[1:]
        merged, way, _ = _split_partners(
            plan.shard_count(0, shard), {j: plan.shard_count(j, shard) for j in partners}, d,
            self._shards[shard].num_positions, marks=True)
        looked = [j for j in partners if j not in merged]
        count, pos = kernels_cnf.sweep_marks(
            self._cnf_mark(plan, shard, [0, *merged]), self._shards[shard].offsets,
            self.token_width, self._shards[shard].num_positions, self._removed[shard], d,
            store or bool(looked))
        if looked and count:
            _, lo, hi = self._cnf_docs(shard, pos)  # live already: the sweep dropped the rest
            pos = pos[self._cnf_look_up(plan, shard, pos, lo, hi, d, looked, way)]
            count = int(pos.shape[0])
        return count, pos

    def _cnf_mark(self, plan: _Plan, shard: int, clauses: Sequence[int]
                  ) -> np.ndarray:
        """The occurrences of the given clauses in a shard, marked from their suffix-array
        ranges (:func:`anygram.kernels.cnf.mark_ranks`): one row per clause, in order."""
        sh = self._shards[shard]
        rows = [(row, rs[shard]) for row, j in enumerate(clauses)
                for rs in plan.ranges[j] if rs[shard][1] > rs[shard][0]]
        return kernels_cnf.mark_ranks(
            sh.sa, sh.ptr_width, sh.token_width,
            np.array([a for _, (a, _) in rows], dtype=np.int64),
            np.array([b for _, (_, b) in rows], dtype=np.int64),
            np.array([row for row, _ in rows], dtype=np.int64), len(clauses),
            sh.num_positions)

    def _cnf_exact_count(self, plan: _Plan, shard: int, d: int) -> int:
        """The number of matches in one shard. The ``marks`` plan counts without storing
        the matches (unless some partners are looked up after the sweep), and so does an
        anchor with one partner, driven by the partner; otherwise they are listed."""
        n = {j: plan.shard_count(j, shard) for j in plan.required}
        if min(n.values()) == 0:
            return 0
        kind, r = _choose(n, d, self._shards[shard].num_positions, count_only=True)
        if kind == "marks":
            return self._cnf_marks(plan, shard, d, store=False)[0]
        if kind == "driver" and len(n) == 2:
            centers, lo, hi = self._cnf_live(shard, self._cnf_positions(plan, r, shard))
            return int(kernels.count_phrase_starts(
                self._shards[shard].ds, self.token_width, np.maximum(centers - d, lo),
                np.minimum(centers + d + 1, hi), *plan.flat([0])))
        return int(self._cnf_exact(plan, shard, d, (kind, r)).shape[0])

    def _cnf_exact(self, plan: _Plan, shard: int, d: int,
                   how: tuple[str, int] | None = None) -> np.ndarray:
        """The matching anchor positions of one shard, ascending, by the plan ``how`` (by
        default the cheapest, :func:`_choose`)."""
        n = {j: plan.shard_count(j, shard) for j in plan.required}
        if min(n.values()) == 0:  # a match needs every clause in one document: this shard
            return np.zeros(0, dtype=np.int64)
        kind, r = how or _choose(n, d, self._shards[shard].num_positions)
        if kind == "marks":
            return self._cnf_marks(plan, shard, d, store=True)[1]
        if kind == "anchors":
            anchors, lo, hi = self._cnf_live(shard, self._cnf_positions(plan, 0, shard))
            return anchors[self._cnf_check(plan, shard, anchors, lo, hi, d)]
        # Driven by clause r: the anchors within d of an occurrence of r (in its document)
        # are found by scanning around those occurrences; they have their r-partner already.
        centers, clo, chi = self._cnf_live(shard, self._cnf_positions(plan, r, shard))
        hp, _, hw = self._cnf_scan(plan, shard, np.maximum(centers - d, clo),
                                   np.minimum(centers + d + 1, chi), [0])
        rest = [j for j in plan.required[1:] if j != r]
        return hp[self._cnf_check(plan, shard, hp, clo[hw], chi[hw], d, rest)]

    def _cnf_sampling(self, plan: _Plan, d: int, cap: int | None, count_only: bool
                      ) -> bool:
        """Whether to sample ``cap`` anchors: only when the rarest clause occurs more than
        ``cap`` times and the cost model predicts the sample to be cheaper than the exact
        answer (:func:`_sample_cheaper`); a pure function of the plan, the index and the
        arguments."""
        if cap is None or min(plan.counts) <= cap:
            return False
        force = _forced_sample()
        if force is not None:
            return force
        shards = [({j: plan.shard_count(j, s) for j in plan.required}, sh.num_positions)
                  for s, sh in enumerate(self._shards)]
        return _sample_cheaper(shards, d, cap, count_only)

    def _cnf_run(self, plan: _Plan, d: int, cap: int | None, seed: int,
                 want_positions: bool) -> _Run:
        """The matches (or their number) of a plan: exact, or from ``cap`` sampled anchors
        when :meth:`_cnf_sampling` says so."""
        m = len(plan.clauses)
        counts = plan.counts
        n_shards = self.num_shards
        if min(counts) == 0:
            empty = [np.zeros(0, dtype=np.int64) for _ in range(n_shards)]
            return _Run(empty, 0.0, 0.0, 0, 0)
        if m == 1 and not want_positions:
            # Counting one clause needs no positions: its ranges, minus what lies in
            # taken-down documents (found by scanning those documents' text).
            removed_hits = 0
            for s in range(n_shards):
                gone = np.asarray(self._removed[s], dtype=np.int64)
                if gone.shape[0]:
                    hp, _, _ = self._cnf_scan(plan, s, *self._cnf_doc_bounds(s, gone), [0])
                    removed_hits += int(hp.shape[0])
            return _Run(None, float(counts[0] - removed_hits), 0.0, 0, 0)
        if self._cnf_sampling(plan, d, cap, count_only=not want_positions):
            assert cap is not None
            matches, hits = [], 0
            for s, pos in enumerate(self._cnf_sample(plan, 0, cap, seed)):
                pos, lo, hi = self._cnf_live(s, pos)
                pos = pos[self._cnf_check(plan, s, pos, lo, hi, d)]
                matches.append(pos)
                hits += int(pos.shape[0])
            y = np.zeros(cap, dtype=np.float64)
            y[:hits] = 1.0  # removed or unmatched anchors count as 0: still in the sample
            est, err = _estimate(counts[0], y)
            return _Run(matches if want_positions else None, est, err, cap, hits)
        if not want_positions:
            total = sum(self._cnf_exact_count(plan, s, d) for s in range(n_shards))
            return _Run(None, float(total), 0.0, 0, 0)
        matches = [self._cnf_exact(plan, s, d) for s in range(n_shards)]
        return _Run(matches, float(sum(int(a.shape[0]) for a in matches)), 0.0, 0, 0)

    def _docs_sampling(self, plan: _Plan, r: int, cap: int | None) -> bool:
        """Whether :meth:`count_docs_with_all` samples ``cap`` occurrences of the rarest
        clause ``r``: only when it occurs more than ``cap`` times and the cost model
        predicts the sample to be cheaper than the exact answer
        (:func:`_docs_sample_cheaper`)."""
        if cap is None or plan.counts[r] <= cap or min(plan.counts) == 0:
            return False
        force = _forced_sample()
        if force is not None:
            return force
        shards = [({j: plan.shard_count(j, s) for j in plan.required}, sh.num_positions,
                   sh.num_docs) for s, sh in enumerate(self._shards)]
        return _docs_sample_cheaper(shards, r, cap)

    def _docs_exact(self, plan: _Plan, shard: int) -> np.ndarray:
        """Local ids of the live documents of a shard that hold every clause, ascending, by
        the cheapest plan of :func:`_docs_costs`. (A clause implied by another is held
        wherever that one is: only the required clauses are looked for.)"""
        req = plan.required
        n = {j: plan.shard_count(j, shard) for j in req}
        if min(n.values()) == 0:
            return np.zeros(0, dtype=np.int64)
        sh = self._shards[shard]
        r = min(req, key=lambda j: (n[j], j))
        # Plans (_docs_costs): the documents of every clause from the suffix array,
        # intersected ("merge"); the documents of the rarest clause scanned whole for the
        # others ("windows"); every clause marked, each document tested ("marks").
        costs = _docs_costs(n, sh.num_positions, sh.num_docs)
        how = min(costs, key=lambda p: costs[p])  # min keeps the first of equal costs
        force = _forced()
        if force is not None:
            how = ("merge" if force == "merge" else
                   "marks" if force in ("marks", "marks_split") else "windows")
        if how == "marks":
            rarest_first = sorted(req, key=lambda j: (n[j], j))
            return kernels_cnf.docs_with_marks(
                self._cnf_mark(plan, shard, rarest_first), sh.offsets, self.token_width,
                sh.num_positions, self._removed[shard])
        if how == "merge":
            docs = self._cnf_clause_docs(plan, req[0], shard)
            for j in req[1:]:
                docs = np.intersect1d(docs, self._cnf_clause_docs(plan, j, shard),
                                      assume_unique=True)
            return docs[~self.is_removed(shard, docs)]
        docs = self._cnf_clause_docs(plan, r, shard)
        docs = docs[~self.is_removed(shard, docs)]
        others = [j for j in req if j != r]
        mask = np.full(docs.shape[0], 1 << r, dtype=np.int64)
        if others and docs.shape[0]:
            _, hb, hw = self._cnf_scan(plan, shard, *self._cnf_doc_bounds(shard, docs), others)
            np.bitwise_or.at(mask, hw, hb)
        return docs[mask == sum(1 << j for j in req)]

    def _docs_sampled(self, plan: _Plan, shard: int, r: int, pos: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
        """For sampled occurrences ``pos`` of clause ``r``: the weight of each (1 / the
        occurrences of ``r`` in its document if the document is live and holds every
        clause, else 0), and the local ids of those matching documents."""
        m = len(plan.clauses)
        docs = self._cnf_docs(shard, pos)[0]
        live = ~self.is_removed(shard, docs)
        udocs, inverse = np.unique(docs[live], return_inverse=True)
        mask = np.zeros(udocs.shape[0], dtype=np.int64)
        n_r = np.zeros(udocs.shape[0], dtype=np.int64)
        if udocs.shape[0]:
            # r is scanned too: its occurrences per document are the weights' denominators.
            _, hb, hw = self._cnf_scan(plan, shard, *self._cnf_doc_bounds(shard, udocs),
                                       range(m))
            np.bitwise_or.at(mask, hw, hb)
            np.add.at(n_r, hw, (hb >> r) & 1)
        good = mask == (1 << m) - 1
        y = np.zeros(pos.shape[0], dtype=np.float64)
        y[live] = np.where(good, 1.0 / np.maximum(n_r, 1), 0.0)[inverse]
        return y, udocs[good]
