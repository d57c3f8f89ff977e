"""Kneser-Ney against the textbook formula, and sampling from the n-gram / ∞-gram / KN models."""

from __future__ import annotations

import math
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import reference_lm as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from anygram import Engine
from anygram.errors import InvalidQueryError
from anygram.index.build import build_index_from_ids
from anygram.lm.results import END

ALPHABETS = [(3, [0, 1, 2]), (65535, [1, 0xFF, 0xFF00, 0xFFFE])]


@st.composite
def corpora(draw):
    vocab, alphabet = draw(st.sampled_from(ALPHABETS))
    letters = alphabet[:draw(st.integers(1, len(alphabet)))]
    docs = draw(st.lists(st.lists(st.sampled_from(letters), max_size=10), min_size=1,
                         max_size=6))
    return vocab, letters, docs, draw(st.integers(2, 40))


def _open(docs, vocab, budget=None):
    tmp = Path(tempfile.mkdtemp(prefix="anygram-lm-"))
    build_index_from_ids(docs, tmp / "idx", vocab_size=vocab, shard_tokens=budget)
    return tmp, Engine.open(tmp / "idx")


@settings(max_examples=40)
@given(corpora(), st.data())
def test_kn_prob_equals_the_formula(case, data):
    vocab, letters, docs, budget = case
    tmp, eng = _open(docs, vocab, budget)
    try:
        for _ in range(3):
            n = data.draw(st.sampled_from([2, 3]))
            d = data.draw(st.sampled_from([None, 0.5, 1.0]))
            prompt = data.draw(st.lists(st.sampled_from(letters), max_size=3))
            for w in [*letters, END]:
                want = ref.kn_prob(docs, prompt, w, n, 0.75 if d is None else d)
                got = eng.kn_prob(prompt, w, n=n, discount=d)
                assert got.prob == pytest.approx(want, abs=1e-12)
            # the whole support sums to 1, and agrees with kn_prob token by token
            dist = eng.kn_ntd(prompt, n=n, discount=d, full=True)
            assert math.fsum(dist.probs.values()) == pytest.approx(1.0, abs=1e-9)
            for t, p in dist.probs.items():
                assert p == pytest.approx(eng.kn_prob(prompt, t, n=n, discount=d).prob, abs=1e-12)
            part = eng.kn_ntd(prompt, n=n, discount=d)
            assert math.fsum(part.probs.values()) + part.leftover == pytest.approx(1.0, abs=1e-9)
            for t, p in part.probs.items():
                assert p == pytest.approx(dist.probs[t], abs=1e-12)
    finally:
        shutil.rmtree(tmp)


def test_kn_sums_to_one_over_the_whole_vocabulary(tmp_path):
    docs = [[0, 1, 2, 1, 0], [2, 2, 1], [], [1, 0, 3, 1, 2, 0, 1]]
    build_index_from_ids(docs, tmp_path / "idx", vocab_size=6)
    eng = Engine.open(tmp_path / "idx")
    for n in (2, 3, 4):
        for prompt in ([], [1], [0, 1], [2, 1, 0], [5], [4, 5], [3, 1, 2]):
            total = math.fsum(eng.kn_prob(prompt, w, n=n).prob for w in [*range(6), END])
            assert total == pytest.approx(1.0, abs=1e-9)
            assert eng.kn_prob(prompt, 5, n=n).prob == 0.0  # never occurs: no uniform floor
            top = eng.kn_ntd(prompt, n=n, top_k=2)
            assert len(top.probs) == 2
            assert math.fsum(top.probs.values()) + top.leftover == pytest.approx(1.0)


def test_kn_honours_takedowns(tmp_path):
    from anygram import takedown
    docs = [[0, 1, 2], [3, 1, 2], [0, 1, 0]]
    build_index_from_ids(docs, tmp_path / "idx", vocab_size=4)
    takedown.take_down(tmp_path / "idx", [1])
    eng = Engine.open(tmp_path / "idx")
    kept = [docs[0], docs[2]]
    for w in [0, 1, 2, 3, END]:
        for prompt in ([1], [0, 1], [3, 1]):
            assert eng.kn_prob(prompt, w, n=3).prob == pytest.approx(
                ref.kn_prob(kept, prompt, w, 3, 0.75), abs=1e-12)


