"""search_docs: exact counts, distinct and reproducible hits, paging, takedown filtering.

Every property pages through all of a query's occurrences and compares them with the
reference's scan of the documents (``reference.visible_occurrences``), for each order.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import reference as ref
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from internals import set_removed
from test_documents import FEW, built, bytes_index, corpora

from anygram import AnygramError, Engine, InvalidQueryError, SearchResult, kernels
from anygram.cli import main
from anygram.index.build import build_index_from_ids


def query_of(draw, letters, docs):
    """A substring of a document (a likely hit) or a random string (a likely miss)."""
    if docs and draw(st.booleans()):
        d = draw(st.sampled_from(docs))
        a = draw(st.integers(0, len(d)))
        q = d[a:draw(st.integers(a, min(len(d), a + 4)))]
        if q:
            return q
    return draw(st.lists(st.sampled_from(letters), min_size=1, max_size=3))


def all_pages(eng: Engine, q, page: int, **kw) -> tuple[list, list[SearchResult]]:
    """Every hit, paging with next_offset from 0, and the pages."""
    hits, pages, offset = [], [], 0
    while True:
        r = eng.search_docs(q, max_docs=page, offset=offset, **kw)
        pages.append(r)
        hits.extend(r.hits)
        if r.next_offset is None:
            return hits, pages
        assert r.next_offset == offset + page
        offset = r.next_offset


def check_hits(hits, q, docs, corpus):
    """Each hit holds the query at match_offset and sits in the document of its position."""
    for h in hits:
        assert h.match_ids == q and h.match_len == len(q)
        g = ref.doc_at(corpus, h.shard, h.match_pos)
        assert h.doc_id == g and not h.removed
        start = ref.doc_table(corpus)[g][2]
        assert docs[g][h.start:h.start + len(h.token_ids)] == h.token_ids
        assert h.start + h.match_offset == h.match_pos - start


@FEW
@given(corpora(), st.data())
def test_paging_visits_every_occurrence_once_in_each_order(case, data):
    vocab, letters, docs, budget = case
    with built(docs, vocab, budget) as (eng, corpus):
        q = query_of(data.draw, letters, docs)
        expected = ref.visible_occurrences(corpus, q)
        page = data.draw(st.integers(1, 4))
        seed = data.draw(st.integers(0, 2**64 - 1))
        for order in ("position", "rank", "random"):
            hits, pages = all_pages(eng, q, page, order=order, seed=seed, max_ctx_len=2)
            assert all(p.count == len(expected) and not p.approx for p in pages)
            got = [(h.shard, h.match_pos) for h in hits]
            assert len(got) == len(set(got))  # distinct
            assert sorted(got) == expected
            if order == "position":
                assert got == expected
            if order == "rank":
                assert got == ref.rank_order(corpus, expected, eng.token_width)
            check_hits(hits, q, docs, corpus)
            # Stateless paging: the same page asked for again, or in one go, is the same.
            again = eng.search_docs(q, max_docs=len(expected) + 1, order=order, seed=seed,
                                    max_ctx_len=2)
            assert again.hits == hits and again.next_offset is None


@FEW
@given(corpora(), st.data())
def test_removed_documents_are_skipped_and_not_counted(case, data):
    vocab, letters, docs, budget = case
    with built(docs, vocab, budget) as (eng, corpus):
        removed = frozenset(data.draw(st.sets(st.integers(0, max(len(docs) - 1, 0)))))
        table = ref.doc_table(corpus)
        set_removed(eng, [np.array(sorted(local for g, (s2, local, _, _) in enumerate(table)
                                          if s2 == s and g in removed), dtype=np.int64)
                          for s in range(eng.num_shards)])
        q = query_of(data.draw, letters, docs)
        expected = ref.visible_occurrences(corpus, q, removed)
        for order in ("position", "rank", "random"):
            hits, pages = all_pages(eng, q, data.draw(st.integers(1, 3)), order=order)
            assert pages[0].count == len(expected)
            got = [(h.shard, h.match_pos) for h in hits]
            assert sorted(got) == expected and len(set(got)) == len(got)
            check_hits(hits, q, docs, corpus)


@FEW
@given(st.lists(st.lists(st.sampled_from([1, 2]), max_size=30), min_size=1, max_size=8),
       st.integers(6, 60), st.integers(1, 3))
def test_position_pages_of_a_frequent_query_equal_the_reference(docs, budget, page):
    """Early pages of a query far more frequent than the page end come from the bounded heap,
    later ones from partitioning; every page equals the reference's corpus order."""
    with built(docs, 3, budget) as (eng, corpus):
        expected = ref.visible_occurrences(corpus, [1])
        hits, pages = all_pages(eng, [1], page, order="position")
        assert [(h.shard, h.match_pos) for h in hits] == expected
        assert pages[0].count == len(expected)


