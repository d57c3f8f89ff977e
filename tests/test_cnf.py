"""CNF queries (docs/cnf.md): count_cnf, find_cnf, search_docs_cnf, count_docs_with_all.

Exact answers are compared with the brute-force twins of ``reference.py`` on many small random
corpora (tiny alphabets with byte-order traps, 1-3 shards, taken-down documents); the
approximate mode is checked for unbiasedness over many seeds against a known exact count, and
the cap samples only when the cost model predicts the sample to be cheaper than the exact answer.
"""

from __future__ import annotations

import math
import shutil
from contextlib import contextmanager

import numpy as np
import pytest
import reference as ref
from hypothesis import event, given
from hypothesis import strategies as st
from internals import set_removed
from optional import infini_gram_engine
from test_engine_props import ALPHABETS, _build

from anygram import Engine, InvalidQueryError, TokenizerError, TokenOutOfRangeError, kernels
from anygram.index.build import build_index, build_index_from_ids
from anygram.kernels import cnf as kernels_cnf
from anygram.query.cnf import MAX_CLAUSES, MAX_TERMS, plans
from anygram.shards import cnf_costs

EXACT = {"max_clause_freq": None}
# The engine picks, per shard, the cheapest of several exact plans (cnf._choose); these force
# each one (None: the engine's choice): anchors sorted with partners looked up in the text
# ("windows", "probe"), read from the suffix array ("merge") or both ("split"); driven by a
# partner ("driver"); anchors and partners marked in bitmaps and swept ("marks"), some
# partners looked up after the sweep ("marks_split").
STRATEGIES = [None, "windows", "probe", "merge", "split", "driver", "marks", "marks_split"]


@contextmanager
def strategy(name):
    saved = plans.FORCE_PLAN
    plans.FORCE_PLAN = name
    try:
        yield
    finally:
        plans.FORCE_PLAN = saved


@contextmanager
def sampling(force):
    """Above the cap, force the sample (True) or the exact answer (False); None: the cost
    model's choice (cnf_costs.sample_cheaper)."""
    saved = plans.FORCE_SAMPLE
    plans.FORCE_SAMPLE = force
    try:
        yield
    finally:
        plans.FORCE_SAMPLE = saved


