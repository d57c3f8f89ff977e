"""Constructor, argument checks and the core queries (count, find, prob, ntd, ∞-gram)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import Engine
from ..errors import AnygramError
from ..query.results import NextTokenDist
from ..shards import GroupOpener
from ._base import _WIDTH_OF_DTYPE, _Base, _positive_int
from ._cpp_engine import CppEngine, DatastoreShard


class _CoreMixin(_Base):
    """``__init__``, ``count``, ``find``, ``prob``, ``ntd``, ``infgram_prob``, ``infgram_ntd``,
    ``get_total_doc_cnt``, ``compute_unigram_counts`` and ``get_new_shards_by_index_dir``."""

    def __init__(self, index_dir: str | list[str], eos_token_id: int, vocab_size: int = 65535,
                 version: int = 4, token_dtype: str = "u16", load_to_ram: bool = False,
                 ds_prefetch_depth: int = 0, sa_prefetch_depth: int = 0,
                 od_prefetch_depth: int = 0, bow_ids_path: str | None = None,
                 attribution_block_size: int = 512, precompute_unigram_logprobs: bool = False,
                 prev_shards_by_index_dir: dict[str, Any] | None = None,
                 max_support: int = 1000, max_clause_freq: int = 50000,
                 max_diff_tokens: int = 100, maxnum: int = 1, max_disp_len: int = 1000,
                 *, exact_ntd: bool = True, bow_ids: Iterable[int] | None = None,
                 groups: GroupOpener | None = None) -> None:
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
        # ``bow_ids`` (anygram's addition) gives them directly, added to the file's.
        bows: set[int] = set() if bow_ids is None else {int(b) for b in bow_ids}
        if bow_ids_path is not None:
            with open(bow_ids_path) as f:
                for line in f:
                    bows.add(int(line.strip()))
        self._bow_ids = np.array(sorted(b for b in bows if 0 <= b < self.token_id_max),
                                 dtype=np.int64)
        # infini-gram accepts any id up to token_id_max in queries (vocab_size only bounds
        # eos_token_id), so every id but the separator is valid here.
        self.native = Engine.open(index_dir, token_dtype=token_dtype,
                                  load="ram" if load_to_ram else "mmap",
                                  vocab_size=self.token_id_max, eos_id=eos_token_id,
                                  groups=groups)
        self._index_dirs = list(index_dir)
        self.engine = self._cpp_engine()
        # infini-gram's shard order: per directory, file names sorted as strings.
        dir_pos = {Path(d): i for i, d in enumerate(index_dir)}
        shards = self.native.shards
        self._shard_order = sorted(range(len(shards)),
                                   key=lambda i: (dir_pos.get(shards[i].directory, 0),
                                                  shards[i].name))
        # infini-gram numbers documents through its shard order: its first doc_ix per shard.
        self._ig_shard_of = {ours: ig for ig, ours in enumerate(self._shard_order)}
        self._ig_doc_base = [0]
        for ours in self._shard_order:
            self._ig_doc_base.append(self._ig_doc_base[-1] + shards[ours].num_docs)

    # ------------------------------------------------------------------ checks (infini-gram's)

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
            r = self.native.count(input_ids)  # type: ignore[arg-type]
        except AnygramError as e:
            return {"error": str(e)}
        return {"count": r.count, "approx": r.approx}

    def find(self, input_ids: Iterable[int]) -> dict[str, Any]:
        """``{'cnt': int, 'segment_by_shard': [(start, end), ...]}`` (suffix-array rank ranges)."""
        if not self._ids_ok(input_ids):
            return self._ids_error("input_ids")
        try:
            r = self.native.find(input_ids)  # type: ignore[arg-type]
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
            r = self.native.prob(prompt_ids, cont_id)  # type: ignore[arg-type]
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
        got = self._next_tokens(self.native.ntd, prompt_ids, max_support)
        return got if isinstance(got, dict) else self._dist(got)

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
            r = self.native.infgram_prob(prompt_ids, cont_id)  # type: ignore[arg-type]
        except AnygramError as e:
            return {"error": str(e)}
        return {"prompt_cnt": r.prompt_count, "cont_cnt": r.cont_count,
                "prob": -1.0 if r.prob is None else r.prob, "suffix_len": r.suffix_len}

    def infgram_ntd(self, prompt_ids: Iterable[int],
                    max_support: int | None = None) -> dict[str, Any]:
        """∞-gram next-token distribution: the :meth:`ntd` fields plus ``'suffix_len'``.

        Exact by default, like :meth:`ntd`.
        """
        got = self._next_tokens(self.native.infgram_ntd, prompt_ids, max_support)
        return got if isinstance(got, dict) else {**self._dist(got.dist),
                                                   "suffix_len": got.suffix_len}

    def _next_tokens(self, query: Any, prompt_ids: Iterable[int],
                     max_support: int | None) -> Any:
        """``query(prompt_ids, max_support=...)`` (the engine's ntd or infgram_ntd) after
        infini-gram's argument checks; an error dict for bad input."""
        support = self._support(max_support)
        if isinstance(support, dict):
            return support
        if not self._ids_ok(prompt_ids):
            return self._ids_error("prompt_ids")
        try:
            return query(prompt_ids, max_support=None if self.exact_ntd else support)
        except AnygramError as e:
            return {"error": str(e)}

    def get_total_doc_cnt(self) -> int:
        """Number of documents in all shards."""
        return self.native.num_docs

    def compute_unigram_counts(self, s: int) -> dict[int, int] | dict[str, str]:
        """``{token id: count}`` in shard ``s``: every id below ``vocab_size`` (0 when absent)
        and the document separator id (one per document), as infini-gram counts them."""
        at = self._shard(s)
        if isinstance(at, dict):
            return at
        shard = self.native.shards[at]
        tokens = shard.ds.view(f"<u{shard.token_width}")
        counts = np.bincount(tokens[tokens < self.vocab_size], minlength=self.vocab_size)
        out = dict(enumerate(counts.tolist()))
        out[self.token_id_max] = shard.num_docs
        return out

    def get_new_shards_by_index_dir(self) -> dict[str, list[DatastoreShard]]:
        """``{index_dir: [shard, ...]}``, as infini-gram's (whose servers pass it back as
        ``prev_shards_by_index_dir`` to share memory maps; this engine accepts and ignores
        that argument: the operating system shares the mapped pages of the same files)."""
        out: dict[str, list[DatastoreShard]] = {d: [] for d in self._index_dirs}
        for ours in self._shard_order:
            sh = self.native.shards[ours]
            d = next((d for d in self._index_dirs if Path(d) == sh.directory),
                     str(sh.directory))
            meta = sh.metadata
            out.setdefault(d, []).append(DatastoreShard(
                tok_cnt=sh.num_positions, ds_size=sh.ds_bytes, ptr_size=sh.ptr_width,
                doc_cnt=sh.num_docs, mt_size=0 if meta is None else int(meta.shape[0]),
                ds=sh.ds, sa=sh.sa, od=sh.offsets, mt=meta, om=sh.metaoff))
        return out

    def _cpp_engine(self) -> CppEngine:
        """The ``.engine`` object (the diff engine gives its own)."""
        return CppEngine(self)
