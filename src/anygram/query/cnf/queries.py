"""The CNF queries (:class:`CnfSearch`: count, find, search, documents with all clauses), their
options and the validation of a query. See :mod:`anygram.query.cnf`."""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from typing import Literal

import numpy as np

from ... import kernels
from ...errors import InvalidQueryError, TokenizerError
from ...shards import merge
from ..core import Searcher
from ..documents import DocumentSearch
from ..results import CnfCount, CnfFindResult, CnfHit, CnfSearchResult, DocsWithAllResult, DocWindow
from ..text import parse_query, term_encoder
from . import plans
from .plans import CnfPlan, CnfRun, implies, reduce_clause

#: infini-gram's default cap (its HTTP API and engine): exact while the rarest clause occurs
#: at most this often; above it, an unbiased estimate from this many sampled anchors when the
#: cost model predicts that to be cheaper than the exact answer (else still exact).
DEFAULT_MAX_CLAUSE_FREQ = 50_000
#: infini-gram's default proximity window.
DEFAULT_MAX_DIFF_TOKENS = 100
#: Shape limits of a CNF (infini-gram's server allows 4 x 4). The cost of a query grows with
#: the number of phrases (each scanned position is compared with every phrase).
MAX_CLAUSES = 8
MAX_TERMS = 8

Phrase = Sequence[int] | np.ndarray | str
CnfQuery = str | Sequence[Sequence[Phrase]]
Order = Literal["position", "random"]

_NESTING_HINT = ("a CNF is a list of clauses (AND), each a list of phrases (OR), each a list "
                 "of token ids or a str, e.g. [[[5, 6], [7]], [[8]]] or \"a AND b OR c\"")


