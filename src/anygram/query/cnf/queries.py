"""The public CNF queries of the Engine (count_cnf, find_cnf, search_docs_cnf,
count_docs_with_all), their options and the validation of a query. See :mod:`anygram.query.cnf`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from ... import kernels
from ...errors import InvalidQueryError, TokenizerError
from ..documents import DocumentQueries
from ..results import CnfCount, CnfFindResult, CnfHit, CnfSearchResult, DocsWithAllResult, DocWindow
from ..text import parse_query, term_encoder
from .execution import _CnfExecution
from .plans import _estimate, _implies, _Plan, _reduce, _Run

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
        raise InvalidQueryError(f"{name} must be an int >= {lo}{more}, not {value!r}")


class CnfQueries(_CnfExecution, DocumentQueries):
    """Engine methods for CNF queries: count_cnf, find_cnf, search_docs_cnf,
    count_docs_with_all. See ``docs/cnf.md`` for the semantics."""

    # ------------------------------------------------------------------ public queries

    def count_cnf(self, cnf: CnfQuery, *,
                  max_diff_tokens: int = DEFAULT_MAX_DIFF_TOKENS,
                  max_clause_freq: int | None = DEFAULT_MAX_CLAUSE_FREQ, seed: int = 0,
                  leading_space: bool | None = None) -> CnfCount:
        """Number of matches of a CNF query: occurrences of the first clause with every other
        clause in the same document within ``max_diff_tokens`` tokens (start to start).

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
        plan, run = self._cnf_query(cnf, max_diff_tokens, max_clause_freq, seed,
                                    leading_space, want_positions=False)
        return _count_result(plan, run)

    def find_cnf(self, cnf: CnfQuery, *,
                 max_diff_tokens: int = DEFAULT_MAX_DIFF_TOKENS,
                 max_clause_freq: int | None = DEFAULT_MAX_CLAUSE_FREQ, seed: int = 0,
                 leading_space: bool | None = None) -> CnfFindResult:
        """The matches of a CNF query (as :meth:`count_cnf`) and where they are: per shard, the
        ascending token positions of the matching anchor occurrences.

        When ``approx``, the positions are the matches among the sampled anchors only. Unlike
        :meth:`count_cnf`, a single clause is capped too (its positions are the output).
        Cost: as :meth:`count_cnf`, plus the output.
        """
        plan, run = self._cnf_query(cnf, max_diff_tokens, max_clause_freq, seed,
                                    leading_space, want_positions=True)
        c = _count_result(plan, run)
        assert run.matches is not None
        return CnfFindResult(**{f: getattr(c, f) for f in CnfCount.__dataclass_fields__},
                             positions=tuple(run.matches))

    def search_docs_cnf(self, cnf: CnfQuery, *, max_docs: int = 10, offset: int = 0,
                        order: Order = "position", seed: int = 0,
                        max_diff_tokens: int = DEFAULT_MAX_DIFF_TOKENS,
                        max_clause_freq: int | None = DEFAULT_MAX_CLAUSE_FREQ,
                        max_disp_len: int | None = None, max_ctx_len: int | None = None,
                        decode: bool = True,
                        leading_space: bool | None = None) -> CnfSearchResult:
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
        _check_int(max_docs, "max_docs", 0)
        _check_int(offset, "offset", 0)
        if order not in ("position", "random"):
            raise InvalidQueryError(f"order must be 'position' or 'random', not {order!r}")
        plan, run = self._cnf_query(cnf, max_diff_tokens, max_clause_freq, seed,
                                    leading_space, want_positions=True)
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
        # The anchor phrase at each hit, for the window's match length: the clause's
        # phrases are prefix-free, so exactly one of them starts there.
        w = self.token_width
        qlen = np.zeros(shards.shape[0], dtype=np.int64)
        for i, (s, p) in enumerate(zip(shards.tolist(), pos.tolist())):
            ds = self._shards[s].ds
            qlen[i] = next(q.shape[0] // w for q in plan.qbytes[0]
                           if np.array_equal(ds[p * w:p * w + q.shape[0]], q))
        windows: list[DocWindow | None] = [None] * shards.shape[0]
        for length in np.unique(qlen).tolist():
            at = np.flatnonzero(qlen == length)
            got = self.get_docs_by_pos(np.stack([shards[at], pos[at]], axis=1),
                                       query_len=length, max_disp_len=max_disp_len,
                                       max_ctx_len=max_ctx_len, decode=decode)
            for i, win in zip(at.tolist(), got):
                windows[i] = win
        hits = tuple(CnfHit(shard=s, pos=p, doc_id=win.doc_id, window=win)
                     for s, p, win in zip(shards.tolist(), pos.tolist(), windows)
                     if win is not None)
        return CnfSearchResult(count=found.count, approx=found.approx, estimate=found.estimate,
                               total_hits=total, offset=int(offset),
                               next_offset=end if end < total else None, hits=hits)

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
        _check_int(max_clause_freq, "max_clause_freq", 1, allow_none=True)
        _check_int(seed, "seed", 0)
        if not isinstance(return_ids, bool):
            raise InvalidQueryError(f"return_ids must be a bool, not {return_ids!r}")
        plan = self._cnf_plan(cnf, leading_space)
        m = len(plan.clauses)
        r = min(range(m), key=lambda j: (plan.counts[j], j))
        n_r = plan.counts[r]
        if not self._docs_sampling(plan, r, max_clause_freq):
            ids = np.concatenate([self._doc_base[s] + self._docs_exact(plan, s)
                                  for s in range(self.num_shards)] + [np.zeros(0, np.int64)])
            n = int(ids.shape[0])
            return DocsWithAllResult(count=n, approx=False, estimate=float(n), stderr=0.0,
                                     sampled=0,
                                     doc_ids=tuple(ids.tolist()) if return_ids else None)
        assert max_clause_freq is not None
        ys, found = [], []
        for s, pos in enumerate(self._cnf_sample(plan, r, int(max_clause_freq), int(seed))):
            y, docs = self._docs_sampled(plan, s, r, pos)
            ys.append(y)
            found.append(self._doc_base[s] + docs)
        y = np.concatenate(ys)
        est, err = _estimate(n_r, y)
        ids = np.concatenate(found)
        return DocsWithAllResult(count=round(est), approx=True, estimate=est, stderr=err,
                                 sampled=int(y.shape[0]),
                                 doc_ids=tuple(ids.tolist()) if return_ids else None)

    # ------------------------------------------------------------------ internals

    def _cnf_query(self, cnf: CnfQuery, max_diff_tokens: int,
                   max_clause_freq: int | None, seed: int, leading_space: bool | None,
                   want_positions: bool) -> tuple[_Plan, _Run]:
        """Validate the options (cheap, first), plan the query, run it."""
        _check_int(max_diff_tokens, "max_diff_tokens", 0)
        _check_int(max_clause_freq, "max_clause_freq", 1, allow_none=True)
        _check_int(seed, "seed", 0)
        plan = self._cnf_plan(cnf, leading_space)
        cap = None if max_clause_freq is None else int(max_clause_freq)
        return plan, self._cnf_run(plan, int(max_diff_tokens), cap, int(seed), want_positions)

    def _cnf_plan(self, cnf: CnfQuery, leading_space: bool | None) -> _Plan:
        """Validate and tokenize a CNF, reduce its clauses, and find every phrase."""
        if isinstance(cnf, str):
            if self.tokenizer is None:
                raise TokenizerError("this index has no tokenizer: pass the CNF as token ids, "
                                     "or open the index with tokenizer=...")
            raw = [[self._as_ids(p, f"term {j + 1} of clause {i + 1}", allow_empty=False)
                    for j, p in enumerate(clause)]
                   for i, clause in enumerate(parse_query(cnf, self.tokenizer,
                                                          leading_space=leading_space))]
        elif isinstance(cnf, (list, tuple)):
            raw = self._cnf_ids(cnf, leading_space)
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
        clauses = [_reduce(c) for c in raw]
        qbytes = [[self._bytes(p) for p in c] for c in clauses]
        ranges = [[self._ranges(q) for q in qs] for qs in qbytes]
        counts = [sum(b - a for rs in cr for a, b in rs) for cr in ranges]
        # A partner implied by the anchor clause or by a partner kept before it is met
        # wherever that one is (at the same position): checking it is wasted work.
        required = [0]
        for j in range(1, len(clauses)):
            if not any(_implies(clauses[i], clauses[j]) for i in required):
                required.append(j)
        return _Plan(clauses=clauses, ranges=ranges, counts=counts, qbytes=qbytes,
                     required=required)

    def _cnf_ids(self, cnf: Sequence[Sequence[Phrase]],
                 leading_space: bool | None) -> list[list[list[int]]]:
        """A nested-list CNF as ids: shape and types checked, text phrases encoded as terms
        (:func:`~anygram.query.text.term_encoder`), ids range-checked."""
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
                    if self.tokenizer is None:
                        raise TokenizerError(f"{what} is text but this index has no tokenizer: "
                                             "pass token ids, or open it with tokenizer=...")
                    if encode is None:
                        encode = term_encoder(self.tokenizer, leading_space)
                    ids = encode(phrase.strip()) if phrase.strip() else []
                    if not ids:
                        raise InvalidQueryError(f"{what} ({phrase!r}) encodes to no tokens")
                    phrase = ids
                elif type(phrase) is int or isinstance(phrase, np.integer):
                    raise InvalidQueryError(f"{what} is a token id, not a phrase: "
                                            f"{_NESTING_HINT}")
                phrases.append(self._as_ids(phrase, what, allow_empty=False))
            out.append(phrases)
        return out


def _count_result(plan: _Plan, run: _Run) -> CnfCount:
    approx = run.sampled > 0
    return CnfCount(count=round(run.estimate) if approx else int(run.estimate), approx=approx,
                    estimate=run.estimate, stderr=run.stderr, sampled=run.sampled,
                    sample_matches=run.sample_matches, anchor_count=plan.counts[0],
                    clause_counts=tuple(plan.counts))
