"""Document retrieval: by id, by position, by rank, checked against the reference.

Property tests run on random small corpora split over 1..4 shards (the shared helpers
``corpora`` and ``built`` are used by ``test_search.py`` too); named cases cover document
edges, lenient decoding, metadata, taken-down documents, typed errors and the CLI.
"""

from __future__ import annotations

import json
import pickle
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import reference as ref
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from internals import set_removed

from anygram import DocWindow, Engine, InvalidQueryError, build_index
from anygram.cli import main
from anygram.index.build import build_index_from_ids

# Each property builds an index per example: a quarter of the default example count keeps
# the file fast (ANYGRAM_MAX_EXAMPLES still scales it).
FEW = settings(max_examples=max(10, settings.default.max_examples // 4))

# (vocab_size, alphabet): ordinary ids and byte-order traps for u8, u16 and u32 indexes.
ALPHABETS = [
    (3, [0, 1, 2]),
    (65535, [1, 0xFF, 0x1FF, 0xFF00, 0xFFFE]),
    (2**32 - 1, [5, 0xFFFF, 0x10000, 2**32 - 2]),
]


@st.composite
def corpora(draw, max_docs: int = 7, max_len: int = 12):
    """``(vocab, letters, docs, shard_tokens)``: small corpora with dense repeats."""
    vocab, alphabet = draw(st.sampled_from(ALPHABETS))
    letters = alphabet[:draw(st.integers(1, len(alphabet)))]
    docs = draw(st.lists(st.lists(st.sampled_from(letters), max_size=max_len),
                         max_size=max_docs))
    return vocab, letters, docs, draw(st.integers(8, 80))


@contextmanager
def built(docs: list[list[int]], vocab: int, shard_tokens: int | None = None):
    """An engine over ``docs`` and the reference corpus with the same shard split."""
    tmp = Path(tempfile.mkdtemp(prefix="anygram-docs-"))
    try:
        m = build_index_from_ids(docs, tmp / "idx", vocab_size=vocab, shard_tokens=shard_tokens)
        corpus, i = [], 0
        for s in m.shards:
            corpus.append(docs[i:i + s.num_docs])
            i += s.num_docs
        with Engine.open(tmp / "idx") as eng:
            yield eng, corpus
    finally:
        shutil.rmtree(tmp)


def token_positions(corpus: ref.Corpus) -> list[tuple[int, int, int]]:
    """``(global doc id, shard, pos)`` of every token of the corpus."""
    return [(g, s, p) for g, (s, _, a, b) in enumerate(ref.doc_table(corpus))
            for p in range(a, b)]


def expected_window(corpus, docs, shard, pos, **kw) -> tuple[int, list[int], int, int, int]:
    """``(doc_id, token_ids, start, match_offset, match_len)`` by the reference rules."""
    g = ref.doc_at(corpus, shard, pos)
    _, _, a, _ = ref.doc_table(corpus)[g]
    lo, hi, ml = ref.naive_window(len(docs[g]), pos - a, **kw)
    return g, docs[g][lo:hi], lo, pos - a - lo, ml


# ----------------------------------------------------------------------------- properties


@FEW
@given(corpora(), st.data())
def test_get_doc_returns_exactly_the_document(case, data):
    vocab, _, docs, budget = case
    with built(docs, vocab, budget) as (eng, corpus):
        assert eng.num_docs == len(docs)
        for g, doc in enumerate(docs):
            d = eng.get_doc(g)
            assert (d.doc_id, d.token_ids, d.doc_len, d.start) == (g, doc, len(doc), 0)
            assert (d.match_offset, d.match_len, d.match_pos, d.removed) == (None, 0, None, False)
            assert d.shard == ref.doc_table(corpus)[g][0]
            assert d.text is None and d.metadata is None  # no tokenizer, no metadata
        if docs:
            ids = data.draw(st.lists(st.integers(0, len(docs) - 1), max_size=6))
            cap = data.draw(st.integers(0, 5))
            batch = eng.get_docs(np.array(ids, dtype=np.int64), max_tokens=cap)
            assert [d.token_ids for d in batch] == [docs[g][:cap] for g in ids]
            assert batch == [eng.get_doc(g, max_tokens=cap) for g in ids]


@FEW
@given(corpora(), st.data())
def test_windows_by_pos_and_rank_equal_reference(case, data):
    vocab, _, docs, budget = case
    with built(docs, vocab, budget) as (eng, corpus):
        toks = token_positions(corpus)
        if not toks:
            return
        picks = data.draw(st.lists(st.sampled_from(toks), min_size=1, max_size=6))
        qlen = data.draw(st.integers(0, 6))
        kw = data.draw(st.sampled_from([{}, {"max_ctx_len": 0}, {"max_ctx_len": 2},
                                        {"max_disp_len": 1}, {"max_disp_len": 4},
                                        {"max_disp_len": 7}]))
        requests = [(s, p) for _, s, p in picks]
        got = eng.get_docs_by_pos(requests, query_len=qlen, **kw)
        for (g, s, p), w in zip(picks, got):
            exp = expected_window(corpus, docs, s, p, query_len=qlen, **kw)
            assert (w.doc_id, w.token_ids, w.start, w.match_offset, w.match_len) == exp
            assert (w.shard, w.match_pos, w.doc_len) == (s, p, len(docs[g]))
            assert w.match_ids == docs[g][p - ref.doc_table(corpus)[g][2]:][:w.match_len]
        # The rank that stores each position gives the same window.
        rank_of = {}
        for s in range(eng.num_shards):
            n = eng.shards[s].num_positions
            for r, p in enumerate(eng.positions(s, 0, n).tolist()):
                rank_of[s, p] = r
        by_rank = eng.get_docs_by_rank([(s, rank_of[s, p]) for s, p in requests],
                                       query_len=qlen, **kw)
        assert by_rank == got
        s, p = requests[0]
        assert eng.get_doc_by_rank(s, rank_of[s, p], query_len=qlen, **kw) == got[0]
        assert eng.get_doc_by_pos(s, p, query_len=qlen, **kw) == got[0]


# ----------------------------------------------------------------------------- named cases


def test_windows_at_document_edges_are_clipped(tmp_path):
    docs = [[1, 2, 3, 4, 5], [6, 7], [], [8]]
    build_index_from_ids(docs, tmp_path / "idx", vocab_size=10)
    eng = Engine.open(tmp_path / "idx")
    # Document 0 holds positions 1..5, document 1 positions 7..8, document 3 position 11.
    w = eng.get_doc_by_pos(0, 1, query_len=2, max_ctx_len=3)  # at the document start
    assert (w.token_ids, w.start, w.match_offset, w.match_len) == ([1, 2, 3, 4, 5], 0, 0, 2)
    w = eng.get_doc_by_pos(0, 5, query_len=4, max_ctx_len=1)  # match runs past the end
    assert (w.token_ids, w.start, w.match_offset, w.match_len) == ([4, 5], 3, 1, 1)
    w = eng.get_doc_by_pos(0, 8, query_len=1, max_disp_len=9)  # never crosses a separator
    assert (w.doc_id, w.token_ids, w.match_offset) == (1, [6, 7], 1)
    w = eng.get_doc_by_pos(0, 3, max_disp_len=1)  # 0 before, 1 from the match start
    assert (w.token_ids, w.match_offset, w.match_len) == ([3], 0, 0)
    w = eng.get_doc_by_pos(0, 3, query_len=3, max_disp_len=2)  # the match is cut
    assert (w.token_ids, w.match_offset, w.match_len) == ([2, 3], 1, 1)
    w = eng.get_doc_by_pos(0, 3, max_ctx_len=0)  # nothing asked for: an empty window
    assert (w.token_ids, w.start, w.match_offset, w.match_len) == ([], 2, 0, 0)
    w = eng.get_doc_by_pos(0, 11)  # one-token document
    assert (w.doc_id, w.token_ids, w.doc_len) == (3, [8], 1)
    assert eng.get_doc(2).token_ids == [] and eng.get_doc(2).doc_len == 0
    assert eng.get_doc(0, max_tokens=0).token_ids == []
    assert eng.get_doc(0, max_tokens=99).token_ids == [1, 2, 3, 4, 5]


def test_default_window_is_100_tokens_each_side(tmp_path):
    docs = [list(range(300))]
    build_index_from_ids(docs, tmp_path / "idx", vocab_size=300)
    w = Engine.open(tmp_path / "idx").get_doc_by_pos(0, 1 + 150, query_len=3)
    assert (w.start, len(w.token_ids), w.match_offset, w.match_len) == (50, 203, 100, 3)


def test_numpy_ints_and_arrays_are_accepted(tmp_path):
    build_index_from_ids([[1, 2], [3]], tmp_path / "idx", vocab_size=5)
    eng = Engine.open(tmp_path / "idx")
    assert eng.get_doc(np.int64(1)).token_ids == [3]
    assert eng.get_docs_by_pos(np.array([[0, 1], [0, 4]]))[1].token_ids == [3]
    assert eng.get_doc_by_pos(np.int32(0), np.uint8(2), query_len=np.int64(1)).match_ids == [2]


def bytes_index(tmp_path: Path, docs: list[dict]) -> Engine:
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs),
                    encoding="utf-8")
    build_index([path], tmp_path / "idx", tokenizer="bytes", progress=False)
    return Engine.open(tmp_path / "idx")