@st.composite
def corpora(draw):
    """(vocab, letters, docs, budget): short documents over 1-3 letters, 1-3 shards."""
    vocab, alphabet = draw(st.sampled_from(ALPHABETS))
    letters = alphabet[:draw(st.integers(1, 3))]
    docs = draw(st.lists(st.lists(st.sampled_from(letters), max_size=14), max_size=7))
    total = sum(len(d) + 1 for d in docs)
    budget = draw(st.integers(max(2, total // 3), max(2, total)))
    return vocab, letters, docs, budget


@st.composite
def cnfs(draw, letters, docs):
    """1-3 clauses of 1-3 phrases of 1-3 tokens; phrases often cut from the documents."""
    def phrase():
        if docs and any(docs) and draw(st.booleans()):
            d = draw(st.sampled_from([d for d in docs if d]))
            a = draw(st.integers(0, len(d) - 1))
            return list(d[a:a + draw(st.integers(1, 3))])
        return draw(st.lists(st.sampled_from(letters), min_size=1, max_size=3))
    return [[phrase() for _ in range(draw(st.integers(1, 3)))]
            for _ in range(draw(st.integers(1, 3)))]


def _removed_draw(draw, corpus):
    """A random set of taken-down (shard, local doc) pairs, and the engine's arrays for it."""
    pairs = [(s, i) for s, shard in enumerate(corpus) for i in range(len(shard))]
    gone = frozenset(draw(st.lists(st.sampled_from(pairs), max_size=3))) if pairs else frozenset()
    arrays = [np.array(sorted(i for s2, i in gone if s2 == s), dtype=np.int64)
              for s in range(len(corpus))]
    return gone, arrays


@given(corpora(), st.data())
def test_cnf_equals_reference(case, data):
    vocab, letters, docs, budget = case
    tmp, eng, corpus = _build(docs, vocab, budget)
    try:
        for _ in range(3):
            cnf = data.draw(cnfs(letters, docs))
            d = data.draw(st.integers(0, 6))
            gone, arrays = (frozenset(), None)
            if data.draw(st.booleans()):
                gone, arrays = _removed_draw(data.draw, corpus)
                set_removed(eng, arrays)
            else:
                set_removed(eng, [np.zeros(0, dtype=np.int64) for _ in corpus])
            mode = data.draw(st.sampled_from(STRATEGIES))
            want = ref.naive_cnf_matches(corpus, cnf, d, gone)
            event(f"clauses={len(cnf)} matches={'some' if want else 'none'} "
                  f"removed={bool(gone)} shards={len(corpus)}")
            with strategy(mode):
                got = eng.find_cnf(cnf, max_diff_tokens=d, **EXACT)
                c = eng.count_cnf(cnf, max_diff_tokens=d, **EXACT)
            assert got.pairs() == want, (cnf, d, gone, mode)
            assert not got.approx and got.count == len(want)
            assert (c.count, c.approx, c.estimate) == (len(want), False, float(len(want)))
            # The default cap (50,000) is far above these counts: still exact.
            assert eng.count_cnf(cnf, max_diff_tokens=d).count == len(want)
            docs_all = ref.naive_docs_with_all(corpus, cnf, gone)
            with strategy(mode):
                r = eng.count_docs_with_all(cnf, return_ids=True, **EXACT)
            assert (r.count, r.doc_ids, r.approx) == (len(docs_all), tuple(docs_all), False)
            assert c.clause_counts == tuple(len(ref.clause_occurrences(corpus, cl))
                                            for cl in cnf)
    finally:
        shutil.rmtree(tmp)


@given(corpora(), st.data())
def test_sampled_mode_is_flagged_and_consistent(case, data):
    """approx is set exactly when sampling happened: the rarest clause above the cap and the
    sample predicted cheaper than the exact answer (or forced); otherwise the answer is the
    exact one. The sampled matches are true matches; the estimate stays within
    [0, anchor_count]."""
    vocab, letters, docs, budget = case
    tmp, eng, corpus = _build(docs, vocab, budget)
    try:
        cnf = data.draw(cnfs(letters, docs))
        d = data.draw(st.integers(0, 6))
        cap = data.draw(st.integers(1, 8))
        seed = data.draw(st.integers(0, 2**32))
        force = data.draw(st.sampled_from([None, True, False]))
        gone, arrays = _removed_draw(data.draw, corpus)
        set_removed(eng, arrays)
        exact = set(ref.naive_cnf_matches(corpus, cnf, d, gone))
        counts = [len(ref.clause_occurrences(corpus, cl)) for cl in cnf]
        plan = eng._cnf._plan(cnf, None)
        with strategy(data.draw(st.sampled_from(STRATEGIES))), sampling(force):
            cheaper = plans.should_sample(plan, eng._core.shards, d, cap, count_only=False)
            got = eng.find_cnf(cnf, max_diff_tokens=d, max_clause_freq=cap, seed=seed)
            r = eng.count_docs_with_all(cnf, max_clause_freq=cap, seed=seed, return_ids=True)
            docs_cheaper = plans.should_sample_docs(
                eng._cnf._plan(cnf, None, 0), eng._core.shards,
                min(range(len(cnf)), key=lambda j: (counts[j], j)), cap)
            again = eng.find_cnf(cnf, max_diff_tokens=d, max_clause_freq=cap, seed=seed)
        above = min(counts) > cap
        assert got.approx == (above and (cheaper if force is None else force))
        assert not got.approx or above
        event(f"force={force} above={above} approx={got.approx}")
        assert set(got.pairs()) <= exact
        # A pure function of the query, the index and the arguments:
        assert (again.pairs(), again.estimate) == (got.pairs(), got.estimate)
        if got.approx:
            assert got.sampled == cap and got.sample_matches == len(got.pairs())
            anchored = counts[got.anchor]  # the anchor: the rarest clause, by default
            assert got.anchor == ref.default_anchor(corpus, cnf)
            assert got.estimate == pytest.approx(anchored * got.sample_matches / cap)
            assert 0 <= got.estimate <= anchored
        else:
            assert set(got.pairs()) == exact and got.sampled == 0
            assert got.count == len(exact)
        # count_cnf of one clause needs no positions: always exact.
        one = eng.count_cnf(cnf[:1], max_clause_freq=cap)
        assert (one.count, one.approx) == (len(ref.clause_occurrences(corpus, cnf[0], gone)),
                                           False)
        # Documents: the same rule; sampled ids are true ones, exact otherwise.
        docs_all = set(ref.naive_docs_with_all(corpus, cnf, gone))
        assert r.approx == (above and (docs_cheaper if force is None else force))
        assert set(r.doc_ids) <= docs_all
        if not r.approx:
            assert r.count == len(docs_all) and set(r.doc_ids) == docs_all
    finally:
        shutil.rmtree(tmp)


# ---------------------------------------------------------------- kernels vs their twins


@given(st.sampled_from([1, 2, 4]), st.data())
def test_kernels_equal_twins(w, data):
    letters = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True))
    n_tok = data.draw(st.integers(0, 40))
    toks = data.draw(st.lists(st.sampled_from(letters), min_size=n_tok, max_size=n_tok))
    raw = b"".join(t.to_bytes(w, "little") for t in toks)
    ds = np.frombuffer(raw, dtype=np.uint8)
    phrases = [(b"".join(t.to_bytes(w, "little") for t in p), 1 << data.draw(st.integers(0, 2)))
               for p in data.draw(st.lists(st.lists(st.sampled_from(letters), min_size=1,
                                                    max_size=3), min_size=1, max_size=4))]
    wins = sorted(data.draw(st.lists(st.tuples(st.integers(0, n_tok), st.integers(0, 8)),
                                     max_size=5)))
    windows = [(lo, min(lo + ln, n_tok)) for lo, ln in wins]
    poff = np.cumsum([0] + [len(q) for q, _ in phrases]).astype(np.int64)
    pos, bits, win = kernels.phrase_hits(
        ds, w, np.array([a for a, _ in windows], dtype=np.int64),
        np.array([b for _, b in windows], dtype=np.int64),
        np.frombuffer(b"".join(q for q, _ in phrases), dtype=np.uint8), poff,
        np.array([b for _, b in phrases], dtype=np.int64))
    want = ref.naive_phrase_hits(raw, w, windows, phrases)
    assert list(zip(pos.tolist(), bits.tolist())) == want
    assert kernels.count_phrase_starts(
        ds, w, np.array([a for a, _ in windows], dtype=np.int64),
        np.array([b for _, b in windows], dtype=np.int64),
        np.frombuffer(b"".join(q for q, _ in phrases), dtype=np.uint8), poff,
        np.array([b for _, b in phrases], dtype=np.int64)) == len(want)
    for p, i in zip(pos.tolist(), win.tolist()):
        assert windows[i][0] <= p < windows[i][1]
    # verify_anchors: anchors ascending, each in a "document" [lo, hi) that contains it.
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(n_tok, 1)), max_size=3))))
    bounds = list(zip([0] + cuts, cuts + [max(n_tok, 1)]))
    anchors = sorted(set(data.draw(st.lists(st.integers(0, max(n_tok - 1, 0)), max_size=6))))
    trip = [(a, *next((lo, hi) for lo, hi in bounds if lo <= a < hi)) for a in anchors]
    # Partner clauses: the hits of some clause bits, as ascending lists.
    occ = [[p for p, b in want if b >> j & 1] for j in range(data.draw(st.integers(0, 3)))]
    start = np.cumsum([0] + [len(o) for o in occ]).astype(np.int64)
    d = data.draw(st.integers(0, 5))
    ok = kernels.verify_anchors(np.array([t[0] for t in trip], dtype=np.int64),
                                np.array([t[1] for t in trip], dtype=np.int64),
                                np.array([t[2] for t in trip], dtype=np.int64),
                                np.array([p for o in occ for p in o], dtype=np.int64), start, d)
    assert ok.tolist() == ref.naive_verify_anchors(trip, occ, d)
    # probe_anchors reads the text itself: its twin is verify's twin over every hit. Its
    # anchors must be positions of the text (an empty text has none: it would raise).
    trip = [t for t in trip if t[0] < n_tok]
    need = data.draw(st.integers(0, 7))
    every = ref.naive_phrase_hits(raw, w, [(0, n_tok)], phrases)
    occ = [[p for p, b in every if b >> j & 1] for j in range(3) if need >> j & 1]
    probed = kernels.probe_anchors(
        ds, w, np.array([t[0] for t in trip], dtype=np.int64),
        np.array([t[1] for t in trip], dtype=np.int64),
        np.array([t[2] for t in trip], dtype=np.int64), d,
        np.frombuffer(b"".join(q for q, _ in phrases), dtype=np.uint8), poff,
        np.array([b for _, b in phrases], dtype=np.int64), need)
    assert probed.tolist() == ref.naive_verify_anchors(trip, occ, d)


