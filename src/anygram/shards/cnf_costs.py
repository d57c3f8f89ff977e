"""The cost model of a CNF query on one shard: which exact plan to run (:func:`choose`), how
to check an anchor's partners (:func:`split_partners`, :func:`check_plan`), and whether a
sample is cheaper than the exact answer (:func:`sample_cheaper`, :func:`docs_sample_cheaper`).
The plans themselves run in :mod:`anygram.shards.cnf`; the semantics are in ``docs/cnf.md``.

``force`` (tests only) forces one plan: anchors read from the suffix array with partners found
by ``"windows"``, ``"probe"``, ``"merge"`` or half merged, half probed (``"split"``);
``"driver"`` (driven by the rarest other clause); anchors and partners marked and swept
(``"marks"``), half of the partners looked up after the sweep (``"marks_split"``).
"""

from __future__ import annotations

from collections.abc import Sequence

#: The cost model of :func:`choose`, :func:`split_partners` and :func:`sample_cheaper`, in
#: nanoseconds of CPU (measured with ``time.process_time`` on a 20M-token u16 index,
#: ``bench/bench_cnf.py``'s): reading an occurrence from the suffix array and radix-sorting
#: it; an anchor also needs its document and its bounds
#: (:func:`anygram.kernels.docs_of_sorted`); scanning one text position; storing one hit found
#: by scanning (and splitting and verifying it); the first touch of a random place in the text
#: (a cache miss); one step of :func:`anygram.kernels.probe_anchors`' outward walk (two
#: positions: 3.5-4.8 ns measured; the walk's length is modelled without clustering, which
#: can double it, e.g. for spaces in code); marking an occurrence read from the suffix array
#: in a bitmap of the shard's positions (:func:`anygram.kernels.cnf.mark_ranks`, and its
#: share of the sweep); one word (64 positions) of one row of those marks, zeroed and swept
#: (:func:`anygram.kernels.cnf.sweep_marks`); drawing one anchor of a sample (the draw, a
#: random read of the suffix array, the sort and the document lookup; 27-31 ns measured when
#: the clause occurs up to ~3x the sample, 69 ns for 50,000 of 944,000 occurrences, more
#: when the clause's suffix-array range is far out of the cache; the check of the sampled
#: anchors usually costs more).
_READ_NS = 11.0
_ANCHOR_NS = 20.0
_SCAN_NS = 1.0
_HIT_NS = 25.0
_MISS_NS = 80.0
_PROBE_NS = 4.0
_MARK_NS = 2.5
_WORD_NS = 1.5
_SAMPLE_NS = 60.0


def _scan_cost(centers: float, radius: int, density: float, positions: int) -> float:
    """Cost of scanning ``2 * radius + 1`` positions around each of ``centers`` random places
    (together at most the whole shard) and storing the ``density`` hits per position."""
    scanned = min(centers * (2 * radius + 1), positions)
    return centers * _MISS_NS + scanned * (_SCAN_NS + _HIT_NS * density)


def _reach(d: int, count: int, positions: int) -> float:
    """Expected steps of an outward walk from an anchor until a clause of ``count``
    occurrences is seen: ~1/density each side, and the whole window when it is rare."""
    return min(2 * d + 1, 2 * positions / max(count, 1))


def split_partners(k: float, n: dict[int, int], d: int, positions: int, marks: bool = False,
                   force: str | None = None) -> tuple[list[int], str, float]:
    """How to find the partners of ``k`` anchors (partner clause -> count ``n``).

    Each clause is either read from the suffix array (``merge``: ``count`` reads, whatever
    ``k``; with ``marks``, marked in a bitmap of the shard's positions instead of sorted) or
    looked up in the text around each anchor, the looked-up clauses together by the cheaper
    of an outward walk that stops when all are seen (``probe``) or a scan of the whole window
    that stores the hits (``windows``). Returns the clauses to merge, the way for the others,
    and the total cost. Merged clauses are checked first and narrow the anchors the text is
    read around (not modelled: a bonus).

    Looking up costs one cache miss per anchor for all the looked-up clauses together, plus
    the walk to the farthest one: so the candidates are the densest clauses first (the
    shortest walks), and the cheapest number of them is looked up (none included).
    """
    read = _MARK_NS if marks else _READ_NS
    per_clause = _words(positions) * _WORD_NS if marks else 0.0

    def lookup(looked: list[int]) -> tuple[str, float]:
        probe = k * (_MISS_NS + _PROBE_NS * max(_reach(d, n[j], positions) for j in looked))
        windows = _scan_cost(k, d, sum(n[j] for j in looked) / max(positions, 1), positions)
        return ("probe", probe) if probe <= windows else ("windows", windows)

    densest = sorted(n, key=lambda j: (-n[j], j))
    options = [densest[:t] for t in range(len(densest) + 1)]
    if force in ("windows", "probe"):
        options = [list(n)]
    elif force in ("merge", "marks"):
        options = [[]]
    elif force in ("split", "marks_split"):  # tests: exercise both at once
        options = [list(n)[::2]]
    best: tuple[float, list[int], str] | None = None
    for looked in options:
        way, cost = lookup(looked) if looked else ("probe", 0.0)
        cost += sum(n[j] * read + per_clause for j in n if j not in looked)
        if best is None or cost < best[0]:
            best = (cost, looked, way)
    assert best is not None
    cost, looked, way = best
    if force in ("windows", "probe"):
        way = force
    return [j for j in n if j not in looked], way, cost


