"""Whole-text analyses (``docs/analyses.md``): creativity, per-token ∞-gram, attribution.

- Property tests on random small corpora (tiny alphabets with byte-order traps, 1-3 shards):
  the engine equals the brute-force twins of ``reference_analysis.py``, and ``infgram_text``
  equals ``infgram_prob`` at every position; with takedowns too.
- Named edge cases.
- Compatibility with infini-gram 2.6.0 on real text (docstrings of standard-library modules
  cut into word pieces): ``creativity`` and ``attribute`` answer as infini-gram's do.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import reference_analysis as ra
from hypothesis import given, settings
from hypothesis import strategies as st
from internals import holding_walk_caches, kernel_arrays, query_bytes
from optional import infini_gram_engine

from anygram import Engine, InvalidQueryError, TokenizerError, TokenOutOfRangeError, kernels
from anygram import takedown as td
from anygram.index.build import build_index_from_ids
from anygram.kernels import analysis as ka

# (vocab_size, alphabet): ordinary ids and ids whose little-endian bytes trap a numeric order.
ALPHABETS = [
    (3, [0, 1, 2]),
    (255, [0, 1, 0x7F, 0xFE]),
    (65535, [1, 0xFF, 0x1FF, 0xFF00, 0x100, 0xFFFE]),
    (2**32 - 1, [5, 0xFF, 0xFFFF, 0x10000, 0xFF0000FF]),
]
EXAMPLES = settings()  # the project profile (tests/conftest.py): ANYGRAM_MAX_EXAMPLES


@st.composite
def cases(draw):
    """A corpus (split into 1-3 shards by a token budget) and a few texts over its alphabet
    plus one id it never holds."""
    vocab, alphabet = draw(st.sampled_from(ALPHABETS))
    letters = alphabet[:draw(st.integers(1, len(alphabet)))]
    docs = draw(st.lists(st.lists(st.sampled_from(letters), max_size=10), max_size=6))
    budget = draw(st.integers(max(2, sum(map(len, docs)) // 3), 60))
    unseen = vocab - 1 if vocab - 1 not in letters else letters[0]
    texts = []
    for _ in range(3):
        if docs and draw(st.booleans()):  # a piece of a document with edits: long matches
            d = draw(st.sampled_from(docs))
            t = list(d[draw(st.integers(0, len(d))):]) + draw(st.lists(
                st.sampled_from(letters + [unseen]), max_size=4)) + list(d)
        else:
            t = draw(st.lists(st.sampled_from(letters + [unseen]), max_size=12))
        texts.append(t)
    return vocab, docs, budget, texts


def _build(tmp: Path, docs, vocab, budget=None, name="idx"):
    m = build_index_from_ids(docs, tmp / name, vocab_size=vocab, shard_tokens=budget)
    corpus, i = [], 0
    for s in m.shards:  # the reference sees the engine's shard split
        corpus.append(docs[i:i + s.num_docs])
        i += s.num_docs
    return Engine.open(tmp / name), corpus


def _attr(result):
    """Comparable form of an AttributionResult: (l, r, count, logprob, [(shard, pos, doc)])."""
    return [(s.start, s.end, s.count, s.unigram_logprob_sum,
             [(d.shard, d.pos, d.doc_id) for d in s.docs]) for s in result.spans]


def _same_attr(got, expected):
    assert [g[:3] + g[4:] for g in got] == [e[:3] + e[4:] for e in expected]
    for g, e in zip(got, expected):
        assert math.isclose(g[3], e[3], rel_tol=1e-12, abs_tol=1e-12)


def _infgram_rows(r):
    return [(r[j].prompt_count, r[j].cont_count, r[j].prob, r[j].suffix_len)
            for j in range(len(r))]


@pytest.fixture
def tmp():
    d = Path(tempfile.mkdtemp(prefix="anygram-analysis-"))
    yield d
    shutil.rmtree(d)


# ----------------------------------------------------------------------------- properties


@EXAMPLES
@given(cases(), st.data())
def test_walk_kernel_equals_twin(case, data):
    """Per shard, with the caches, without them, and with a 2-slot pair cache (evictions);
    over every offset and over a random subset of cuts (the end of the text always one).
    The rank ranges are those ``find_range`` gives."""
    vocab, docs, budget, texts = case
    tmp = Path(tempfile.mkdtemp(prefix="anygram-analysis-"))
    try:
        eng, corpus = _build(tmp, docs, vocab, budget)
        w = eng.token_width
        caches = [ka.new_caches(vocab, pair_slots=2) for _ in corpus]
        for text in texts:
            q = query_bytes(eng, text)
            n = len(text)
            some = sorted(data.draw(st.sets(st.integers(0, n - 1), max_size=n)) | {n}) \
                if n else [0]
            for cuts in (list(range(n + 1)), some):
                c_arr = np.array(cuts, dtype=np.int64)
                for (ds, sa, k, _), shard, c in zip(kernel_arrays(eng), corpus, caches):
                    want = ra.naive_suffix_walk(shard, text, cuts)
                    for cache in (c, ka.new_caches(0, pair_slots=0), c):
                        starts, lows, counts, _ = ka.suffix_walk(ds, sa, k, w, q, c_arr, *cache)
                        assert (starts.tolist(), counts.tolist()) == want
                        for i, e, lo, cnt in zip(starts.tolist(), cuts, lows.tolist(),
                                                 counts.tolist()):
                            a, b = kernels.find_range(ds, sa, k, q[i * w:e * w], 0,
                                                      sa.shape[0] // k)
                            assert (lo, lo + cnt) == (a, b) or cnt == 0 == b - a
    finally:
        shutil.rmtree(tmp)


@EXAMPLES
@given(cases())
def test_creativity_and_infgram_text_equal_reference(case):
    vocab, docs, budget, texts = case
    tmp = Path(tempfile.mkdtemp(prefix="anygram-analysis-"))
    try:
        eng, corpus = _build(tmp, docs, vocab, budget)
        for text in texts:
            m = ra.naive_creativity(corpus, text)
            assert eng.creativity(text) == m
            assert eng.creativity_rs(text) == [i + x for i, x in enumerate(m)]
            rows = _infgram_rows(eng.infgram_text(text))
            assert rows == ra.naive_infgram_text(corpus, text)
            for j, row in enumerate(rows):
                r = eng.infgram_prob(text[:j], text[j])
                assert row == (r.prompt_count, r.cont_count, r.prob, r.suffix_len)
    finally:
        shutil.rmtree(tmp)


@EXAMPLES
@given(cases(), st.data())
def test_attribute_equals_reference(case, data):
    vocab, docs, budget, texts = case
    letters = sorted({t for d in docs for t in d} | {t for x in texts for t in x}) or [0]
    tmp = Path(tempfile.mkdtemp(prefix="anygram-analysis-"))
    try:
        eng, corpus = _build(tmp, docs, vocab, budget)
        for text in texts:
            kw = {"min_len": data.draw(st.integers(0, 3)), "max_cnt": data.draw(st.integers(1, 8)),
                  "delim_ids": data.draw(st.lists(st.sampled_from(letters), max_size=2)),
                  "enforce_bow": data.draw(st.booleans()),
                  "bow_ids": data.draw(st.lists(st.sampled_from(letters), max_size=3))}
            want = ra.naive_attribute(corpus, text, **kw)
            _same_attr(_attr(eng.attribute(text, **kw)), want)
            k = data.draw(st.integers(0, 3))  # a cap keeps each span's first occurrences
            _same_attr(_attr(eng.attribute(text, max_docs_per_span=k, **kw)),
                       [w[:4] + (w[4][:k],) for w in want])
            # "maximal": the kept spans are the candidates not inside another candidate
            # (and not the empty span at 0, which ends nowhere beyond 0).
            cands = ra.naive_candidates(corpus, text, **kw)
            assert [w[:3] for w in want] == [c for c in cands if c[1] > 0 and not any(
                o != c and o[0] <= c[0] and c[1] <= o[1] for o in cands)]
    finally:
        shutil.rmtree(tmp)


@st.composite
def takedown_cases(draw):
    docs = draw(st.lists(st.lists(st.integers(0, 2), max_size=10), min_size=1, max_size=7))
    removed = draw(st.sets(st.integers(0, len(docs) - 1), max_size=len(docs)))
    texts = [draw(st.lists(st.integers(0, 2), max_size=12)) for _ in range(2)]
    texts.append(list(docs[min(removed, default=0)]) + [0, 1])  # a removed document's text
    return docs, removed, draw(st.integers(3, 40)), texts


@EXAMPLES
@given(takedown_cases())
def test_takedown_aware(case):
    """Only the remaining documents count: equal to the references on the corpus without
    the removed documents, and to infgram_prob (which honours takedowns) per position."""
    docs, removed, budget, texts = case
    tmp = Path(tempfile.mkdtemp(prefix="anygram-analysis-"))
    try:
        _, corpus = _build(tmp, docs, 3, budget)
        td.take_down(tmp / "idx", removed)
        eng = Engine.open(tmp / "idx")
        kept, g = [], 0
        for shard in corpus:
            kept.append([d for i, d in enumerate(shard) if g + i not in removed])
            g += len(shard)
        for text in texts:
            assert eng.creativity(text) == ra.naive_creativity(kept, text)
            rows = _infgram_rows(eng.infgram_text(text))
            assert rows == ra.naive_infgram_text(kept, text)
            for j, row in enumerate(rows):
                r = eng.infgram_prob(text[:j], text[j])
                assert row == (r.prompt_count, r.cont_count, r.prob, r.suffix_len)
            got = eng.attribute(text, max_cnt=4)
            assert [(s.start, s.end, s.count) for s in got.spans] == \
                [w[:3] for w in ra.naive_attribute(kept, text, max_cnt=4)]
            # word starts: the walk over them moves its starts past removed matches too
            # (occurrences aside: the reference numbers the kept documents afresh)
            kw = {"max_cnt": 4, "enforce_bow": True, "bow_ids": [0, 2], "delim_ids": [1]}
            _same_attr([g[:4] + ([],) for g in _attr(eng.attribute(text, **kw))],
                       [e[:4] + ([],) for e in ra.naive_attribute(kept, text, **kw)])
            for s in got.spans:  # every listed occurrence is real and in a remaining document
                assert len(s.docs) == s.count
                for d in s.docs:
                    assert d.doc_id not in removed
                    sh, local = eng.locate_doc(d.doc_id)
                    start, _ = eng.doc_span(sh, local)
                    assert docs[d.doc_id][d.pos - start:d.pos - start + s.length] == \
                        text[s.start:s.end]
    finally:
        shutil.rmtree(tmp)


# ----------------------------------------------------------------------------- edge cases


def test_empty_text(tmp):
    eng, _ = _build(tmp, [[1, 2, 3]], 10)
    assert eng.creativity([]) == eng.creativity_rs([]) == []
    r = eng.infgram_text([])
    assert len(r) == 0 and r.prob.shape == (0,) and r.to_dict()["prob"] == []
    assert eng.attribute([]).spans == []


def test_empty_corpus(tmp):
    eng, _ = _build(tmp, [], 10)
    assert eng.count([]).count == 0
    assert eng.creativity([1, 2]) == [0, 0]
    r = eng.infgram_text([1, 2])
    assert r.prompt_count.tolist() == [0, 0] and np.isnan(r.prob).all()
    assert r[0].prob is None and r[1] == eng.infgram_prob([1], 2)
    assert r.to_dict()["prob"] == [None, None]
    assert eng.attribute([1, 2]).spans == []
    # with min_len=0 the empty span at 1 counts every position (none here): it is kept
    assert [(s.start, s.end, s.count) for s in eng.attribute([1, 2], min_len=0).spans] == \
        [(1, 1, 0)]


def test_text_inside_and_beyond_the_corpus(tmp):
    docs = [[1, 2, 3, 4, 5], [3, 4, 9]]
    eng, corpus = _build(tmp, docs, 10)
    # fully inside a document: the match from i runs to the end of the text
    assert eng.creativity([1, 2, 3, 4, 5]) == [5, 4, 3, 2, 1]
    # longer than any document: matches stop at the document's end, never cross it
    text = [1, 2, 3, 4, 5, 3, 4, 9, 1, 2]
    assert eng.creativity(text) == ra.naive_creativity(corpus, text) == \
        [5, 4, 3, 2, 1, 3, 2, 1, 2, 1]
    assert eng.creativity_rs(text) == [5, 5, 5, 5, 5, 8, 8, 8, 10, 10]
    r = eng.infgram_text(text)
    assert r.suffix_len.tolist() == [0, 1, 2, 3, 4, 5, 1, 2, 3, 1]
    assert r[5] == eng.infgram_prob(text[:5], 3)
    assert r.cont_count[4] == 1 and r.cont_count[5] == 0  # [1..5] then 3: never seen


def test_unseen_tokens(tmp):
    eng, corpus = _build(tmp, [[1, 2], [2, 1]], 10)
    text = [7, 1, 2, 8, 8, 2]
    assert eng.creativity(text) == [0, 2, 1, 0, 0, 1]
    r = eng.infgram_text(text)
    assert r.suffix_len.tolist() == [0, 0, 1, 2, 0, 0]
    assert r.cont_count.tolist() == [0, 2, 1, 0, 0, 2]
    assert _infgram_rows(r) == ra.naive_infgram_text(corpus, text)
    assert [(s.start, s.end, s.count) for s in eng.attribute(text).spans] == [(1, 3, 1), (5, 6, 2)]


def test_one_shard_equals_many(tmp):
    rng = np.random.default_rng(3)
    docs = [rng.integers(0, 4, size=rng.integers(0, 30)).tolist() for _ in range(40)]
    one, _ = _build(tmp, docs, 300, None, "one")
    many, corpus = _build(tmp, docs, 300, 60, "many")
    assert len(corpus) > 5
    for _ in range(10):
        text = rng.integers(0, 5, size=40).tolist()
        assert one.creativity(text) == many.creativity(text)
        a, b = one.infgram_text(text), many.infgram_text(text)
        assert _infgram_rows(a) == _infgram_rows(b)
        sa = [(s.start, s.end, s.count, [d.doc_id for d in s.docs])
              for s in one.attribute(text, max_cnt=50).spans]
        assert sa == [(s.start, s.end, s.count, [d.doc_id for d in s.docs])
                      for s in many.attribute(text, max_cnt=50).spans]


def test_infgram_text_result(tmp):
    eng, _ = _build(tmp, [[1, 2, 3], [1, 2, 4]], 10)
    r = eng.infgram_text(np.array([1, 2, 3]))
    assert r.token_ids.tolist() == [1, 2, 3]
    assert r.prob.tolist() == [2 / 8, 2 / 2, 1 / 2]
    with pytest.raises(ValueError):
        r.prob[0] = 0.0  # read-only
    d = r.to_dict()
    assert d["suffix_len"] == [0, 1, 2] and d["cont_count"] == [2, 2, 1]


def test_attribute_options(tmp):
    docs = [[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], [9, 3, 4, 8]]
    eng, corpus = _build(tmp, docs, 10)
    text = [1, 2, 3, 4, 5, 6]
    assert [(s.start, s.end, s.count) for s in eng.attribute(text).spans] == [(0, 6, 2)]
    # a delimiter inside the match ends it (the delimiter itself is kept)
    got = eng.attribute(text, delim_ids=[3])
    assert [(s.start, s.end) for s in got.spans] == [(0, 3), (3, 6)]
    # word starts: spans start at one and stop before one (or at the end of the text)
    got = eng.attribute(text, enforce_bow=True, bow_ids=[1, 4])
    assert [(s.start, s.end) for s in got.spans] == [(0, 6)]
    got = eng.attribute([1, 2, 3, 4, 8], enforce_bow=True, bow_ids=[1, 4])
    assert [(s.start, s.end) for s in got.spans] == [(0, 3), (3, 5)]
    # too frequent, too short
    assert eng.attribute(text, max_cnt=1).spans == []
    assert eng.attribute([3, 4], min_len=3).spans == []
    assert [(s.start, s.end, s.count) for s in eng.attribute([3, 4]).spans] == [(0, 2, 3)]
    # occurrences: corpus order, capped, with document windows
    span = eng.attribute([3, 4], max_docs_per_span=2, with_context=True, max_ctx_len=1).spans[0]
    assert span.count == 3 and [d.doc_id for d in span.docs] == [0, 1]
    w = span.docs[0].window
    assert w is not None and w.token_ids == [2, 3, 4, 5] and w.match_ids == [3, 4]
    logp = sum(math.log(eng.count([t]).count) - math.log(eng.count([]).count) for t in [3, 4])
    assert math.isclose(span.unigram_logprob_sum, logp)
    assert eng.attribute([3, 4], max_docs_per_span=0).spans[0].docs == ()
    d = eng.attribute([3, 4]).to_dict()["spans"][0]
    assert (d["start"], d["end"], d["length"], d["count"]) == (0, 2, 2, 3)
    ig = eng.attribute([3, 4]).to_infini_gram(eng.token_width)["spans"][0]
    assert (ig["l"], ig["r"], ig["length"]) == (0, 2, 2)
    assert {x["ptr"] // eng.token_width for x in ig["docs"]} == {3, 10, 16}


def test_bad_arguments(tmp):
    eng, _ = _build(tmp, [[1, 2]], 10)
    for kw in ({"min_len": -1}, {"max_cnt": 0}, {"max_cnt": True}, {"enforce_bow": 1},
               {"enforce_bow": True}, {"max_docs_per_span": -1}, {"delim_ids": ["a"]}):
        with pytest.raises(InvalidQueryError):
            eng.attribute([1, 2], **kw)
    with pytest.raises(TokenOutOfRangeError):
        eng.attribute([1, 2], delim_ids=[10])
    for f in (eng.creativity, eng.creativity_rs, eng.infgram_text, eng.attribute):
        with pytest.raises(TokenOutOfRangeError):
            f([1, 10])
        with pytest.raises(TokenizerError):
            f("text")  # no tokenizer


def test_busy_caches_give_the_same_answers(tmp):
    """A call that finds the caches in use runs without them, and answers the same."""
    rng = np.random.default_rng(5)
    docs = [rng.integers(0, 6, size=30).tolist() for _ in range(20)]
    eng, corpus = _build(tmp, docs, 10, 200)
    text = rng.integers(0, 7, size=50).tolist()
    want = (eng.creativity(text), _infgram_rows(eng.infgram_text(text)))
    with holding_walk_caches(eng):  # held: the calls below get empty caches
        assert (eng.creativity(text), _infgram_rows(eng.infgram_text(text))) == want
    results = []

    def run():
        for _ in range(20):
            results.append((eng.creativity(text), _infgram_rows(eng.infgram_text(text))))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [want] * 80


# ----------------------------------------------------------------------------- infini-gram

MODULES = ["argparse", "collections", "json", "pathlib", "re", "textwrap", "typing",
           "functools", "itertools", "shutil", "logging", "unittest"]
PIECE = re.compile(r" ?\w+| ?[^\w\s]+|\s+")  # GPT-2-like pieces: a word with its space


def _docstrings() -> list[str]:
    out = []
    for name in MODULES:
        mod = importlib.import_module(name)
        out.append(inspect.getdoc(mod) or "")
        for attr in sorted(vars(mod)):
            obj = getattr(mod, attr)
            if attr.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if getattr(obj, "__module__", None) == mod.__name__ and inspect.getdoc(obj):
                out.append(inspect.getdoc(obj))
    return out


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """Docstrings as u16 word pieces (ids spread so their bytes differ in both halves) in 3+
    shards, the same as u8 bytes in 2+, and a text spliced from corpus pieces, new
    combinations and ids the corpus never holds."""
    infini = infini_gram_engine()
    root = tmp_path_factory.mktemp("attr")
    texts = _docstrings()
    pieces = [PIECE.findall(t) for t in texts]
    vocab = sorted({p for ps in pieces for p in ps})
    ids = {p: 3 * i + 1 for i, p in enumerate(vocab)}
    docs = [[ids[p] for p in ps] for ps in pieces]
    vocab_size = 3 * len(vocab) + 2
    tokens = sum(map(len, docs))
    eng, corpus = _build(root, docs, vocab_size, tokens // 3 + 100, "u16")
    assert len(corpus) >= 3
    bow = [ids[p] for p in vocab if p[0] == " "]
    (root / "bow.txt").write_text("\n".join(map(str, bow)) + "\n")
    # The docstrings differ between Python versions: draw texts until one has no position
    # where infini-gram is blind (see _ig_blind), which its comparisons need.
    for seed in range(100):
        rng = np.random.default_rng(seed)
        text: list[int] = []
        while len(text) < 500:
            d = docs[rng.integers(len(docs))]
            if len(d) > 20:
                a = int(rng.integers(0, len(d) - 20))
                text += d[a:a + int(rng.integers(5, 80))]
                text += [int(x) for x in rng.choice(bow, 2)] + [vocab_size - 1]
        if not any(_ig_blind(eng, text, i) for i in range(len(text))):
            break
    ig = infini.InfiniGramEngine(
        index_dir=str(root / "u16"), eos_token_id=0, vocab_size=vocab_size, token_dtype="u16",
        ds_prefetch_depth=0, sa_prefetch_depth=0, od_prefetch_depth=0,
        precompute_unigram_logprobs=True, bow_ids_path=str(root / "bow.txt"))
    byte_docs = [list(t.encode()) for t in texts]
    eng8, corpus8 = _build(root, byte_docs, 255, sum(map(len, byte_docs)) // 2 + 100, "u8")
    assert len(corpus8) >= 2
    ig8 = infini.InfiniGramEngine(
        index_dir=str(root / "u8"), eos_token_id=0, vocab_size=255, token_dtype="u8",
        ds_prefetch_depth=0, sa_prefetch_depth=0, od_prefetch_depth=0)
    text8 = list(b"The return value of this function is a new list, sorted; see the ZQXJ "
                 b"docs for the key argument. Raise ValueError if the pattern is empty.")
    return {"eng": eng, "ig": ig, "text": text, "bow": bow, "dot": ids["."],
            "eng8": eng8, "ig8": ig8, "text8": text8}


def _ig_blind(eng, text: list[int], i: int) -> bool:
    """Whether infini-gram's creativity cannot see a match at ``i``: ``text[i:]`` sorts
    before every suffix of some shard holding a prefix of it (see creativity_rs)."""
    q = bytes(query_bytes(eng, text[i:]))
    for ds, sa, k, _ in kernel_arrays(eng):
        first = int.from_bytes(bytes(sa[:k]), "little")
        if q < bytes(ds[first:]) and ds[first:first + eng.token_width].tobytes() == \
                q[:eng.token_width]:
            return True
    return False


@pytest.mark.parametrize("which", ["", "8"])
def test_creativity_matches_infini_gram(real, which):
    eng, ig, text = real["eng" + which], real["ig" + which], real["text" + which]
    ours, theirs = eng.creativity_rs(text), ig.creativity(text)["rs"]
    assert any(r - i > 5 for i, r in enumerate(ours))  # long matches are exercised
    assert any(r == i for i, r in enumerate(ours)) == (which == "")  # and misses (u16)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a == b or (b < a and _ig_blind(eng, text, i)), (i, a, b)


@pytest.mark.parametrize("kw", [
    {"delim_ids": [], "min_len": 1, "max_cnt": 10, "enforce_bow": False},
    {"delim_ids": ["dot"], "min_len": 2, "max_cnt": 5, "enforce_bow": False},
    {"delim_ids": [], "min_len": 1, "max_cnt": 10, "enforce_bow": True},
    {"delim_ids": ["dot"], "min_len": 3, "max_cnt": 3, "enforce_bow": True},
])
def test_attribute_matches_infini_gram(real, kw):
    eng, ig, text = real["eng"], real["ig"], real["text"]
    kw = {**kw, "delim_ids": [real["dot"] if d == "dot" else d for d in kw["delim_ids"]]}
    assert not any(_ig_blind(eng, text, i) for i in range(len(text)))
    theirs = ig.attribute(text, **kw)["spans"]
    ours = eng.attribute(text, bow_ids=real["bow"], **kw).to_infini_gram(eng.token_width)["spans"]
    assert len(ours) > 3
    assert [(s["l"], s["r"], s["length"], s["count"]) for s in ours] == \
        [(s["l"], s["r"], s["length"], s["count"]) for s in theirs]
    for a, b in zip(ours, theirs):
        assert math.isclose(a["unigram_logprob_sum"], b["unigram_logprob_sum"], rel_tol=1e-12)
        assert sorted((d["s"], d["ptr"]) for d in a["docs"]) == \
            sorted((d["s"], d["ptr"]) for d in b["docs"])


def test_infini_gram_creativity_blind_spot(tmp):
    """infini-gram reports 0 where the text sorts before every suffix of the shard."""
    infini = infini_gram_engine()
    eng, _ = _build(tmp, [[5, 6, 7], [0, 9, 9]], 1000)
    ig = infini.InfiniGramEngine(index_dir=str(tmp / "idx"), eos_token_id=999, vocab_size=1000,
                                 token_dtype="u16", ds_prefetch_depth=0, sa_prefetch_depth=0,
                                 od_prefetch_depth=0)
    assert ig.creativity([0, 3])["rs"] == [0, 1]
    assert eng.creativity_rs([0, 3]) == [1, 1]
    assert _ig_blind(eng, [0, 3], 0)


def test_takedown_of_the_matching_document(tmp):
    """The text is a removed document: its matches elsewhere are all that count."""
    docs = [[1, 2, 3, 4], [2, 3, 9], [7]]
    eng, _ = _build(tmp, docs, 10)
    assert eng.creativity([1, 2, 3, 4]) == [4, 3, 2, 1]
    td.take_down(tmp / "idx", [0])
    eng = Engine.open(tmp / "idx")
    assert eng.creativity([1, 2, 3, 4]) == [0, 2, 1, 0]
    r = eng.infgram_text([1, 2, 3, 4])
    assert r.suffix_len.tolist() == [0, 0, 1, 2]
    assert r.prompt_count.tolist() == [eng.count([]).count, eng.count([]).count, 1, 1]
    assert r.cont_count.tolist() == [0, 1, 1, 0]
    assert [(s.start, s.end, s.count, [d.doc_id for d in s.docs])
            for s in eng.attribute([1, 2, 3, 4]).spans] == [(1, 3, 1, [1])]


def test_enforce_bow_defaults_to_the_tokenizers_word_starts(tmp):
    import json as _json

    from anygram import build_index

    path = tmp / "c.jsonl"
    path.write_text("".join(_json.dumps({"text": t}) + "\n" for t in
                            ["the cat sat on the mat", "a cat on a log", "the dog sat"]))
    build_index([path], tmp / "bytes_idx", tokenizer="bytes", progress=False)
    eng = Engine.open(tmp / "bytes_idx")
    text = " the cat sat on a log"
    got = eng.attribute(text, enforce_bow=True, max_cnt=3)
    assert got == eng.attribute(text, enforce_bow=True, max_cnt=3,
                                bow_ids=[9, 10, 11, 12, 13, 32])
    assert got.spans and got != eng.attribute(text, max_cnt=3)
