"""Boolean queries: AND of ORs of phrases, with a proximity window.

The semantics are specified in ``docs/cnf.md``; in short, a *match* is an occurrence of the
first clause (the anchor) such that every other clause occurs in the same document within
``max_diff_tokens`` (``d``) tokens of it, start to start, and the count is the number of
matches. Everything is exact unless the rarest clause occurs more than ``max_clause_freq``
times *and* the cost model predicts that checking ``max_clause_freq`` sampled anchors costs
less than the exact answer (:func:`~anygram.shards.cnf_costs.sample_cheaper`); then a uniform
sample of anchor occurrences (without replacement) is checked and the count is scaled up:
unbiased, flagged ``approx``. The choice depends only on the query, the index and the
arguments.

How an exact answer is computed, per shard (a document never spans shards), by the cheapest
plan for the clause counts at hand under a small cost model in nanoseconds
(:func:`anygram.shards.cnf_costs.choose`):

- **anchor-driven**: read the anchor clause's occurrences from the suffix array (radix
  sort), then check their partners clause by clause
  (:func:`~anygram.shards.cnf_costs.split_partners`), each either

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

The package: :mod:`~anygram.query.cnf.queries` (the queries, their options and the validation
of a query) and :mod:`~anygram.query.cnf.plans` (a query planned over the whole index, and the
decisions that span shards: whether to sample, and the sample). Each shard runs its part in
the shard layer: :mod:`anygram.shards.cnf`, with the cost model of
:mod:`anygram.shards.cnf_costs`.
"""

from __future__ import annotations

from .queries import (
    DEFAULT_MAX_CLAUSE_FREQ,
    DEFAULT_MAX_DIFF_TOKENS,
    MAX_CLAUSES,
    MAX_TERMS,
    CnfQuery,
    CnfSearch,
    Order,
    Phrase,
)

__all__ = [
    "DEFAULT_MAX_CLAUSE_FREQ",
    "DEFAULT_MAX_DIFF_TOKENS",
    "MAX_CLAUSES",
    "MAX_TERMS",
    "CnfQuery",
    "CnfSearch",
    "Order",
    "Phrase",
]
