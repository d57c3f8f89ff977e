"""Boolean queries: AND of ORs of phrases, with a proximity window (mixed into the Engine).

The semantics are specified in ``docs/cnf.md``; in short, a *match* is an occurrence of the
first clause (the anchor) such that every other clause occurs in the same document within
``max_diff_tokens`` (``d``) tokens of it, start to start, and the count is the number of
matches. Everything is exact unless the rarest clause occurs more than ``max_clause_freq``
times *and* the cost model predicts that checking ``max_clause_freq`` sampled anchors costs
less than the exact answer (:func:`~anygram.query.cnf.plans._sample_cheaper`); then a uniform
sample of anchor occurrences (without replacement) is checked and the count is scaled up:
unbiased, flagged ``approx``. The choice depends only on the query, the index and the
arguments.

How an exact answer is computed, per shard (a document never spans shards), by the cheapest
plan for the clause counts at hand under a small cost model in nanoseconds (:func:`_choose`):

- **anchor-driven**: read the anchor clause's occurrences from the suffix array (radix
  sort), then check their partners clause by clause (:func:`_split_partners`), each either

  - read from the suffix array too (``merge``; checked first, narrowing the anchors), or
  - looked up in the token text around each remaining anchor, by walking outward until
    every looked-up clause is seen (``probe``, :func:`anygram.kernels.probe_anchors`: a few
    steps when the partners are frequent) or by scanning ``[a - d, a + d]`` and storing the
    hits (``windows``, :func:`anygram.kernels.phrase_hits`, ~1 ns a position).

- **marks**: mark the anchors, and the partners worth reading, in bitmaps of the shard's
  positions straight from their suffix-array ranges (no sort), and sweep the bitmaps once,
  64 positions a word (:func:`anygram.kernels.cnf.sweep_marks`); the other partners are
  looked up around the anchors that pass. O(occurrences marked + shard positions / 64): the
  cheapest when the clauses are dense in the shard.

- **driven by a rarer clause r**: read r's occurrences and scan ``[r - d, r + d]`` around each
  for the anchor phrases: every anchor found has its r-partner; then check its other
  partners as above.

Looking a clause up in the text costs O(anchors x d) whatever its count, so ``"natural" AND
"the"`` costs what ``"natural"`` costs and no frequent clause is materialized; reading from
the suffix array costs O(count) and wins when no clause is much rarer than the others.
:func:`anygram.kernels.verify_anchors` checks anchors against sorted occurrence lists with
one forward pointer per clause.

The package: :mod:`~anygram.query.cnf.queries` (the public methods, their options and the validation
of a query), :mod:`~anygram.query.cnf.plans` (the plan data and the cost model) and
:mod:`~anygram.query.cnf.execution` (running a plan on the shards).
"""

from __future__ import annotations

from .queries import (
    DEFAULT_MAX_CLAUSE_FREQ,
    DEFAULT_MAX_DIFF_TOKENS,
    MAX_CLAUSES,
    MAX_TERMS,
    CnfQueries,
    CnfQuery,
    Order,
    Phrase,
)

#: Tests set this to force one plan: anchors read from the suffix array with partners found
#: by "windows", "probe", "merge" or half merged, half probed ("split") (see
#: :func:`~anygram.query.cnf.plans._split_partners`); "driver" (driven by the rarest other
#: clause); anchors and partners marked and swept ("marks"), half of the partners looked up
#: after the sweep ("marks_split"). None: the cheapest.
_FORCE: str | None = None
#: Tests set this to force the sample (True) or the exact answer (False) whenever the rarest
#: clause exceeds ``max_clause_freq``. None: whichever the cost model predicts is cheaper
#: (:func:`~anygram.query.cnf.plans._sample_cheaper`).
_FORCE_SAMPLE: bool | None = None

__all__ = [
    "DEFAULT_MAX_CLAUSE_FREQ",
    "DEFAULT_MAX_DIFF_TOKENS",
    "MAX_CLAUSES",
    "MAX_TERMS",
    "CnfQueries",
    "CnfQuery",
    "Order",
    "Phrase",
]