def test_kn_arguments_are_checked(tmp_path):
    build_index_from_ids([[0, 1]], tmp_path / "idx", vocab_size=2)
    eng = Engine.open(tmp_path / "idx")
    for kwargs in ({"n": 1}, {"discount": 1.5}, {"n": 3, "discount": [0.5]}):
        with pytest.raises(InvalidQueryError):
            eng.kn_prob([0], 1, **kwargs)
    assert eng.kn_prob([0], 1, n=3, discount=[0.5, 0.9]).discounts == (0.5,)
    with pytest.raises(InvalidQueryError):
        eng.generate([0], model="bigram")
    with pytest.raises(InvalidQueryError):
        eng.generate([0], temperature=-1.0)


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gen")
    docs = [[0, 1, 2, 3, 1, 2, 0, 1, 3], [1, 2, 1, 3, 1, 1, 0, 4], [2, 1, 0, 1, 2, 4, 4, 1]]
    build_index_from_ids(docs, tmp / "idx", vocab_size=5)
    return Engine.open(tmp / "idx")


def _tv(samples, probs):
    emp = Counter(samples)
    return 0.5 * sum(abs(emp[t] / len(samples) - probs.get(t, 0.0)) for t in set(emp) | set(probs))


@pytest.mark.parametrize("model", ["ngram", "infgram", "kn"])
def test_samples_match_the_distribution(sampled, model):
    prompt = [0, 1]
    if model == "kn":
        probs = dict(sampled.kn_ntd(prompt, n=2, full=True).probs)
    else:
        d = sampled.ntd([1]) if model == "ngram" else sampled.infgram_ntd(prompt)
        probs = {t: c / d.prompt_count for t, c in d.counts.items()}
        if d.end_count:
            probs[END] = d.end_count / d.prompt_count
    out = sampled.generate_batch([prompt] * 5000, max_new_tokens=1, model=model, n=2, seed=7)
    samples = [o[0] if o else END for o in out]
    assert _tv(samples, probs) < 0.03  # ~4 sd of the TV of 5,000 draws over <= 6 outcomes


def test_generation_is_seeded_and_batch_equals_single_calls(sampled):
    prompts = [[0], [1, 2], [], [4, 4]]
    for model in ("infgram", "ngram", "kn"):
        kw = dict(max_new_tokens=12, model=model, n=3, stop_at_doc_end=False)
        batch = sampled.generate_batch(prompts, seed=3, **kw)
        assert batch == [sampled.generate(p, seed=(3, i), **kw) for i, p in enumerate(prompts)]
        assert batch == sampled.generate_batch(prompts, seed=3, **kw)
        assert all(len(b) == 12 for b in batch)  # no end sampled: every step has followers
        many = [tuple(sampled.generate([1], seed=s, **kw)) for s in range(20)]
        assert len(set(many)) > 1


def _argmax(probs):
    best = max(probs.values())
    return {t for t, p in probs.items() if p == best}


@pytest.mark.parametrize("model", ["ngram", "infgram", "kn"])
def test_greedy_top_k_1_and_cold_temperature_give_argmax(sampled, model):
    history = [1, 2]
    for _ in range(8):
        if model == "kn":
            probs = sampled.kn_ntd(history, n=3, full=True).probs
        else:
            d = sampled.ntd(history[-2:]) if model == "ngram" else sampled.infgram_ntd(history)
            probs = dict(d.counts)
            if d.end_count:
                probs[END] = d.end_count
        best = _argmax(probs)
        for seed in range(3):
            one = sampled.generate(history, max_new_tokens=1, model=model, n=3, top_k=1, seed=seed)
            cold = sampled.generate(history, max_new_tokens=1, model=model, n=3,
                                    temperature=1e-6, seed=seed)
            zero = sampled.generate(history, max_new_tokens=1, model=model, n=3,
                                    temperature=0.0, seed=seed)
            for got in (one, cold, zero):
                assert (got[0] if got else END) in best
        nxt = min(t for t in best)
        if nxt == END:
            break
        history.append(nxt)


def test_ngram_backs_off_and_end_stops(sampled):
    # [4, 3] never occurs: back off to [3] whose followers are 1 (x2)
    assert sampled.generate([4, 3], max_new_tokens=1, model="ngram", n=3, seed=0) == [1]
    # after 4: END, 4, 1 once each; top_k=1 breaks ties by id, END (-1) first
    assert sampled.generate([1, 0, 4], max_new_tokens=5, model="ngram", n=2, top_k=1) == []
    # without ends: 1 (tie with 4), then 2 (4 of 10 after 1), then 1 (2 of 5 after 2)
    assert sampled.generate([1, 0, 4], max_new_tokens=3, model="ngram", n=2, top_k=1,
                            stop_at_doc_end=False) == [1, 2, 1]
    # [2, 4, 4, 1] is only followed by the end: the ∞-gram backs off to shorter suffixes
    assert sampled.infgram_ntd([2, 4, 4, 1]).counts == {}
    assert sampled.generate([2, 4, 4, 1], max_new_tokens=1, model="infgram",
                            stop_at_doc_end=False, top_k=1) == [2]


