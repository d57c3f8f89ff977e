"""Benchmark contamination (anygram.tools.contamination, ``anygram contamination``) against a
brute-force twin: random corpora with planted benchmark leaks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from anygram import CorpusError, Engine, InvalidQueryError
from anygram.cli import main
from anygram.index.build import build_index, build_index_from_ids
from anygram.tools import contamination as tc


def _occurs(docs: list[list[int]], q: list[int]) -> int:
    """Occurrences of ``q`` inside the documents (never across two)."""
    k = len(q)
    return sum(1 for d in docs for i in range(len(d) - k + 1) if d[i:i + k] == q)


def brute_force(docs: list[list[int]], ids: list[int], n: int) -> tuple[int, float, int]:
    """Longest run of ``ids`` found in the corpus, the share of its tokens inside some
    n-token window found there, and the longest run's count: every window tried."""
    longest = 0
    for i in range(len(ids)):
        for j in range(i + 1, len(ids) + 1):
            if j - i > longest and _occurs(docs, ids[i:j]):
                longest = j - i
    covered = np.zeros(len(ids), dtype=bool)
    for i in range(len(ids) - n + 1):
        if _occurs(docs, ids[i:i + n]):
            covered[i:i + n] = True
    first = next((i for i in range(len(ids)) if longest and
                  _occurs(docs, ids[i:i + longest])), -1)
    count = _occurs(docs, ids[first:first + longest]) if longest else 0
    return longest, float(covered.mean()) if ids else 0.0, count


@st.composite
def leaky(draw):
    """A corpus of 1..6 documents over 3 letters and an example that copies pieces of them
    between random tokens (a planted leak)."""
    docs = draw(st.lists(st.lists(st.integers(0, 2), max_size=15), min_size=1, max_size=6))
    ex: list[int] = []
    for _ in range(draw(st.integers(0, 3))):
        ex += draw(st.lists(st.integers(0, 3), max_size=3))  # 3: never in the corpus
        d = draw(st.sampled_from(docs))
        if d:
            a = draw(st.integers(0, len(d) - 1))
            ex += d[a:a + draw(st.integers(1, len(d)))]
    return docs, ex, draw(st.integers(1, 6)), draw(st.integers(1, 40))


@given(leaky())
def test_equals_brute_force(tmp_path_factory, case):
    docs, ex, n, budget = case
    out = tmp_path_factory.mktemp("c") / "idx"
    build_index_from_ids(docs, out, vocab_size=4, shard_tokens=budget)
    engine = Engine.open(out)
    r = tc.example_contamination(engine, ex, n=n, max_docs=3)
    longest, coverage, count = brute_force(docs, ex, n)
    assert (r.longest_match, r.count) == (longest, count)
    assert r.coverage == pytest.approx(coverage)
    assert r.tokens == len(ex)
    assert sum(b - a for a, b in r.covered) == round(coverage * len(ex))
    if longest:
        assert ex[r.longest_at:r.longest_at + longest] in [
            d[i:i + longest] for d in docs for i in range(len(d))]
        holding = {k for k, d in enumerate(docs) if _occurs([d], ex[r.longest_at:
                                                                     r.longest_at + longest])}
        assert set(r.docs) <= holding and len(r.docs) == min(3, len(holding))
    else:
        assert (r.longest_at, r.docs, r.covered) == (-1, (), ())


def test_covered_spans_merge_overlaps_and_touching_windows():
    m = np.array([3, 2, 1, 0, 2, 1, 5, 4, 3, 2, 1])
    assert tc.covered_spans(m, 2) == [(0, 3), (4, 11)]
    assert tc.covered_spans(m, 4) == [(6, 11)]
    assert tc.covered_spans(m, 6) == []


def test_bad_options_are_refused(tmp_path):
    build_index_from_ids([[1, 2]], tmp_path / "idx", vocab_size=4)
    engine = Engine.open(tmp_path / "idx")
    for bad in ({"n": 0}, {"n": 1.5}, {"max_docs": -1}):
        with pytest.raises(InvalidQueryError):
            tc.example_contamination(engine, [1, 2], **bad)


def _bench(tmp_path, rows):
    path = tmp_path / "bench.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def index(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    texts = ["the quick brown fox jumps over the lazy dog", "a stitch in time saves nine",
             "what is the capital of France?\n Paris"]
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    build_index(corpus, tmp_path / "idx", progress=False)
    return tmp_path / "idx"


def test_cli_summary_rows_csv_and_report(tmp_path, index):
    bench = _bench(tmp_path, [
        {"question": "what is the capital of France?", "answer": " Paris"},   # leaked
        {"question": "how many legs has a spider?", "answer": "eight"},
    ])
    run = CliRunner().invoke(main, ["contamination", "--index", str(index), str(bench),
                                    "--text-field", "question", "--text-field", "answer",
                                    "-n", "8", "--html", str(tmp_path / "r.html"),
                                    "--web", "http://localhost:8000/?index=idx"])
    assert run.exit_code == 0, run.output
    summary = json.loads(run.output)["benchmarks"][0]
    assert summary["examples"] == 2 and summary["share_with_any_covered"] == 0.5
    assert summary["coverage_histogram"]["counts"][9] == 1  # the leak: fully covered
    report = (tmp_path / "r.html").read_text()
    assert "<mark>" in report and "ids=" in report
    rows = CliRunner().invoke(main, ["contamination", "--index", str(index), str(bench),
                                     "--text-field", "question", "--text-field", "answer",
                                     "-n", "8", "--json"])
    got = [json.loads(line) for line in rows.output.splitlines()]
    assert [r["example"] for r in got] == [0, 1]
    assert got[0]["coverage"] == 1.0 and got[0]["docs"] == [2]
    assert got[0]["longest_match"] == got[0]["tokens"]
    assert got[1]["coverage"] < 1.0
    table = CliRunner().invoke(main, ["contamination", "--index", str(index), str(bench),
                                      "--text-field", "question", "--csv"])
    lines = table.output.splitlines()
    assert lines[0].startswith("benchmark,example,tokens") and len(lines) == 3


@pytest.mark.parametrize("rows, message", [
    ([{"text": ""}], "empty"),
    ([{"question": "x"}], "text"),
    ([{"text": "x"}], "no text field 'answer'"),
])
def test_bad_benchmarks_are_one_line_errors(tmp_path, index, rows, message):
    bench = _bench(tmp_path, rows)
    args = ["contamination", "--index", str(index), str(bench), "--text-field", "text"]
    if message.startswith("no text field"):
        args += ["--text-field", "answer"]
    run = CliRunner().invoke(main, args)
    assert run.exit_code == 1
    assert message in run.output and len(run.output.strip().splitlines()) == 1


def test_read_examples_names_the_line(tmp_path):
    bench = _bench(tmp_path, [{"text": "fine"}, {"text": "  "}])
    with pytest.raises(CorpusError, match=r"bench.jsonl:2"):
        list(tc.read_examples(bench))


def test_a_benchmark_that_is_not_utf8_is_a_one_line_error(tmp_path, index):
    bench = tmp_path / "bench.jsonl"
    bench.write_bytes(b'{"text": "fine"}\n{"text": "bad \xff\xfe here"}\n')
    run = CliRunner().invoke(main, ["contamination", "--index", str(index), str(bench),
                                    "--json"])
    assert run.exit_code == 1
    assert "UTF-8" in run.output and "line 2" in run.output
    assert len(run.output.strip().splitlines()) == 1  # nothing printed before the error