def test_window_cut_inside_a_character_decodes_leniently(tmp_path):
    eng = bytes_index(tmp_path, [{"text": "naïve café"}])
    whole = eng.get_doc(0)
    assert (whole.text, whole.text_lossy) == ("naïve café", False)
    cut = eng.get_doc(0, max_tokens=3)  # "na" + the first byte of "ï"
    assert cut.token_ids == list("naï".encode())[:3]
    assert (cut.text, cut.text_lossy) == ("na\ufffd", True)
    w = eng.get_doc_by_pos(0, 4, max_ctx_len=0, query_len=1)  # the second byte of "ï"
    assert (w.text, w.text_lossy) == ("\ufffd", True)
    raw = eng.get_doc(0, decode=False)
    assert (raw.text, raw.text_lossy) == (None, False)


def test_metadata_is_parsed(tmp_path):
    eng = bytes_index(tmp_path, [{"text": "abc", "title": "A", "n": 3},
                                 {"text": "de", "tags": ["x", "y"]}])
    src = str(tmp_path / "c.jsonl")
    assert eng.get_doc(0).metadata == {"path": src, "linenum": 0,
                                       "metadata": {"title": "A", "n": 3}}
    hit = eng.get_doc_by_pos(0, 6)
    assert hit.metadata == {"path": src, "linenum": 1, "metadata": {"tags": ["x", "y"]}}
    json.dumps(hit.to_dict())  # JSON-safe


