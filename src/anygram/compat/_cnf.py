"""CNF queries: ``count_cnf``, ``find_cnf`` and ``search_docs_cnf``, anchored as infini-gram's.

infini-gram counts an AND from its **rarest** clause: per shard, the clauses are sorted by
their count in that shard (the sum of their phrases' counts; a stable sort, so ties keep the
written order) and the first is the anchor. anygram's engine anchors on the clause written
first, so the compat layer puts each shard's rarest clause first and asks the engine once per
distinct anchor, keeping from each answer the shards that anchor on it. The matches are
anygram's (``docs/cnf.md``): no match lost at a document edge, and an unbiased estimate
above the cap (``docs/compat.md`` lists where this differs from infini-gram).

``find_cnf``'s pointers are infini-gram's: per shard, the matches in the suffix-array order
of the anchor clause's phrases, each given by the left end of its match, i.e. the nearest
occurrence of a partner clause before the anchor (within ``max_diff_tokens``, in the same
document) when there is one, else the anchor itself; in bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import AnygramError
from ..query.results import FindResult
from ._documents import _DocumentsMixin


@dataclass
class _CnfAnswer:
    """A CNF answer in infini-gram's terms (``ptrs``: per infini-gram shard, byte offsets;
    ``[]`` when a clause never occurs, as infini-gram; None when not asked for)."""

    count: int
    approx: bool
    ptrs: list[list[int]] | None


def _anchored(cnf: list[list[list[int]]], anchor: int) -> list[list[list[int]]]:
    """``cnf`` with clause ``anchor`` first (the engine anchors on the first clause)."""
    return [cnf[anchor], *cnf[:anchor], *cnf[anchor + 1:]]


class _CnfMixin(_DocumentsMixin):
    """``count_cnf``, ``find_cnf`` and ``search_docs_cnf``."""

    def count_cnf(self, cnf: list[list[list[int]]], max_clause_freq: int | None = None,
                  max_diff_tokens: int | None = None) -> dict[str, Any]:
        """``{'count', 'approx'}``: the matches of a CNF (clauses ANDed, phrases ORed), counted
        from each shard's rarest clause as infini-gram counts them; exact unless the rarest
        clause occurs more than ``max_clause_freq`` times and sampling is cheaper (then an
        unbiased estimate, ``approx=True``)."""
        got = self._cnf_answer(cnf, max_clause_freq, max_diff_tokens, with_ptrs=False)
        return got if isinstance(got, dict) else {"count": got.count, "approx": got.approx}

    def find_cnf(self, cnf: list[list[list[int]]], max_clause_freq: int | None = None,
                 max_diff_tokens: int | None = None) -> dict[str, Any]:
        """``{'cnt', 'approx', 'ptrs_by_shard'}``: :meth:`count_cnf` plus, per shard (in
        infini-gram's order), the matches as infini-gram's byte pointers (module doc); when
        ``approx``, the matches among the sampled anchors only. ``ptrs_by_shard`` is ``[]``
        when a clause never occurs, as infini-gram's."""
        got = self._cnf_answer(cnf, max_clause_freq, max_diff_tokens, with_ptrs=True)
        return got if isinstance(got, dict) else {"cnt": got.count, "approx": got.approx,
                                                   "ptrs_by_shard": got.ptrs}

    def search_docs_cnf(self, cnf: list[list[list[int]]], maxnum: int | None = None,
                        max_disp_len: int | None = None, max_clause_freq: int | None = None,
                        max_diff_tokens: int | None = None, *, seed: int = 0
                        ) -> dict[str, Any]:
        """``{'cnt', 'approx', 'idxs', 'documents'}``: :meth:`count_cnf`'s count and up to
        ``maxnum`` of :meth:`find_cnf`'s matches, each as :meth:`get_doc_by_ptr` at its
        pointer (as infini-gram's).

        Unlike infini-gram, which draws ``maxnum`` matches **with replacement** from an
        unseeded RNG, the matches are **distinct** (``min(maxnum, matches)``) and drawn by a
        generator seeded with ``seed``. ``idxs`` are infini-gram's: a match's index among all
        matches (scaled to ``cnt`` when ``approx``: ``index * cnt // matches``).
        """
        page = self._page_args(maxnum, max_disp_len)
        if isinstance(page, dict):
            return page
        maxnum, disp = page
        got = self._cnf_answer(cnf, max_clause_freq, max_diff_tokens, with_ptrs=True)
        if isinstance(got, dict):
            return got
        pairs = [(s, p) for s, ptrs in enumerate(got.ptrs or []) for p in ptrs]
        n = len(pairs)
        picked = np.random.default_rng(seed).choice(n, min(maxnum, n), replace=False).tolist()
        docs = self.get_docs_by_ptrs([pairs[i] for i in picked], disp)
        if isinstance(docs, dict):
            return docs
        return {"cnt": got.count, "approx": got.approx,
                "idxs": [i * got.count // n for i in picked], "documents": docs}

    # ------------------------------------------------------------------ the answer

    def _cnf_answer(self, cnf: Any, max_clause_freq: Any, max_diff_tokens: Any, *,
                    with_ptrs: bool) -> _CnfAnswer | dict[str, str]:
        """:meth:`_cnf` after infini-gram's argument checks, or an error dict."""
        args = self._cnf_args(cnf, max_clause_freq, max_diff_tokens)
        if isinstance(args, dict):
            return args
        try:
            return self._cnf(cnf, *args, with_ptrs=with_ptrs)
        except AnygramError as e:
            return {"error": str(e)}

    def _cnf(self, cnf: list[list[list[int]]], cap: int, d: int, *,
             with_ptrs: bool) -> _CnfAnswer:
        """The CNF's answer with infini-gram's anchors (module doc)."""
        native = self.native
        found: dict[tuple[int, ...], FindResult] = {}
        for phrase in (tuple(p) for clause in cnf for p in clause):
            if phrase not in found:
                found[phrase] = native.find(list(phrase))
        # counts[c, shard]: infini-gram's sort key, the sum of the clause's phrase counts.
        counts = np.array([[sum(found[tuple(p)].ranges[sh][1] - found[tuple(p)].ranges[sh][0]
                                for p in clause) for sh in range(native.num_shards)]
                           for clause in cnf], dtype=np.int64)
        if (counts.sum(axis=1) == 0).any():
            return _CnfAnswer(0, False, [] if with_ptrs else None)
        anchor_of = counts.argmin(axis=0).tolist()  # the first minimum: ties keep the order
        anchors = sorted(set(anchor_of))
        if len(anchors) == 1 and not with_ptrs:
            r = native.count_cnf(_anchored(cnf, anchors[0]), anchor=0, max_clause_freq=cap,
                                 max_diff_tokens=d)
            return _CnfAnswer(r.count, r.approx, None)
        runs = {a: native.find_cnf(_anchored(cnf, a), anchor=0, max_clause_freq=cap,
                                   max_diff_tokens=d)
                for a in anchors}
        if any(r.approx for r in runs.values()) and len(anchors) > 1:
            # A sample has no per-shard count: anchor every shard on the rarest clause over
            # the whole index (docs/compat.md).
            rarest = int(counts.sum(axis=1).argmin())
            anchor_of = [rarest] * native.num_shards
            if rarest not in runs:
                runs[rarest] = native.find_cnf(_anchored(cnf, rarest), anchor=0,
                                               max_clause_freq=cap, max_diff_tokens=d)
            r = runs[rarest]
            count, approx = r.count, r.approx
        elif len(anchors) == 1:
            r = runs[anchors[0]]
            count, approx = r.count, r.approx
        else:
            count = sum(len(runs[a].positions[sh]) for sh, a in enumerate(anchor_of))
            approx = False
        if not with_ptrs:
            return _CnfAnswer(count, approx, None)
        ptrs = [self._cnf_pointers(cnf, found, counts, anchor_of[sh],
                                   runs[anchor_of[sh]].positions[sh], sh, cap, d)
                for sh in self._shard_order]
        return _CnfAnswer(count, approx, ptrs)

    def _cnf_pointers(self, cnf: list[list[list[int]]], found: dict[tuple[int, ...], FindResult],
                      counts: np.ndarray, anchor: int, matches: np.ndarray, sh: int, cap: int,
                      d: int) -> list[int]:
        """infini-gram's pointers of one shard's matches (module doc), in bytes."""
        native = self.native
        if not matches.shape[0]:
            return []
        # The anchor phrases' occurrences in suffix-array order, phrase by phrase; a position
        # two phrases share (one extends the other) is listed once, where first met.
        pos = np.concatenate([native.positions(sh, *found[tuple(p)].ranges[sh])
                              for p in cnf[anchor]])
        pos = pos[np.isin(pos, matches)]
        _, first = np.unique(pos, return_index=True)
        pos = pos[np.sort(first)]
        w = native.token_width
        doc_start = native.doc_starts(sh, native.docs_at(sh, pos)) + 1
        left = pos.copy()
        for c, clause in enumerate(cnf):
            # A partner is read only where infini-gram reads it whole: at most the cap's
            # share of the shard (above it infini-gram samples, and its pointers differ).
            if c == anchor or counts[c, sh] > cap // len(self._shard_order):
                continue
            occ = np.sort(np.concatenate([native.positions(sh, *found[tuple(p)].ranges[sh])
                                          for p in clause]))
            i = np.searchsorted(occ, pos, side="left") - 1
            prev = np.where(i >= 0, occ[np.maximum(i, 0)], -1)
            ok = (prev >= pos - d) & (prev >= doc_start)
            left = np.where(ok, np.minimum(left, prev), left)
        return (left * w).tolist()