def test_recorded_takedown_is_honoured_and_undone(tmp_path):
    from anygram import takedown

    docs = [[1, 2, 1], [1, 3], [2, 1, 1], [1]]
    build_index_from_ids(docs, tmp_path / "idx", vocab_size=5, shard_tokens=8)
    takedown.take_down(tmp_path / "idx", [1, 2])
    eng = Engine.open(tmp_path / "idx")
    for order in ("position", "rank", "random"):
        r = eng.search_docs([1], max_docs=100, order=order)
        assert r.count == eng.count([1]).count == 3  # documents 0 and 3 remain
        assert sorted(h.doc_id for h in r.hits) == [0, 0, 3]
    assert eng.get_doc(2).removed and not eng.get_doc(3).removed
    takedown.undo(tmp_path / "idx")
    eng = Engine.open(tmp_path / "idx")
    assert eng.search_docs([1], max_docs=100).count == 6


def test_random_order_is_reproducible_and_depends_on_the_seed(tmp_path):
    build_index_from_ids([[1, 2] * 100, [2, 1] * 50], tmp_path / "idx", vocab_size=5,
                         shard_tokens=120)
    eng = Engine.open(tmp_path / "idx")
    assert eng.num_shards > 1
    full = eng.search_docs([1], max_docs=1000, order="random", seed=3)
    assert full.count == 150 and len({(h.shard, h.match_pos) for h in full.hits}) == 150
    assert eng.search_docs([1], max_docs=1000, order="random", seed=3) == full
    other = eng.search_docs([1], max_docs=1000, order="random", seed=4)
    assert [h.match_pos for h in other.hits] != [h.match_pos for h in full.hits]
    ordered = eng.search_docs([1], max_docs=1000, order="position")
    assert [h.match_pos for h in full.hits] != [h.match_pos for h in ordered.hits]
    # Page k alone is the k-th slice of the whole sequence.
    page = eng.search_docs([1], max_docs=7, offset=21, order="random", seed=3)
    assert page.hits == full.hits[21:28] and page.next_offset == 28


def test_text_queries_and_decoded_hits(tmp_path):
    eng = bytes_index(tmp_path, [{"text": "the cat sat on the mat", "title": "a"},
                                 {"text": "naïve café, the end", "title": "b"}])
    r = eng.search_docs("the", max_ctx_len=4)
    assert r.count == 3 and r.next_offset is None
    assert [h.text for h in r.hits] == ["the cat", " on the mat", "é, the end"]
    assert [h.metadata["metadata"]["title"] for h in r.hits] == ["a", "a", "b"]
    cut = eng.search_docs("the", offset=2, max_ctx_len=3).hits[0]  # starts inside "é"
    assert (cut.text, cut.text_lossy) == ("\ufffd, the en", True)
    assert eng.search_docs("zebra").count == 0
    assert eng.search_docs("the", max_disp_len=3).hits[0].text == "th"  # 1 before, 2 from