def test_metadata_that_is_not_json_is_kept_raw(tmp_path):
    eng = bytes_index(tmp_path, [{"text": "abc"}, {"text": "de"}])
    eng.close()
    meta = tmp_path / "idx" / "metadata.0"
    size = meta.stat().st_size
    first = len(meta.read_bytes().split(b"\n")[0]) + 1
    # Same size (the manifest checks it): line 0 becomes non-JSON, line 1 a JSON list.
    line0 = b"x" * (first - 1) + b"\n"
    line1 = b"[" + b"1" * (size - first - 3) + b"]\n"
    meta.write_bytes(line0 + line1)
    eng = Engine.open(tmp_path / "idx")
    assert eng.get_doc(0).metadata == {"raw": "x" * (first - 1)}
    assert eng.get_doc(1).metadata == {"raw": line1.decode().rstrip()}


def test_removed_documents_reveal_nothing(tmp_path):
    build_index_from_ids([[1, 2], [3, 4], [5]], tmp_path / "idx", vocab_size=9)
    eng = Engine.open(tmp_path / "idx")
    set_removed(eng, [np.array([1], dtype=np.int64)])  # what takedown will record
    d = eng.get_doc(1)
    assert (d.removed, d.token_ids, d.text, d.metadata, d.doc_len) == (True, [], None, None, 2)
    w = eng.get_doc_by_pos(0, 5, query_len=1)
    assert (w.removed, w.token_ids, w.match_offset, w.match_pos) == (True, [], None, 5)
    assert [x.removed for x in eng.get_docs([0, 1, 2])] == [False, True, False]
    assert eng.get_doc(2).token_ids == [5]


def test_to_dict_round_trips_through_json(tmp_path):
    eng = bytes_index(tmp_path, [{"text": "hello world", "title": "t"}])
    w = eng.get_doc_by_pos(0, 7, query_len=5, max_ctx_len=2)
    d = json.loads(json.dumps(w.to_dict()))
    assert d == {"doc_id": 0, "shard": 0, "doc_len": 11, "start": 4,
                 "token_ids": list(b"o world"), "text": "o world", "text_lossy": False,
                 "match_pos": 7, "match_offset": 2, "match_len": 5,
                 "metadata": w.metadata, "removed": False}
    assert isinstance(w, DocWindow) and w.end == 11