@given(st.data())
def test_marks_equal_twins(data):
    """mark_ranks: twin, the positions stored at the ranks, per row; sweep_marks: twin,
    naive_verify_anchors over the row-0 positions outside removed documents; verify_marks:
    twin, naive_verify_anchors; docs_with_marks: the documents holding every row. Shards of
    up to 300 positions (several words, documents across word edges), any d."""
    n = data.draw(st.integers(1, 300))
    w = data.draw(st.sampled_from([1, 2, 4]))
    k = data.draw(st.sampled_from([4, 5]))  # the unrolled path and the generic one
    seps = sorted({0, *data.draw(st.lists(st.integers(0, n - 1), max_size=8))})
    offsets = np.array(seps, dtype=np.uint64) * np.uint64(w)
    # Any order of the token positions serves as the "suffix array": the kernel only reads it.
    sa_pos = data.draw(st.permutations(range(n)))
    sa = np.frombuffer(b"".join((p * w).to_bytes(k, "little") for p in sa_pos), dtype=np.uint8)
    n_rows = data.draw(st.integers(1, 4))
    cuts = sorted(data.draw(st.lists(st.integers(0, n), min_size=2, max_size=10)))
    spans = [(a, b, data.draw(st.integers(0, n_rows - 1))) for a, b in zip(cuts, cuts[1:])]
    marks = kernels_cnf.mark_ranks(sa, k, w, np.array([a for a, _, _ in spans], dtype=np.int64),
                                   np.array([b for _, b, _ in spans], dtype=np.int64),
                                   np.array([r for _, _, r in spans], dtype=np.int64), n_rows, n)
    rows = [sorted(sa_pos[r] for a, b, row in spans if row == j for r in range(a, b))
            for j in range(n_rows)]
    got = [[p for p in range(n) if int(marks[j, p >> 6]) >> (p & 63) & 1] for j in range(n_rows)]
    assert marks.shape == (n_rows, (n + 63) // 64) and got == rows
    # The sweep: few marks per row, often at the edges of documents and words (where the
    # window is cut, and where the sweep switches from a word's own marks to the last one
    # before it or the first after it). Separators are never occurrences.
    sep = set(seps)
    edges = {p for a in seps for p in (a - 1, a + 1)} | {p for b in range(64, n, 64)
                                                         for p in (b - 1, b)}
    edges = sorted(p for p in edges if 0 <= p < n) or [0]
    spot = st.one_of(st.integers(0, n - 1), st.sampled_from(edges))
    marks = np.zeros_like(marks)
    occ = [sorted({p for p in data.draw(st.lists(spot, max_size=24)) if p not in sep})
           for _ in range(n_rows)]
    for j, row in enumerate(occ):
        for p in row:
            marks[j, p >> 6] |= np.uint64(1) << np.uint64(p & 63)
    gone = sorted(set(data.draw(st.lists(st.integers(0, len(seps) - 1), max_size=2))))
    removed = np.array(gone, dtype=np.int64)
    docs = [(a + 1, b) for a, b in zip(seps, seps[1:] + [n])]
    doc_of = {p: i for i, (a, b) in enumerate(docs) for p in range(a, b)}
    # docs_with_marks: the live documents holding a mark of every row.
    want = [i for i, (a, b) in enumerate(docs) if i not in gone
            and all(any(a <= p < b for p in row) for row in occ)]
    assert kernels_cnf.docs_with_marks(marks, offsets, w, n, removed).tolist() == want
    for first in range(n_rows):  # each row as the anchors in turn, every kind of d
        order = [first] + [j for j in range(n_rows) if j != first]
        trip = [(a, *docs[doc_of[a]]) for a in occ[first] if doc_of[a] not in gone]
        for d in [0, 1, 2, 3, 5, 40, 63, 64, 65, 200]:
            ok = ref.naive_verify_anchors(trip, [occ[j] for j in order[1:]], d)
            want = [t[0] for t, good in zip(trip, ok) if good]
            count, pos = kernels_cnf.sweep_marks(marks[order], offsets, w, n, removed, d, True)
            assert (count, pos.tolist()) == (len(want), want), (first, d)
            count, pos = kernels_cnf.sweep_marks(marks[order], offsets, w, n, removed, d, False)
            assert (count, pos.tolist()) == (len(want), [])
            # verify_marks: the anchors given as positions (removed documents are the
            # caller's business), the partners as marks.
            every = [(a, *docs[doc_of[a]]) for a in occ[first]]
            cols = np.array(every, dtype=np.int64).reshape(-1, 3).T.copy()
            ok = kernels_cnf.verify_marks(cols[0], cols[1], cols[2], marks[order[1:]], d)
            assert ok.tolist() == ref.naive_verify_anchors(every, [occ[j] for j in order[1:]], d)


@given(st.lists(st.integers(0, 2**40), max_size=40), st.integers(0, 3000), st.integers(1, 62),
       st.integers(0, 2**32))
def test_sort_positions(small, n, bits, seed):
    """Twin: sorted(). Large inputs (radix passes) drawn with random widths up to 62 bits."""
    assert kernels.sort_positions(np.array(small, dtype=np.int64)).tolist() == sorted(small)
    big = np.random.default_rng(seed).integers(0, 2**bits, size=n, dtype=np.int64)
    assert np.array_equal(kernels.sort_positions(big), np.sort(big))


@given(corpora(), st.data())
def test_docs_of_sorted_equals_docs_at(case, data):
    """Twin: Engine.docs_at and Engine.doc_span, on ascending positions."""
    vocab, _, docs, budget = case
    tmp, eng, corpus = _build(docs, vocab, budget)
    try:
        for s, sh in enumerate(eng.shards):
            pos = np.array(sorted(data.draw(st.lists(st.integers(0, sh.num_positions - 1),
                                                     max_size=20))) if sh.num_positions
                           else [], dtype=np.int64)
            got, lo, hi = kernels.docs_of_sorted(pos, sh.offsets, sh.token_width,
                                                 sh.num_positions)
            want = eng.docs_at(s, pos)
            assert got.tolist() == want.tolist()
            assert list(zip(lo.tolist(), hi.tolist())) == [eng.doc_span(s, int(x)) for x in want]
    finally:
        shutil.rmtree(tmp)


# ---------------------------------------------------------------- named cases


def _engine(tmp_path, docs, vocab=10, budget=None, name="idx"):
    m = build_index_from_ids(docs, tmp_path / name, vocab_size=vocab, shard_tokens=budget)
    corpus, i = [], 0
    for s in m.shards:
        corpus.append(docs[i:i + s.num_docs])
        i += s.num_docs
    return Engine.open(tmp_path / name), corpus


A, B, C, X = 1, 2, 3, 9


def test_infinigram_dropped_match_is_counted(tmp_path):
    """Regression (anchor notes §1.5): "B at 0, A at 20" in one document and the next document
    starting with B. infini-gram merges the A-B range with the next document's B, the range
    then crosses the separator and is dropped whole; the match is real and we count it."""
    docs = [[B] + [X] * 19 + [A], [B, X, X]]
    eng, corpus = _engine(tmp_path, docs, vocab=1000)  # u16, infini-gram's default
    for d in range(20, 26):
        assert eng.count_cnf([[[A]], [[B]]], max_diff_tokens=d).count == 1
        assert eng.find_cnf([[[A]], [[B]]], max_diff_tokens=d).pairs() == [(0, 21)]
        assert ref.naive_cnf_matches(corpus, [[[A]], [[B]]], d) == [(0, 21)]
    assert eng.count_cnf([[[A]], [[B]]], max_diff_tokens=19).count == 0
    infini = infini_gram_engine()
    ig = infini.InfiniGramEngine(index_dir=str(tmp_path / "idx"), eos_token_id=999,
                                 vocab_size=1000, token_dtype="u16", ds_prefetch_depth=0,
                                 sa_prefetch_depth=0, od_prefetch_depth=0)
    assert [ig.count_cnf([[[A]], [[B]]], max_diff_tokens=d)["count"]
            for d in range(20, 26)] == [0] * 6  # the bug this test documents


def test_no_match_across_documents_or_shards(tmp_path):
    # Shard 0 ends with A, shard 1 starts with B; inside shard 1, a document ends with A and
    # the next one is B: neighbours in the token stream, but in different documents (and
    # shards), so never a match, at any distance.
    docs = [[X, X, A], [X, A], [B, X], [X, A], [B]]
    eng, corpus = _engine(tmp_path, docs, budget=8)
    assert [len(c) for c in corpus] == [2, 3]
    for d in (1, 2, 3, 50):
        for cnf in ([[[A]], [[B]]], [[[B]], [[A]]]):
            assert eng.count_cnf(cnf, max_diff_tokens=d).count == 0
            assert ref.naive_cnf_matches(corpus, cnf, d) == []
        assert eng.count_docs_with_all([[[A]], [[B]]]).count == 0
    # A phrase ending at the very end of a shard (no separator after it) still counts.
    got = eng.find_cnf([[[X, A]], [[X]]], max_diff_tokens=1).pairs()
    assert got == ref.naive_cnf_matches(corpus, [[[X, A]], [[X]]], 1) == [(0, 2), (0, 5), (1, 4)]


def test_document_edges(tmp_path):
    docs = [[A, X, X, B], [B, X, A]]
    eng, _ = _engine(tmp_path, docs)
    # A at a document's first token, B at its last token: distance 3.
    assert eng.find_cnf([[[A]], [[B]]], max_diff_tokens=3).pairs() == [(0, 1), (0, 8)]
    assert eng.find_cnf([[[A]], [[B]]], max_diff_tokens=2).pairs() == [(0, 8)]
    # A partner phrase must fit in the document: [B, B] never occurs across the boundary.
    assert eng.count_cnf([[[A]], [[B, B]]], max_diff_tokens=10).count == 0


def test_distinct_positions_within_a_clause(tmp_path):
    """Two phrases of one clause starting at the same position (one a prefix of the other)
    count that position once: as anchors, in counts and in samples."""
    docs = [[A, B, A, X, A, B, X]]
    eng, _ = _engine(tmp_path, docs)
    assert eng.count_cnf([[[A], [A, B]]]).count == 3
    assert eng.count_cnf([[[A, B], [A], [A]]]).clause_counts == (3,)
    assert eng.find_cnf([[[A], [A, B]], [[X]]], max_diff_tokens=1,
                        anchor=0).pairs() == [(0, 3), (0, 5)]
    with sampling(True):
        r = eng.count_cnf([[[A], [A, B]], [[X]]], max_diff_tokens=1, max_clause_freq=1,
                          anchor=0)
    assert r.approx and r.anchor_count == 3 and r.sampled == 1


def test_the_anchor_decides_what_is_counted(tmp_path):
    # One A near two Bs: as anchor, A counts once; with B as anchor, both Bs count.
    docs = [[B, A, B]]
    eng, _ = _engine(tmp_path, docs)
    assert eng.count_cnf([[[A]], [[B]]], max_diff_tokens=1, anchor=0).count == 1
    assert eng.count_cnf([[[B]], [[A]]], max_diff_tokens=1, anchor=0).count == 2
    assert eng.count_cnf([[[A]], [[B]]], max_diff_tokens=1, anchor=1).count == 2
    # By default the rarest clause (A) is the anchor, whatever the order written.
    for cnf in ([[[A]], [[B]]], [[[B]], [[A]]]):
        r = eng.count_cnf(cnf, max_diff_tokens=1)
        assert (r.count, cnf[r.anchor], r.anchor_count) == (1, [[A]], 1)
    # Equal counts: the first clause as written.
    assert eng.count_cnf([[[B]], [[B]]], max_diff_tokens=0).anchor == 0
    # A clause may repeat or overlap the anchor: [[A], [A]] is every A.
    assert eng.count_cnf([[[A]], [[A]]], max_diff_tokens=0).count == 1
    # d = 0: partner at the same position.
    assert eng.count_cnf([[[B]], [[B, A]]], max_diff_tokens=0, anchor=0).count == 1
    # A partner implied by the anchor (a prefix of every anchor phrase) is always met.
    assert eng.find_cnf([[[B, A]], [[B]], [[B], [X]]], max_diff_tokens=0,
                        anchor=0).pairs() == [(0, 1)]
    with pytest.raises(InvalidQueryError, match="anchor"):
        eng.count_cnf([[[A]], [[B]]], anchor=2)
    with pytest.raises(InvalidQueryError, match="anchor"):
        eng.count_cnf([[[A]], [[B]]], anchor=-1)


def test_takedown_excludes_anchors_and_partners(tmp_path):
    docs = [[A, B], [A, X], [B, A], [A, B]]
    eng, corpus = _engine(tmp_path, docs)
    cnf = [[[A]], [[B]]]
    assert eng.count_cnf(cnf, max_diff_tokens=1).count == 3
    set_removed(eng, [np.array([0, 3], dtype=np.int64)])
    gone = frozenset({(0, 0), (0, 3)})
    assert eng.count_cnf(cnf, max_diff_tokens=1).count == 1
    assert eng.find_cnf(cnf, max_diff_tokens=1).pairs() == ref.naive_cnf_matches(
        corpus, cnf, 1, gone)
    assert eng.count_cnf([[[A]]]).count == 2  # single clause: ranges minus removed text
    assert eng.count_docs_with_all(cnf, return_ids=True).doc_ids == (2,)
    assert [h.doc_id for h in eng.search_docs_cnf(cnf, max_diff_tokens=1).hits] == [2]


# ---------------------------------------------------------------- approximate mode


def _random_corpus(seed, n_docs=300):
    rng = np.random.default_rng(seed)
    return [rng.choice([A, B, C, X, X, X], size=rng.integers(3, 30)).tolist()
            for _ in range(n_docs)]


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    docs = _random_corpus(7)
    eng, corpus = _engine(tmp_path_factory.mktemp("big"), docs, budget=3000)
    assert eng.num_shards >= 2  # samples must be uniform across shards
    return eng, corpus


def _hypergeom_sd(total, matches, n):
    """Standard deviation of total * (matches in a sample of n) / n, without replacement."""
    p = matches / total
    return total * math.sqrt(p * (1 - p) / n * (total - n) / (total - 1))


def _sampled_runs_are_unbiased(eng, corpus, cnf, d, cap, seeds=300):
    """Count ``cnf`` capped at ``cap`` with ``seeds`` seeds: every run samples, and the mean
    estimate is within 4 standard errors of the exact count (checked against the reference).
    Returns the runs and the hypergeometric sd of one estimate."""
    exact = eng.count_cnf(cnf, max_diff_tokens=d, max_clause_freq=None)
    assert exact.count == len(ref.naive_cnf_matches(corpus, cnf, d))
    runs = [eng.count_cnf(cnf, max_diff_tokens=d, max_clause_freq=cap, seed=s)
            for s in range(seeds)]
    assert all(r.approx and r.sampled == cap for r in runs)
    est = np.array([r.estimate for r in runs])
    sd = _hypergeom_sd(exact.anchor_count, exact.count, cap)
    assert abs(est.mean() - exact.count) <= 4 * sd / math.sqrt(seeds), (est.mean(), exact.count)
    return runs, sd


@pytest.mark.parametrize("cnf,d", [
    ([[[A]], [[B]]], 2),
    ([[[A], [A, B]], [[B, C], [C]]], 3),    # prefix phrases in the anchor clause
    ([[[B]], [[C]], [[A]]], 4),
])
def test_estimate_is_unbiased(big, cnf, d):
    """Mean of the estimate over 300 seeds is within 4 standard errors of the exact count
    (the standard error of the mean is the hypergeometric sd / sqrt(300), computed from the
    known exact count). The reported stderr matches the spread of the estimates."""
    eng, corpus = big
    cap = 60
    with sampling(True):  # on this small corpus the exact answer is cheaper: sample anyway
        runs, sd = _sampled_runs_are_unbiased(eng, corpus, cnf, d, cap)
    assert 0.7 * sd <= np.std([r.estimate for r in runs]) <= 1.3 * sd
    assert 0.7 * sd <= np.mean([r.stderr for r in runs]) <= 1.3 * sd


def test_docs_with_all_estimate_is_unbiased(big):
    eng, corpus = big
    cnf = [[[B, C]], [[A, A]]]
    exact = eng.count_docs_with_all(cnf, max_clause_freq=None)
    assert exact.count == len(ref.naive_docs_with_all(corpus, cnf))
    with sampling(True):
        runs = [eng.count_docs_with_all(cnf, max_clause_freq=40, seed=s) for s in range(300)]
    assert all(r.approx for r in runs)
    est = np.array([r.estimate for r in runs])
    # Tolerance: 4 standard errors of the mean, from the spread of the estimates themselves.
    assert abs(est.mean() - exact.count) <= 4 * est.std() / math.sqrt(len(runs))


def test_cap_answers_exactly_when_that_is_cheaper(big):
    """Above the cap on a small corpus, the exact answer costs less than checking a sample
    of ``cap`` anchors: the answer is exact (approx False, the reference's)."""
    eng, corpus = big
    cnf, d, cap = [[[A]], [[B]], [[C]]], 3, 60
    plan = eng._cnf._plan(cnf, None)
    assert min(plan.counts) > cap
    assert not plans.should_sample(plan, eng._core.shards, d, cap, count_only=True)
    want = ref.naive_cnf_matches(corpus, cnf, d)
    for seed in (0, 1):
        got = eng.count_cnf(cnf, max_diff_tokens=d, max_clause_freq=cap, seed=seed)
        assert (got.count, got.approx, got.sampled, got.stderr) == (len(want), False, 0, 0.0)
        found = eng.find_cnf(cnf, max_diff_tokens=d, max_clause_freq=cap, seed=seed)
        assert (found.pairs(), found.approx) == (sorted(want), False)
        page = eng.search_docs_cnf(cnf, max_docs=5, max_diff_tokens=d, max_clause_freq=cap)
        assert (page.total_hits, page.approx) == (len(want), False)
    # count_docs_with_all follows its own model (the sample scans whole documents; the
    # exact answer marks ~2,400 occurrences): exact too.
    assert not plans.should_sample_docs(plan, eng._core.shards, 0, cap)
    docs = eng.count_docs_with_all(cnf, max_clause_freq=cap, return_ids=True)
    want_docs = ref.naive_docs_with_all(corpus, cnf)
    assert (docs.count, docs.doc_ids, docs.approx) == (len(want_docs), tuple(want_docs), False)


def test_sample_is_taken_when_the_model_says_it_is_cheaper(big, monkeypatch):
    """When the cost model prices the sample below the exact answer (here: a free draw),
    the cap samples, and the estimate is unbiased; below the cap it never samples."""
    eng, corpus = big
    cnf, d, cap = [[[A]], [[B]]], 2, 60
    monkeypatch.setattr(cnf_costs, "_SAMPLE_NS", -1e9)
    plan = eng._cnf._plan(cnf, None)
    assert plans.should_sample(plan, eng._core.shards, d, cap, count_only=True)
    assert not eng.count_cnf(cnf, max_diff_tokens=d, max_clause_freq=min(plan.counts)).approx
    _sampled_runs_are_unbiased(eng, corpus, cnf, d, cap)
    assert eng.count_docs_with_all(cnf, max_clause_freq=cap).approx


def test_sample_cheaper_on_large_shards():
    """The cost model: on a shard of 20M positions three clauses of ~1M occurrences are
    answered exactly (marks), on a shard of 2B positions they are sampled (the bitmaps alone
    would cost more than the sample), and so they are on 100 shards of 20M positions."""
    dense = {0: 1_000_000, 1: 1_200_000, 2: 2_000_000}
    assert not cnf_costs.sample_cheaper([(dense, 20_000_000)], 100, 50_000, count_only=True)
    assert cnf_costs.sample_cheaper([(dense, 2_000_000_000)], 100, 50_000, count_only=True)
    assert cnf_costs.sample_cheaper([(dense, 20_000_000)] * 100, 100, 50_000, count_only=True)


# ---------------------------------------------------------------- search_docs_cnf


def test_search_pages_are_distinct_reproducible_and_complete(big):
    eng, corpus = big
    cnf = [[[A]], [[B]]]
    every = eng.find_cnf(cnf, max_diff_tokens=2, **EXACT).pairs()
    for order in ("position", "random"):
        seen, offset = [], 0
        while offset is not None:
            page = eng.search_docs_cnf(cnf, max_docs=50, offset=offset, order=order, seed=3,
                                       max_diff_tokens=2, **EXACT)
            assert page.total_hits == len(every) and page.count == len(every)
            seen += [(h.shard, h.pos) for h in page.hits]
            assert all(h.window.match_ids == [A] for h in page.hits)  # the anchor, in view
            offset = page.next_offset
        assert sorted(seen) == every and len(set(seen)) == len(seen)
        if order == "position":
            assert seen == every
        else:
            assert seen != every
    a = eng.search_docs_cnf(cnf, max_docs=5, order="random", seed=1, max_diff_tokens=2)
    b = eng.search_docs_cnf(cnf, max_docs=5, order="random", seed=1, max_diff_tokens=2)
    assert a == b
    hit = a.hits[0]
    shard, local = eng.locate_doc(hit.doc_id)
    lo, hi = eng.doc_span(shard, local)
    assert shard == hit.shard and lo <= hit.pos < hi and hit.window.match_pos == hit.pos
    assert hit.window.token_ids == ref.stream(corpus[shard])[lo:hi][hit.window.start:
                                                                    hit.window.end]
    # Each window is cut around the anchor phrase present at its hit.
    two = eng.search_docs_cnf([[[A, B], [C]], [[X]]], max_docs=50, max_diff_tokens=3,
                              max_ctx_len=2)
    assert {tuple(h.window.match_ids) for h in two.hits} == {(A, B), (C,)}
    # A prefix-extended phrase adds nothing: [A, B] is dropped beside [A].
    one = eng.search_docs_cnf([[[A, B], [A]], [[C]]], max_docs=50, max_diff_tokens=3)
    assert {tuple(h.window.match_ids) for h in one.hits} == {(A,)}


# ---------------------------------------------------------------- text and validation


def test_text_queries(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"text": "the cat sat on the mat"}\n'
                                      '{"text": "a dog sat on a log"}\n')
    build_index([tmp_path / "c.jsonl"], tmp_path / "t", tokenizer="bytes", progress=False)
    eng = Engine.open(tmp_path / "t")
    ids = [[list(b"cat")], [list(b"log"), list(b"mat")]]
    assert eng.count_cnf("cat AND log OR mat", max_diff_tokens=20).count == \
        eng.count_cnf(ids, max_diff_tokens=20).count == 1
    assert eng.count_cnf([["cat"], ["log", [109, 97, 116]]], max_diff_tokens=20).count == 1
    assert eng.count_cnf("sat").count == 2
    assert eng.count_docs_with_all("sat AND dog OR cat").count == 2
    assert eng.count_cnf("cat AND log", max_diff_tokens=20).count == 0
    with pytest.raises(InvalidQueryError):
        eng.count_cnf("cat AND ")
    no_tok, _ = _engine(tmp_path, [[1, 2]], name="ids")
    with pytest.raises(TokenizerError):
        no_tok.count_cnf("a AND b")


