"""Growing an index (anygram.index.grow, ``anygram add``): an index grown by adds answers what
a full build of the same documents answers, doc ids included; an interrupted add leaves the
index as it was."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from anygram import Engine, IndexNotFoundError
from anygram.cli import main
from anygram.index import grow
from anygram.index.build import build_index, build_index_from_ids
from anygram.tools import takedown

WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran"]


def _write(path, texts, start=0):
    path.write_text("".join(json.dumps({"text": t, "n": start + i}) + "\n"
                            for i, t in enumerate(texts)))
    return path


def _answers(engine: Engine, queries: list[str]) -> list:
    out = []
    for q in queries:
        out.append(engine.count(q).count)
        out.append(engine.ntd(q).to_dict())
        out.append(engine.infgram_prob(q, ord("t")).to_dict())
        s = engine.search_docs(q, max_docs=50, order="position", max_ctx_len=3)
        out.append([(h.doc_id, h.match_offset, h.text, h.metadata["metadata"]) for h in s.hits])
        out.append(engine.count_cnf([[q], ["a"]], max_diff_tokens=20).count)
    out.append([engine.get_doc(d).text for d in range(engine.num_docs)])
    return out


@settings(max_examples=25)
@given(st.lists(st.lists(st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join),
                         min_size=1, max_size=5), min_size=2, max_size=4),
       st.integers(20, 200))
def test_adds_answer_what_a_full_build_answers(tmp_path_factory, batches, budget):
    tmp = tmp_path_factory.mktemp("grow")
    texts = [t for b in batches for t in b]
    build_index(_write(tmp / "all.jsonl", texts), tmp / "full", shard_tokens=budget,
                progress=False)
    build_index(_write(tmp / "b0.jsonl", batches[0]), tmp / "grown", shard_tokens=budget,
                progress=False)
    done = len(batches[0])
    for i, batch in enumerate(batches[1:], 1):
        grow.add_documents(tmp / "grown", _write(tmp / f"b{i}.jsonl", batch, done),
                           shard_tokens=budget)
        done += len(batch)
    full, grown = Engine.open(tmp / "full"), Engine.open(tmp / "grown")
    assert grown.num_docs == full.num_docs == len(texts)
    queries = ["the", "cat sat", " a ", "dog ran on", "mat"]
    assert _answers(grown, queries) == _answers(full, queries)


def test_readers_keep_their_view_and_takedowns_stay(tmp_path):
    build_index(_write(tmp_path / "a.jsonl", ["the cat", "a dog"]), tmp_path / "idx",
                progress=False)
    takedown.take_down(tmp_path / "idx", [1])
    before = Engine.open(tmp_path / "idx")
    run = CliRunner().invoke(main, ["add", str(tmp_path / "idx"),
                                    str(_write(tmp_path / "b.jsonl", ["the cat sat"], 2)), "-q"])
    assert run.exit_code == 0, run.output
    summary = json.loads(run.output)
    assert summary["added_docs"] == 1 and summary["first_added_doc_id"] == 2
    assert before.count("the cat").count == 1 and before.num_docs == 2  # as it was
    after = Engine.open(tmp_path / "idx")
    assert after.count("the cat").count == 2 and after.num_docs == 3
    assert after.get_doc(1).removed and after.count("a dog").count == 0
    assert after.get_doc(2).text == "the cat sat"


def test_an_interrupted_add_leaves_the_index_as_it_was(tmp_path, monkeypatch):
    build_index(_write(tmp_path / "a.jsonl", ["the cat", "a dog"]), tmp_path / "idx",
                progress=False)
    real = grow.write_manifest

    def killed(*args):
        raise KeyboardInterrupt("killed before the manifest")

    monkeypatch.setattr(grow, "write_manifest", killed)
    with pytest.raises(KeyboardInterrupt):
        grow.add_documents(tmp_path / "idx", _write(tmp_path / "b.jsonl", ["the cat sat"]))
    assert (tmp_path / "idx" / "tokenized.1").exists()  # moved in, not listed
    e = Engine.open(tmp_path / "idx")  # ignored: the index as it was
    assert e.num_docs == 2 and e.count("the cat").count == 1
    monkeypatch.setattr(grow, "write_manifest", real)
    grow.add_documents(tmp_path / "idx", _write(tmp_path / "b.jsonl", ["the cat sat"]))
    e = Engine.open(tmp_path / "idx")
    assert e.num_docs == 3 and e.count("the cat").count == 2
    assert not [p for p in (tmp_path / "idx").iterdir() if p.name.startswith(".add-")]


def test_only_anygram_indexes_with_a_tokenizer_grow(tmp_path):
    with pytest.raises(IndexNotFoundError):
        grow.add_documents(tmp_path, _write(tmp_path / "a.jsonl", ["x"]))
    build_index_from_ids([[1, 2]], tmp_path / "ids", vocab_size=5)
    run = CliRunner().invoke(main, ["add", str(tmp_path / "ids"), str(tmp_path / "a.jsonl")])
    assert run.exit_code == 1 and "no tokenizer" in run.output
    assert Engine.open(tmp_path / "ids").num_docs == 1


@settings(max_examples=20)
@given(st.lists(st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join), min_size=1,
                max_size=12), st.integers(8, 60), st.integers(40, 400),
       st.sets(st.integers(0, 11), max_size=2))
def test_compact_changes_no_answer(tmp_path_factory, texts, small, big, gone):
    tmp = tmp_path_factory.mktemp("compact")
    build_index(_write(tmp / "c.jsonl", texts), tmp / "idx", shard_tokens=small,
                progress=False)
    gone = sorted(d for d in gone if d < len(texts))
    if gone:
        takedown.take_down(tmp / "idx", gone)
    queries = ["the", "cat sat", " a ", "dog ran on", "mat"]
    before = Engine.open(tmp / "idx")
    want, shards = _answers(before, queries), before.num_shards
    manifest = grow.compact(tmp / "idx", shard_tokens=big)
    after = Engine.open(tmp / "idx")
    assert _answers(after, queries) == want
    assert after.num_shards == len(manifest.shards) <= shards
    assert _answers(before, queries) == want  # a reader from before keeps its view
    assert not (tmp / ("idx" + grow.COMPACT_SUFFIX)).exists()


def test_an_interrupted_compact_leaves_the_index_as_it_was(tmp_path, monkeypatch):
    build_index(_write(tmp_path / "c.jsonl", ["the cat", "a dog", "the mat"]), tmp_path / "idx",
                shard_tokens=10, progress=False)
    shards = Engine.open(tmp_path / "idx").num_shards
    assert shards == 3

    def killed(a, b):
        raise KeyboardInterrupt("killed before the exchange")

    monkeypatch.setattr(grow, "exchange", killed)
    with pytest.raises(KeyboardInterrupt):
        grow.compact(tmp_path / "idx", shard_tokens=100)
    assert Engine.open(tmp_path / "idx").num_shards == 3
    monkeypatch.undo()
    run = CliRunner().invoke(main, ["compact", str(tmp_path / "idx"), "--shard-tokens", "100"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["shards"] == 1
    assert Engine.open(tmp_path / "idx").count("the").count == 2


def test_a_running_engine_sees_added_documents_and_their_takedown(tmp_path):
    build_index(_write(tmp_path / "a.jsonl", ["the cat", "a dog"]), tmp_path / "idx",
                progress=False)
    e = Engine.open(tmp_path / "idx")
    assert not e.refresh()
    grow.add_documents(tmp_path / "idx", _write(tmp_path / "b.jsonl", ["the cat sat"], 2))
    assert e.refresh() and e.num_docs == 3 and e.count("the cat").count == 2
    takedown.take_down(tmp_path / "idx", [2])  # a document the engine first saw added
    assert e.refresh() and e.count("the cat").count == 1 and e.get_doc(2).removed
    assert not e.refresh()


def test_compact_keeps_the_writers_lock_and_follows_a_link(tmp_path):
    import fcntl
    import os
    build_index(_write(tmp_path / "a.jsonl", ["the cat", "a dog", "the mat"]),
                tmp_path / "real", shard_tokens=10, progress=False)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    fd = os.open(tmp_path / "real" / "takedown.lock", os.O_RDWR | os.O_CREAT)
    try:
        grow.compact(tmp_path / "link", shard_tokens=100)
        # A writer that waited on the lock holds the file the index still has.
        assert os.fstat(fd).st_ino == (tmp_path / "real" / "takedown.lock").stat().st_ino
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    assert (tmp_path / "link").is_symlink() and Engine.open(tmp_path / "link").num_shards == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "link", "real"]
