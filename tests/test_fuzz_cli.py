"""Fuzzing the command line: any arguments give an answer (exit 0), one ``error:`` line on
stderr (exit 1) or a usage error (exit 2); never a traceback or another exit status.

Each example is a query command over a small index with arguments drawn from the command's
own options and hostile values (huge and negative numbers, empty and odd text, paths that
are not indexes), plus a batch command fed hostile JSON lines on stdin. Commands that start
a server, fetch from the network, build or change an index are left out (their argument
errors are in test_cli.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anygram.cli import main

COMMANDS = ("count", "find", "ntd", "prob", "infgram-ntd", "infgram-prob", "search",
            "get-doc", "info", "color")
DOCS = ["the cat sat on the mat", "a dog and the cat", "natural language processing",
        "the end"]

VALUES = st.one_of(
    st.sampled_from(["0", "-1", "1", "2", "255", "256", "99999999999999999999", "-0", "1e9",
                     "nan", "", " ", "the", "the cat", "[1, 2]", "[[1]]", "[]", "{}", "null",
                     "x" * 300, "\u00e9t\u00e9", "\U0001f600", "--", "-", "/", "/dev/null",
                     "/nonexistent", "true"]),
    st.integers(-2**70, 2**70).map(str),
    st.text(max_size=20).filter(lambda s: "\x00" not in s),
)


def _options(name: str) -> list[str]:
    command = main.get_command(click.Context(main), name)
    assert command is not None
    return sorted(o for p in command.params for o in p.opts if o.startswith("-"))


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("fuzz-cli")
    corpus = base / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in DOCS), encoding="utf-8")
    result = CliRunner().invoke(main, ["build", str(corpus), "--out", str(base / "idx"),
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    return base / "idx"


def _check(result: object) -> None:
    code = result.exit_code  # type: ignore[attr-defined]
    exc = result.exception  # type: ignore[attr-defined]
    assert exc is None or isinstance(exc, SystemExit), repr(exc)
    assert code in (0, 1, 2), (code, result.stderr)  # type: ignore[attr-defined]
    assert "Traceback" not in result.stderr  # type: ignore[attr-defined]
    if code == 1:
        lines = result.stderr.splitlines()  # type: ignore[attr-defined]
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr  # type: ignore[attr-defined]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(COMMANDS), st.data())
def test_query_commands_never_crash(index: Path, name: str, data: st.DataObject) -> None:
    options = _options(name)
    args: list[str] = [name]
    if data.draw(st.booleans(), label="give --index"):
        args += ["--index", data.draw(st.sampled_from([str(index), str(index / "table.0"),
                                                       "/nonexistent", ""]))]
    for _ in range(data.draw(st.integers(0, 5), label="items")):
        if options and data.draw(st.booleans()):
            args.append(data.draw(st.sampled_from(options)))
        args.append(data.draw(VALUES))
    _check(CliRunner().invoke(main, args))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["count", "prob", "ntd", "infgram-prob", "infgram-ntd"]),
       st.lists(st.one_of(
           VALUES,
           st.dictionaries(st.sampled_from(["query", "query_ids", "cont", "cont_id", "x"]),
                           st.one_of(st.text(max_size=8), st.integers(-2**65, 2**65),
                                     st.lists(st.integers(-5, 300), max_size=4),
                                     st.none())).map(json.dumps)), max_size=6),
       st.sampled_from([[], ["--on-error", "report"], ["--chunk", "1"], ["--chunk", "0"],
                        ["--top", "-1"], ["--max-support", "0"]]))
def test_batch_never_crashes(index: Path, op: str, lines: list[str], extra: list[str]) -> None:
    result = CliRunner().invoke(main, ["batch", op, "--index", str(index), *extra],
                                input="\n".join(lines) + "\n")
    _check(result)


def test_a_control_character_in_a_path_stays_on_one_line() -> None:
    _check(CliRunner().invoke(main, ["count", "--index", "\x1e", "a"]))
