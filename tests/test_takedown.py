"""Takedown: a removed document contributes nothing to any query; undo restores answers."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import reference as ref
from hypothesis import given
from hypothesis import strategies as st

from anygram import Engine, InvalidQueryError, build_index
from anygram import takedown as td
from anygram.index.build import build_index_from_ids


def _split(manifest, docs):
    corpus, i = [], 0
    for s in manifest.shards:
        corpus.append(docs[i:i + s.num_docs])
        i += s.num_docs
    return corpus


def _without(corpus, removed):
    """The reference corpus with the removed global doc ids deleted (shards kept)."""
    out, g = [], 0
    for shard in corpus:
        out.append([d for i, d in enumerate(shard) if g + i not in removed])
        g += len(shard)
    return out


@st.composite
def cases(draw):
    docs = draw(st.lists(st.lists(st.integers(0, 2), max_size=10), min_size=1, max_size=7))
    removed = draw(st.sets(st.integers(0, len(docs) - 1), max_size=len(docs)))
    budget = draw(st.integers(3, 40))
    return docs, removed, budget


@given(cases(), st.data())
def test_removed_documents_contribute_nothing(case, data):
    docs, removed, budget = case
    tmp = Path(tempfile.mkdtemp(prefix="anygram-td-"))
    try:
        # Most 1- and 2-token prompts in the next-token tables (their counts are raw).
        m = build_index_from_ids(docs, tmp / "idx", vocab_size=3, shard_tokens=budget,
                                 ntd_threshold=1 + budget % 2)
        corpus = _split(m, docs)
        td.take_down(tmp / "idx", removed)
        eng = Engine.open(tmp / "idx")
        kept = _without(corpus, removed)
        for _ in range(4):
            q = data.draw(st.lists(st.integers(0, 2), max_size=4))
            c = data.draw(st.integers(0, 2))
            assert eng.count(q).count == ref.naive_count(kept, q)
            pc, nxt, end = ref.naive_ntd(kept, q)
            d = eng.ntd(q)
            assert (d.prompt_count, d.counts, d.end_count) == (pc, dict(nxt), end)
            r = eng.prob(q, c)
            assert (r.prompt_count, r.cont_count, r.prob) == ref.naive_prob(kept, q, c)
            r = eng.infgram_prob(q, c)
            assert (r.prompt_count, r.cont_count, r.prob, r.suffix_len) == \
                ref.naive_infgram_prob(kept, q, c)
            pc, nxt, end, n = ref.naive_infgram_ntd(kept, q)
            d = eng.infgram_ntd(q)
            assert (d.prompt_count, d.counts, d.end_count, d.suffix_len) == (pc, dict(nxt), end, n)
        # undo restores the exact answers of the full corpus
        td.undo(tmp / "idx")
        eng = Engine.open(tmp / "idx")
        for q in ([], [0], [1, 2], [2, 2, 2]):
            assert eng.count(q).count == ref.naive_count(corpus, q)
            assert eng.ntd(q).counts == dict(ref.naive_ntd(corpus, q)[1])
    finally:
        shutil.rmtree(tmp)


def test_takedown_is_recorded_and_reversible(tmp_path):
    docs = [[1, 2, 3], [1, 2, 4], [5, 1, 2], [1, 2, 3]]
    build_index_from_ids(docs, tmp_path / "idx", vocab_size=10)
    assert td.take_down(tmp_path / "idx", [1]) == [1]
    assert td.take_down(tmp_path / "idx", [3]) == [1, 3]
    eng = Engine.open(tmp_path / "idx")
    assert eng.count([1, 2]).count == 2
    assert eng.ntd([1, 2]).counts == {3: 1}
    assert eng.is_removed(0, [0, 1, 2, 3]).tolist() == [False, True, False, True]
    assert Engine.open(tmp_path / "idx", takedown=False).count([1, 2]).count == 4
    assert td.undo(tmp_path / "idx", [3]) == [1]
    assert Engine.open(tmp_path / "idx").count([1, 2]).count == 3
    assert td.undo(tmp_path / "idx") == []
    assert not (tmp_path / "idx" / "takedown.json").exists()
    assert not list((tmp_path / "idx").glob("takedown-*"))
    assert Engine.open(tmp_path / "idx").count([1, 2]).count == 4


def test_takedown_bad_id_is_refused(tmp_path):
    build_index_from_ids([[1, 2], [3]], tmp_path / "idx", vocab_size=10)
    with pytest.raises(InvalidQueryError, match="out of range"):
        td.take_down(tmp_path / "idx", [2])
    assert not (tmp_path / "idx" / "takedown.json").exists()


def test_takedown_by_metadata_and_by_text(tmp_path):
    rows = [{"text": "alpha beta", "src": "a"}, {"text": "beta gamma", "src": "b"},
            {"text": "alpha beta", "src": "c"}, {"text": "alpha beta gamma", "src": "b"}]
    with open(tmp_path / "c.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    build_index(tmp_path / "c.jsonl", tmp_path / "idx", progress=False, shard_tokens=30)
    eng = Engine.open(tmp_path / "idx")
    assert td.docs_where(eng, "src", "b") == [1, 3]
    assert td.docs_where(eng, "linenum", 2) == [2]
    assert td.docs_with_text(eng, ["alpha beta"]) == [0, 2]  # whole documents only
    td.take_down(tmp_path / "idx", td.docs_with_text(eng, ["alpha beta"]))
    eng = Engine.open(tmp_path / "idx")
    assert eng.count("alpha beta").count == 1
    assert eng.count("gamma").count == 2


def test_multiple_directories_keep_their_own_takedowns(tmp_path):
    build_index_from_ids([[1, 2], [1, 2]], tmp_path / "a", vocab_size=10)
    build_index_from_ids([[1, 2], [2, 1]], tmp_path / "b", vocab_size=10)
    td.take_down(tmp_path / "b", [0])
    eng = Engine.open([tmp_path / "a", tmp_path / "b"])
    assert eng.count([1, 2]).count == 2
    assert eng.is_removed(1, [0, 1]).tolist() == [True, False]


def test_refresh_picks_up_a_takedown_made_after_open(tmp_path):
    """A running engine (a server's) honours a takedown once it refreshes: counts, search,
    documents and the language models' counts; refreshing without a change is a no-op."""
    docs = [[1, 2, 3], [2, 3, 4], [1, 2, 5], [5, 1, 2]]
    build_index_from_ids(docs, tmp_path / "idx", vocab_size=8, shard_tokens=9)
    eng = Engine.open(tmp_path / "idx")
    assert not eng.refresh()
    before = (eng.count([1, 2]).count, eng.kn_prob([1], 2, n=2).prob)
    td.take_down(tmp_path / "idx", [0])
    assert eng.count([1, 2]).count == before[0]  # not yet
    assert eng.refresh()
    assert not eng.refresh()
    assert eng.count([1, 2]).count == before[0] - 1
    assert [h.doc_id for h in eng.search_docs([1, 2]).hits] == [2, 3]
    assert eng.get_doc(0).removed
    with Engine.open(tmp_path / "idx") as fresh:
        assert eng.kn_prob([1], 2, n=2).prob == fresh.kn_prob([1], 2, n=2).prob
    td.undo(tmp_path / "idx")
    assert eng.refresh()
    assert (eng.count([1, 2]).count, eng.kn_prob([1], 2, n=2).prob) == before
    assert not eng.get_doc(0).removed
    untouched = Engine.open(tmp_path / "idx", takedown=False)
    td.take_down(tmp_path / "idx", [1])
    assert not untouched.refresh()


def test_batches_honour_takedowns(tmp_path):
    docs = [[1, 2, 3], [2, 3, 4], [1, 2, 5], [5, 1, 2], [1, 2, 3, 4]]
    build_index_from_ids(docs, tmp_path / "idx", vocab_size=8, shard_tokens=9)
    td.take_down(tmp_path / "idx", [0, 3])
    eng = Engine.open(tmp_path / "idx")
    qs = [[1, 2], [2, 3], [5], [1, 2, 3], [], [7], [5, 1], [3, 5, 1]]  # [5, 1]: taken down
    assert eng.count_many(qs) == [eng.count(q) for q in qs]
    assert eng.ntd_many(qs) == [eng.ntd(q) for q in qs]
    assert eng.ntd_many(qs, max_support=1) == [eng.ntd(q, max_support=1) for q in qs]
    pairs = [(q, 2) for q in qs]
    assert eng.prob_many(pairs) == [eng.prob(q, 2) for q in qs]
    assert eng.infgram_prob_many(pairs) == [eng.infgram_prob(q, 2) for q in qs]
    assert eng.infgram_ntd_many(qs) == [eng.infgram_ntd(q) for q in qs]


def test_concurrent_takedowns_in_processes_lose_none(tmp_path):
    """Four `anygram takedown` processes at once: each waits for the lock, so every
    document ends up removed (without it, all four built the same generation and only the
    last one's document stayed removed)."""
    import os
    import subprocess
    import sys

    build_index_from_ids([[i % 7, 1, 2] for i in range(40)], tmp_path / "idx", vocab_size=10)
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(src), *filter(None, [os.environ.get("PYTHONPATH")])])}
    procs = [subprocess.Popen([sys.executable, "-m", "anygram", "takedown", "--index",
                               str(tmp_path / "idx"), "--docs", str(d)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for d in (5, 10, 20, 30)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert td.removed_ids(tmp_path / "idx") == [5, 10, 20, 30]
    assert Engine.open(tmp_path / "idx").count([1, 2]).count == 36
    assert [p.name for p in (tmp_path / "idx").glob("takedown-*")] == ["takedown-4"]


def test_takedown_ids_must_be_ints(tmp_path):
    build_index_from_ids([[1, 2], [3]], tmp_path / "idx", vocab_size=10)
    for bad in (["a"], [1.5], [None], [True]):
        with pytest.raises(InvalidQueryError, match="document id"):
            td.take_down(tmp_path / "idx", bad)
    assert td.removed_ids(tmp_path / "idx") == []
