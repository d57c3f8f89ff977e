"""``anygram.compat`` beyond the shapes: infini-gram's C++ engine object (``.engine``), CNF
anchored on each shard's rarest clause, and the takedown engine ``InfiniGramEngineDiff``.

Expected answers come from ``tests/reference.py`` and ``tests/reference_analysis.py``
(infini-gram's rules written out); the comparison with infini-gram itself is in
``test_compat_conformance.py``.
"""

from __future__ import annotations

import random

import pytest
import reference as ref
import reference_analysis as refa
from hypothesis import given
from hypothesis import strategies as st

from anygram.compat import CppEngine, InfiniGramEngine, InfiniGramEngineDiff
from anygram.errors import InvalidQueryError
from anygram.index.build import build_index_from_ids
from anygram.query.cnf import plans

EOS = 60000
DOCS = [[2, 3, 2, 4, 2], [5, 2, 2], [], [7, 8, 9, 7, 8, 1, 7, 8]]

#: Every public method of infini-gram 2.6.0's C++ engine bindings (``Engine_U16``).
BINDINGS = [
    "attribute", "compute_unigram_counts", "count", "count_cnf", "creativity", "find",
    "find_cnf", "get_doc_by_ix", "get_doc_by_ix_2", "get_doc_by_ptr", "get_doc_by_ptr_2",
    "get_doc_by_rank", "get_doc_by_rank_2", "get_docs_by_ixs", "get_docs_by_ixs_2",
    "get_docs_by_ptrs", "get_docs_by_ptrs_2", "get_docs_by_ranks", "get_docs_by_ranks_2",
    "get_ds_size", "get_new_shards_by_index_dir", "get_num_shards", "get_tok_cnt",
    "get_total_doc_cnt", "infgram_ntd", "infgram_prob", "ntd", "prob", "search_docs",
    "search_docs_cnf"]


@pytest.fixture(scope="module")
def eng(tmp_path_factory):
    d = tmp_path_factory.mktemp("cpp") / "idx"
    build_index_from_ids(DOCS, d, vocab_size=65535)
    return InfiniGramEngine(str(d), eos_token_id=EOS)


# ----------------------------------------------------------------------------- .engine


def test_cpp_engine_has_the_bindings_methods(eng):
    assert isinstance(eng.engine, CppEngine)
    assert [m for m in BINDINGS if not callable(getattr(eng.engine, m, None))] == []
    try:
        from infini_gram import cpp_engine
    except ImportError:
        return
    theirs = {m for m in dir(cpp_engine.Engine_U16) if not m.startswith("_")}
    assert theirs == set(BINDINGS)
    assert {m for m in dir(cpp_engine.EngineDiff_U16) if not m.startswith("_")} - theirs == {
        "get_docs_by_ptrs_2_grouped"}


