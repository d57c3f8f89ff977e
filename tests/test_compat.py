"""Unit tests of the infini-gram drop-in shim ``anygram.compat.InfiniGramEngine``.

Small indexes built with ``build_index_from_ids``; expected answers come from
``tests/reference.py``. The comparison with the real infini-gram engine is in
``test_infinigram_interop.py``.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest
import reference as ref
from optional import infini_gram_engine

from anygram import IndexNotFoundError
from anygram.compat import InfiniGramEngine
from anygram.index.build import build_index_from_ids

EOS = 60000
# Shard 0 ends with a repeated token and doc 0 ends with 2: the cases where infini-gram's ntd
# collapses to {eos: prompt_cnt}.
DOCS = [[2, 3, 2, 4, 2], [5, 2, 2], [], [7, 8, 9, 7, 8, 1, 7, 8]]
CORPUS = [DOCS]  # one shard


@pytest.fixture(scope="module")
def idx(tmp_path_factory):
    d = tmp_path_factory.mktemp("compat") / "idx"
    build_index_from_ids(DOCS, d, vocab_size=65535)
    return str(d)


@pytest.fixture(scope="module")
def eng(idx):
    return InfiniGramEngine(idx, eos_token_id=EOS)


def _expected_ntd(corpus, prompt, eos):
    pc, nxt, end = ref.naive_ntd(corpus, prompt)
    counts = dict(nxt)
    if end:
        counts[eos] = counts.get(eos, 0) + end
    return {"prompt_cnt": pc,
            "result_by_token_id": {t: {"cont_cnt": c, "prob": c / pc}
                                   for t, c in sorted(counts.items())},
            "approx": False}


QUERIES = [[], [2], [2, 2], [2, 3], [7, 8], [7, 8, 1], [8], [9, 7, 8, 1, 7], [1, 2], [6],
           [2, 4, 2, 5]]


# ---------------------------------------------------------------------------- shapes and values


def test_count_shape_and_values(eng):
    for q in QUERIES:
        assert eng.count(q) == {"count": ref.naive_count(CORPUS, q), "approx": False}
    # The empty query counts every position, separators included (as infini-gram).
    assert eng.count([])["count"] == sum(len(d) + 1 for d in DOCS)


def test_find_shape(eng):
    for q in QUERIES:
        r = eng.find(q)
        assert set(r) == {"cnt", "segment_by_shard"}
        assert r["cnt"] == ref.naive_count(CORPUS, q)
        (seg,) = r["segment_by_shard"]
        assert isinstance(seg, tuple) and seg[1] - seg[0] == r["cnt"]


def test_prob_values_and_unseen_prompt(eng):
    for q, cont in itertools.product(QUERIES, [1, 2, 3, 8, 6]):
        pc, cc, p = ref.naive_prob(CORPUS, q, cont)
        assert eng.prob(q, cont) == {"prompt_cnt": pc, "cont_cnt": cc,
                                     "prob": -1.0 if p is None else p}
    assert eng.prob([6], 2) == {"prompt_cnt": 0, "cont_cnt": 0, "prob": -1.0}
    assert eng.prob([2, 2, 2], 2)["prob"] == -1.0


def test_ntd_maps_document_ends_to_eos(eng):
    for q in QUERIES:
        assert eng.ntd(q) == _expected_ntd(CORPUS, q, EOS)
    # [2] occurs 5 times: followed by 3, 4 and 2 once each, by a separator once, and once at the
    # very end of the shard: both ends are reported under eos.
    r = eng.ntd([2])
    assert r["result_by_token_id"][EOS] == {"cont_cnt": 2, "prob": 0.4}
    assert list(r["result_by_token_id"]) == [2, 3, 4, EOS]  # ordered by id, like a std::map
    assert eng.ntd([6]) == {"prompt_cnt": 0, "result_by_token_id": {}, "approx": False}


def test_ntd_merges_literal_eos_with_document_ends(idx):
    eng = InfiniGramEngine(idx, eos_token_id=1)  # id 1 occurs once, after [7, 8]
    r = eng.ntd([7, 8])
    # [7, 8] is followed by 9, by the literal 1, and by the end of the shard.
    assert r["result_by_token_id"] == {1: {"cont_cnt": 2, "prob": 2 / 3},
                                       9: {"cont_cnt": 1, "prob": 1 / 3}}


def test_ntd_is_exact_above_max_support(eng):
    exact = _expected_ntd(CORPUS, [], EOS)
    assert exact["prompt_cnt"] > 2
    assert eng.ntd([], max_support=2) == exact
    assert eng.infgram_ntd([6], max_support=1) == {**exact, "suffix_len": 0}


def test_ntd_can_sample_when_asked(idx):
    eng = InfiniGramEngine(idx, eos_token_id=EOS, exact_ntd=False)
    r = eng.ntd([], max_support=3)
    assert r["approx"] is True
    assert r["prompt_cnt"] == ref.naive_count(CORPUS, [])
    assert sum(v["cont_cnt"] for v in r["result_by_token_id"].values()) == r["prompt_cnt"]
    assert eng.ntd([7, 8], max_support=1000)["approx"] is False


def test_infgram_prob_and_ntd(eng):
    prompts = QUERIES + [[6, 2], [9, 9, 7, 8], [1, 2, 3, 2, 4], [6, 6, 6]]
    for q, cont in itertools.product(prompts, [2, 7, 8, 1]):
        pc, cc, p, n = ref.naive_infgram_prob(CORPUS, q, cont)
        assert eng.infgram_prob(q, cont) == {"prompt_cnt": pc, "cont_cnt": cc,
                                             "prob": -1.0 if p is None else p,
                                             "suffix_len": n}
    for q in prompts:
        n = ref.naive_suffix_len(CORPUS, q)
        expected = _expected_ntd(CORPUS, q[len(q) - n:], EOS)
        assert eng.infgram_ntd(q) == {**expected, "suffix_len": n}
    assert eng.infgram_prob([6, 6], 2)["suffix_len"] == 0


def test_total_doc_cnt(eng):
    assert eng.get_total_doc_cnt() == len(DOCS)


def test_values_are_plain_python_types(eng):
    r = eng.find([2])
    assert type(r["cnt"]) is int and all(type(x) is int for x in r["segment_by_shard"][0])
    r = eng.ntd([2])
    assert all(type(t) is int and type(v["cont_cnt"]) is int and type(v["prob"]) is float
               for t, v in r["result_by_token_id"].items())
    assert type(eng.prob([2], 3)["prob"]) is float
    assert type(eng.count([2])["count"]) is int


# ---------------------------------------------------------------------------- bad input


BAD_ID_LISTS = [
    [-1],            # negative id
    [65536],         # above the largest u16 id
    [2, 2**40],
    (2, 3),          # not a list
    "ab",
    None,
    5,
    [2.0],           # not ints
    [True],
    ["2"],
    [[2]],
]


@pytest.mark.parametrize("bad", BAD_ID_LISTS, ids=repr)
def test_bad_ids_give_error_dicts(eng, bad):
    msg = "must be a list of integers in range [0, 65535]"
    assert msg in eng.count(bad)["error"]
    assert msg in eng.find(bad)["error"]
    assert "prompt_ids must be a non-empty list of integers" in eng.prob(bad, 2)["error"]
    assert msg in eng.ntd(bad)["error"]
    assert "prompt_ids must be a non-empty list" in eng.infgram_prob(bad, 2)["error"]
    assert msg in eng.infgram_ntd(bad)["error"]


@pytest.mark.parametrize("bad", [-1, 65536, 2.0, None, "2", [2], True])
def test_bad_cont_id_gives_error_dict(eng, bad):
    want = {"error": "cont_id must be an integer in range [0, 65535]"}
    assert eng.prob([2], bad) == want
    assert eng.infgram_prob([2], bad) == want


@pytest.mark.parametrize("bad", [0, -3, 1.5, "10", True])
def test_bad_max_support_gives_error_dict(eng, bad):
    want = {"error": "max_support must be a positive integer"}
    assert eng.ntd([2], max_support=bad) == want
    assert eng.infgram_ntd([2], max_support=bad) == want


def test_separator_id_is_an_error_not_a_crash(eng):
    # infini-gram would match the separators themselves; anygram reserves the id.
    for r in (eng.count([65535]), eng.find([2, 65535]), eng.prob([65535], 2),
              eng.prob([2], 65535), eng.ntd([65535]), eng.infgram_ntd([65535]),
              eng.infgram_prob([2], 65535)):
        assert set(r) == {"error"} and "65535" in r["error"]


def test_empty_lists_are_allowed_everywhere(eng):
    # infini-gram allows an empty query/prompt in every method the shim implements.
    assert "error" not in eng.count([])
    assert "error" not in eng.find([])
    assert "error" not in eng.prob([], 2)
    assert "error" not in eng.ntd([])
    assert "error" not in eng.infgram_prob([], 2)
    assert eng.infgram_ntd([])["suffix_len"] == 0


def test_ids_above_vocab_size_are_valid_queries(idx):
    # As in infini-gram, vocab_size bounds eos_token_id, not the query ids.
    eng = InfiniGramEngine(idx, eos_token_id=5, vocab_size=10)
    assert eng.count([60000]) == {"count": 0, "approx": False}
    assert eng.prob([2], 60000)["cont_cnt"] == 0


# ---------------------------------------------------------------------------- constructor


@pytest.mark.parametrize("kwargs", [
    {"version": 5},
    {"version": 6},
    {"eos_token_id": 65535},              # not < vocab_size
    {"eos_token_id": -1},
    {"eos_token_id": 2.0},
    {"token_dtype": "u64"},
    {"token_dtype": "u8"},                # default vocab_size 65535 does not fit u8
    {"token_dtype": "u8", "vocab_size": 256},
    {"load_to_ram": 1},
    {"ds_prefetch_depth": -1},
    {"ds_prefetch_depth": 2, "sa_prefetch_depth": 1},
    {"max_support": 0},
    {"max_disp_len": -5},
])
def test_bad_constructor_arguments_raise_value_error(idx, kwargs):
    kwargs = {"eos_token_id": EOS, **kwargs}
    with pytest.raises(ValueError):
        InfiniGramEngine(idx, **kwargs)


def test_index_dir_must_be_str_or_list_of_str(idx):
    with pytest.raises(ValueError):
        InfiniGramEngine((idx,), eos_token_id=EOS)  # type: ignore[arg-type]
    with pytest.raises(IndexNotFoundError):
        InfiniGramEngine(idx + "-missing", eos_token_id=EOS)


def test_infini_gram_keyword_arguments_are_accepted(idx):
    eng = InfiniGramEngine(index_dir=[idx], eos_token_id=EOS, vocab_size=65535, version=4,
                           token_dtype="u16", load_to_ram=True, ds_prefetch_depth=1,
                           sa_prefetch_depth=3, od_prefetch_depth=3, bow_ids_path=None,
                           attribution_block_size=256, precompute_unigram_logprobs=False,
                           prev_shards_by_index_dir={}, max_support=10, max_clause_freq=10,
                           max_diff_tokens=10, maxnum=2, max_disp_len=20)
    assert eng.count([2]) == {"count": ref.naive_count(CORPUS, [2]), "approx": False}


def test_unigram_counts_and_shards(eng, idx):
    counts = eng.compute_unigram_counts(0)
    tokens = [t for d in DOCS for t in d]
    assert len(counts) == 65536  # every id below vocab_size, and the separator
    assert {t: c for t, c in counts.items() if c} == {
        **{t: tokens.count(t) for t in set(tokens)}, 65535: len(DOCS)}
    assert sum(counts.values()) == eng.count([])["count"]
    assert eng.compute_unigram_counts(1) == {"error": "s must be an integer in range [0, 1)"}
    (shards,) = eng.get_new_shards_by_index_dir().values()
    assert list(eng.get_new_shards_by_index_dir()) == [idx]
    assert [(s.tok_cnt, s.ds_size, s.doc_cnt) for s in shards] == [(20, 40, 4)]
    with pytest.raises(AttributeError):
        eng.no_such_method  # noqa: B018


def test_u8_and_u32_indexes(tmp_path):
    docs8 = [[1, 2, 254, 2], [254, 254], [0]]
    build_index_from_ids(docs8, tmp_path / "u8", vocab_size=255)
    e8 = InfiniGramEngine(str(tmp_path / "u8"), eos_token_id=0, vocab_size=255,
                          token_dtype="u8")
    assert e8.count([254]) == {"count": 3, "approx": False}
    assert e8.ntd([254]) == _expected_ntd([docs8], [254], 0)
    assert "255" in e8.count([256])["error"]

    big = 2**32 - 2
    docs32 = [[70000, big, 70000], [big, 5]]
    build_index_from_ids(docs32, tmp_path / "u32", vocab_size=2**32 - 1)
    e32 = InfiniGramEngine(str(tmp_path / "u32"), eos_token_id=1, vocab_size=2**32 - 1,
                           token_dtype="u32")
    assert e32.ntd([70000]) == _expected_ntd([docs32], [70000], 1)
    assert e32.prob([big], 5) == {"prompt_cnt": 2, "cont_cnt": 1, "prob": 0.5}
    assert "error" in e32.count([2**32 - 1])


# ---------------------------------------------------------------------------- many shards


def test_many_shards_are_numbered_as_infini_gram_does(tmp_path):
    rng = random.Random(7)
    docs = [[rng.randrange(4) for _ in range(rng.randrange(1, 6))] for _ in range(40)]
    m = build_index_from_ids(docs, tmp_path / "idx", vocab_size=65535, shard_tokens=8)
    names = [s.name for s in m.shards]
    assert len(names) >= 11
    eng = InfiniGramEngine(str(tmp_path / "idx"), eos_token_id=EOS)
    corpus, i = [], 0
    for s in m.shards:
        corpus.append(docs[i:i + s.num_docs])
        i += s.num_docs
    # infini-gram sorts the shard files as strings: tokenized.0, .1, .10, .11, .2, ...
    order = sorted(range(len(names)), key=lambda k: names[k])
    assert order != list(range(len(names)))
    for q in ([], [1], [2, 3], [0, 0]):
        r = eng.find(q)
        counts = [b - a for a, b in r["segment_by_shard"]]
        assert counts == [ref.naive_count([corpus[k]], q) for k in order]
        assert r["cnt"] == ref.naive_count(corpus, q)
        assert eng.ntd(q) == _expected_ntd(corpus, q, EOS)
    assert eng.get_total_doc_cnt() == len(docs)


def test_list_of_directories(tmp_path):
    a, b = [[1, 2, 3]], [[2, 3], [3]]
    build_index_from_ids(a, tmp_path / "a", vocab_size=1000)
    build_index_from_ids(b, tmp_path / "b", vocab_size=1000)
    eng = InfiniGramEngine([str(tmp_path / "b"), str(tmp_path / "a")], eos_token_id=99)
    r = eng.find([2, 3])
    assert r["cnt"] == 2 and [y - x for x, y in r["segment_by_shard"]] == [1, 1]
    assert [y - x for x, y in eng.find([3])["segment_by_shard"]] == [2, 1]
    assert eng.get_total_doc_cnt() == 3
    assert eng.ntd([3]) == _expected_ntd([b, a], [3], 99)


# ---------------------------------------------------------------------------- documents, CNF

DOC_KEYS = {"doc_ix", "doc_len", "disp_len", "needle_offset", "metadata", "token_ids", "blocked"}


def test_doc_results_have_infini_gram_shape_and_engine_values(eng):
    e = eng.native
    d = eng.get_doc_by_ix(3, 4)
    assert set(d) == DOC_KEYS
    assert d == {"doc_ix": 3, "doc_len": 8, "disp_len": 4, "needle_offset": 0, "metadata": "",
                 "token_ids": [7, 8, 9, 7], "blocked": False}
    assert eng.get_doc_by_ix_2(3, 2)["token_ids"] == [7, 8]
    # Ranks: the engine's window at the same rank; pointers are byte offsets (u16: 2 x pos).
    for rank in range(e.shards[0].num_positions):
        pos = int(e.positions(0, rank, rank + 1)[0])
        try:
            w = e.get_doc_by_rank(0, rank, max_disp_len=5)
        except Exception:  # a separator
            assert "error" in eng.get_doc_by_rank(0, rank, 5)
            assert "error" in eng.get_doc_by_ptr(0, 2 * pos, 5)
            continue
        got = eng.get_doc_by_rank(0, rank, 5)
        assert got == eng.get_doc_by_ptr(0, 2 * pos, 5)
        assert got["token_ids"] == w.token_ids and got["needle_offset"] == w.match_offset
        assert got["doc_ix"] == w.doc_id and got["doc_len"] == w.doc_len
        two = eng.get_doc_by_ptr_2(0, 2 * pos, 2, 1)
        assert two == eng.get_doc_by_rank_2(0, rank, 2, 1)
        assert two["token_ids"] == e.get_doc_by_pos(0, pos, query_len=2, max_ctx_len=1).token_ids
    assert eng.get_docs_by_ixs([0, 3], 2) == [eng.get_doc_by_ix(0, 2), eng.get_doc_by_ix(3, 2)]
    assert eng.get_docs_by_ptrs([(0, 2), (0, 4)], 3) == [eng.get_doc_by_ptr(0, 2, 3),
                                                        eng.get_doc_by_ptr(0, 4, 3)]
    assert eng.get_docs_by_ixs_2([(0, 1), (1, 9)]) == [eng.get_doc_by_ix_2(0, 1),
                                                     eng.get_doc_by_ix_2(1, 9)]


def test_doc_argument_errors(eng):
    assert eng.get_doc_by_ptr(0, 3, 5) == {"error": "ptr must be an even integer in range "
                                                    "[0, 40)"}  # misaligned (u16)
    assert "error" in eng.get_doc_by_ptr(0, 40, 5)
    assert eng.get_doc_by_ptr(1, 2, 5) == {"error": "s must be an integer in range [0, 1)"}
    assert eng.get_doc_by_rank(0, 99, 5) == {"error": "ptr must be an integer in range [0, 20)"}
    assert eng.get_doc_by_ix(4) == {"error": "doc_ix must be an integer in range [0, 4)"}
    assert eng.get_doc_by_ix(0, 0) == {"error": "max_disp_len must be a positive integer"}
    assert "error" in eng.get_doc_by_ptr(0, 0, 5)  # the first separator
    assert eng.get_doc_by_ix_2(0, -1) == {"error": "max_ctx_len must be a non-negative integer"}
    assert eng.get_doc_by_rank_2(0, 1, -1, 0) == {
        "error": "needle_len must be a non-negative integer"}
    assert "error" in eng.get_docs_by_ptrs([(0, 2), (0, 3)], 5)
    assert "error" in eng.get_docs_by_ixs("0")
    assert eng.get_docs_by_ranks([], 5) == []


def test_misaligned_u32_pointer_is_an_error(tmp_path):
    d = tmp_path / "u32"
    build_index_from_ids([[70000, 70001, 70002]], d, vocab_size=80000)
    e32 = InfiniGramEngine(str(d), eos_token_id=0, vocab_size=80000, token_dtype="u32")
    got = e32.get_doc_by_ptr(0, 8, 3)  # byte 8 = position 2 (token 70001)
    assert (got["token_ids"], got["needle_offset"]) == ([70000, 70001, 70002], 1)
    assert "multiple of 4" in e32.get_doc_by_ptr(0, 6, 3)["error"]
    assert e32.find_cnf([[[70001]]]) == {"cnt": 1, "approx": False, "ptrs_by_shard": [[8]]}


def test_search_docs_and_cnf_shapes(eng):
    r = eng.search_docs([7, 8], maxnum=5, max_disp_len=4)
    assert set(r) == {"cnt", "approx", "idxs", "documents"}
    assert r["cnt"] == ref.naive_count(CORPUS, [7, 8]) == 3 and r["idxs"] == [0, 1, 2]
    assert all(set(doc) == DOC_KEYS for doc in r["documents"])
    for doc in r["documents"]:
        o = doc["needle_offset"]
        assert doc["doc_ix"] == 3 and doc["token_ids"][o:o + 2] == [7, 8]
    assert len({tuple(doc["token_ids"]) for doc in r["documents"]}) == 3  # distinct hits
    assert eng.search_docs([7, 8], maxnum=5, max_disp_len=4) == r
    assert eng.search_docs([6]) == {"cnt": 0, "approx": False, "idxs": [], "documents": []}
    assert eng.search_docs([7, 8], maxnum=0) == {"error": "maxnum must be a positive integer"}
    cnf = [[[7, 8]], [[9]]]  # anchored on [9], the rarer clause
    count, ptrs = ref.compat_find_cnf(CORPUS, cnf, 2, 2)
    assert count == 1 and ptrs == [[2 * 12]]  # [7, 8] at 12 stands for 9 at 14
    assert eng.count_cnf(cnf, max_diff_tokens=2) == {"count": count, "approx": False}
    f = eng.find_cnf(cnf, max_diff_tokens=2)
    assert f == {"cnt": count, "approx": False, "ptrs_by_shard": ptrs}
    s = eng.search_docs_cnf(cnf, maxnum=10, max_disp_len=6, max_diff_tokens=2)
    assert s["cnt"] == f["cnt"] == len(s["documents"]) and s["idxs"] == [0]
    assert s["documents"] == [eng.get_doc_by_ptr(0, 24, 6)]
    assert eng.find_cnf([[[7, 8]], [[6]]]) == {"cnt": 0, "approx": False, "ptrs_by_shard": []}
    assert eng.find_cnf([[[7, 8]], [[2]]], max_diff_tokens=1) == {
        "cnt": 0, "approx": False, "ptrs_by_shard": [[]]}
    assert eng.count_cnf([[]]) == {"error": "cnf must be a non-empty, triply-nested list of "
                                            "integers in range [0, 65535]"}
    assert eng.find_cnf(cnf, max_diff_tokens=0) == {
        "error": "max_diff_tokens must be a positive integer"}


def test_taken_down_documents_are_blocked(tmp_path):
    from anygram.tools.takedown import take_down
    d = tmp_path / "td"
    build_index_from_ids(DOCS, d, vocab_size=65535)
    take_down(d, [3])
    e = InfiniGramEngine(str(d), eos_token_id=EOS)
    assert e.get_doc_by_ix(3) == {"doc_ix": 3, "doc_len": 8, "disp_len": 0, "needle_offset": 0,
                                  "metadata": "", "token_ids": [], "blocked": True}
    assert e.get_doc_by_ix(0)["blocked"] is False
    assert e.get_doc_by_ptr(0, 2 * 12, 4)["blocked"] is True  # pos 12 is in doc 3
    assert e.search_docs([7, 8])["cnt"] == 0
    assert e.count_cnf([[[7, 8]]])["count"] == 0


# ----------------------------------------------------------------- creativity, attribute


@pytest.fixture(scope="module")
def real_text(tmp_path_factory):
    """Standard-library docstrings as u16 word pieces in 3+ shards (``test_analysis``'s
    corpus), word starts in a bow file, both engines over the same directory, and a text
    spliced from corpus pieces, new combinations and an id the corpus never holds."""
    infini = infini_gram_engine()
    from test_analysis import PIECE, _docstrings

    root = tmp_path_factory.mktemp("compat_attr")
    pieces = [PIECE.findall(t) for t in _docstrings()]
    vocab = sorted({p for ps in pieces for p in ps})
    ids = {p: 3 * i + 1 for i, p in enumerate(vocab)}
    docs = [[ids[p] for p in ps] for ps in pieces]
    vocab_size = 3 * len(vocab) + 2
    m = build_index_from_ids(docs, root / "u16", vocab_size=vocab_size,
                             shard_tokens=sum(map(len, docs)) // 3 + 100)
    assert len(m.shards) >= 3
    bow = [ids[p] for p in vocab if p[0] == " "]
    (root / "bow.txt").write_text("\n".join(map(str, bow)) + "\n")
    rng = random.Random(0)
    text: list[int] = []
    while len(text) < 400:
        d = docs[rng.randrange(len(docs))]
        if len(d) > 20:
            a = rng.randrange(len(d) - 20)
            text += d[a:a + rng.randrange(5, 80)] + rng.sample(bow, 2) + [vocab_size - 1]
    kw = dict(index_dir=str(root / "u16"), eos_token_id=0, vocab_size=vocab_size,
              token_dtype="u16", ds_prefetch_depth=0, sa_prefetch_depth=0,
              od_prefetch_depth=0, precompute_unigram_logprobs=True,
              bow_ids_path=str(root / "bow.txt"))
    return {"ig": infini.InfiniGramEngine(**kw), "ours": InfiniGramEngine(**kw),
            "text": text, "dot": ids["."]}


def test_creativity_equals_infini_gram(real_text):
    ig, ours, text = real_text["ig"], real_text["ours"], real_text["text"]
    got = ours.creativity(text)
    assert got == ig.creativity(text)
    assert any(r - i > 5 for i, r in enumerate(got["rs"]))  # long matches
    assert any(r == i for i, r in enumerate(got["rs"]))  # and unseen tokens
    assert ours.creativity([]) == ig.creativity([]) == {"rs": []}


@pytest.mark.parametrize("kw", [
    {"delim_ids": [], "min_len": 1, "max_cnt": 10, "enforce_bow": False},
    {"delim_ids": ["dot"], "min_len": 2, "max_cnt": 5, "enforce_bow": False},
    {"delim_ids": [], "min_len": 1, "max_cnt": 10, "enforce_bow": True},
    {"delim_ids": ["dot"], "min_len": 3, "max_cnt": 3, "enforce_bow": True},
])
def test_attribute_equals_infini_gram(real_text, kw):
    ig, ours, text = real_text["ig"], real_text["ours"], real_text["text"]
    kw = {**kw, "delim_ids": [real_text["dot"] if d == "dot" else d for d in kw["delim_ids"]]}
    theirs, got = ig.attribute(text, **kw), ours.attribute(text, **kw)
    assert set(got) == set(theirs) == {"spans"}
    assert len(got["spans"]) > 3
    for a, b in zip(got["spans"], theirs["spans"], strict=True):
        assert set(a) == set(b)
        assert [a[k] for k in ("l", "r", "length", "count")] == \
            [b[k] for k in ("l", "r", "length", "count")]
        assert math.isclose(a["unigram_logprob_sum"], b["unigram_logprob_sum"], rel_tol=1e-12)
        assert a["docs"] == b["docs"]  # suffix-array order
        assert all(type(d["s"]) is int and type(d["ptr"]) is int for d in a["docs"])


def test_creativity_and_attribute_bad_input_like_infini_gram(real_text):
    ig, ours, text = real_text["ig"], real_text["ours"], real_text["text"][:20]
    for bad in ("abc", [1, "2"], [-1], [70000], (1, 2), None):
        assert ours.creativity(bad) == ig.creativity(bad)
    for args in ((None, [], 1, 1, False), (text, None, 1, 1, False), (text, [-1], 1, 1, False),
                 (text, [], -1, 1, False), (text, [], 1.0, 1, False), (text, [], 1, 0, False),
                 (text, [], 1, True, False), (text, [], 1, 1, 1), (text, [], 1, 1, None)):
        got = ours.attribute(*args)
        assert set(got) == {"error"} and got == ig.attribute(*args), args
    # The document separator cannot be queried here (infini-gram matches separators).
    assert set(ours.creativity([65535])) == {"error"}


def test_attribute_without_bow_ids_finds_no_word_starts(idx):
    eng = InfiniGramEngine(idx, eos_token_id=EOS)
    assert eng.attribute([7, 8, 9], [], 1, 10, True) == {"spans": []}
    got = eng.attribute([7, 8, 9], [], 1, 10, False)["spans"]
    assert [(s["l"], s["r"], s["count"]) for s in got] == [(0, 3, 1)]
    # A separator before every document (the empty one included).
    assert got[0]["docs"] == [{"s": 0, "ptr": 2 * (len(DOCS[0]) + len(DOCS[1]) + 4)}]