def test_count_only_and_pages_past_the_end(tmp_path):
    build_index_from_ids([[1, 1, 1], [1]], tmp_path / "idx", vocab_size=3)
    eng = Engine.open(tmp_path / "idx")
    r = eng.search_docs([1], max_docs=0)
    assert (r.count, r.hits, r.next_offset) == (4, [], 0)
    r = eng.search_docs([1], offset=9)
    assert (r.count, r.hits, r.next_offset) == (4, [], None)
    r = eng.search_docs([1, 1], max_docs=1, offset=1, order="rank")
    assert (r.count, len(r.hits), r.next_offset) == (2, 1, None)
    assert r.to_dict()["hits"][0]["match_len"] == 2
    json.dumps(r.to_dict())


def test_position_order_is_capped(tmp_path):
    build_index_from_ids([[1] * 30], tmp_path / "idx", vocab_size=3)
    eng = Engine.open(tmp_path / "idx")
    with pytest.raises(InvalidQueryError, match="order='random'"):
        eng.search_docs([1], max_sorted=10)
    assert len(eng.search_docs([1], order="rank", max_sorted=10).hits) == 10
    assert eng.search_docs([1], max_sorted=10, max_docs=0).count == 30  # nothing to sort


@pytest.mark.parametrize("kw, message", [
    ({"query": []}, "must not be empty"),
    ({"query": [7]}, "valid ids are 0..4"),
    ({"query": [1], "order": "sorted"}, "order must be one of"),
    ({"query": [1], "max_docs": -1}, "max_docs"),
    ({"query": [1], "offset": -3}, "offset"),
    ({"query": [1], "seed": 1.5}, "seed must be an int"),
    ({"query": [1], "max_disp_len": 0}, "max_disp_len"),
    ({"query": [1], "max_sorted": 0}, "max_sorted"),
    ({"query": "a"}, "no tokenizer"),
])
def test_bad_arguments_raise_typed_errors(tmp_path, kw, message):
    build_index_from_ids([[1, 2]], tmp_path / "idx", vocab_size=5)
    eng = Engine.open(tmp_path / "idx")
    with pytest.raises(AnygramError, match=message):
        eng.search_docs(**kw)


def test_permute_kernel_equals_reference():
    for n in [0, 1, 2, 3, 4, 5, 17, 64, 65, 1000]:
        for seed in [0, 1, 2**64 - 1]:
            got = kernels.permute(np.arange(n, dtype=np.int64), n, np.uint64(seed)).tolist()
            assert got == ref.naive_permute(n, seed)
            assert sorted(got) == list(range(n))


def test_window_kernel_matches_reference_rules():
    # One document of 6 tokens at positions 1..6 (its separator at 0), then another.
    offsets = np.array([0, 7], dtype=np.uint64)
    ds = np.arange(10, dtype=np.uint8) + 100
    metaoff = np.array([0, 5], dtype=np.uint64)
    for qlen, before, after, around in [(2, 1, 1, True), (9, 1, 2, False), (0, 5, 5, True),
                                        (4, 2, 2, False)]:
        for p in range(1, 7):
            for hide in [np.zeros(0, dtype=bool), np.array([True])]:
                table, tokens = kernels.document_windows(
                    ds, 1, offsets, 10, metaoff, 12, 0, np.array([0]), np.array([p]), hide,
                    qlen, before, after, around)
                row = dict(zip(kernels.WINDOW_COLUMNS, table[0].tolist()))
                kw = ({"max_ctx_len": before} if around else {"max_disp_len": before + after})
                elo, ehi, eml = ref.naive_window(6, p - 1, qlen, **kw)
                if hide.shape[0]:
                    ehi = elo
                    eml = min(eml, max(0, ehi - (p - 1)))
                assert row["doc_len"] == 6 and (row["meta_lo"], row["meta_hi"]) == (0, 5)
                assert (row["start"], row["start"] + row["num_tokens"]) == (elo, ehi)
                assert row["match_offset"] == p - 1 - elo and row["match_len"] == eml
                assert tokens.tolist() == ds[1 + elo:1 + ehi].tolist()
    # Anchored at the start (no match), the second document (last: runs to n_pos), no metadata.
    table, tokens = kernels.document_windows(
        ds, 1, offsets, 10, np.zeros(0, dtype=np.uint64), 0, 5, np.array([1, 0]),
        np.array([-1, -1]), np.zeros(0, dtype=bool), 0, 0, 2, True)
    assert table.tolist() == [[6, 2, 0, 2, -1, 0, -1, -1], [5, 6, 0, 2, -1, 0, -1, -1]]
    assert tokens.tolist() == [108, 109, 101, 102]