def test_cpp_engine_answers_with_result_objects(eng):
    e = eng.engine
    assert (e.get_num_shards(), e.get_tok_cnt(s=0), e.get_ds_size(s=0),
            e.get_total_doc_cnt()) == (1, 20, 40, 4)
    r = e.count(input_ids=[7, 8])
    assert (r.count, r.approx) == (3, False)
    f = e.find(input_ids=[7, 8])
    assert (f.cnt, f.segment_by_shard) == (3, eng.find([7, 8])["segment_by_shard"])
    d = e.ntd(prompt_ids=[2], max_support=10)
    assert d.prompt_cnt == 5 and not d.approx
    assert {t: (v.cont_cnt, v.prob) for t, v in d.result_by_token_id.items()} == {
        t: (v["cont_cnt"], v["prob"]) for t, v in eng.ntd([2])["result_by_token_id"].items()}
    p = e.infgram_prob(prompt_ids=[6, 7], cont_id=8)
    assert (p.prompt_cnt, p.cont_cnt, p.suffix_len) == (3, 3, 1)
    doc = e.get_doc_by_ix(doc_ix=3, max_disp_len=4)
    assert (doc.doc_ix, doc.token_ids, doc.blocked, doc.metadata) == (3, [7, 8, 9, 7], False, "")
    assert [x.token_ids for x in e.get_docs_by_ranks_2(requests=[(0, 2, 1, 1)])] == [
        eng.get_doc_by_rank_2(0, 2, 1, 1)["token_ids"]]
    s = e.search_docs(input_ids=[7, 8], maxnum=2, max_disp_len=4)
    want = eng.search_docs([7, 8], 2, 4)
    assert (s.cnt, s.idxs) == (3, want["idxs"])
    assert [x.token_ids for x in s.docs] == [x["token_ids"] for x in want["documents"]]
    c = e.find_cnf(cnf=[[[7, 8]], [[9]]], max_clause_freq=100, max_diff_tokens=2)
    assert (c.cnt, c.approx, c.ptrs_by_shard) == (1, False, [[24]])
    a = e.attribute(input_ids=[7, 8, 9], delim_ids=[], min_len=1, max_cnt=10,
                    enforce_bow=False)
    assert [(sp.l, sp.r, sp.count, [(x.s, x.ptr) for x in sp.docs]) for sp in a.spans] == [
        (0, 3, 1, [(0, 24)])]
    assert e.creativity(input_ids=[7, 8, 9, 6]).rs == [3, 3, 3, 3]
    assert e.compute_unigram_counts(s=0) == eng.compute_unigram_counts(0)
    (shard,) = next(iter(e.get_new_shards_by_index_dir().values()))
    assert (shard.tok_cnt, shard.doc_cnt, shard.ptr_size) == (20, 4, 1)


def test_cpp_engine_raises_on_bad_arguments(eng):
    # The C++ engine trusts its arguments (a bad one can crash the process): here, a typed
    # error with the wrapper's message.
    e = eng.engine
    with pytest.raises(InvalidQueryError, match="range"):
        e.count(input_ids=[-1])
    with pytest.raises(InvalidQueryError, match="s must be"):
        e.get_tok_cnt(s=1)
    with pytest.raises(InvalidQueryError, match="ptr must be"):
        e.get_doc_by_ptr(s=0, ptr=3, max_disp_len=5)
    with pytest.raises(ValueError):
        e.compute_unigram_counts(s=2)


# ----------------------------------------------------------------------------- CNF anchors


@pytest.fixture(scope="module")
def two_shards(tmp_path_factory):
    """A (11) is rare in shard 0 and common in shard 1; B (22) the other way round."""
    a, b, x = 11, 22, 5
    shard0 = [[b, a, b, x], [b, b, x]]  # anchored on A: 1 match; on B: 2
    shard1 = [[a, b, a, x], [a, a, a]]  # anchored on B: 1 match; on A: 2
    d = tmp_path_factory.mktemp("anchors") / "idx"
    m = build_index_from_ids(shard0 + shard1, d, vocab_size=1000,
                             shard_tokens=sum(len(doc) + 1 for doc in shard0))
    assert [s.num_docs for s in m.shards] == [2, 2]
    return InfiniGramEngine(str(d), eos_token_id=99, vocab_size=1000), [shard0, shard1]


def test_each_shard_anchors_on_its_rarest_clause(two_shards):
    eng, corpus = two_shards
    cnf = [[[11]], [[22]]]
    count, ptrs = ref.compat_find_cnf(corpus, cnf, 2, 2)
    got = eng.find_cnf(cnf, max_diff_tokens=2)
    assert count == 2 and got == {"cnt": count, "approx": False, "ptrs_by_shard": ptrs}
    assert eng.count_cnf(cnf, max_diff_tokens=2) == {"count": count, "approx": False}
    assert eng.find_cnf(cnf[::-1], max_diff_tokens=2) == got  # the order does not matter
    # Neither clause as the anchor of every shard gives this answer (the engine's own).
    native = [eng.native.count_cnf(c, max_diff_tokens=2).count for c in (cnf, cnf[::-1])]
    assert count not in native, (count, native)
    search = eng.search_docs_cnf(cnf, maxnum=10, max_disp_len=4, max_diff_tokens=2)
    pairs = [(s, p) for s, ps in enumerate(ptrs) for p in ps]
    assert search["cnt"] == count and sorted(search["idxs"]) == list(range(len(pairs)))
    assert search["documents"] == [eng.get_doc_by_ptr(*pairs[i], 4) for i in search["idxs"]]


