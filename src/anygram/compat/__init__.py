"""A drop-in stand-in for ``infini_gram.engine.InfiniGramEngine`` built on :class:`anygram.Engine`.

Replace ``from infini_gram.engine import InfiniGramEngine`` with
``from anygram.compat import InfiniGramEngine``: the constructor takes the same arguments and
the query methods return the same dicts, with the same keys, value types, argument checks and
``{'error': message}`` answers for bad input (they never raise for a bad query). It opens
infini-gram v4 indexes (``tokenized.0``, ``table.0``, ...), v6 directories (unsuffixed file
names, pass them as a list) and anygram indexes.

Supported: ``count``, ``find``, ``prob``, ``ntd``, ``infgram_prob``, ``infgram_ntd``,
``count_cnf``, ``find_cnf``, ``search_docs``, ``search_docs_cnf``, ``get_doc_by_rank``,
``get_doc_by_ptr``, ``get_doc_by_ix`` (and their batch forms ``get_docs_by_ranks``,
``get_docs_by_ptrs``, ``get_docs_by_ixs``), the ``_2`` variants (``get_doc_by_rank_2``,
``get_doc_by_ptr_2``, ``get_doc_by_ix_2``, ``get_docs_by_ranks_2``, ``get_docs_by_ptrs_2``,
``get_docs_by_ixs_2``), ``get_total_doc_cnt``, ``creativity`` and ``attribute`` (word starts
for ``enforce_bow`` are read from ``bow_ids_path``, one id a line, as infini-gram reads them,
or given as ``bow_ids``).
The other infini-gram methods (``compute_unigram_counts``, ``get_new_shards_by_index_dir``)
raise :class:`NotImplementedError`.

Documents come back as infini-gram's ``DocResult`` dicts: ``doc_ix`` (global, numbered in
infini-gram's shard order), ``doc_len``, ``disp_len``, ``needle_offset``, ``metadata`` (the
raw JSON line with its trailing ``"\n"``, or ``""`` without metadata), ``token_ids`` and
``blocked``. A taken-down document (:func:`anygram.tools.takedown.take_down`) comes back as
``blocked=True`` with no tokens (``token_ids=[]``, ``disp_len=0``, ``needle_offset=0``) and
``metadata=""``, like infini-gram's diff engine.

Differences from infini-gram 2.6.0, all deliberate:

- ``ntd`` and ``infgram_ntd`` are **exact** by default: infini-gram samples the occurrences
  when ``prompt_cnt > max_support`` (and reports ``approx=True``); this shim counts every
  occurrence and reports ``approx=False``. ``max_support`` is still validated. Pass
  ``exact_ntd=False`` to the constructor to sample above ``max_support`` (with anygram's
  stratified sampler, whose counts differ from infini-gram's power-of-two units).
- infini-gram's ntd can return ``{eos: prompt_cnt}`` for a prompt that also occurs at the very
  end of a shard (or whose smallest next token is a literal ``eos_token_id``); this shim always
  returns the true distribution.
- The document separator id (``2**(8*width) - 1``: 255, 65535 or 2**32-1) cannot be queried: it
  gives an error dict, where infini-gram matches the separators themselves.
- Only ``version=4`` is accepted (v5 reversed indexes are not supported yet: ``ValueError``).
  ``load_to_ram``, ``token_dtype``, ``bow_ids_path`` and the index directories are honoured;
  the prefetch depths, ``attribution_block_size``, ``precompute_unigram_logprobs`` and
  ``prev_shards_by_index_dir`` are validated where infini-gram validates them, then ignored.
- ``attribute`` always scores ``unigram_logprob_sum`` with the real unigram counts (as
  infini-gram does with ``precompute_unigram_logprobs=True``; without it infini-gram scores
  every token -10000); a span's ``docs`` come sorted by ``(s, ptr)`` (infini-gram's in
  suffix-array order) and its counts honour takedowns. ``creativity`` does not share
  infini-gram's blind spot (``docs/analyses.md``): where infini-gram under-reports, ``rs``
  is larger. Elsewhere both answer as infini-gram's (with ``precompute_unigram_logprobs``).
- ``search_docs`` and ``search_docs_cnf`` return **distinct** hits in a reproducible seeded
  random order (anygram's permutation, ``seed=0`` unless given), at most ``min(maxnum, cnt)``
  of them; infini-gram samples ``maxnum`` hits *with replacement* from an unseeded RNG.
  ``idxs`` are the hits' indices in that seeded order (``[0, 1, ...]``), not infini-gram's
  occurrence indices. The empty query is refused (error dict); infini-gram samples any
  position.
- CNF queries follow anygram's semantics (``docs/cnf.md``): the anchor is the first clause as
  written (infini-gram's is the rarest), matches near a document end are not lost, and above
  ``max_clause_freq`` the count is an unbiased estimate. Where infini-gram is exact and anchors
  on the same clause, ``count_cnf``/``find_cnf`` agree with it. ``find_cnf``'s
  ``ptrs_by_shard`` are byte offsets (token position x token width), as infini-gram's.
- Byte pointers (``get_doc_by_ptr*``) must be multiples of the token width: any other is
  refused with an error dict (infini-gram checks ``ptr % 2 == 0`` only, so it refuses odd
  pointers of a u8 index and crashes on a misaligned u32 one). A position (or rank) that
  points at a document separator is refused too (infini-gram returns the next document with
  ``needle_offset = 2**64 - 1``).
- ``get_docs_by_ranks`` works (it raises ``AttributeError`` in infini-gram 2.6.0).
- Constructor argument errors raise ``ValueError`` where infini-gram uses ``assert`` (or a
  pybind ``TypeError`` for a ``vocab_size`` too large for ``token_dtype``).

Shards are numbered as infini-gram numbers them (``find``'s ``segment_by_shard``): directory
by directory, and inside a directory by file name as a *string*, so shard ``10`` comes before
shard ``2``.
"""

from __future__ import annotations

from ._cpp_engine import CppEngine, CppEngineDiff
from ._diff import InfiniGramEngineDiff
from ._engine import InfiniGramEngine

__all__ = ["CppEngine", "CppEngineDiff", "InfiniGramEngine", "InfiniGramEngineDiff"]
