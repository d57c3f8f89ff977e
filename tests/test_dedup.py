"""Exact-substring dedup (anygram.tools.dedup, ``anygram dedup``) against a brute-force twin:
random corpora with planted duplicates, over 1..4 shards, with taken-down documents."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from anygram import Engine, InvalidQueryError, TokenizerError
from anygram.cli import main
from anygram.index.build import build_index, build_index_from_ids
from anygram.tools import dedup, takedown


def reference(docs: list[list[int]], k: int, gone: set[int] = frozenset()
              ) -> list[tuple[int, int, int]]:
    """The removed ranges: walk the live documents in order with the set of K-windows seen
    so far; a window already seen is removed; the removed windows of a document merged."""
    seen: set[tuple[int, ...]] = set()
    out = []
    for d, doc in enumerate(docs):
        if d in gone:
            continue
        spans: list[list[int]] = []
        for i in range(len(doc) - k + 1):
            win = tuple(doc[i:i + k])
            if win in seen:
                if spans and i <= spans[-1][1]:
                    spans[-1][1] = i + k
                else:
                    spans.append([i, i + k])
            seen.add(win)
        out += [(d, a, b) for a, b in spans]
    return out


@st.composite
def corpora(draw):
    alphabet = draw(st.sampled_from([[0, 1], [0, 1, 2], [5, 0xFF, 0x1FF, 0xFF00]]))
    docs = draw(st.lists(st.lists(st.sampled_from(alphabet), max_size=14), min_size=1,
                         max_size=7))
    for _ in range(draw(st.integers(0, 3))):  # planted duplicates: a piece copied elsewhere
        src, dst = draw(st.sampled_from(range(len(docs)))), draw(st.sampled_from(range(len(docs))))
        if docs[src]:
            a = draw(st.integers(0, len(docs[src]) - 1))
            piece = docs[src][a:a + draw(st.integers(1, 8))]
            at = draw(st.integers(0, len(docs[dst])))
            docs[dst] = docs[dst][:at] + piece + docs[dst][at:]
    gone = draw(st.sets(st.integers(0, len(docs) - 1), max_size=2))
    return docs, draw(st.integers(1, 5)), draw(st.integers(2, 50)), gone


@given(corpora())
def test_equals_the_reference(tmp_path_factory, case):
    docs, k, budget, gone = case
    out = tmp_path_factory.mktemp("d") / "idx"
    build_index_from_ids(docs, out, vocab_size=0xFF01, shard_tokens=budget)
    if gone:
        takedown.take_down(out, sorted(gone))
    engine = Engine.open(out)
    dup = dedup.find_duplicates(engine, k)
    want = reference(docs, k, gone)
    assert list(dup.spans()) == want
    report = dup.report()
    assert report["removed_tokens"] == sum(b - a for _, a, b in want)
    assert report["documents_affected"] == len({d for d, _, _ in want})
    # What is kept repeats no window of K tokens inside a kept run.
    kept: set[tuple[int, ...]] = set()
    cut = {}
    for d, a, b in want:
        cut.setdefault(d, []).append((a, b))
    for d, doc in enumerate(docs):
        if d in gone:
            continue
        at = 0
        for a, b in cut.get(d, []) + [(len(doc), len(doc))]:
            run = doc[at:a]
            for i in range(len(run) - k + 1):
                win = tuple(run[i:i + k])
                assert win not in kept
                kept.add(win)
            at = b


def test_against_another_index_removes_what_occurs_there(tmp_path):
    docs = [[1, 2, 3, 4, 5, 6], [7, 8, 9], [3, 4, 5, 9, 9, 1, 2]]
    build_index_from_ids(docs, tmp_path / "train", vocab_size=20)
    build_index_from_ids([[9, 3, 4, 5, 0], [7, 8]], tmp_path / "bench", vocab_size=20)
    dup = dedup.find_in(Engine.open(tmp_path / "train"), Engine.open(tmp_path / "bench"), 2)
    assert list(dup.spans()) == [(0, 2, 5), (1, 0, 2), (2, 0, 3)]
    with pytest.raises(InvalidQueryError):
        dedup.find_duplicates(Engine.open(tmp_path / "train"), 0)


def test_cli_writes_spans_report_and_corpus(tmp_path):
    corpus = tmp_path / "c.jsonl"
    texts = ["the cat sat on the mat", "a dog; the cat sat on the rug", "nothing here",
             "the cat sat"]
    corpus.write_text("".join(json.dumps({"text": t, "n": i}) + "\n"
                              for i, t in enumerate(texts)))
    build_index(corpus, tmp_path / "idx", progress=False, shard_tokens=40)
    run = CliRunner().invoke(main, [
        "dedup", str(tmp_path / "idx"), "--min-tokens", "8",
        "--spans-out", str(tmp_path / "spans.jsonl"),
        "--corpus-out", str(tmp_path / "dedup.jsonl")])
    assert run.exit_code == 0, run.output
    report = json.loads(run.output)
    assert report["spans"] == 2 and report["documents_affected"] == 2
    assert report["most_repeated"][0]["count"] >= 2
    spans = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()]
    assert spans == [{"doc_id": 1, "start": 7, "end": 26}, {"doc_id": 3, "start": 0, "end": 11}]
    rows = [json.loads(line) for line in (tmp_path / "dedup.jsonl").read_text().splitlines()]
    assert [r["n"] for r in rows] == [0, 1, 2, 3]
    assert rows[0]["text"] == texts[0] and rows[1]["text"] == "a dog; rug"
    assert rows[3]["text"] == ""


def test_cli_refuses_bad_input_and_writes_nothing(tmp_path):
    build_index_from_ids([[1, 2, 3]], tmp_path / "a", vocab_size=10)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"text": "abc"}) + "\n")
    build_index(corpus, tmp_path / "b", progress=False)
    run = CliRunner().invoke(main, ["dedup", str(tmp_path / "a"), "--min-tokens", "0"])
    assert run.exit_code == 2 and "min-tokens" in run.output
    run = CliRunner().invoke(main, ["dedup", str(tmp_path / "a"), "--min-tokens", "2",
                                    "--against", str(tmp_path / "b"),
                                    "--spans-out", str(tmp_path / "s.jsonl")])
    assert run.exit_code == 1 and "tokenizer" in run.output
    assert not (tmp_path / "s.jsonl").exists()
    with pytest.raises(TokenizerError):
        dedup.find_in(Engine.open(tmp_path / "a"), Engine.open(tmp_path / "b"), 2)