def test_lazy_fields_equal_eager_ones(tmp_path):
    """A window built from the page (ids as an array, metadata as the raw line) reads, compares,
    prints and serialises exactly as one built from plain values."""
    eng = bytes_index(tmp_path, [{"text": "hello world", "title": "t"}, {"text": "ab"}])
    lazy = eng.search_docs("o", max_docs=5, decode=False).hits
    assert [type(h._token_ids) for h in lazy] == [np.ndarray] * 2  # not read yet
    decoded = eng.search_docs("o", max_docs=5).hits  # decoding read the ids already
    assert [h.token_ids for h in decoded] == [h.token_ids for h in lazy]
    for h in lazy:
        eager = DocWindow(*[getattr(h, f) for f in DocWindow.FIELDS])
        ids = h.token_ids
        assert type(ids) is list and all(type(t) is int for t in ids)
        assert h.token_ids is ids  # materialised once
        assert h.metadata == {"path": str(tmp_path / "c.jsonl"), "linenum": 0,
                              "metadata": {"title": "t"}}
        assert json.loads(h.metadata_line) == h.metadata and h.metadata_line.endswith("\n")
        assert eager.metadata_line is None  # made from the parsed dict
        assert h == eager and repr(h) == repr(eager) and h.to_dict() == eager.to_dict()
        assert h != DocWindow(*[getattr(h, f) for f in DocWindow.FIELDS[:-1]], True)
    for h in eng.search_docs("o", max_docs=5, decode=False).hits:  # unread lazy fields
        clone = pickle.loads(pickle.dumps(h))
        assert clone == h and clone.metadata_line == h.metadata_line
    with pytest.raises(TypeError):
        hash(lazy[0])
    with pytest.raises(AttributeError):
        lazy[0].token_ids = []  # type: ignore[misc]


@pytest.mark.parametrize("call, message", [
    (lambda e: e.get_doc(3), "0..2"),
    (lambda e: e.get_doc(-1), "out of range"),
    (lambda e: e.get_doc("1"), "must be an int"),
    (lambda e: e.get_doc(True), "must be an int"),
    (lambda e: e.get_doc(0, max_tokens=-1), "max_tokens"),
    (lambda e: e.get_docs(5), "list of ints"),
    (lambda e: e.get_doc_by_pos(1, 1), "shard is 1; valid values are 0..0"),
    (lambda e: e.get_doc_by_pos(-1, 1), "shard"),
    (lambda e: e.get_doc_by_pos(0, 8), "pos of shard 0 is 8; valid values are 0..7"),
    (lambda e: e.get_doc_by_pos(0, -1), "pos of shard 0"),
    (lambda e: e.get_doc_by_pos(0, 1.0), "must be an int"),
    (lambda e: e.get_doc_by_pos(0, 0), "separator before document 0"),
    (lambda e: e.get_doc_by_pos(0, 3), "separator before document 1"),
    (lambda e: e.get_doc_by_rank(0, 8), "rank of shard 0 is 8"),
    (lambda e: e.get_doc_by_rank(0, 7), "rank 7 of shard 0 points at the separator"),
    (lambda e: e.get_doc_by_pos(0, 1, query_len=-1), "query_len"),
    (lambda e: e.get_doc_by_pos(0, 1, max_disp_len=0), "max_disp_len"),
    (lambda e: e.get_doc_by_pos(0, 1, max_ctx_len=-2), "max_ctx_len"),
    (lambda e: e.get_doc_by_pos(0, 1, max_ctx_len=2, max_disp_len=2), "not both"),
    (lambda e: e.get_docs_by_pos([(0,)]), "pair"),
    (lambda e: e.get_docs_by_pos("ab"), r"list of \(shard, pos\) pairs"),
    (lambda e: e.get_docs_by_rank(np.zeros((2, 3), dtype=int)), "shape"),
    (lambda e: e.get_docs_by_pos([(0, 1), (0, 99)]), "pos of shard 0 is 99"),
])
def test_bad_input_raises_typed_errors(tmp_path, call, message):
    build_index_from_ids([[1, 2], [3, 4], [5]], tmp_path / "idx", vocab_size=9)
    eng = Engine.open(tmp_path / "idx")  # positions: 0 sep, 1-2, 3 sep, 4-5, 6 sep, 7
    with pytest.raises(InvalidQueryError, match=message):
        call(eng)


# ----------------------------------------------------------------------------- CLI


def cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_cli_get_doc(tmp_path):
    bytes_index(tmp_path, [{"text": "first doc", "title": "One"}, {"text": "second"}])
    idx = tmp_path / "idx"
    r = cli("get-doc", "--index", idx, "1", "--json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d["doc_id"], d["text"], d["token_ids"]) == (1, "second", list(b"second"))
    r = cli("get-doc", "--index", idx, "0", "--max-tokens", "5")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("doc 0")
    assert "One" in r.stdout.splitlines()[0] and "first" in r.stdout
    assert "first doc" not in r.stdout  # cut to 5 tokens
    r = cli("get-doc", "--index", idx, "7")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.startswith("error: doc_id 7 is out of range")