def _check_int(value: object, name: str, lo: int, allow_none: bool = False) -> None:
    """An int (numpy ints too, bools not) of at least ``lo``, or None when allowed."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        more = " or None" if allow_none else ""
        raise InvalidQueryError(f"{name} must be an int >= {lo}{more}, not "
                                f"{reprlib.repr(value)}")


class CnfSearch:
    """CNF queries over a :class:`~anygram.query.core.Searcher` (the public methods are
    :class:`anygram.Engine`'s, documented there; semantics in ``docs/cnf.md``)."""

    def __init__(self, core: Searcher, documents: DocumentSearch) -> None:
        self._core = core
        self._documents = documents

    def count(self, cnf: CnfQuery, max_diff_tokens: int, max_clause_freq: int | None,
              seed: int, leading_space: bool | None, anchor: int | None) -> CnfCount:
        plan, run = self._query(cnf, max_diff_tokens, max_clause_freq, seed, leading_space,
                                anchor, want_positions=False)
        return _count_result(plan, run)

    def find(self, cnf: CnfQuery, max_diff_tokens: int, max_clause_freq: int | None,
             seed: int, leading_space: bool | None, anchor: int | None) -> CnfFindResult:
        plan, run = self._query(cnf, max_diff_tokens, max_clause_freq, seed, leading_space,
                                anchor, want_positions=True)
        c = _count_result(plan, run)
        assert run.matches is not None
        return CnfFindResult(**{f: getattr(c, f) for f in CnfCount.__dataclass_fields__},
                             positions=tuple(run.matches))

    def search(self, cnf: CnfQuery, max_docs: int, offset: int, order: Order, seed: int,
               max_diff_tokens: int, max_clause_freq: int | None, max_disp_len: int | None,
               max_ctx_len: int | None, decode: bool, leading_space: bool | None,
               anchor: int | None) -> CnfSearchResult:
        _check_int(max_docs, "max_docs", 0)
        _check_int(offset, "offset", 0)
        if order not in ("position", "random"):
            raise InvalidQueryError(f"order must be 'position' or 'random', not {order!r}")
        plan, run = self._query(cnf, max_diff_tokens, max_clause_freq, seed, leading_space,
                                anchor, want_positions=True)
        found = _count_result(plan, run)
        assert run.matches is not None
        shard_of = np.concatenate([np.full(a.shape[0], s, dtype=np.int64)
                                   for s, a in enumerate(run.matches)])
        pos_of = np.concatenate(run.matches)
        total = int(pos_of.shape[0])
        end = min(int(offset) + int(max_docs), total)
        idx = np.arange(min(int(offset), total), end, dtype=np.int64)
        if order == "random":
            idx = kernels.permute(idx, total, np.uint64(seed))
        shards, pos = shard_of[idx], pos_of[idx]
        # The anchor phrase at each hit, for the window's match length.
        qlen = self._core.shards.phrase_lengths(shards, pos, plan.qbytes[0])
        windows: list[DocWindow | None] = [None] * shards.shape[0]
        for length in np.unique(qlen).tolist():
            at = np.flatnonzero(qlen == length)
            got = self._documents.get_docs_by_pos(np.stack([shards[at], pos[at]], axis=1),
                                                  length, max_disp_len, max_ctx_len, decode)
            for i, win in zip(at.tolist(), got):
                windows[i] = win
        hits = tuple(CnfHit(shard=s, pos=p, doc_id=win.doc_id, window=win)
                     for s, p, win in zip(shards.tolist(), pos.tolist(), windows)
                     if win is not None)
        return CnfSearchResult(count=found.count, approx=found.approx, estimate=found.estimate,
                               total_hits=total, offset=int(offset),
                               next_offset=end if end < total else None, hits=hits)

    def docs_with_all(self, cnf: CnfQuery, max_clause_freq: int | None, seed: int,
                      return_ids: bool, leading_space: bool | None) -> DocsWithAllResult:
        _check_int(max_clause_freq, "max_clause_freq", 1, allow_none=True)
        _check_int(seed, "seed", 0)
        if not isinstance(return_ids, bool):
            raise InvalidQueryError(f"return_ids must be a bool, not {return_ids!r}")
        core = self._core
        group = core.shards
        plan = self._plan(cnf, leading_space, 0)  # (no anchor: every clause has a document)
        shard_plans = plan.for_shards(len(group.sizes))
        m = len(plan.clauses)
        r = min(range(m), key=lambda j: (plan.counts[j], j))
        if not plans.should_sample_docs(plan, group, r, max_clause_freq):
            ids = np.concatenate([core.doc_base[s] + docs for s, docs in
                                  enumerate(group.docs_with_all(shard_plans))]
                                 + [np.zeros(0, np.int64)])
            n = int(ids.shape[0])
            return DocsWithAllResult(count=n, approx=False, estimate=float(n), stderr=0.0,
                                     sampled=0,
                                     doc_ids=tuple(ids.tolist()) if return_ids else None)
        assert max_clause_freq is not None
        drawn = plans.sample(plan, group, r, int(max_clause_freq), int(seed))
        parts = group.docs_with_all_sampled(shard_plans, r, drawn)
        y = np.concatenate([y for y, _ in parts])
        est, err = merge.estimate(plan.counts[r], y)
        ids = np.concatenate([core.doc_base[s] + docs for s, (_, docs) in enumerate(parts)])
        return DocsWithAllResult(count=round(est), approx=True, estimate=est, stderr=err,
                                 sampled=int(y.shape[0]),
                                 doc_ids=tuple(ids.tolist()) if return_ids else None)

    # ------------------------------------------------------------------ internals

    def _query(self, cnf: CnfQuery, max_diff_tokens: int, max_clause_freq: int | None,
               seed: int, leading_space: bool | None, anchor: int | None,
               want_positions: bool) -> tuple[CnfPlan, CnfRun]:
        """Validate the options (cheap, first), plan the query, run it."""
        _check_int(max_diff_tokens, "max_diff_tokens", 0)
        _check_int(max_clause_freq, "max_clause_freq", 1, allow_none=True)
        _check_int(seed, "seed", 0)
        _check_int(anchor, "anchor", 0, allow_none=True)
        plan = self._plan(cnf, leading_space, anchor)
        cap = None if max_clause_freq is None else int(max_clause_freq)
        # A window wider than a shard is the whole document: the same answer, and a +- d
        # stays inside the kernels' int64 (2**63 would not even convert).
        d = min(int(max_diff_tokens),
                max((s.num_positions for s in self._core.shards.sizes), default=0))
        return plan, self._run(plan, d, cap, int(seed), want_positions)

    def _run(self, plan: CnfPlan, d: int, cap: int | None, seed: int,
             want_positions: bool) -> CnfRun:
        """The matches (or their number) of a plan: exact, or from ``cap`` sampled anchors
        when :func:`~anygram.query.cnf.plans.should_sample` says so."""
        group = self._core.shards
        counts = plan.counts
        if min(counts) == 0:
            empty = [np.zeros(0, dtype=np.int64) for _ in group.sizes]
            return CnfRun(empty, 0.0, 0.0, 0, 0)
        shard_plans = plan.for_shards(len(group.sizes))
        if len(plan.clauses) == 1 and not want_positions:
            # Counting one clause needs no positions: its ranges, minus what lies in
            # taken-down documents (found by scanning those documents' text).
            removed_hits = sum(group.cnf_removed_hits(shard_plans))
            return CnfRun(None, float(counts[0] - removed_hits), 0.0, 0, 0)
        if plans.should_sample(plan, group, d, cap, count_only=not want_positions):
            assert cap is not None
            matches = group.cnf_check(shard_plans, plans.sample(plan, group, 0, cap, seed), d)
            hits = sum(int(a.shape[0]) for a in matches)
            y = np.zeros(cap, dtype=np.float64)
            y[:hits] = 1.0  # removed or unmatched anchors count as 0: still in the sample
            est, err = merge.estimate(counts[0], y)
            return CnfRun(matches if want_positions else None, est, err, cap, hits)
        if not want_positions:
            return CnfRun(None, float(sum(group.cnf_count(shard_plans, d))), 0.0, 0, 0)
        matches = group.cnf_matches(shard_plans, d)
        return CnfRun(matches, float(sum(int(a.shape[0]) for a in matches)), 0.0, 0, 0)

    def _plan(self, cnf: CnfQuery, leading_space: bool | None,
              anchor: int | None = None) -> CnfPlan:
        """Validate and tokenize a CNF, reduce its clauses, find every phrase, and put the
        anchor clause first: ``anchor`` (its place as written), by default the rarest."""
        core = self._core
        if isinstance(cnf, str):
            if core.tokenizer is None:
                raise TokenizerError("this index has no tokenizer: pass the CNF as token ids, "
                                     "or open the index with tokenizer=...")
            raw = [[core.ids(p, f"term {j + 1} of clause {i + 1}", allow_empty=False)
                    for j, p in enumerate(clause)]
                   for i, clause in enumerate(parse_query(cnf, core.tokenizer,
                                                          leading_space=leading_space))]
        elif isinstance(cnf, (list, tuple)):
            raw = self._ids(cnf, leading_space)
        else:
            raise InvalidQueryError(f"cnf must be a str or a list, not {type(cnf).__name__}: "
                                    f"{_NESTING_HINT}")
        if not raw:
            raise InvalidQueryError(f"cnf must have at least one clause: {_NESTING_HINT}")
        if len(raw) > MAX_CLAUSES:
            raise InvalidQueryError(f"cnf has {len(raw)} clauses; at most {MAX_CLAUSES} are "
                                    "allowed")
        for i, clause in enumerate(raw):
            if len(clause) > MAX_TERMS:
                raise InvalidQueryError(f"clause {i} has {len(clause)} phrases; at most "
                                        f"{MAX_TERMS} are allowed per clause")
        if anchor is not None and anchor >= len(raw):
            raise InvalidQueryError(f"anchor is {anchor}; the query has {len(raw)} clauses "
                                    f"(0..{len(raw) - 1})")
        clauses = [reduce_clause(c) for c in raw]
        qbytes = [[core.bytes(p) for p in c] for c in clauses]
        ranges = [[core.ranges(q) for q in qs] for qs in qbytes]
        counts = [sum(b - a for rs in cr for a, b in rs) for cr in ranges]
        # The default anchor is the rarest clause (the first of equals): the count of an AND
        # does not depend on the order its clauses are written in, and it is the cheapest.
        a = min(range(len(raw)), key=lambda j: (counts[j], j)) if anchor is None else anchor
        order = [a, *(j for j in range(len(raw)) if j != a)]
        clauses = [clauses[j] for j in order]
        qbytes = [qbytes[j] for j in order]
        ranges = [ranges[j] for j in order]
        counts = [counts[j] for j in order]
        written = tuple(order.index(j) for j in range(len(raw)))
        # A partner implied by the anchor clause or by a partner kept before it is met
        # wherever that one is (at the same position): checking it is wasted work.
        required = [0]
        for j in range(1, len(clauses)):
            if not any(implies(clauses[i], clauses[j]) for i in required):
                required.append(j)
        return CnfPlan(clauses=clauses, ranges=ranges, counts=counts, qbytes=qbytes,
                       required=required, anchor=a, written=written)

    def _ids(self, cnf: Sequence[Sequence[Phrase]],
             leading_space: bool | None) -> list[list[list[int]]]:
        """A nested-list CNF as ids: shape and types checked, text phrases encoded as terms
        (:func:`~anygram.query.text.term_encoder`), ids range-checked."""
        core = self._core
        encode = None
        out = []
        for i, clause in enumerate(cnf):
            if not isinstance(clause, (list, tuple)):
                raise InvalidQueryError(f"cnf[{i}] is a {type(clause).__name__}, not a list "
                                        f"of phrases: {_NESTING_HINT}")
            if not clause:
                raise InvalidQueryError(f"cnf[{i}] is an empty clause: {_NESTING_HINT}")
            phrases = []
            for j, phrase in enumerate(clause):
                what = f"cnf[{i}][{j}]"
                if isinstance(phrase, str):
                    if core.tokenizer is None:
                        raise TokenizerError(f"{what} is text but this index has no tokenizer: "
                                             "pass token ids, or open it with tokenizer=...")
                    if encode is None:
                        encode = term_encoder(core.tokenizer, leading_space)
                    ids = encode(phrase.strip()) if phrase.strip() else []
                    if not ids:
                        raise InvalidQueryError(f"{what} ({phrase!r}) encodes to no tokens")
                    phrase = ids
                elif type(phrase) is int or isinstance(phrase, np.integer):
                    raise InvalidQueryError(f"{what} is a token id, not a phrase: "
                                            f"{_NESTING_HINT}")
                phrases.append(core.ids(phrase, what, allow_empty=False))
            out.append(phrases)
        return out


def _count_result(plan: CnfPlan, run: CnfRun) -> CnfCount:
    approx = run.sampled > 0
    return CnfCount(count=round(run.estimate) if approx else int(run.estimate), approx=approx,
                    estimate=run.estimate, stderr=run.stderr, sampled=run.sampled,
                    sample_matches=run.sample_matches, anchor_count=plan.counts[0],
                    clause_counts=tuple(plan.counts[j] for j in plan.written),
                    anchor=plan.anchor)