@pytest.mark.parametrize("cnf,err", [
    ([], InvalidQueryError),
    ([[]], InvalidQueryError),
    ([[[]]], InvalidQueryError),
    ([[1, 2]], InvalidQueryError),              # missing a level of nesting
    ([1], InvalidQueryError),
    ([[[1.5]]], InvalidQueryError),
    ([["ab"]], TokenizerError),                  # text, but the index has no tokenizer
    ([[["ab"]]], InvalidQueryError),             # a str inside a list of ids
    (7, InvalidQueryError),
    ([[[10]]], TokenOutOfRangeError),
    ([[[-1]]], TokenOutOfRangeError),
    ([[[1]]] * (MAX_CLAUSES + 1), InvalidQueryError),
    ([[[1]] * (MAX_TERMS + 1)], InvalidQueryError),
])
def test_invalid_cnf(tmp_path, cnf, err):
    eng, _ = _engine(tmp_path, [[1, 2, 3]])
    for call in (eng.count_cnf, eng.find_cnf, eng.search_docs_cnf, eng.count_docs_with_all):
        with pytest.raises(err):
            call(cnf)


@pytest.mark.parametrize("kwargs", [
    {"max_diff_tokens": -1}, {"max_diff_tokens": 1.0}, {"max_diff_tokens": True},
    {"max_clause_freq": 0}, {"max_clause_freq": "5"}, {"seed": -1},
])
def test_invalid_options(tmp_path, kwargs):
    eng, _ = _engine(tmp_path, [[1, 2, 3]])
    with pytest.raises(InvalidQueryError):
        eng.count_cnf([[[1]]], **kwargs)
    with pytest.raises(InvalidQueryError):
        eng.search_docs_cnf([[[1]]], order="best")
    with pytest.raises(InvalidQueryError):
        eng.search_docs_cnf([[[1]]], max_docs=-1)