def check_plan(k: int, n: dict[int, int], d: int, positions: int, force: str | None = None
               ) -> tuple[list[int], str, bool]:
    """How to check the partners of ``k`` given anchors (ascending): the split of
    :func:`split_partners`, with the merged clauses read and sorted (``False``) or marked
    (``True``, :func:`anygram.kernels.cnf.verify_marks`), whichever costs less."""
    return check_plan_cost(k, n, d, positions, force)[:3]


def check_plan_cost(k: float, n: dict[int, int], d: int, positions: int,
                    force: str | None = None) -> tuple[list[int], str, bool, float]:
    """:func:`check_plan` and its cost."""
    merged, way, cost = split_partners(k, n, d, positions, force=force)
    m_merged, m_way, m_cost = split_partners(k, n, d, positions, marks=True, force=force)
    if force in ("marks", "marks_split") or (force is None and m_merged and m_cost < cost):
        return m_merged, m_way, True, m_cost
    return merged, way, False, cost


def _words(positions: int) -> int:
    """Words of one row of marks over a shard of ``positions`` positions."""
    return (positions + 63) // 64


def choose(n: dict[int, int], d: int, positions: int, count_only: bool = False,
           force: str | None = None) -> tuple[str, int]:
    """The exact plan of one shard (see the module doc), as ``(kind, clause)``:

    - ``("anchors", 0)``: read the anchors from the suffix array, sort them, and check their
      partners (:func:`split_partners`);
    - ``("marks", 0)``: mark the anchors, and the partners worth reading, in bitmaps of the
      shard's positions and sweep them once (:func:`anygram.kernels.cnf.sweep_marks`), then
      look the other partners up around the matches so far: no sort, no per-anchor arrays,
      so the cheapest when the clauses are dense in the shard;
    - ``("driver", r)``: read the occurrences of a partner ``r``, scan ``[r - d, r + d]``
      around each for anchor candidates (stored: every one within ``d`` of ``r``), then check
      their other partners. With one partner and ``count_only``, the candidates are the
      matches and are only counted.

    ``n`` maps the anchor clause (0) and the required partners to their occurrences in the
    shard, ``positions`` is its size. Ties go to the earlier plan.
    """
    partners = [j for j in n if j != 0]
    if partners and force == "driver":
        return "driver", min(partners, key=lambda j: n[j])
    if force in ("marks", "marks_split"):
        return "marks", 0
    if force is not None:
        return "anchors", 0
    costs = plan_costs(n, d, positions, count_only, force)
    return min(costs, key=lambda p: costs[p])  # min keeps the first of equal costs


def plan_costs(n: dict[int, int], d: int, positions: int, count_only: bool = False,
               force: str | None = None) -> dict[tuple[str, int], float]:
    """The modelled cost of each exact plan of one shard (:func:`choose`), in order."""
    partners = [j for j in n if j != 0]
    rest_of = {j: n[j] for j in partners}
    costs = {("anchors", 0): n[0] * _ANCHOR_NS + (
        split_partners(n[0], rest_of, d, positions, force=force)[2] if partners else 0.0)}
    costs[("marks", 0)] = n[0] * _MARK_NS + _words(positions) * _WORD_NS + (
        split_partners(n[0], rest_of, d, positions, marks=True, force=force)[2]
        if partners else 0.0)
    for r in partners:
        found = min(n[0], n[r] * (2 * d + 1) * n[0] / max(positions, 1))  # candidates
        rest = {j: n[j] for j in partners if j != r}
        stored = 0.0 if count_only and not rest else n[0] / max(positions, 1)
        costs[("driver", r)] = n[r] * _ANCHOR_NS + _scan_cost(n[r], d, stored, positions) + (
            split_partners(int(found), rest, d, positions, force=force)[2] if rest else 0.0)
    return costs


