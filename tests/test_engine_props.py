"""The engine equals the brute-force reference on many small random corpora.

Corpora use tiny alphabets (dense repeats) drawn from ids chosen to stress the byte order:
ids whose little-endian bytes contain 0xff, the largest valid id, and ids that differ only
in their high byte. Documents are split over 1..4 shards by the builder's token budget.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import reference as ref
from hypothesis import given
from hypothesis import strategies as st

from anygram import Engine, InvalidQueryError, TokenOutOfRangeError
from anygram.index.build import build_index_from_ids
from anygram.index.format import DEFAULT_NTD_THRESHOLD

# (vocab_size, alphabet): each alphabet mixes ordinary ids with byte-order traps.
ALPHABETS = [
    (3, [0, 1, 2]),
    (255, [0, 1, 0x7F, 0xFE]),
    (65535, [1, 0xFF, 0x1FF, 0xFF00, 0x100, 0xFFFE]),
    (2**32 - 1, [5, 0xFF, 0xFFFF, 0x10000, 0xFF0000FF, 2**32 - 2]),
]


@st.composite
def corpora(draw):
    vocab, alphabet = draw(st.sampled_from(ALPHABETS))
    k = draw(st.integers(1, len(alphabet)))
    letters = alphabet[:k]
    docs = draw(st.lists(st.lists(st.sampled_from(letters), max_size=12), max_size=7))
    budget = draw(st.integers(2, 60))
    return vocab, letters, docs, budget


def _build(docs, vocab, budget):
    tmp = Path(tempfile.mkdtemp(prefix="anygram-test-"))
    # Searches go through the search sample: tiny strides put the bounds in every kind of
    # block; 0 writes none (the engine builds one at the default stride on first use). Exact
    # next tokens of 1- and 2-token prompts come from the next-token table when they occur
    # that often: low thresholds put most of them there.
    stride = (0, 1, 2, 3, 256)[budget % 5]
    threshold = (1, 2, 0, 3)[budget // 5 % 4]
    manifest = build_index_from_ids(docs, tmp / "idx", vocab_size=vocab, shard_tokens=budget,
                                    sample_stride=stride, ntd_threshold=threshold)
    corpus, i = [], 0
    for s in manifest.shards:  # the reference sees the same shard split as the engine
        corpus.append(docs[i:i + s.num_docs])
        i += s.num_docs
    assert i == len(docs)
    return tmp, Engine.open(tmp / "idx"), corpus


def _queries(draw, letters, docs, max_len=5):
    """Some substrings of the corpus (likely hits) and some random strings (likely misses)."""
    qs = []
    for _ in range(4):
        if docs and draw(st.booleans()):
            d = draw(st.sampled_from(docs))
            a = draw(st.integers(0, len(d)))
            b = draw(st.integers(a, min(len(d), a + max_len)))
            qs.append(list(d[a:b]))
        else:
            qs.append(draw(st.lists(st.sampled_from(letters), max_size=max_len)))
    return qs


@given(corpora(), st.data())
def test_count_find_prob_equal_reference(case, data):
    vocab, letters, docs, budget = case
    tmp, eng, corpus = _build(docs, vocab, budget)
    try:
        for q in _queries(data.draw, letters, docs):
            assert eng.count(q).count == ref.naive_count(corpus, q)
            found = eng.find(q)
            assert found.count == ref.naive_count(corpus, q)
            assert len(found.ranges) == len(corpus)
            cont = data.draw(st.sampled_from(letters))
            pc, cc, p = ref.naive_prob(corpus, q, cont)
            r = eng.prob(q, cont)
            assert (r.prompt_count, r.cont_count, r.prob) == (pc, cc, p)
    finally:
        shutil.rmtree(tmp)


@given(corpora(), st.data())
def test_ntd_equals_reference(case, data):
    vocab, letters, docs, budget = case
    tmp, eng, corpus = _build(docs, vocab, budget)
    try:
        for q in _queries(data.draw, letters, docs):
            pc, nxt, end = ref.naive_ntd(corpus, q)
            r = eng.ntd(q)
            assert (r.prompt_count, r.counts, r.end_count, r.approx) == (pc, dict(nxt), end, False)
            assert sum(r.counts.values()) + r.end_count == r.prompt_count
    finally:
        shutil.rmtree(tmp)


@given(corpora(), st.data())
def test_infgram_equals_reference(case, data):
    vocab, letters, docs, budget = case
    tmp, eng, corpus = _build(docs, vocab, budget)
    try:
        for q in _queries(data.draw, letters, docs, max_len=8):
            cont = data.draw(st.sampled_from(letters))
            pc, cc, p, n = ref.naive_infgram_prob(corpus, q, cont)
            r = eng.infgram_prob(q, cont)
            assert (r.prompt_count, r.cont_count, r.prob, r.suffix_len) == (pc, cc, p, n)
            pc, nxt, end, n = ref.naive_infgram_ntd(corpus, q)
            d = eng.infgram_ntd(q)
            assert (d.prompt_count, d.counts, d.end_count, d.suffix_len) == (pc, dict(nxt), end, n)
    finally:
        shutil.rmtree(tmp)


@given(corpora(), st.data())
def test_sampled_ntd_is_flagged_and_sums_to_count(case, data):
    vocab, letters, docs, budget = case
    tmp, eng, corpus = _build(docs, vocab, budget)
    try:
        q = _queries(data.draw, letters, docs)[0]
        cap = data.draw(st.integers(1, 6))
        exact = eng.ntd(q)
        r = eng.ntd(q, max_support=cap)
        # Not sampled when every shard's next-token table holds the prompt (the exact answer
        # is cheaper): a prompt of 1 or 2 tokens occurring there at least the threshold.
        threshold = (1, 2, 0, 3)[budget // 5 % 4] or DEFAULT_NTD_THRESHOLD
        tabled = 1 <= len(q) <= 2 and all(hi - lo >= threshold for lo, hi in eng.find(q).ranges
                                     if hi > lo)
        assert r.approx == (exact.prompt_count > cap and not tabled)
        assert r.prompt_count == exact.prompt_count
        assert sum(r.counts.values()) + r.end_count == r.prompt_count
        assert set(r.counts) <= set(exact.counts)
        if not r.approx:
            assert r.counts == exact.counts
    finally:
        shutil.rmtree(tmp)


@pytest.mark.parametrize("vocab,alphabet", ALPHABETS)
def test_table_is_the_naive_suffix_array(tmp_path, vocab, alphabet):
    rng = np.random.default_rng(vocab % 1000)
    docs = [list(rng.choice(alphabet, size=rng.integers(0, 30))) for _ in range(20)]
    m = build_index_from_ids(docs, tmp_path / "idx", vocab_size=vocab)
    eng = Engine.open(tmp_path / "idx")
    (shard,) = eng.shards
    data = bytes(shard.ds)
    k = m.shards[0].ptr_width
    table = np.frombuffer(bytes(shard.sa), dtype=np.uint8).reshape(-1, k)
    ptrs = [int.from_bytes(bytes(row), "little") for row in table]
    assert ptrs == ref.naive_suffix_array(data, eng.token_width)


@given(corpora(), st.data())
def test_batches_equal_single_calls_and_reference(case, data):
    """count_many, prob_many, ntd_many, infgram_prob_many and infgram_ntd_many answer exactly
    what the single calls (and the reference) do, in input order, whatever the order the
    queries are searched in."""
    vocab, letters, docs, budget = case
    tmp, eng, corpus = _build(docs, vocab, budget)
    try:
        qs = _queries(data.draw, letters, docs, max_len=6) * 2  # repeats too
        conts = [data.draw(st.sampled_from(letters)) for _ in qs]
        assert eng.count_many(qs) == [eng.count(q) for q in qs]
        assert [c.count for c in eng.count_many(qs)] == [ref.naive_count(corpus, q) for q in qs]
        assert eng.prob_many(list(zip(qs, conts))) == [eng.prob(q, c) for q, c in zip(qs, conts)]
        cap = data.draw(st.sampled_from([None, 1, 3]))
        assert eng.ntd_many(qs, max_support=cap) == [eng.ntd(q, max_support=cap) for q in qs]
        pairs = list(zip(qs, conts))
        assert eng.infgram_prob_many(pairs) == [eng.infgram_prob(q, c) for q, c in pairs]
        assert eng.infgram_ntd_many(qs, max_support=cap) == [
            eng.infgram_ntd(q, max_support=cap) for q in qs]
        assert eng.count_many([]) == [] and eng.ntd_many([]) == []
        assert eng.infgram_ntd_many([]) == []
    finally:
        shutil.rmtree(tmp)


def test_a_bad_query_rejects_the_batch_and_names_it(tmp_path):
    build_index_from_ids([[1, 2, 3]], tmp_path / "idx", vocab_size=5)
    eng = Engine.open(tmp_path / "idx")
    with pytest.raises(TokenOutOfRangeError, match=r"queries\[2\]") as bad_id:
        eng.count_many([[1], [2], [9]])
    assert bad_id.value.item == 2
    with pytest.raises(InvalidQueryError, match=r"pairs\[1\]") as bad_pair:
        eng.prob_many([([1], 2), ([1],)])
    assert bad_pair.value.item == 1
    with pytest.raises(InvalidQueryError, match=r"pairs\[0\] cont_id") as bad_cont:
        eng.infgram_prob_many([([1], 7)])
    assert bad_cont.value.item == 0
    with pytest.raises(InvalidQueryError, match="list of queries") as not_a_list:
        eng.count_many("abc")
    assert not_a_list.value.item is None


def test_batches_check_every_id_as_single_calls_do(tmp_path):
    build_index_from_ids([[1, 2, 3]], tmp_path / "idx", vocab_size=5)
    eng = Engine.open(tmp_path / "idx")
    for bad in ([True], [1.0], [2**70], ["a"]):
        with pytest.raises(InvalidQueryError, match=r"queries\[1\]"):
            eng.count_many([[1], bad])
    assert eng.count_many([[1], np.array([2, 3]), (1, 2)]) == [
        eng.count([1]), eng.count([2, 3]), eng.count([1, 2])]