def test_results_to_dict(tmp_path):
    eng, _ = _engine(tmp_path, [[1, 2, 3, 1]])
    f = eng.find_cnf([[[1]], [[3]]], max_diff_tokens=2, anchor=0)
    assert f.to_dict()["positions"] == [[1, 4]] and f.to_dict()["count"] == 2
    assert f.to_dict()["anchor"] == 0 and f.to_dict()["clause_counts"] == [2, 1]
    assert eng.search_docs_cnf([[[1]]]).to_dict()["hits"][0]["doc_id"] == 0
    assert eng.count_docs_with_all([[[1]]], return_ids=True).to_dict()["doc_ids"] == [0]


def test_bigger_random_cases_equal_reference(big):
    """Denser than the hypothesis corpora: thousands of tokens over 2+ shards, many matches,
    every driver choice, taken-down documents."""
    eng, corpus = big
    rng = np.random.default_rng(11)
    letters = [A, B, C, X]
    nonempty = 0
    try:
        for case in range(12):
            cnf = [[rng.choice(letters, size=rng.integers(1, 3)).tolist()
                    for _ in range(rng.integers(1, 3))] for _ in range(rng.integers(2, 4))]
            d = int(rng.integers(0, 7))
            gone: frozenset[tuple[int, int]] = frozenset()
            if case % 2:
                gone = frozenset((s, int(i)) for s, shard in enumerate(corpus)
                                 for i in rng.choice(len(shard), size=20, replace=False))
            set_removed(eng, [np.array(sorted(i for s2, i in gone if s2 == s), dtype=np.int64)
                              for s in range(len(corpus))])
            want = ref.naive_cnf_matches(corpus, cnf, d, gone, anchor=0)
            nonempty += bool(want)
            docs_all = tuple(ref.naive_docs_with_all(corpus, cnf, gone))
            rarest = ref.naive_cnf_matches(corpus, cnf, d, gone)
            for mode in STRATEGIES:
                with strategy(mode):
                    got = eng.find_cnf(cnf, max_diff_tokens=d, anchor=0, **EXACT).pairs()
                    n = eng.count_cnf(cnf, max_diff_tokens=d, anchor=0, **EXACT).count
                    ids = eng.count_docs_with_all(cnf, return_ids=True, **EXACT).doc_ids
                    default = eng.find_cnf(cnf, max_diff_tokens=d, **EXACT).pairs()
                assert (got, n, ids) == (want, len(want), docs_all), (cnf, d, mode)
                assert default == rarest, (cnf, d, mode)
        assert nonempty >= 8  # dense corpus: most of these queries match
    finally:
        set_removed(eng, [np.zeros(0, dtype=np.int64) for _ in corpus])


def test_largest_cnf_shape(tmp_path):
    """8 clauses x 8 distinct phrases: 64 phrases, the kernels' bit budget."""
    rng = np.random.default_rng(5)
    docs = [rng.integers(0, 8, size=40).tolist() for _ in range(30)]
    eng, corpus = _engine(tmp_path, docs, vocab=8, budget=500)
    cnf = [[[a, b] for b in range(8)] for a in range(MAX_CLAUSES)]
    assert len(cnf) == MAX_CLAUSES and all(len(c) == MAX_TERMS for c in cnf)
    want = ref.naive_cnf_matches(corpus, cnf, 5)
    assert eng.find_cnf(cnf, max_diff_tokens=5, **EXACT).pairs() == want
    assert eng.count_docs_with_all(cnf, return_ids=True).doc_ids == tuple(
        ref.naive_docs_with_all(corpus, cnf))