def test_a_sample_anchors_every_shard_on_the_rarest_clause_overall(two_shards, monkeypatch):
    eng, _ = two_shards
    monkeypatch.setattr(plans, "FORCE_SAMPLE", True)
    cnf = [[[11]], [[22]]]
    got = eng.count_cnf(cnf, max_clause_freq=3, max_diff_tokens=2)
    assert got["approx"] is True
    # 11 occurs 6 times, 22 occurs 5 times: 22 is the rarest over the index.
    want = eng.native.count_cnf(cnf[::-1], max_clause_freq=3, max_diff_tokens=2)
    assert got == {"count": want.count, "approx": True}


@given(docs=st.lists(st.lists(st.integers(1, 4), max_size=9), min_size=1, max_size=12),
       data=st.data())
def test_compat_cnf_equals_its_twin(tmp_path_factory, docs, data):
    """Random corpora (1 to 12 shards) and CNFs (up to 3 clauses of up to 2 phrases):
    count_cnf and find_cnf are ``reference.compat_find_cnf``'s (infini-gram's anchors and
    pointers, exact matches)."""
    phrase = st.lists(st.integers(1, 4), min_size=1, max_size=2)
    cnf = data.draw(st.lists(st.lists(phrase, min_size=1, max_size=2), min_size=1, max_size=3))
    d = data.draw(st.integers(1, 5))
    directory = tmp_path_factory.mktemp("cnf") / "idx"
    build_index_from_ids(docs, directory, vocab_size=1000,
                         shard_tokens=data.draw(st.sampled_from([1, 12, 1000])))
    eng = InfiniGramEngine(str(directory), eos_token_id=9, vocab_size=1000)
    corpus, i = [], 0
    for s in eng.native.shards:
        corpus.append(docs[i:i + s.num_docs])
        i += s.num_docs
    count, ptrs = ref.compat_find_cnf(corpus, cnf, d, 2)
    got = eng.find_cnf(cnf, max_diff_tokens=d)
    assert got == {"cnt": count, "approx": False,
                   "ptrs_by_shard": [ptrs[k] for k in eng._shard_order] if ptrs else []}
    assert eng.count_cnf(cnf, max_diff_tokens=d) == {"count": count, "approx": False}


# ----------------------------------------------------------------------------- the takedown engine


@pytest.fixture(scope="module")
def takedown(tmp_path_factory):
    """A main index (two shards) and a diff index holding two of its documents."""
    rng = random.Random(4)
    docs = [[rng.randrange(1, 6) for _ in range(rng.randrange(3, 12))] for _ in range(14)]
    docs[3] = [7, 8, 9, 7, 8, 9, 1, 2]  # only here: 7 8 9
    docs[10] = [1, 2, 7, 8, 3, 4]  # 7 8 also here
    hidden = [docs[3], docs[6]]
    root = tmp_path_factory.mktemp("diff")
    m = build_index_from_ids(docs, root / "main", vocab_size=1000,
                             shard_tokens=sum(len(d) + 1 for d in docs[:7]))
    build_index_from_ids(hidden, root / "hidden", vocab_size=1000)
    bow = root / "bow.txt"
    bow.write_text("1\n3\n7\n")
    eng = InfiniGramEngineDiff(str(root / "main"), str(root / "hidden"), eos_token_id=99,
                               vocab_size=1000, bow_ids_path=str(bow))
    corpus, i = [], 0
    for s in m.shards:
        corpus.append(docs[i:i + s.num_docs])
        i += s.num_docs
    return eng, corpus, [hidden], docs