def exact_cost(n: dict[int, int], d: int, positions: int, count_only: bool = False,
               force: str | None = None) -> float:
    """The modelled cost of one shard's exact answer: its cheapest plan (0 when a clause
    is absent from the shard: no match there)."""
    if min(n.values()) == 0:
        return 0.0
    return min(plan_costs(n, d, positions, count_only, force).values())


def sample_cost(k: float, n: dict[int, int], d: int, positions: int,
                force: str | None = None) -> float:
    """The modelled cost of ``k`` sampled anchors of one shard: drawn and read from the
    suffix array at random, then their partners (clause -> count ``n``) checked
    (:func:`check_plan`)."""
    if k <= 0:
        return 0.0
    check = check_plan_cost(k, n, d, positions, force)[3] if n else 0.0
    return k * _SAMPLE_NS + check


def sample_cheaper(shards: Sequence[tuple[dict[int, int], int]], d: int, cap: int,
                   count_only: bool, force: str | None = None) -> bool:
    """Whether ``cap`` anchors drawn from all shards cost less than the exact answer, both
    summed over the shards (given as the required clauses' counts, the anchor clause 0
    first, and the shard's positions). A sampled shard gets its expected share of the
    draw. Exact on a tie: the cap bounds the latency, it does not ask for a sample."""
    total = sum(n[0] for n, _ in shards)
    exact = sum(exact_cost(n, d, size, count_only, force) for n, size in shards)
    sample = sum(sample_cost(cap * n[0] / max(total, 1),
                             {j: c for j, c in n.items() if j != 0}, d, size, force)
                 for n, size in shards)
    return sample < exact


def docs_costs(n: dict[int, int], size: int, num_docs: int) -> dict[str, float]:
    """The modelled cost of each exact plan of :meth:`count_docs_with_all` on one shard
    (required clause -> count ``n``, ``size`` positions, ``num_docs`` documents): every
    clause's documents from the suffix array, intersected (``merge``); the documents of the
    rarest clause scanned whole for the others (``windows``, their length estimated from the
    mean document length); or every clause marked in a bitmap of the shard's positions and
    each document tested for a mark of each (``marks``,
    :func:`anygram.kernels.cnf.docs_with_marks`). Ties go to the earlier plan."""
    r = min(n, key=lambda j: (n[j], j))
    candidates = min(n[r], num_docs)
    candidate_tokens = min(size, candidates * size // max(num_docs, 1))
    density = (sum(n.values()) - n[r]) / max(size, 1)
    return {"merge": sum(n.values()) * _ANCHOR_NS,
            "windows": n[r] * _ANCHOR_NS + candidates * _MISS_NS + candidate_tokens * (
                _SCAN_NS + _HIT_NS * density),
            "marks": sum(n.values()) * _MARK_NS + len(n) * (
                _words(size) * _WORD_NS + num_docs * _SCAN_NS)}


def docs_sample_cheaper(shards: Sequence[tuple[dict[int, int], int, int]], r: int,
                        cap: int) -> bool:
    """Whether sampling ``cap`` occurrences of the rarest clause ``r`` for
    :meth:`count_docs_with_all` costs less than the exact answer, summed over the shards
    (given as the required clauses' counts, positions and documents). A sampled shard gets
    its expected share of the draw; the documents it meets (at most one per sampled
    occurrence) are scanned whole for every clause. Exact on a tie."""
    total = sum(n[r] for n, _, _ in shards)
    exact = sample = 0.0
    for n, size, num_docs in shards:
        if min(n.values()):
            exact += min(docs_costs(n, size, num_docs).values())
        k = cap * n[r] / max(total, 1)
        docs = min(k, n[r], num_docs)
        tokens = min(size, docs * size / max(num_docs, 1))
        sample += k * _SAMPLE_NS + docs * _MISS_NS + tokens * (
            _SCAN_NS + _HIT_NS * sum(n.values()) / max(size, 1))
    return sample < exact