@given(st.lists(st.integers(-2**40, 2**40)), st.integers(0, 40))
def test_smallest_kernel_equals_sorting(values, m):
    """Twin: the m smallest values are np.sort(values)[:m], duplicates included."""
    arr = np.array(values, dtype=np.int64)
    assert kernels.smallest(arr, m).tolist() == np.sort(arr)[:m].tolist()


@given(corpora(), st.data())
def test_smallest_positions_kernel_equals_sorting(case, data):
    """Twin: the m smallest positions of a rank range are np.sort(positions)[:m]."""
    vocab, _, docs, budget = case
    with built(docs, vocab, budget) as (eng, _):
        s = data.draw(st.integers(0, eng.num_shards - 1), label="shard")
        n = eng.shards[s].num_positions
        a = data.draw(st.integers(0, n), label="lo")
        b = data.draw(st.integers(a, n), label="hi")
        m = data.draw(st.integers(0, b - a + 2), label="m")
        sh = eng.shards[s]
        got = kernels.smallest_positions(sh.sa, sh.ptr_width, sh.token_width, a, b, m)
        assert got.tolist() == np.sort(eng.positions(s, a, b))[:m].tolist()


def test_docs_of_kernel_equals_searchsorted():
    rng = np.random.default_rng(0)
    for _ in range(50):
        offsets = np.unique(np.concatenate([[0], rng.integers(1, 200, 10)])).astype(np.uint64)
        w = int(rng.choice([1, 2, 4]))
        pos = rng.integers(0, 300, 40)
        want = np.searchsorted(offsets, pos.astype(np.uint64) * np.uint64(w), side="right") - 1
        assert kernels.docs_of(offsets, w, pos).tolist() == want.tolist()


# ----------------------------------------------------------------------------- CLI


def cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_cli_search_human_and_json(tmp_path):
    bytes_index(tmp_path, [{"text": "the cat sat on the mat", "title": "Cats"},
                           {"text": "a dog", "title": "Dogs"}])
    idx = tmp_path / "idx"
    r = cli("search", "--index", idx, "the", "--window", "4", "--max-docs", "1")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "2 occurrence(s); hits 1-1 (order position)"
    assert lines[2].startswith("doc 0 · shard 0 · pos 1 · 22 tokens · c.jsonl:0 · title: Cats")
    assert lines[3] == "  >>>the<<< cat …"
    assert lines[-1] == "more: --offset 1"
    r = cli("search", "--index", idx, "the", "--offset", "1", "--window", "3")
    assert r.stdout.splitlines()[3] == "  … on >>>the<<< ma …"
    r = cli("search", "--index", idx, "--ids", "116,104,101", "--order", "random",
            "--seed", "5", "--json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["token_ids"] == [116, 104, 101] and d["count"] == 2 and len(d["hits"]) == 2
    assert {h["match_pos"] for h in d["hits"]} == {1, 16}


def test_cli_search_without_tokenizer_shows_ids(tmp_path):
    build_index_from_ids([[1, 2, 3]], tmp_path / "idx", vocab_size=5)
    r = cli("search", "--index", tmp_path / "idx", "--ids", "2")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[3] == "  1 >>>2<<< 3"


@pytest.mark.parametrize("args, message", [
    (["--ids", "1", "--order", "position", "--offset", "0", "--max-docs", "1"], None),
    (["--ids", ""], "error: query must not be empty"),
    (["--ids", "99"], "error: query has token id 99"),
])
def test_cli_search_errors(tmp_path, args, message):
    build_index_from_ids([[1, 2, 3]], tmp_path / "idx", vocab_size=5)
    r = cli("search", "--index", tmp_path / "idx", *args)
    if message is None:
        assert r.exit_code == 0
        return
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.splitlines() == [r.stderr.strip()] and r.stderr.startswith(message)
