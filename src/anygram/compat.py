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
for ``enforce_bow`` are read from ``bow_ids_path``, one id a line, as infini-gram reads them).
The other infini-gram methods (``compute_unigram_counts``, ``get_new_shards_by_index_dir``)
raise :class:`NotImplementedError`.

Documents come back as infini-gram's ``DocResult`` dicts: ``doc_ix`` (global, numbered in
infini-gram's shard order), ``doc_len``, ``disp_len``, ``needle_offset``, ``metadata`` (the
raw JSON line with its trailing ``"\n"``, or ``""`` without metadata), ``token_ids`` and
``blocked``. A taken-down document (:func:`anygram.takedown.take_down`) comes back as
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

import bisect
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .engine import Engine
from .errors import AnygramError
from .results import DocWindow, NextTokenDist

_WIDTH_OF_DTYPE = {"u8": 1, "u16": 2, "u32": 4}
_UNSUPPORTED = ("compute_unigram_counts", "get_new_shards_by_index_dir")


def _positive_int(x: Any) -> bool:
    return type(x) is int and x > 0


class InfiniGramEngine:
    """infini-gram's ``InfiniGramEngine`` API over an :class:`anygram.Engine` (see module doc).

    Args are infini-gram's; only ``exact_ntd`` (keyword-only) is new: when True (the default)
    ``ntd``/``infgram_ntd`` count every occurrence; when False they sample ``max_support``
    occurrences above that count, like infini-gram (but with anygram's sampler).

    Raises:
        ValueError: a bad constructor argument, or ``version != 4``.
        anygram.IndexNotFoundError, anygram.IndexFormatError: the index cannot be opened.
    """

    def __init__(self, index_dir: str | list[str], eos_token_id: int, vocab_size: int = 65535,
                 version: int = 4, token_dtype: str = "u16", load_to_ram: bool = False,
                 ds_prefetch_depth: int = 0, sa_prefetch_depth: int = 0,
                 od_prefetch_depth: int = 0, bow_ids_path: str | None = None,
                 attribution_block_size: int = 512, precompute_unigram_logprobs: bool = False,
                 prev_shards_by_index_dir: dict[str, Any] | None = None,
                 max_support: int = 1000, max_clause_freq: int = 50000,
                 max_diff_tokens: int = 100, maxnum: int = 1, max_disp_len: int = 1000,
                 *, exact_ntd: bool = True) -> None:
        if type(index_dir) is str:
            index_dir = [index_dir]
        if not (type(index_dir) is list and all(type(d) is str for d in index_dir)):
            raise ValueError("index_dir must be a str or a list of str")
        if token_dtype not in _WIDTH_OF_DTYPE:
            raise ValueError(f"Unsupported token dtype: {token_dtype}")
        if version != 4:
            raise ValueError(f"version={version!r} is not supported: only v4 indexes (and v6 "
                             "directories, which are opened with version=4) can be read; "
                             "v5 reversed indexes are not supported yet")
        self.token_id_max = (1 << (8 * _WIDTH_OF_DTYPE[token_dtype])) - 1
        if not (type(vocab_size) is int and 0 < vocab_size <= self.token_id_max):
            raise ValueError(f"vocab_size must be an int in [1, {self.token_id_max}] for "
                             f"token_dtype={token_dtype!r}, not {vocab_size!r}")
        if not (type(eos_token_id) is int and 0 <= eos_token_id < vocab_size):
            raise ValueError(f"eos_token_id must be an int in [0, vocab_size={vocab_size}), "
                             f"not {eos_token_id!r}")
        if type(load_to_ram) is not bool:
            raise ValueError("load_to_ram must be a bool")
        if not (type(ds_prefetch_depth) is int and ds_prefetch_depth >= 0
                and type(sa_prefetch_depth) is int and sa_prefetch_depth >= ds_prefetch_depth
                and type(od_prefetch_depth) is int and od_prefetch_depth >= 0):
            raise ValueError("prefetch depths must be ints >= 0, with "
                             "sa_prefetch_depth >= ds_prefetch_depth")
        for name, value in (("max_support", max_support), ("max_clause_freq", max_clause_freq),
                            ("max_diff_tokens", max_diff_tokens), ("maxnum", maxnum),
                            ("max_disp_len", max_disp_len)):
            if not _positive_int(value):
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        self.eos_token_id = eos_token_id
        self.vocab_size = vocab_size
        self.max_support = max_support
        self.max_clause_freq = max_clause_freq
        self.max_diff_tokens = max_diff_tokens
        self.maxnum = maxnum
        self.max_disp_len = max_disp_len
        self.exact_ntd = exact_ntd
        # Word starts for attribute(enforce_bow=True), read as infini-gram reads them (an
        # unreadable file or line raises); ids the index cannot hold can never match.
        bow_ids: set[int] = set()
        if bow_ids_path is not None:
            with open(bow_ids_path) as f:
                for line in f:
                    bow_ids.add(int(line.strip()))
        self._bow_ids = np.array(sorted(b for b in bow_ids if 0 <= b < self.token_id_max),
                                 dtype=np.int64)
        # infini-gram accepts any id up to token_id_max in queries (vocab_size only bounds
        # eos_token_id), so every id but the separator is valid here.
        self.engine = Engine.open(index_dir, token_dtype=token_dtype,
                                  load="ram" if load_to_ram else "mmap",
                                  vocab_size=self.token_id_max, eos_id=eos_token_id)
        # infini-gram's shard order: per directory, file names sorted as strings.
        dir_pos = {Path(d): i for i, d in enumerate(index_dir)}
        shards = self.engine.shards
        self._shard_order = sorted(range(len(shards)),
                                   key=lambda i: (dir_pos.get(shards[i].directory, 0),
                                                  shards[i].name))
        # infini-gram numbers documents through its shard order: its first doc_ix per shard.
        self._ig_shard_of = {ours: ig for ig, ours in enumerate(self._shard_order)}
        self._ig_doc_base = [0]
        for ours in self._shard_order:
            self._ig_doc_base.append(self._ig_doc_base[-1] + shards[ours].num_docs)

    # ------------------------------------------------------------------ checks (infini-gram's)

    def _ids_ok(self, ids: Any) -> bool:
        return type(ids) is list and all(
            type(q) is int and 0 <= q <= self.token_id_max for q in ids)

    def _id_ok(self, token: Any) -> bool:
        return type(token) is int and 0 <= token <= self.token_id_max

    def _ids_error(self, name: str, non_empty_wording: bool = False) -> dict[str, str]:
        what = "a non-empty list" if non_empty_wording else "a list"
        return {"error": f"{name} must be {what} of integers in range [0, {self.token_id_max}]"}

    def _support(self, max_support: int | None) -> int | None | dict[str, str]:
        if max_support is None:
            max_support = self.max_support
        if not _positive_int(max_support):
            return {"error": "max_support must be a positive integer"}
        return max_support

    # ------------------------------------------------------------------ reshaping

    def _dist(self, d: NextTokenDist) -> dict[str, Any]:
        counts = dict(d.counts)
        if d.end_count:
            counts[self.eos_token_id] = counts.get(self.eos_token_id, 0) + d.end_count
        total = d.prompt_count
        return {"prompt_cnt": total,
                "result_by_token_id": {t: {"cont_cnt": c, "prob": c / total}
                                       for t, c in sorted(counts.items())},
                "approx": d.approx}

    # ------------------------------------------------------------------ queries

    def count(self, input_ids: Iterable[int]) -> dict[str, Any]:
        """``{'count': int, 'approx': False}``; the empty query counts every position."""
        if not self._ids_ok(input_ids):
            return self._ids_error("input_ids")
        try:
            r = self.engine.count(input_ids)  # type: ignore[arg-type]
        except AnygramError as e:
            return {"error": str(e)}
        return {"count": r.count, "approx": r.approx}

    def find(self, input_ids: Iterable[int]) -> dict[str, Any]:
        """``{'cnt': int, 'segment_by_shard': [(start, end), ...]}`` (suffix-array rank ranges)."""
        if not self._ids_ok(input_ids):
            return self._ids_error("input_ids")
        try:
            r = self.engine.find(input_ids)  # type: ignore[arg-type]
        except AnygramError as e:
            return {"error": str(e)}
        return {"cnt": r.count,
                "segment_by_shard": [tuple(r.ranges[i]) for i in self._shard_order]}

    def prob(self, prompt_ids: Iterable[int], cont_id: int) -> dict[str, Any]:
        """``{'prompt_cnt', 'cont_cnt', 'prob'}``; ``prob`` is -1.0 when the prompt is unseen."""
        if not self._ids_ok(prompt_ids):
            return self._ids_error("prompt_ids", non_empty_wording=True)
        if not self._id_ok(cont_id):
            return {"error": f"cont_id must be an integer in range [0, {self.token_id_max}]"}
        try:
            r = self.engine.prob(prompt_ids, cont_id)  # type: ignore[arg-type]
        except AnygramError as e:
            return {"error": str(e)}
        return {"prompt_cnt": r.prompt_count, "cont_cnt": r.cont_count,
                "prob": -1.0 if r.prob is None else r.prob}

    def ntd(self, prompt_ids: Iterable[int], max_support: int | None = None) -> dict[str, Any]:
        """Next-token distribution: ``{'prompt_cnt', 'result_by_token_id', 'approx'}``.

        ``result_by_token_id`` maps each next token id to ``{'cont_cnt', 'prob'}``, in id
        order. Document ends (a separator or the end of a shard) are counted under
        ``eos_token_id``, together with literal occurrences of that id, as infini-gram does.

        Unlike infini-gram, the counts are exact by default (``approx`` is False) even when
        ``prompt_cnt > max_support``: infini-gram samples there. ``max_support`` is only
        validated, unless the engine was made with ``exact_ntd=False``.
        """
        support = self._support(max_support)
        if isinstance(support, dict):
            return support
        if not self._ids_ok(prompt_ids):
            return self._ids_error("prompt_ids")
        try:
            d = self.engine.ntd(prompt_ids,  # type: ignore[arg-type]
                                max_support=None if self.exact_ntd else support)
        except AnygramError as e:
            return {"error": str(e)}
        return self._dist(d)

    def infgram_prob(self, prompt_ids: Iterable[int], cont_id: int) -> dict[str, Any]:
        """∞-gram probability: ``{'prompt_cnt', 'cont_cnt', 'prob', 'suffix_len'}``.

        ``suffix_len`` is the length of the longest suffix of the prompt that occurs (0: the
        unigram over all positions, separators included).
        """
        if not self._ids_ok(prompt_ids):
            return self._ids_error("prompt_ids", non_empty_wording=True)
        if not self._id_ok(cont_id):
            return {"error": f"cont_id must be an integer in range [0, {self.token_id_max}]"}
        try:
            r = self.engine.infgram_prob(prompt_ids, cont_id)  # type: ignore[arg-type]
        except AnygramError as e:
            return {"error": str(e)}
        return {"prompt_cnt": r.prompt_count, "cont_cnt": r.cont_count,
                "prob": -1.0 if r.prob is None else r.prob, "suffix_len": r.suffix_len}

    def infgram_ntd(self, prompt_ids: Iterable[int],
                    max_support: int | None = None) -> dict[str, Any]:
        """∞-gram next-token distribution: the :meth:`ntd` fields plus ``'suffix_len'``.

        Exact by default, like :meth:`ntd`.
        """
        support = self._support(max_support)
        if isinstance(support, dict):
            return support
        if not self._ids_ok(prompt_ids):
            return self._ids_error("prompt_ids")
        try:
            r = self.engine.infgram_ntd(prompt_ids,  # type: ignore[arg-type]
                                        max_support=None if self.exact_ntd else support)
        except AnygramError as e:
            return {"error": str(e)}
        return {**self._dist(r.dist), "suffix_len": r.suffix_len}

    # ------------------------------------------------------------------ CNF

    def _cnf_ok(self, cnf: Any) -> bool:
        return type(cnf) is list and len(cnf) > 0 and all(
            type(clause) is list and len(clause) > 0 and all(
                type(p) is list and len(p) > 0 and self._ids_ok(p) for p in clause)
            for clause in cnf)

    def _cnf_args(self, cnf: Any, max_clause_freq: Any, max_diff_tokens: Any
                  ) -> tuple[int, int] | dict[str, str]:
        """The CNF caps with their defaults, checked as infini-gram checks them (or an error)."""
        if max_clause_freq is None:
            max_clause_freq = self.max_clause_freq
        if max_diff_tokens is None:
            max_diff_tokens = self.max_diff_tokens
        if not _positive_int(max_clause_freq):
            return {"error": "max_clause_freq must be a positive integer"}
        if not _positive_int(max_diff_tokens):
            return {"error": "max_diff_tokens must be a positive integer"}
        if not self._cnf_ok(cnf):
            return {"error": "cnf must be a non-empty, triply-nested list of integers in range "
                             f"[0, {self.token_id_max}]"}
        return max_clause_freq, max_diff_tokens

    def count_cnf(self, cnf: list[list[list[int]]], max_clause_freq: int | None = None,
                  max_diff_tokens: int | None = None) -> dict[str, Any]:
        """``{'count', 'approx'}``: matches of a CNF (clauses ANDed, phrases ORed).

        anygram's semantics (``docs/cnf.md``): occurrences of the first clause with every
        other clause in the same document within ``max_diff_tokens``; exact unless the rarest
        clause occurs more than ``max_clause_freq`` times (then an unbiased estimate).
        """
        args = self._cnf_args(cnf, max_clause_freq, max_diff_tokens)
        if isinstance(args, dict):
            return args
        try:
            r = self.engine.count_cnf(cnf, max_clause_freq=args[0], max_diff_tokens=args[1])
        except AnygramError as e:
            return {"error": str(e)}
        return {"count": r.count, "approx": r.approx}

    def find_cnf(self, cnf: list[list[list[int]]], max_clause_freq: int | None = None,
                 max_diff_tokens: int | None = None) -> dict[str, Any]:
        """``{'cnt', 'approx', 'ptrs_by_shard'}``: :meth:`count_cnf` plus, per shard (in
        infini-gram's order), the ascending **byte** offsets of the matching anchor
        occurrences (when ``approx``: the matches among the sampled anchors only).
        """
        args = self._cnf_args(cnf, max_clause_freq, max_diff_tokens)
        if isinstance(args, dict):
            return args
        try:
            r = self.engine.find_cnf(cnf, max_clause_freq=args[0], max_diff_tokens=args[1])
        except AnygramError as e:
            return {"error": str(e)}
        w = self.engine.token_width
        return {"cnt": r.count, "approx": r.approx,
                "ptrs_by_shard": [(r.positions[i] * w).tolist() for i in self._shard_order]}

    # ------------------------------------------------------------------ documents: reshaping

    def _doc(self, win: DocWindow) -> dict[str, Any]:
        """An anygram :class:`DocWindow` as infini-gram's ``DocResult`` dict."""
        local = win.doc_id - self.engine.doc_id(win.shard, 0)
        doc_ix = self._ig_doc_base[self._ig_shard_of[win.shard]] + local
        if win.removed:
            return {"doc_ix": doc_ix, "doc_len": win.doc_len, "disp_len": 0,
                    "needle_offset": 0, "metadata": "", "token_ids": [], "blocked": True}
        return {"doc_ix": doc_ix, "doc_len": win.doc_len, "disp_len": len(win.token_ids),
                "needle_offset": 0 if win.match_offset is None else win.match_offset,
                "metadata": self._raw_metadata(win.shard, local),
                "token_ids": list(win.token_ids), "blocked": False}

    def _raw_metadata(self, shard: int, local: int) -> str:
        """The document's metadata line as stored (with its ``\\n``), or ``""``."""
        sh = self.engine.shards[shard]
        if sh.metadata is None or sh.metaoff is None:
            return ""
        start = int(sh.metaoff[local])
        end = int(sh.metaoff[local + 1]) if local + 1 < sh.num_docs else sh.metadata.shape[0]
        return bytes(sh.metadata[start:end]).decode("utf-8", "replace")

    def _disp_len(self, max_disp_len: Any) -> int | dict[str, str]:
        if max_disp_len is None:
            max_disp_len = self.max_disp_len
        if not _positive_int(max_disp_len):
            return {"error": "max_disp_len must be a positive integer"}
        return max_disp_len

    def _shard(self, s: Any) -> int | dict[str, str]:
        """infini-gram's shard number ``s`` as ours, or an error."""
        n = len(self._shard_order)
        if not (type(s) is int and 0 <= s < n):
            return {"error": f"s must be an integer in range [0, {n})"}
        return self._shard_order[s]

    def _rank(self, s: Any, rank: Any) -> tuple[int, int] | dict[str, str]:
        shard = self._shard(s)
        if isinstance(shard, dict):
            return shard
        tok_cnt = self.engine.shards[shard].num_positions
        if not (type(rank) is int and 0 <= rank < tok_cnt):
            # (sic: infini-gram's message says ptr)
            return {"error": f"ptr must be an integer in range [0, {tok_cnt})"}
        return shard, rank

    def _ptr(self, s: Any, ptr: Any) -> tuple[int, int] | dict[str, str]:
        """``(our shard, token position)`` of a byte pointer, or an error (misaligned too)."""
        shard = self._shard(s)
        if isinstance(shard, dict):
            return shard
        w = self.engine.token_width
        ds_size = self.engine.shards[shard].num_positions * w
        if not (type(ptr) is int and 0 <= ptr < ds_size and ptr % w == 0):
            what = "an even integer" if w == 2 else (
                "an integer" if w == 1 else f"a multiple of {w} (the token width)")
            return {"error": f"ptr must be {what} in range [0, {ds_size})"}
        return shard, ptr // w

    def _doc_ix(self, doc_ix: Any) -> int | dict[str, str]:
        """infini-gram's ``doc_ix`` as our global document id, or an error."""
        total = self._ig_doc_base[-1]
        if not (type(doc_ix) is int and 0 <= doc_ix < total):
            return {"error": f"doc_ix must be an integer in range [0, {total})"}
        ig = bisect.bisect_right(self._ig_doc_base, doc_ix) - 1
        return self.engine.doc_id(self._shard_order[ig], doc_ix - self._ig_doc_base[ig])

    @staticmethod
    def _ctx(needle_len: Any, max_ctx_len: Any) -> dict[str, str] | None:
        if not (type(needle_len) is int and needle_len >= 0):
            return {"error": "needle_len must be a non-negative integer"}
        return InfiniGramEngine._ctx_only(max_ctx_len)

    @staticmethod
    def _ctx_only(max_ctx_len: Any) -> dict[str, str] | None:
        if not (type(max_ctx_len) is int and max_ctx_len >= 0):
            return {"error": "max_ctx_len must be a non-negative integer"}
        return None

    @staticmethod
    def _pairs(requests: Any, size: int) -> list[tuple[Any, ...]] | dict[str, str]:
        if not (type(requests) is list and all(
                isinstance(r, (list, tuple)) and len(r) == size for r in requests)):
            return {"error": f"requests must be a list of {size}-tuples"}
        return [tuple(r) for r in requests]

    def _windows(self, fetch: Any, *args: Any, **kwargs: Any) -> list[dict[str, Any]] | dict:
        try:
            return [self._doc(w) for w in fetch(*args, decode=False, **kwargs)]
        except AnygramError as e:
            return {"error": str(e)}

    def _by_pos(self, requests: list[tuple[int, int]], *, ranks: bool, query_len: int = 0,
                max_disp_len: int | None = None, max_ctx_len: int | None = None
                ) -> list[dict[str, Any]] | dict[str, str]:
        if not requests:
            return []
        fetch = self.engine.get_docs_by_rank if ranks else self.engine.get_docs_by_pos
        return self._windows(fetch, requests, query_len=query_len,
                             max_disp_len=max_disp_len, max_ctx_len=max_ctx_len)

    def _by_pos_2(self, requests: Any, ranks: bool) -> list[dict[str, Any]] | dict[str, str]:
        """The ``_2`` batches: one fetch per distinct ``(needle_len, max_ctx_len)``."""
        reqs = self._pairs(requests, 4)
        if isinstance(reqs, dict):
            return reqs
        located = []
        for s, x, needle_len, max_ctx_len in reqs:
            err = self._ctx(needle_len, max_ctx_len)
            if err is not None:
                return err
            at = self._rank(s, x) if ranks else self._ptr(s, x)
            if isinstance(at, dict):
                return at
            located.append((at, needle_len, max_ctx_len))
        out: list[dict[str, Any] | None] = [None] * len(located)
        for key in dict.fromkeys((n, c) for _, n, c in located):
            idx = [i for i, (_, n, c) in enumerate(located) if (n, c) == key]
            got = self._by_pos([located[i][0] for i in idx], ranks=ranks, query_len=key[0],
                               max_ctx_len=key[1])
            if isinstance(got, dict):
                return got
            for i, d in zip(idx, got):
                out[i] = d
        return out  # type: ignore[return-value]

    # ------------------------------------------------------------------ documents

    def get_doc_by_rank(self, s: int, rank: int, max_disp_len: int | None = None
                        ) -> dict[str, Any]:
        """``DocResult`` of the occurrence at suffix-array ``rank`` of shard ``s``: a window of
        ``max_disp_len // 2`` tokens before it and ``ceil(max_disp_len / 2)`` from it,
        clipped to its document."""
        got = self.get_docs_by_ranks([(s, rank)], max_disp_len)
        return got if isinstance(got, dict) else got[0]

    def get_docs_by_ranks(self, list_of_s_and_rank: list[tuple[int, int]],
                          max_disp_len: int | None = None) -> Any:
        """:meth:`get_doc_by_rank` of each ``(s, rank)`` (all checked first)."""
        return self._docs_at(list_of_s_and_rank, self._rank, True, max_disp_len)

    def get_doc_by_ptr(self, s: int, ptr: int, max_disp_len: int | None = None
                       ) -> dict[str, Any]:
        """``DocResult`` of the token at **byte** offset ``ptr`` of shard ``s`` (a multiple of
        the token width), windowed as :meth:`get_doc_by_rank`."""
        got = self.get_docs_by_ptrs([(s, ptr)], max_disp_len)
        return got if isinstance(got, dict) else got[0]

    def get_docs_by_ptrs(self, list_of_s_and_ptr: list[tuple[int, int]],
                         max_disp_len: int | None = None) -> Any:
        """:meth:`get_doc_by_ptr` of each ``(s, ptr)`` (all checked first)."""
        return self._docs_at(list_of_s_and_ptr, self._ptr, False, max_disp_len)

    def _docs_at(self, pairs: list[tuple[int, int]], locate: Any, ranks: bool,
                 max_disp_len: int | None) -> Any:
        """Windows of ``(s, rank)`` or ``(s, ptr)`` pairs, located by ``locate``; the first
        invalid argument gives its error dict and nothing is read."""
        disp = self._disp_len(max_disp_len)
        if isinstance(disp, dict):
            return disp
        reqs = self._pairs(pairs, 2)
        if isinstance(reqs, dict):
            return reqs
        located = []
        for s, x in reqs:
            at = locate(s, x)
            if isinstance(at, dict):
                return at
            located.append(at)
        return self._by_pos(located, ranks=ranks, max_disp_len=disp)

    def get_doc_by_ix(self, doc_ix: int, max_disp_len: int | None = None) -> dict[str, Any]:
        """``DocResult`` of the first ``max_disp_len`` tokens of document ``doc_ix``."""
        got = self.get_docs_by_ixs([doc_ix], max_disp_len)
        return got if isinstance(got, dict) else got[0]

    def get_docs_by_ixs(self, list_of_doc_ix: list[int],
                        max_disp_len: int | None = None) -> Any:
        """:meth:`get_doc_by_ix` of each id (all checked first)."""
        disp = self._disp_len(max_disp_len)
        if isinstance(disp, dict):
            return disp
        return self._by_ixs([(d, disp) for d in list_of_doc_ix]
                            if type(list_of_doc_ix) is list else list_of_doc_ix)

    def _by_ixs(self, requests: Any) -> Any:
        reqs = self._pairs(requests, 2)
        if isinstance(reqs, dict):
            return {"error": "list_of_doc_ix must be a list of integers"} \
                if type(requests) is not list else reqs
        ids = []
        for doc_ix, n in reqs:
            err = self._ctx_only(n)
            if err is not None:
                return err
            got = self._doc_ix(doc_ix)
            if isinstance(got, dict):
                return got
            ids.append((got, n))
        out: list[dict[str, Any] | None] = [None] * len(ids)
        for n in dict.fromkeys(n for _, n in ids):
            idx = [i for i, (_, m) in enumerate(ids) if m == n]
            got = self._windows(self.engine.get_docs, [ids[i][0] for i in idx], max_tokens=n)
            if isinstance(got, dict):
                return got
            for i, d in zip(idx, got):
                out[i] = d
        return out

    def get_doc_by_rank_2(self, s: int, rank: int, needle_len: int,
                          max_ctx_len: int) -> dict[str, Any]:
        """``DocResult`` of ``[pos - max_ctx_len, pos + needle_len + max_ctx_len)`` around the
        occurrence at ``rank``, clipped to its document."""
        got = self.get_docs_by_ranks_2([(s, rank, needle_len, max_ctx_len)])
        return got if isinstance(got, dict) else got[0]

    def get_docs_by_ranks_2(self, requests: list[tuple[int, int, int, int]]) -> Any:
        """:meth:`get_doc_by_rank_2` of each ``(s, rank, needle_len, max_ctx_len)``."""
        return self._by_pos_2(requests, ranks=True)

    def get_doc_by_ptr_2(self, s: int, ptr: int, needle_len: int,
                         max_ctx_len: int) -> dict[str, Any]:
        """:meth:`get_doc_by_rank_2` at a **byte** offset (a multiple of the token width)."""
        got = self.get_docs_by_ptrs_2([(s, ptr, needle_len, max_ctx_len)])
        return got if isinstance(got, dict) else got[0]

    def get_docs_by_ptrs_2(self, requests: list[tuple[int, int, int, int]]) -> Any:
        """:meth:`get_doc_by_ptr_2` of each ``(s, ptr, needle_len, max_ctx_len)``."""
        return self._by_pos_2(requests, ranks=False)

    def get_doc_by_ix_2(self, doc_ix: int, max_ctx_len: int) -> dict[str, Any]:
        """``DocResult`` of the first ``max_ctx_len`` tokens of document ``doc_ix`` (as
        infini-gram: the name is misleading)."""
        got = self.get_docs_by_ixs_2([(doc_ix, max_ctx_len)])
        return got if isinstance(got, dict) else got[0]

    def get_docs_by_ixs_2(self, requests: list[tuple[int, int]]) -> Any:
        """:meth:`get_doc_by_ix_2` of each ``(doc_ix, max_ctx_len)``."""
        return self._by_ixs(requests)

    # ------------------------------------------------------------------ search

    def search_docs(self, input_ids: list[int], maxnum: int | None = None,
                    max_disp_len: int | None = None, *, seed: int = 0) -> dict[str, Any]:
        """``{'cnt', 'approx', 'idxs', 'documents'}``: the exact count of a phrase and up to
        ``maxnum`` of its occurrences as ``DocResult`` windows (as :meth:`get_doc_by_rank`).

        Unlike infini-gram, which samples ``maxnum`` occurrences **with replacement** from an
        unseeded RNG, the hits are **distinct** (``min(maxnum, cnt)`` of them) and come in a
        reproducible pseudo-random order fixed by ``seed`` (anygram's seeded permutation);
        ``idxs`` are their indices in that order (``[0, 1, ...]``). Occurrences inside
        taken-down documents are not counted. The empty query gives an error dict.
        """
        if maxnum is None:
            maxnum = self.maxnum
        if not _positive_int(maxnum):
            return {"error": "maxnum must be a positive integer"}
        disp = self._disp_len(max_disp_len)
        if isinstance(disp, dict):
            return disp
        if not self._ids_ok(input_ids):
            return self._ids_error("input_ids")
        try:
            r = self.engine.search_docs(input_ids, max_docs=maxnum, order="random", seed=seed,
                                        max_disp_len=disp, decode=False)
        except AnygramError as e:
            return {"error": str(e)}
        return {"cnt": r.count, "approx": r.approx,
                "idxs": list(range(r.offset, r.offset + len(r.hits))),
                "documents": [self._doc(h) for h in r.hits]}

    def search_docs_cnf(self, cnf: list[list[list[int]]], maxnum: int | None = None,
                        max_disp_len: int | None = None, max_clause_freq: int | None = None,
                        max_diff_tokens: int | None = None, *, seed: int = 0
                        ) -> dict[str, Any]:
        """:meth:`search_docs` of a CNF query: ``cnt``/``approx`` as :meth:`count_cnf`, and up
        to ``maxnum`` distinct matches (anchor occurrences) in a seeded random order, each
        windowed around its anchor phrase. ``idxs`` are their indices in that order."""
        if maxnum is None:
            maxnum = self.maxnum
        if not _positive_int(maxnum):
            return {"error": "maxnum must be a positive integer"}
        disp = self._disp_len(max_disp_len)
        if isinstance(disp, dict):
            return disp
        args = self._cnf_args(cnf, max_clause_freq, max_diff_tokens)
        if isinstance(args, dict):
            return args
        try:
            r = self.engine.search_docs_cnf(cnf, max_docs=maxnum, order="random", seed=seed,
                                            max_clause_freq=args[0], max_diff_tokens=args[1],
                                            max_disp_len=disp, decode=False)
        except AnygramError as e:
            return {"error": str(e)}
        return {"cnt": r.count, "approx": r.approx,
                "idxs": list(range(r.offset, r.offset + len(r.hits))),
                "documents": [self._doc(h.window) for h in r.hits if h.window is not None]}

    # ------------------------------------------------------------------ whole-text analyses

    def creativity(self, input_ids: list[int]) -> dict[str, Any]:
        """``{'rs': [...]}``: ``rs[i]`` is the end of the longest match starting at ``i``
        (``rs[i] == i``: token ``i`` never occurs); the empty text gives ``[]``."""
        if not self._ids_ok(input_ids):
            return self._ids_error("input_ids")
        try:
            return {"rs": self.engine.creativity_rs(input_ids)}
        except AnygramError as e:
            return {"error": str(e)}

    def attribute(self, input_ids: list[int], delim_ids: Iterable[int], min_len: int,
                  max_cnt: int, enforce_bow: bool) -> dict[str, Any]:
        """OLMoTrace's spans: ``{'spans': [{'l', 'r', 'length', 'count',
        'unigram_logprob_sum', 'docs': [{'s', 'ptr'}]}]}`` (byte pointers; see
        :meth:`anygram.Engine.attribute` and ``docs/analyses.md``). ``enforce_bow`` uses the
        word starts of ``bow_ids_path`` (none without it: then no span is found)."""
        if not self._ids_ok(input_ids):
            return self._ids_error("input_ids")
        if not self._ids_ok(delim_ids):
            return self._ids_error("delim_ids")
        if not (type(min_len) is int and min_len >= 0):
            return {"error": "min_len must be a non-negative integer"}
        if not _positive_int(max_cnt):
            return {"error": "max_cnt must be a positive integer"}
        if type(enforce_bow) is not bool:
            return {"error": "enforce_bow must be a boolean"}
        try:
            r = self.engine.attribute(input_ids, delim_ids=delim_ids,  # type: ignore[arg-type]
                                      min_len=min_len, max_cnt=max_cnt, enforce_bow=enforce_bow,
                                      bow_ids=self._bow_ids if enforce_bow else None)
        except AnygramError as e:
            return {"error": str(e)}
        out = r.to_infini_gram(self.engine.token_width)
        for span in out["spans"]:
            span["docs"] = sorted(({"s": self._ig_shard_of[d["s"]], "ptr": d["ptr"]}
                                   for d in span["docs"]), key=lambda d: (d["s"], d["ptr"]))
        return out

    def get_total_doc_cnt(self) -> int:
        """Number of documents in all shards."""
        return self.engine.num_docs

    def __getattr__(self, name: str) -> Any:
        if name in _UNSUPPORTED:
            raise NotImplementedError(f"anygram.compat.InfiniGramEngine does not implement "
                                      f"{name}() yet; use infini_gram for it")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


__all__ = ["InfiniGramEngine"]
