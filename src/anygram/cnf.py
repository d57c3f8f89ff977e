"""Boolean queries: AND of ORs of phrases, with a proximity window (mixed into the Engine).

The semantics are specified in ``docs/cnf.md``; in short, a *match* is an occurrence of the
first clause (the anchor) such that every other clause occurs in the same document within
``max_diff_tokens`` (``d``) tokens of it, start to start, and the count is the number of
matches. Everything is exact unless the rarest clause occurs more than ``max_clause_freq``
times; then a uniform sample of anchor occurrences (without replacement) is checked and the
count is scaled up: unbiased, flagged ``approx``.

How an exact answer is computed, per shard (a document never spans shards), by the cheapest
plan for the clause counts at hand under a small cost model in nanoseconds (:func:`_choose`):

- **anchor-driven**: read the anchor clause's occurrences from the suffix array (radix
  sort), then check their partners clause by clause (:func:`_split_partners`), each either

  - read from the suffix array too (``merge``; checked first, narrowing the anchors), or
  - looked up in the token text around each remaining anchor, by walking outward until
    every looked-up clause is seen (``probe``, :func:`anygram.kernels.probe_anchors`: a few
    steps when the partners are frequent) or by scanning ``[a - d, a + d]`` and storing the
    hits (``windows``, :func:`anygram.kernels.phrase_hits`, ~1 ns a position).

- **driven by a rarer clause r**: read r's occurrences and scan ``[r - d, r + d]`` around each
  for the anchor phrases: every anchor found has its r-partner; then check its other
  partners as above.

Looking a clause up in the text costs O(anchors x d) whatever its count, so ``"natural" AND
"the"`` costs what ``"natural"`` costs and no frequent clause is materialized; reading from
the suffix array costs O(count) and wins when no clause is much rarer than the others.
:func:`anygram.kernels.verify_anchors` checks anchors against sorted occurrence lists with
one forward pointer per clause.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from . import kernels
from .cnf_results import CnfCount, CnfFindResult, CnfHit, CnfSearchResult, DocsWithAllResult
from .errors import InvalidQueryError, TokenizerError
from .query_text import parse_query, term_encoder
from .results import DocWindow

if TYPE_CHECKING:
    from .engine import Engine  # noqa: F401

#: infini-gram's default cap (its HTTP API and engine): exact while the rarest clause occurs
#: at most this often, an unbiased estimate from this many sampled anchors above it.
DEFAULT_MAX_CLAUSE_FREQ = 50_000
#: infini-gram's default proximity window.
DEFAULT_MAX_DIFF_TOKENS = 100
#: Shape limits of a CNF (infini-gram's server allows 4 x 4). The cost of a query grows with
#: the number of phrases (each scanned position is compared with every phrase).
MAX_CLAUSES = 8
MAX_TERMS = 8
#: The cost model of :func:`_choose` and :func:`_split_partners`, in nanoseconds of CPU
#: (measured with ``time.process_time`` on a 20M-token u16 index, ``bench/bench_cnf.py``'s):
#: reading an occurrence from the suffix array and radix-sorting it; an anchor also needs its
#: document and its bounds (:func:`anygram.kernels.docs_of_sorted`); scanning one text
#: position; storing one hit found by scanning (and splitting and verifying it); the first
#: touch of a random place in the text (a cache miss); one step of
#: :func:`anygram.kernels.probe_anchors`' outward walk.
_READ_NS = 11.0
_ANCHOR_NS = 20.0
_SCAN_NS = 1.0
_HIT_NS = 25.0
_MISS_NS = 80.0
_PROBE_NS = 2.0
#: Tests set this to force one plan: anchors read from the suffix array with partners found
#: by "windows", "probe", "merge" or half merged, half probed ("split") (see
#: :func:`_split_partners`), or "driver" (driven by the rarest other clause). None: the
#: cheapest.
_FORCE: str | None = None

Phrase = Sequence[int] | np.ndarray | str
CnfQuery = str | Sequence[Sequence[Phrase]]
Order = Literal["position", "random"]

_NESTING_HINT = ("a CNF is a list of clauses (AND), each a list of phrases (OR), each a list "
                 "of token ids or a str, e.g. [[[5, 6], [7]], [[8]]] or \"a AND b OR c\"")


@dataclass(frozen=True)
class _Plan:
    """A validated CNF, its clauses reduced to prefix-free phrase sets, and where they occur."""

    clauses: list[list[list[int]]]  # [clause][phrase] -> ids; clause 0 is the anchor
    ranges: list[list[list[tuple[int, int]]]]  # [clause][phrase][shard] -> SA rank range
    counts: list[int]  # distinct occurrence positions per clause (taken-down docs included)
    qbytes: list[list[np.ndarray]]  # [clause][phrase] -> little-endian token bytes
    required: list[int]  # the anchor clause, then the partners not implied by another

    def shard_count(self, clause: int, shard: int) -> int:
        """Occurrences of a clause in one shard (taken-down documents included)."""
        return sum(rs[shard][1] - rs[shard][0] for rs in self.ranges[clause])

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


@dataclass(frozen=True)
class _Run:
    """The matches of a plan: per shard, the ascending positions of matching anchors (all of
    them when exact, those among the sample when ``sampled > 0``)."""

    matches: list[np.ndarray] | None  # None when only the count was needed
    estimate: float
    stderr: float
    sampled: int  # 0: exact
    sample_matches: int


def _reduce(clause: list[list[int]]) -> list[list[int]]:
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


def _implies(a: list[list[int]], b: list[list[int]]) -> bool:
    """Whether a phrase of clause ``b`` starts wherever a phrase of clause ``a`` does (each
    phrase of ``a`` extends one of ``b``): then any occurrence of ``a`` is one of ``b``."""
    return all(any(p[:len(q)] == q for q in b) for p in a)


def _scan_cost(centers: int, radius: int, density: float, positions: int) -> float:
    """Cost of scanning ``2 * radius + 1`` positions around each of ``centers`` random places
    (together at most the whole shard) and storing the ``density`` hits per position."""
    scanned = min(centers * (2 * radius + 1), positions)
    return centers * _MISS_NS + scanned * (_SCAN_NS + _HIT_NS * density)


def _reach(d: int, count: int, positions: int) -> float:
    """Expected steps of an outward walk from an anchor until a clause of ``count``
    occurrences is seen: ~1/density each side, and the whole window when it is rare."""
    return min(2 * d + 1, 2 * positions / max(count, 1))


def _split_partners(k: int, n: dict[int, int], d: int, positions: int
                    ) -> tuple[list[int], str, float]:
    """How to find the partners of ``k`` anchors (partner clause -> count ``n``).

    Each clause is either read from the suffix array (``merge``: ``count`` reads, whatever
    ``k``) or looked up in the text around each anchor, the looked-up clauses together by
    the cheaper of an outward walk that stops when all are seen (``probe``) or a scan of the
    whole window that stores the hits (``windows``). Returns the clauses to merge, the way
    for the others, and the total cost. Merged clauses are checked first and narrow the
    anchors the text is read around (not modelled: a bonus).
    """
    looked = [j for j in n if k * _PROBE_NS * _reach(d, n[j], positions) < n[j] * _READ_NS]
    if _FORCE in ("windows", "probe"):
        looked = list(n)
    elif _FORCE == "merge":
        looked = []
    elif _FORCE == "split":  # tests: exercise both at once
        looked = list(n)[::2]
    merged = [j for j in n if j not in looked]
    cost = sum(n[j] for j in merged) * _READ_NS
    if not looked:
        return merged, "probe", cost
    probe = k * (_MISS_NS + _PROBE_NS * max(_reach(d, n[j], positions) for j in looked))
    windows = _scan_cost(k, d, sum(n[j] for j in looked) / max(positions, 1), positions)
    way = "probe" if probe <= windows else "windows"
    if _FORCE in ("windows", "probe"):
        way = _FORCE
    return merged, way, cost + min(probe, windows)


def _choose(n: dict[int, int], d: int, positions: int, count_only: bool = False) -> int:
    """The clause to drive the exact plan of one shard from (see the module doc): 0, read
    the anchors and check their partners (:func:`_split_partners`); or a partner ``r``, read
    its occurrences, scan ``[r - d, r + d]`` around each for anchor candidates (stored: every
    one within ``d`` of ``r``), then check their other partners. With one partner and
    ``count_only``, the candidates are the matches and are only counted.

    ``n`` maps the anchor clause (0) and the required partners to their occurrences in the
    shard, ``positions`` is its size. Ties go to the lower clause index.
    """
    partners = [j for j in n if j != 0]
    if partners and _FORCE == "driver":
        return min(partners, key=lambda j: n[j])
    if not partners or _FORCE is not None:
        return 0
    costs = {0: n[0] * _ANCHOR_NS + _split_partners(n[0], {j: n[j] for j in partners}, d,
                                                     positions)[2]}
    for r in partners:
        found = min(n[0], n[r] * (2 * d + 1) * n[0] / max(positions, 1))  # candidates
        rest = {j: n[j] for j in partners if j != r}
        stored = 0.0 if count_only and not rest else n[0] / max(positions, 1)
        costs[r] = n[r] * _ANCHOR_NS + _scan_cost(n[r], d, stored, positions) + (
            _split_partners(int(found), rest, d, positions)[2] if rest else 0.0)
    return min(costs, key=lambda j: (costs[j], j))


def _csr(lists: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Ascending position lists as :func:`anygram.kernels.verify_anchors` takes them."""
    start = np.zeros(len(lists) + 1, dtype=np.int64)
    start[1:] = np.cumsum([x.shape[0] for x in lists])
    occ = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)
    return occ.astype(np.int64, copy=False), start


