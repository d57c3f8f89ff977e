"""A drop-in stand-in for infini-gram 2.6.0's ``InfiniGramEngine`` (and
``InfiniGramEngineDiff``) built on :class:`anygram.Engine`.

Replace ``from infini_gram.engine import InfiniGramEngine`` with
``from anygram.compat import InfiniGramEngine``: the constructor takes the same arguments and
the query methods return the same dicts, with the same keys, value types, argument checks and
``{'error': message}`` answers for bad input (they never raise for a bad query). It opens
infini-gram v4 indexes (``tokenized.0``, ``table.0``, ...), v6 directories (unsuffixed file
names, pass them as a list) and anygram indexes.

Every method of infini-gram's ``InfiniGramEngine`` is there: ``count``, ``find``, ``prob``,
``ntd``, ``infgram_prob``, ``infgram_ntd``, ``count_cnf``, ``find_cnf``, ``search_docs``,
``search_docs_cnf``, ``get_doc_by_rank/ptr/ix`` with their batch and ``_2`` forms,
``get_total_doc_cnt``, ``creativity``, ``attribute`` (word starts for ``enforce_bow`` read
from ``bow_ids_path``, one id a line, or given as ``bow_ids``), ``compute_unigram_counts`` and
``get_new_shards_by_index_dir``. ``.engine`` is infini-gram's C++ engine object
(:class:`CppEngine`: ``engine.engine.get_num_shards()``, ``get_tok_cnt(s)``, ... with its
result objects); ``.native`` is anygram's :class:`~anygram.Engine` over the same index.
:class:`InfiniGramEngineDiff` is infini-gram's takedown engine (OLMoTrace's), with
``get_docs_by_ptrs_2_grouped``.

Documents come back as infini-gram's ``DocResult`` dicts: ``doc_ix`` (global, numbered in
infini-gram's shard order), ``doc_len``, ``disp_len``, ``needle_offset``, ``metadata`` (the
raw JSON line with its trailing ``"\n"``, or ``""`` without metadata), ``token_ids`` and
``blocked``. Shards are numbered as infini-gram numbers them (``find``'s
``segment_by_shard``): directory by directory, and inside a directory by file name as a
*string*, so shard ``10`` comes before shard ``2``. CNF queries anchor on each shard's rarest
clause, as infini-gram's (:mod:`._cnf`).

The answers are infini-gram's but for the deliberate differences listed, each with its
reason, in ``docs/compat.md``: mainly exact ``ntd`` where infini-gram samples, CNF matches
infini-gram loses at document edges or mis-counts above its cap, distinct reproducible
search hits, and error dicts where infini-gram crashes. ``tests/test_compat_conformance.py``
holds them to that.
"""

from __future__ import annotations

from ._cpp_engine import CppEngine, CppEngineDiff
from ._diff import InfiniGramEngineDiff
from ._engine import InfiniGramEngine

__all__ = ["CppEngine", "CppEngineDiff", "InfiniGramEngine", "InfiniGramEngineDiff"]