def test_diff_engine_blocks_the_hidden_windows(takedown):
    eng, corpus, hidden, docs = takedown
    span = [7, 8]
    found = eng.find(span)
    ranks = [(s, r) for s, (a, b) in enumerate(found["segment_by_shard"]) for r in range(a, b)]
    ptrs = [(s, int(eng.native.positions(eng._shard_order[s], r, r + 1)[0]) * 2)
            for s, r in ranks]
    request = {"docs": [{"s": s, "ptr": p} for s, p in ptrs], "span_ids": span,
               "needle_len": 2, "max_ctx_len": 1}
    (got,) = eng.get_docs_by_ptrs_2_grouped([request])
    plain = eng.get_docs_by_ptrs_2([(s, p, 2, 1) for s, p in ptrs])
    assert len(got) == len(plain) == 3  # 7 8 twice in document 3, once in document 10
    for g, w in zip(got, plain):
        if w["doc_ix"] == 3:  # the diff index holds the same window
            assert g == {**w, "token_ids": [], "blocked": True}
        else:
            assert g == w and not g["blocked"]
    (wide,) = eng.get_docs_by_ptrs_2_grouped([{**request, "max_ctx_len": 0, "needle_len": 1}])
    assert all(g["blocked"] for g in wide)  # every window is [7]: the diff index holds it
    assert eng.engine.get_docs_by_ptrs_2_grouped(
        requests=[(ptrs, span, 2, 1)])[0][0].token_ids == \
        got[0]["token_ids"]
    assert "error" in eng.get_docs_by_ptrs_2_grouped([{"docs": [{"s": 9, "ptr": 0}],
                                                       "span_ids": span, "needle_len": 2,
                                                       "max_ctx_len": 1}])
    assert "error" in eng.get_docs_by_ptrs_2_grouped([{"docs": []}])
    with pytest.raises(ValueError):
        InfiniGramEngineDiff(eng._index_dirs[0], ("x",), eos_token_id=1)  # type: ignore


def test_diff_engine_analyses_ignore_text_only_the_hidden_documents_hold(takedown):
    eng, corpus, hidden, docs = takedown
    text = [1, 7, 8, 9, 7, 3, 2, 7, 8, 3, 4, 9, 9]
    want = [i + refa.visible_len(corpus, hidden, text, i, refa.naive_match_len(corpus, text, i))
            for i in range(len(text))]
    assert eng.creativity(text) == {"rs": want}
    assert want != [i + n for i, n in enumerate(refa.naive_creativity(corpus, text))]
    for kw in ({"delim_ids": [], "min_len": 1, "max_cnt": 10, "enforce_bow": False},
               {"delim_ids": [9], "min_len": 1, "max_cnt": 3, "enforce_bow": False},
               {"delim_ids": [], "min_len": 2, "max_cnt": 10, "enforce_bow": True}):
        got = eng.attribute(text, **kw)["spans"]
        expect = refa.naive_attribute(corpus, text, kw["delim_ids"], kw["min_len"],
                                      kw["max_cnt"], kw["enforce_bow"], [1, 3, 7], hidden)
        assert [(s["l"], s["r"], s["count"]) for s in got] == [e[:3] for e in expect], kw
        for s, e in zip(got, expect):
            assert s["unigram_logprob_sum"] == pytest.approx(e[3], rel=1e-12)
            assert sorted((d["s"], d["ptr"] // 2) for d in s["docs"]) == sorted(
                (eng._ig_shard_of[sh], p) for sh, p, _ in e[4])
    assert eng.attribute(text, [], 1, 0, False) == {"error": "max_cnt must be a positive "
                                                             "integer"}
    assert "error" in eng.creativity([-1])
