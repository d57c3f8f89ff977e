"""Named edge cases of the engine, each checked against the brute-force reference."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import reference as ref

from anygram import (
    Engine,
    IncompleteIndexError,
    IndexFormatError,
    IndexNotFoundError,
    IndexVersionError,
    InvalidQueryError,
    TokenizerError,
    TokenOutOfRangeError,
)
from anygram.index.build import build_index_from_ids


def _engine(tmp_path, docs, vocab=10, budget=None, name="idx"):
    m = build_index_from_ids(docs, tmp_path / name, vocab_size=vocab, shard_tokens=budget)
    corpus, i = [], 0
    for s in m.shards:
        corpus.append(docs[i:i + s.num_docs])
        i += s.num_docs
    return Engine.open(tmp_path / name), corpus


def _assert_all_queries(eng, corpus, queries, conts):
    for q in queries:
        assert eng.count(q).count == ref.naive_count(corpus, q), q
        pc, nxt, end = ref.naive_ntd(corpus, q)
        d = eng.ntd(q)
        assert (d.prompt_count, d.counts, d.end_count) == (pc, dict(nxt), end), q
        for c in conts:
            assert eng.prob(q, c).to_dict() == dict(zip(
                ("prompt_count", "cont_count", "prob"), ref.naive_prob(corpus, q, c)))
            r = eng.infgram_prob(q, c)
            assert (r.prompt_count, r.cont_count, r.prob, r.suffix_len) == \
                ref.naive_infgram_prob(corpus, q, c)


def test_empty_corpus(tmp_path):
    eng, corpus = _engine(tmp_path, [])
    assert (eng.num_docs, eng.num_tokens, eng.num_shards) == (0, 0, 1)
    assert eng.count([]).count == 0
    assert eng.count([1, 2]).count == 0
    assert eng.prob([1], 2).prob is None
    assert eng.prob([], 2).prob is None
    r = eng.infgram_prob([1, 2], 3)
    assert (r.prompt_count, r.prob, r.suffix_len) == (0, None, 0)
    assert eng.ntd([]).counts == {}


def test_one_empty_document(tmp_path):
    eng, corpus = _engine(tmp_path, [[]])
    assert eng.count([]).count == 1  # the separator is a position
    d = eng.ntd([])
    assert (d.prompt_count, d.counts, d.end_count) == (1, {}, 1)


def test_one_document(tmp_path):
    docs = [[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]]
    eng, corpus = _engine(tmp_path, docs)
    _assert_all_queries(eng, corpus, [[], [5], [1], [3, 5], [5, 3, 5], [9, 9]], [1, 5, 3])
    assert eng.count([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]).count == 1
    assert eng.count([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8]).count == 0  # longer than the corpus


def test_all_tokens_equal(tmp_path):
    docs = [[7] * 50, [7] * 13, [7] * 40]
    eng, corpus = _engine(tmp_path, docs, budget=60)
    assert eng.num_shards == 2
    _assert_all_queries(eng, corpus, [[7] * n for n in (0, 1, 2, 13, 14, 40, 49, 50, 51)], [7])
    assert eng.count([7] * 50).count == 1
    assert eng.infgram_prob([7] * 80, 7).suffix_len == 50


def test_query_at_end_of_shard(tmp_path):
    # The last tokens of every shard are [2, 2]: infini-gram puts all ntd mass on EOS here.
    docs = [[1, 2, 3, 2, 2], [2, 2, 5, 2, 2], [2, 3, 2, 2]]
    eng, corpus = _engine(tmp_path, docs, budget=6)
    assert eng.num_shards == 3
    _assert_all_queries(eng, corpus, [[2], [2, 2], [3, 2, 2], [2, 2, 5]], [2, 3, 5])
    d = eng.ntd([2])
    # By hand: 2 is followed by 3 twice, by 2 four times, by 5 once, and ends each shard.
    assert (d.prompt_count, d.counts, d.end_count) == (10, {3: 2, 2: 4, 5: 1}, 3)


def test_query_across_document_boundary(tmp_path):
    docs = [[1, 2, 3], [4, 5, 6], [1, 2, 3, 4]]
    eng, corpus = _engine(tmp_path, docs)
    assert eng.count([3, 4]).count == 1  # only inside the third document, never across docs
    assert eng.count([2, 3]).count == 2
    assert eng.ntd([3]).to_dict()["end_count"] == 1
    _assert_all_queries(eng, corpus, [[3, 4], [3], [6, 1], [6]], [1, 4])


@pytest.mark.parametrize("vocab", [255, 65535, 2**32 - 1])
def test_max_token_id(tmp_path, vocab):
    top = vocab - 1
    docs = [[top, 0, top], [top, top]]
    eng, corpus = _engine(tmp_path, docs, vocab=vocab)
    assert eng.token_width == {255: 1, 65535: 2, 2**32 - 1: 4}[vocab]
    _assert_all_queries(eng, corpus, [[top], [top, top], [0, top], []], [top, 0])
    with pytest.raises(TokenOutOfRangeError, match=str(top)):
        eng.count([vocab])  # the separator id is not a token


@pytest.mark.parametrize("vocab", [200, 60000, 100000])
def test_one_vs_many_shards_agree(tmp_path, vocab):
    rng = np.random.default_rng(vocab)
    docs = [rng.integers(0, 6, size=rng.integers(0, 40)).tolist() for _ in range(30)]
    one, _ = _engine(tmp_path, docs, vocab=vocab, name="one")
    many, corpus = _engine(tmp_path, docs, vocab=vocab, budget=50, name="many")
    assert many.num_shards > 3
    for q in ([], [1], [2, 3], [0, 0, 0], docs[3][:4], docs[7][2:9]):
        assert one.count(q) == many.count(q)
        assert one.ntd(q) == many.ntd(q)
        assert one.infgram_ntd(q + [5]) == many.infgram_ntd(q + [5])
        assert one.infgram_prob(q, 1) == many.infgram_prob(q, 1)


def test_numpy_queries_equal_lists(tmp_path):
    eng, _ = _engine(tmp_path, [[1, 2, 3, 1, 2]])
    assert eng.count(np.array([1, 2], dtype=np.uint16)) == eng.count([1, 2])
    assert eng.count((1, 2)) == eng.count([1, 2])
    assert eng.prob([1], np.int64(2)).cont_count == 2


@pytest.mark.parametrize("bad,err", [
    ([-1], TokenOutOfRangeError),
    ([10], TokenOutOfRangeError),
    ([2**70], TokenOutOfRangeError),
    ([1.0], InvalidQueryError),
    ([True], InvalidQueryError),
    (["1"], InvalidQueryError),
    ([[1]], InvalidQueryError),
    (None, InvalidQueryError),
    (5, InvalidQueryError),
    (np.array([1.5]), InvalidQueryError),
    (np.array([[1, 2]]), InvalidQueryError),
])
def test_bad_queries_raise_typed_errors(tmp_path, bad, err):
    eng, _ = _engine(tmp_path, [[1, 2, 3]])
    with pytest.raises(err):
        eng.count(bad)
    with pytest.raises(err):
        eng.ntd(bad)


def test_bad_arguments(tmp_path):
    eng, _ = _engine(tmp_path, [[1, 2, 3]])
    with pytest.raises(TokenOutOfRangeError):
        eng.prob([1], 10)
    with pytest.raises(InvalidQueryError):
        eng.prob([1], "2")  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError):
        eng.ntd([1], max_support=0)
    with pytest.raises(TokenizerError, match="no tokenizer"):
        eng.count("text without a tokenizer")


def test_results_are_json_safe(tmp_path):
    eng, _ = _engine(tmp_path, [[1, 2, 3, 1, 2, 4]])
    for r in (eng.count([1]), eng.find([1, 2]), eng.prob([1], 2), eng.ntd([1, 2]),
              eng.infgram_prob([9, 1], 2), eng.infgram_ntd([9, 1])):
        d = r.to_dict()
        assert json.loads(json.dumps(d)) == d
    assert eng.ntd([1, 2]).to_dict()["next_tokens"] == [
        {"token_id": 3, "count": 1, "prob": 0.5}, {"token_id": 4, "count": 1, "prob": 0.5}]


def test_engine_pickles_by_path(tmp_path):
    eng, _ = _engine(tmp_path, [[1, 2, 3, 1, 2, 4]])
    clone = pickle.loads(pickle.dumps(eng))
    assert clone.count([1, 2]) == eng.count([1, 2])
    assert clone.vocab_size == eng.vocab_size


def test_missing_index_is_refused(tmp_path):
    with pytest.raises(IndexNotFoundError, match="anygram build"):
        Engine.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexNotFoundError):
        Engine.open(tmp_path / "empty")


def test_truncated_file_is_refused(tmp_path):
    _engine(tmp_path, [[1, 2, 3] * 10])
    table = tmp_path / "idx" / "table.0"
    table.write_bytes(table.read_bytes()[:-1])
    with pytest.raises(IndexFormatError, match="rebuild"):
        Engine.open(tmp_path / "idx")


def test_changed_offsets_are_refused(tmp_path):
    _engine(tmp_path, [[1, 2, 3], [4, 5]])
    off = tmp_path / "idx" / "offset.0"
    data = bytearray(off.read_bytes())
    data[8] ^= 1
    off.write_bytes(bytes(data))
    # Refused on open by the sampled structural checks (a document must start at a
    # separator); the checksum is `anygram verify`'s, which reads the whole file.
    with pytest.raises(IndexFormatError, match="offset.0"):
        Engine.open(tmp_path / "idx")


def test_newer_format_version_is_refused(tmp_path):
    _engine(tmp_path, [[1, 2, 3]])
    mpath = tmp_path / "idx" / "manifest.json"
    m = json.loads(mpath.read_text())
    m["format_version"] = 99
    mpath.write_text(json.dumps(m))
    with pytest.raises(IndexVersionError, match="upgrade anygram"):
        Engine.open(tmp_path / "idx")


def test_unfinished_build_is_refused(tmp_path):
    _engine(tmp_path, [[1, 2, 3]])
    (tmp_path / "idx").rename(tmp_path / "idx.partial")
    (tmp_path / "idx.partial" / "manifest.json").unlink()
    with pytest.raises(IncompleteIndexError, match="resume"):
        Engine.open(tmp_path / "idx")
    with pytest.raises(IncompleteIndexError):
        Engine.open(tmp_path / "idx.partial")


@pytest.mark.parametrize("k", range(1, 9))
def test_shard_pointers_read_every_width(k, tmp_path):
    """Shard.pointers (vectorised) reads k-byte little-endian entries as the kernels' _ptr,
    and refuses an entry past the token file (IndexFormatError) as the kernels do."""
    from anygram import kernels
    from anygram.index.reader import Shard

    rng = np.random.default_rng(k)
    values = rng.integers(0, 2 ** min(8 * k, 62), 50, dtype=np.uint64)
    sa = np.frombuffer(b"".join(int(v).to_bytes(k, "little") for v in values), dtype=np.uint8)
    # A token file of 2**62 bytes that takes no memory: every value is a pointer into it.
    huge = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), (2 ** 62,), (0,))
    shard = Shard("0", tmp_path, huge, sa, np.zeros(1, np.uint64), 1, k, None, None)
    for lo, hi in [(0, 50), (3, 17), (49, 50), (5, 5), (7, 3)]:
        got = shard.pointers(lo, hi)
        assert got.dtype == np.uint64 and got.tolist() == values[lo:max(lo, hi)].tolist()
    # A table of 50 positions: the kernel reads the same entries, and both refuse one past
    # the end of the 50-byte token file.
    values = rng.permutation(50).astype(np.uint64)
    sa = np.frombuffer(b"".join(int(v).to_bytes(k, "little") for v in values), dtype=np.uint8)
    shard = Shard("0", tmp_path, np.zeros(50, np.uint8), sa, np.zeros(1, np.uint64), 1, k,
                  None, None)
    for lo, hi in [(0, 50), (3, 17), (49, 50), (5, 5), (7, 3)]:
        got = shard.pointers(lo, hi)
        assert got.tolist() == values[lo:max(lo, hi)].tolist()
        assert got.tolist() == kernels.rank_positions(sa, k, 1, lo, max(lo, hi)).tolist()
    bad = np.frombuffer(sa.tobytes()[:-k] + (50).to_bytes(k, "little"), dtype=np.uint8)
    shard = Shard("0", tmp_path, np.zeros(50, np.uint8), bad, np.zeros(1, np.uint64), 1, k,
                  None, None)
    with pytest.raises(IndexFormatError):
        shard.pointers(40, 50)
    with pytest.raises(IndexFormatError):
        kernels.rank_positions(bad, k, 1, 40, 50)
    assert shard.pointers(0, 49).tolist() == values[:49].tolist()


def test_several_indexes_as_one_corpus_keep_their_common_tokenizer(tmp_path):
    from anygram import TokenizerError, build_index

    for name, text in (("a", "natural language"), ("b", "language models")):
        (tmp_path / f"{name}.jsonl").write_text(json.dumps({"text": text}) + "\n")
        build_index(tmp_path / f"{name}.jsonl", tmp_path / name, tokenizer="bytes",
                    progress=False)
    both = Engine.open([tmp_path / "a", tmp_path / "b"])
    assert both.tokenizer is not None and both.count("language").count == 2
    # built with another tokenizer: refused together, and as an override
    from anygram.index.build import build_index_from_ids
    build_index_from_ids([[1, 2]], tmp_path / "c", vocab_size=255)
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["tokenizer"] is None
    with pytest.raises(TokenizerError, match="different tokenizers"):
        Engine.open([tmp_path / "a", tmp_path / "c"])


def test_a_tokenizer_unlike_the_index_s_is_refused_unless_forced(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from anygram import TokenizerError, build_index

    (tmp_path / "c.jsonl").write_text(json.dumps({"text": "natural language models"}) + "\n")
    build_index(tmp_path / "c.jsonl", tmp_path / "idx", tokenizer="bytes", progress=False)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(["natural language"], trainers.BpeTrainer(
        vocab_size=260, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(TokenizerError, match="another tokenizer"):
        Engine.open(tmp_path / "idx", tokenizer=tmp_path / "tokenizer.json")
    forced = Engine.open(tmp_path / "idx", tokenizer=tmp_path / "tokenizer.json",
                         force_tokenizer=True)
    assert forced.tokenizer is not None and forced.tokenizer.kind == "hf"
    assert Engine.open(tmp_path / "idx", tokenizer="bytes").count("language").count == 1


def test_cnf_extremes_are_answered_or_typed(tmp_path):
    """max_diff_tokens of 2**63 and more is the whole document (it overflowed the kernels'
    int64); a CNF nested 3,000 deep is an InvalidQueryError (formatting it recursed)."""
    eng, _ = _engine(tmp_path, [[1, 2, 3, 1], [2, 5, 5, 5, 1], [1]])
    whole = eng.count_cnf([[[1]], [[2]]], max_diff_tokens=1000, anchor=0).count
    assert whole == 3
    for d in (2 ** 62, 2 ** 63 - 1, 2 ** 63, 2 ** 64, 10 ** 30):
        assert eng.count_cnf([[[1]], [[2]]], max_diff_tokens=d, anchor=0).count == whole
        assert eng.find_cnf([[[1]], [[2]]], max_diff_tokens=d, anchor=0).count == whole
    deep: list = [[1]]
    for _ in range(3000):
        deep = [deep]
    for call in (eng.count_cnf, eng.count_docs_with_all, eng.count, eng.search_docs):
        with pytest.raises(InvalidQueryError):
            call(deep)


def test_same_directory_twice_is_refused(tmp_path):
    _engine(tmp_path, [[1, 2]])
    with pytest.raises(IndexFormatError, match="twice"):
        Engine.open([tmp_path / "idx", tmp_path / "idx" / ".." / "idx"])