def _by_clause(hp: np.ndarray, hb: np.ndarray, clauses: Sequence[int]) -> list[np.ndarray]:
    """Split phrase hits (ascending positions, clause bits) into one list per clause."""
    return [hp[(hb >> j) & 1 == 1] for j in clauses]


def _estimate(total: int, y: np.ndarray) -> tuple[float, float]:
    """Unbiased estimate of ``sum`` over a population of ``total`` units from the values ``y``
    of a uniform sample without replacement, and its estimated standard error (with the
    finite-population correction)."""
    n = y.shape[0]
    est = total * float(y.mean()) if n else 0.0
    if n < 2:
        return est, 0.0
    var = float(y.var(ddof=1)) * (1.0 - n / total) / n
    return est, total * math.sqrt(max(var, 0.0))


def _check_int(value: object, name: str, lo: int, allow_none: bool = False) -> None:
    """An int (numpy ints too, bools not) of at least ``lo``, or None when allowed."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        more = " or None" if allow_none else ""
        raise InvalidQueryError(f"{name} must be an int >= {lo}{more}, not {value!r}")


class CnfQueries:
    """Engine methods for CNF queries: count_cnf, find_cnf, search_docs_cnf,
    count_docs_with_all. See ``docs/cnf.md`` for the semantics."""

    # ------------------------------------------------------------------ public queries

    def count_cnf(self: Engine, cnf: CnfQuery, *,
                  max_diff_tokens: int = DEFAULT_MAX_DIFF_TOKENS,
                  max_clause_freq: int | None = DEFAULT_MAX_CLAUSE_FREQ, seed: int = 0,
                  leading_space: bool | None = None) -> CnfCount:
        """Number of matches of a CNF query: occurrences of the first clause with every other
        clause in the same document within ``max_diff_tokens`` tokens (start to start).

        Args:
            cnf: clauses (AND) of phrases (OR), each phrase token ids or text, e.g.
                ``[[[5, 6], [7]], [[8]]]``; or a text query ``"a AND b OR c"`` (OR binds
                tighter, see :mod:`anygram.query_text`).
            max_diff_tokens: the proximity window ``d >= 0``.
            max_clause_freq: exact while the rarest clause occurs at most this often (the
                default, 50,000, is infini-gram's); above it, this many anchor occurrences
                are sampled and the count is an unbiased estimate (``approx=True``). None:
                always exact.
            seed: seeds the sample (same seed, same answer).
            leading_space: how text terms are tokenized (:func:`~anygram.query_text.term_encoder`).

        A single clause counts its distinct occurrence positions (a position where two of its
        phrases start counts once), exactly and in O(phrases x log N) (plus a scan of the
        taken-down documents, if any). Otherwise, per shard, the cheapest of: O(count(r) x d)
        driven by a clause ``r`` whose partners are looked up in the text (so a frequent
        partner of a rare clause costs nothing extra), or O(sum of the counts) reading the
        clauses from the suffix array; with the cap, O(cap x d) or O(cap + partner counts).
        See ``docs/cnf.md``.

        Raises:
            InvalidQueryError, TokenOutOfRangeError, TokenizerError (text without a tokenizer).
        """
        plan, run = self._cnf_query(cnf, max_diff_tokens, max_clause_freq, seed,
                                    leading_space, want_positions=False)
        return _count_result(plan, run)

    def find_cnf(self: Engine, cnf: CnfQuery, *,
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

    def search_docs_cnf(self: Engine, cnf: CnfQuery, *, max_docs: int = 10, offset: int = 0,
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
        the sample when the cap forces one (then only the sampled matches can be paged:
        ``total_hits``). Windows are cut around the anchor phrase as in
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

    def count_docs_with_all(self: Engine, cnf: CnfQuery, *,
                            max_clause_freq: int | None = DEFAULT_MAX_CLAUSE_FREQ,
                            seed: int = 0, return_ids: bool = False,
                            leading_space: bool | None = None) -> DocsWithAllResult:
        """Number of documents in which every clause occurs at least once (anywhere in the
        document: a document-level AND with no proximity limit), and optionally their ids.

        Exact, per shard by the cheapest plan: the documents holding the rarest clause R,
        read from R's occurrences and scanned whole for the other clauses (O(count(R) +
        their tokens)); or every clause's documents from the suffix array, intersected
        (O(sum of counts)); or every document scanned (O(shard tokens)).

        When R occurs more than ``max_clause_freq`` times, that many occurrences of R are
        sampled uniformly without replacement; each contributes ``[its document has every
        clause] / (occurrences of R in that document)``, scaled by ``count(R) / sampled``:
        an unbiased estimate of the number of documents (``approx=True``; ``doc_ids`` are
        then the matching documents met in the sample). Cost O(cap + tokens of the sampled
        documents).
        """
        _check_int(max_clause_freq, "max_clause_freq", 1, allow_none=True)
        _check_int(seed, "seed", 0)
        if not isinstance(return_ids, bool):
            raise InvalidQueryError(f"return_ids must be a bool, not {return_ids!r}")
        plan = self._cnf_plan(cnf, leading_space)
        m = len(plan.clauses)
        r = min(range(m), key=lambda j: (plan.counts[j], j))
        n_r = plan.counts[r]
        if max_clause_freq is None or n_r <= max_clause_freq or min(plan.counts) == 0:
            ids = np.concatenate([self._doc_base[s] + self._docs_exact(plan, s)
                                  for s in range(self.num_shards)] + [np.zeros(0, np.int64)])
            n = int(ids.shape[0])
            return DocsWithAllResult(count=n, approx=False, estimate=float(n), stderr=0.0,
                                     sampled=0,
                                     doc_ids=tuple(ids.tolist()) if return_ids else None)
        ys, found = [], []
        for s, pos in enumerate(self._cnf_sample(plan, r, max_clause_freq, int(seed))):
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

    def _cnf_query(self: Engine, cnf: CnfQuery, max_diff_tokens: int,
                   max_clause_freq: int | None, seed: int, leading_space: bool | None,
                   want_positions: bool) -> tuple[_Plan, _Run]:
        """Validate the options (cheap, first), plan the query, run it."""
        _check_int(max_diff_tokens, "max_diff_tokens", 0)
        _check_int(max_clause_freq, "max_clause_freq", 1, allow_none=True)
        _check_int(seed, "seed", 0)
        plan = self._cnf_plan(cnf, leading_space)
        cap = None if max_clause_freq is None else int(max_clause_freq)
        return plan, self._cnf_run(plan, int(max_diff_tokens), cap, int(seed), want_positions)

    def _cnf_plan(self: Engine, cnf: CnfQuery, leading_space: bool | None) -> _Plan:
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

    def _cnf_ids(self: Engine, cnf: Sequence[Sequence[Phrase]],
                 leading_space: bool | None) -> list[list[list[int]]]:
        """A nested-list CNF as ids: shape and types checked, text phrases encoded as terms
        (:func:`~anygram.query_text.term_encoder`), ids range-checked."""
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

    def _cnf_doc_bounds(self: Engine, shard: int, docs: np.ndarray
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

    def _cnf_positions(self: Engine, plan: _Plan, clause: int, shard: int) -> np.ndarray:
        """Ascending positions of a clause's occurrences in a shard (taken-down ones too)."""
        parts = [self.positions(shard, rs[shard][0], rs[shard][1])
                 for rs in plan.ranges[clause] if rs[shard][1] > rs[shard][0]]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return kernels.sort_positions(np.concatenate(parts))

    def _cnf_sample(self: Engine, plan: _Plan, clause: int, n: int, seed: int
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

    def _cnf_docs(self: Engine, shard: int, pos: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For ascending positions: :meth:`docs_at` and the :meth:`doc_span` of each, in one
        forward walk (~10x faster than a binary search per position)."""
        sh = self._shards[shard]
        return kernels.docs_of_sorted(pos, sh.offsets, sh.token_width, sh.num_positions)

    def _cnf_clause_docs(self: Engine, plan: _Plan, clause: int, shard: int) -> np.ndarray:
        """The local documents holding a clause in a shard, ascending (taken-down included)."""
        docs = self._cnf_docs(shard, self._cnf_positions(plan, clause, shard))[0]
        return docs[np.concatenate([[True], docs[1:] != docs[:-1]])] if docs.shape[0] else docs

    def _cnf_live(self: Engine, shard: int, pos: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The (ascending) positions outside taken-down documents, and their documents'
        token ranges."""
        docs, lo, hi = self._cnf_docs(shard, pos)
        gone = self.is_removed(shard, docs)
        if gone.any():
            live = ~gone
            return pos[live], lo[live], hi[live]
        return pos, lo, hi

    def _cnf_scan(self: Engine, plan: _Plan, shard: int, lo: np.ndarray, hi: np.ndarray,
                  clauses: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`anygram.kernels.phrase_hits` of the given clauses' phrases in a shard."""
        return kernels.phrase_hits(self._shards[shard].ds, self.token_width, lo, hi,
                                   *plan.flat(clauses))

    def _cnf_check(self: Engine, plan: _Plan, shard: int, anchors: np.ndarray,
                   lo: np.ndarray, hi: np.ndarray, d: int,
                   partners: Sequence[int] | None = None) -> np.ndarray:
        """Which anchors (ascending, in live documents ``[lo, hi)``) have every partner
        clause (default: the required ones) within ``d``, found as
        :func:`_split_partners` decides: merged clauses first, then the text around the
        anchors still alive."""
        if partners is None:
            partners = plan.required[1:]
        ok = np.ones(anchors.shape[0], dtype=bool)
        if not partners or not anchors.shape[0]:
            return ok
        sh = self._shards[shard]
        merged, way, _ = _split_partners(
            anchors.shape[0], {j: plan.shard_count(j, shard) for j in partners}, d,
            sh.num_positions)
        if merged:
            lists = [self._cnf_positions(plan, j, shard) for j in merged]
            ok = kernels.verify_anchors(anchors, lo, hi, *_csr(lists), d)
        looked = [j for j in partners if j not in merged]
        if looked and ok.any():
            alive = np.flatnonzero(ok)
            a, alo, ahi = anchors[alive], lo[alive], hi[alive]
            if way == "probe":
                need = sum(1 << j for j in looked)
                ok[alive] = kernels.probe_anchors(sh.ds, self.token_width, a, alo, ahi, d,
                                                  *plan.flat(looked), need)
            else:
                hp, hb, _ = self._cnf_scan(plan, shard, np.maximum(a - d, alo),
                                           np.minimum(a + d + 1, ahi), looked)
                ok[alive] = kernels.verify_anchors(a, alo, ahi,
                                                   *_csr(_by_clause(hp, hb, looked)), d)
        return ok

    def _cnf_exact_count(self: Engine, plan: _Plan, shard: int, d: int) -> int:
        """The number of matches in one shard. An anchor with one partner, driven by the
        partner, is counted without storing the matches; otherwise they are listed."""
        n = {j: plan.shard_count(j, shard) for j in plan.required}
        one_partner = len(n) == 2 and min(n.values()) > 0
        r = _choose(n, d, self._shards[shard].num_positions, count_only=True) if one_partner \
            else 0
        if r != 0:
            centers, lo, hi = self._cnf_live(shard, self._cnf_positions(plan, r, shard))
            return int(kernels.count_phrase_starts(
                self._shards[shard].ds, self.token_width, np.maximum(centers - d, lo),
                np.minimum(centers + d + 1, hi), *plan.flat([0])))
        return int(self._cnf_exact(plan, shard, d).shape[0])

    def _cnf_exact(self: Engine, plan: _Plan, shard: int, d: int) -> np.ndarray:
        """The matching anchor positions of one shard, ascending, by the cheapest plan."""
        n = {j: plan.shard_count(j, shard) for j in plan.required}
        if min(n.values()) == 0:  # a match needs every clause in one document: this shard
            return np.zeros(0, dtype=np.int64)
        r = _choose(n, d, self._shards[shard].num_positions)
        if r == 0:
            anchors, lo, hi = self._cnf_live(shard, self._cnf_positions(plan, 0, shard))
            return anchors[self._cnf_check(plan, shard, anchors, lo, hi, d)]
        # Driven by clause r: the anchors within d of an occurrence of r (in its document)
        # are found by scanning around those occurrences; they have their r-partner already.
        centers, clo, chi = self._cnf_live(shard, self._cnf_positions(plan, r, shard))
        hp, _, hw = self._cnf_scan(plan, shard, np.maximum(centers - d, clo),
                                   np.minimum(centers + d + 1, chi), [0])
        rest = [j for j in plan.required[1:] if j != r]
        return hp[self._cnf_check(plan, shard, hp, clo[hw], chi[hw], d, rest)]

    def _cnf_run(self: Engine, plan: _Plan, d: int, cap: int | None, seed: int,
                 want_positions: bool) -> _Run:
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
        if cap is not None and min(counts) > cap:
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

    def _docs_exact(self: Engine, plan: _Plan, shard: int) -> np.ndarray:
        """Local ids of the live documents of a shard that hold every clause, ascending.
        (A clause implied by another is held wherever that one is: only the required
        clauses are looked for.)"""
        req = plan.required
        n = {j: plan.shard_count(j, shard) for j in req}
        if min(n.values()) == 0:
            return np.zeros(0, dtype=np.int64)
        sh = self._shards[shard]
        r = min(req, key=lambda j: (n[j], j))
        # Plans: the documents of every clause from the suffix array, intersected ("merge"),
        # or the documents of the rarest clause scanned whole for the others ("windows"),
        # their length estimated from the mean document length.
        size = sh.num_positions
        candidates = min(n[r], sh.num_docs)
        candidate_tokens = min(size, candidates * size // max(sh.num_docs, 1))
        density = (sum(n.values()) - n[r]) / max(size, 1)
        merge = sum(n.values()) * _ANCHOR_NS
        windows = n[r] * _ANCHOR_NS + candidates * _MISS_NS + candidate_tokens * (
            _SCAN_NS + _HIT_NS * density)
        how = "merge" if merge <= windows else "windows"
        if _FORCE is not None:
            how = "merge" if _FORCE == "merge" else "windows"
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

    def _docs_sampled(self: Engine, plan: _Plan, shard: int, r: int, pos: np.ndarray
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


def _count_result(plan: _Plan, run: _Run) -> CnfCount:
    approx = run.sampled > 0
    return CnfCount(count=round(run.estimate) if approx else int(run.estimate), approx=approx,
                    estimate=run.estimate, stderr=run.stderr, sampled=run.sampled,
                    sample_matches=run.sample_matches, anchor_count=plan.counts[0],
                    clause_counts=tuple(plan.counts))