# ---------------------------------------------------------------------------- discounts


def _shard_docs(eng, docs):
    """The documents of each shard, in order."""
    out, i = [], 0
    for s in eng.shards:
        out.append(docs[i:i + s.num_docs])
        i += s.num_docs
    assert i == len(docs)
    return out


def _open_removed(docs, vocab, budget, gone):
    """An index of ``docs`` split by ``budget``, documents ``gone`` taken down."""
    from anygram import takedown
    tmp, eng = _open(docs, vocab, budget)
    if gone:
        takedown.take_down(tmp / "idx", sorted(gone))
        eng = Engine.open(tmp / "idx")
    return tmp, eng


def _arrays(eng):
    from anygram.shards.local import _removed_bytes
    return ([(s.ds, s.sa, s.ptr_width) for s in eng.shards],
            [_removed_bytes(m) for m in eng._core.shards._members])


def _decode(ds, p, order, w):
    sep = (1 << (8 * w)) - 1
    toks = [int.from_bytes(bytes(ds[p + j * w:p + (j + 1) * w]), "little") for j in range(order)]
    return tuple(END if t == sep else t for t in toks)


@settings(max_examples=60)
@given(corpora(), st.data())
def test_count_of_counts_equals_brute_force(case, data):
    """Exact over any number of shards (the whole corpus's count-of-counts), with takedowns;
    with windows, the types whose position is in a window (twin: the naive suffix arrays)."""
    from anygram.kernels.lm import count_of_counts
    vocab, _, docs, budget = case
    gone = data.draw(st.sets(st.integers(0, len(docs) - 1)))
    tmp, eng = _open_removed(docs, vocab, budget, gone)
    try:
        kept = [d for i, d in enumerate(docs) if i not in gone]
        shards, removed = _arrays(eng)
        per, first = [], 0
        for s in _shard_docs(eng, docs):
            per.append({i - first for i in gone if first <= i < first + len(s)})
            first += len(s)
        sizes = [s.sa.shape[0] // s.ptr_width for s in eng.shards]
        cover = [np.array([[a, a + 3] for a in range(0, n, 3)], dtype=np.int64) for n in sizes]
        some = [np.array([[a, a + 2] for a in sorted(data.draw(st.sets(st.sampled_from(
            range(0, n, 2)))))], dtype=np.int64).reshape(-1, 2) for n in sizes]
        for order in (2, 3, 4):
            for cont in (False, True):
                want = ref.count_of_counts(kept, order, 3, continuation=cont)
                got = count_of_counts(shards, eng.token_width, order, 3, continuation=cont,
                                      removed=removed)
                assert got.tolist() == want, (docs, gone, budget, order, cont)
                # windows covering every table: every type's position is in one
                whole = count_of_counts(shards, eng.token_width, order, 3, continuation=cont,
                                        removed=removed, windows=cover)
                assert whole.tolist() == want
                part = count_of_counts(shards, eng.token_width, order, 3, continuation=cont,
                                       removed=removed, windows=some)
                assert part.tolist() == ref.sampled_count_of_counts(
                    _shard_docs(eng, docs), per, order, 3, cont,
                    [w.tolist() for w in some], eng.token_width)
    finally:
        shutil.rmtree(tmp)


@settings(max_examples=40)
@given(corpora(), st.data())
def test_shard_candidates_and_lookups_equal_brute_force(case, data):
    """The two kernels alone: a shard's types counted 1..maxc (with their predecessors), and
    the lookup of those in another shard (disowned if it holds them, else counts added)."""
    from anygram.kernels.lm import _tail, lookup_candidates, shard_candidates
    vocab, _, docs, budget = case
    gone = data.draw(st.sets(st.integers(0, len(docs) - 1)))
    tmp, eng = _open_removed(docs, vocab, budget, gone)
    try:
        w, maxc = eng.token_width, 3
        shards, removed = _arrays(eng)
        kept, first = [], 0
        for s in _shard_docs(eng, docs):
            kept.append([d for i, d in enumerate(s) if first + i not in gone])
            first += len(s)
        for order in (2, 3):
            for cont in (False, True):
                tails = [_tail(ds, sa, k, w, order, rm) for (ds, sa, k), rm in zip(shards, removed)]
                cands = []
                for (ds, sa, k), rm, (tail, pred, _key, rank, run), mine in zip(
                        shards, removed, tails, kept):
                    ptrs, counts, preds = shard_candidates(
                        ds, sa, k, w, order, maxc, continuation=cont, removed=rm,
                        tail_rank=rank if run else -1, tail_pred=pred)
                    assert np.all(np.diff(ptrs) != 0)
                    keys = [_decode(ds, p, order, w) for p in ptrs.tolist()]
                    assert [ref.key_bytes(g, w) for g in keys] == sorted(
                        ref.key_bytes(g, w) for g in keys)  # key order
                    got = dict(zip(keys, counts.tolist()))
                    if tail >= 0 and not run:
                        got[_decode(np.concatenate([ds, np.full(w, 255, np.uint8)]), tail,
                                    order, w)] = 1
                    want = {g: c for g, c in ref.kgram_counts(mine, order, cont).items()
                            if c <= maxc}
                    assert got == want
                    if cont:
                        every = ref.predecessors(mine, order)
                        sep = (1 << (8 * w)) - 1
                        for g, row, c in zip(keys, preds.tolist(), counts.tolist()):
                            assert {ref.BOS if x == sep else x for x in row[:c]} == every[g]
                    cands.append((ds, ptrs, counts, preds, keys))
                for s, (key_ds, ptrs, counts, preds, keys) in enumerate(cands):
                    for t, (ds, sa, k) in enumerate(shards):
                        if t == s:
                            continue
                        local = ref.kgram_counts(kept[t], order)
                        for disown in (False, True):
                            c2, p2 = counts.copy(), preds.copy()
                            alive = np.ones(len(keys), dtype=np.bool_)
                            lookup_candidates(key_ds, ptrs, order * w, ds, sa, k, w, maxc, c2,
                                              p2, alive, disown=disown, continuation=cont,
                                              removed=removed[t], tail=tails[t][0],
                                              tail_pred=tails[t][1])
                            for i, g in enumerate(keys):
                                if disown:
                                    assert alive[i] == (g not in local)
                                    continue
                                both = ref.kgram_counts(kept[s] + kept[t], order, cont)[g]
                                assert alive[i] == (both <= maxc)
                                if both <= maxc:
                                    assert c2[i] == both
    finally:
        shutil.rmtree(tmp)


@settings(max_examples=40)
@given(corpora(), st.data())
def test_estimate_discounts_equals_the_formula(case, data):
    """Exact for any number of shards: the discounts of the whole (kept) corpus."""
    vocab, _, docs, budget = case
    gone = data.draw(st.sets(st.integers(0, len(docs) - 1)))
    tmp, eng = _open_removed(docs, vocab, budget, gone)
    try:
        kept = [d for i, d in enumerate(docs) if i not in gone]
        for n in (2, 3, 4):
            got = eng.estimate_discounts(n)
            assert sorted(got) == list(range(2, n + 1))
            assert got == pytest.approx(ref.estimate_discounts(kept, n), abs=1e-15)
            assert all(0.0 <= d <= 1.0 for d in got.values())
    finally:
        shutil.rmtree(tmp)


def test_estimate_discounts_by_hand(tmp_path):
    # one document a b a b c: bigrams ab x2, ba, bc, c END -> n1 = 3, n2 = 1 -> D2 = 3/5
    build_index_from_ids([[0, 1, 0, 1, 2]], tmp_path / "idx", vocab_size=3)
    eng = Engine.open(tmp_path / "idx")
    assert eng.estimate_discounts(2) == {2: pytest.approx(3 / 5)}
    # n = 3: trigrams aba, bab, abc, bc END all once -> D3 = 1; bigrams by distinct
    # predecessors: ab {<s>, b} = 2, ba {a}, bc {a}, c END {b} -> n1 = 3, n2 = 1
    assert eng.estimate_discounts(3) == {2: pytest.approx(3 / 5), 3: 1.0}


def test_estimate_discounts_honours_takedowns(tmp_path):
    from anygram import takedown
    docs = [[0, 1, 2, 0, 1], [3, 1, 2, 1, 2], [0, 1, 0, 1, 1], [2, 2, 2]]
    build_index_from_ids(docs, tmp_path / "idx", vocab_size=4)
    takedown.take_down(tmp_path / "idx", [1, 3])
    eng = Engine.open(tmp_path / "idx")
    kept = [docs[0], docs[2]]
    for n in (2, 3, 4):
        assert eng.estimate_discounts(n) == pytest.approx(ref.estimate_discounts(kept, n))


def test_estimate_discounts_sampled(tmp_path):
    rng = np.random.default_rng(1)
    docs = [rng.zipf(1.6, size=int(rng.integers(5, 60))).clip(max=200).tolist()
            for _ in range(400)]
    build_index_from_ids(docs, tmp_path / "idx", vocab_size=201)
    eng = Engine.open(tmp_path / "idx")
    exact = eng.estimate_discounts(3)
    assert exact == pytest.approx(ref.estimate_discounts(docs, 3))
    assert eng.estimate_discounts(3, sample=10 ** 9) == exact  # more than the table: exact
    a = eng.estimate_discounts(3, sample=5000, seed=4)
    assert a == eng.estimate_discounts(3, sample=5000, seed=4)  # seeded
    assert a != exact
    for k in exact:
        assert a[k] == pytest.approx(exact[k], abs=0.08)
    # several shards: the same exact answer; a sample draws windows among all the shards
    build_index_from_ids(docs, tmp_path / "idx3", vocab_size=201,
                         shard_tokens=sum(len(d) + 1 for d in docs) // 3 + 1)
    eng3 = Engine.open(tmp_path / "idx3")
    assert eng3.num_shards >= 3
    assert eng3.estimate_discounts(3) == exact
    b = eng3.estimate_discounts(3, sample=8000, seed=4)
    assert b == eng3.estimate_discounts(3, sample=8000, seed=4)
    assert b != exact
    # 4,400 ranks a shard are 5 windows each covering a fifth of the keys: a draw is noisy
    # (sd ~0.07 for D2), the mean of 10 is not off
    many = [eng3.estimate_discounts(3, sample=8000, seed=s) for s in range(10)]
    for k in exact:
        assert np.mean([m[k] for m in many]) == pytest.approx(exact[k], abs=0.05)
    from anygram.lm.kneser_ney import SAMPLE_WINDOW, _sample_windows
    ws = _sample_windows([s.num_positions for s in eng3.shards], 5000, 4)
    assert sum(w.shape[0] for w in ws) == -(-5000 // SAMPLE_WINDOW)
    with pytest.raises(InvalidQueryError):
        eng.estimate_discounts(3, sample=0)
    with pytest.raises(InvalidQueryError):
        eng.estimate_discounts(1)


def test_kn_with_estimated_discounts(tmp_path):
    docs = [[0, 1, 2, 1, 0], [2, 2, 1], [], [1, 0, 3, 1, 2, 0, 1], [0, 1, 2, 2]]
    build_index_from_ids(docs, tmp_path / "idx", vocab_size=6)
    eng = Engine.open(tmp_path / "idx")
    for n in (2, 3, 4):
        est = eng.estimate_discounts(n)
        assert est == pytest.approx(ref.estimate_discounts(docs, n))
        for prompt in ([], [1], [0, 1], [2, 1, 0], [5], [3, 1, 2]):
            probs = {w: eng.kn_prob(prompt, w, n=n, discount="estimate") for w in
                     [*range(6), END]}
            assert math.fsum(r.prob for r in probs.values()) == pytest.approx(1.0, abs=1e-9)
            for w, r in probs.items():
                assert r.discounts == tuple(est[j] for j in range(2, r.order + 1))
                assert r.prob == pytest.approx(ref.kn_prob(docs, prompt, w, n, est), abs=1e-12)
            dist = eng.kn_ntd(prompt, n=n, discount="estimate", full=True)
            assert math.fsum(dist.probs.values()) == pytest.approx(1.0, abs=1e-9)
    est = eng.estimate_discounts(3)
    out = eng.generate([0], max_new_tokens=5, model="kn", n=3, discount="estimate", seed=1)
    assert out == eng.generate([0], max_new_tokens=5, model="kn", n=3,
                               discount=[est[2], est[3]], seed=1)
    for bad in ("guess", True, object(), [0.5, "x"], {2: 0.5}, b"ab", [0.5, None]):
        with pytest.raises(InvalidQueryError, match="discount"):
            eng.kn_prob([0], 1, n=3, discount=bad)
