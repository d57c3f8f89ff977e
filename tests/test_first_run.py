"""What a new user meets first: a quick ``--help``, a said-aloud first compile, the extras an
install lacks named, and ``serve --port 0`` telling its port."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from anygram import Engine, MissingDependencyError, build_index
from anygram.cli import main
from anygram.kernels import _jit
from anygram.tokenization import load_tokenizer

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("numpy", "numba", "tokenizers", "tiktoken", "sentencepiece", "pyarrow", "fastapi",
         "uvicorn", "tqdm", "torch")


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environ, timeout=300, check=False)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("first_run")
    corpus = base / "c.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in
                              ["the cat sat on the mat", "a dog and a cat"]), encoding="utf-8")
    build_index([corpus], base / "idx", tokenizer="bytes", progress=False)
    return base / "idx"


@pytest.mark.parametrize("args", [["--help"], ["count", "--help"], ["count"],
                                  ["count", "--index", "x", "--top", "3"], ["nosuch"]])
def test_help_and_usage_errors_load_no_heavy_package(args: list[str]) -> None:
    code = ("import sys\nfrom anygram.cli import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit as e:\n    code = e.code\n"
            f"print(code, sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))")
    proc = _python(code)
    status, loaded = proc.stdout.strip().splitlines()[-1].split(" ", 1)
    assert status == ("0" if "--help" in args else "2"), proc.stderr
    assert loaded == "[]", f"{args}: {loaded}"


def test_import_anygram_is_light_until_used() -> None:
    proc = _python("import sys, anygram\nbefore = 'numba' in sys.modules\nanygram.Engine\n"
                   "print(before, 'numba' in sys.modules, sorted(anygram.__all__) == "
                   "sorted(n for n in anygram.__all__ if hasattr(anygram, n)))")
    assert proc.stdout.split() == ["False", "True", "True"], proc.stderr


def test_first_compile_is_announced_once(index: Path, tmp_path: Path) -> None:
    """A cold kernel cache: the first query says it compiles; the next run loads silently."""
    code = ("from anygram.cli import main\n"
            f"main(['count', '--index', {str(index)!r}, 'cat'])")
    cold = _python(code, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    assert cold.returncode == 0, cold.stderr
    assert json.loads(cold.stdout)["count"] == 2
    assert cold.stderr.count(_jit.COMPILING) == 1, cold.stderr
    warm = _python(code, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    assert warm.returncode == 0 and warm.stderr == "", warm.stderr


def test_kernels_compile_one_version_per_argument_type(index: Path) -> None:
    """A kernel called with a constant (``find_range(..., 0, n)``) is not compiled again for
    that constant: each extra version costs a fraction of a second of every cold start."""
    import numba

    from anygram import kernels
    from anygram.kernels import analysis, cnf, docs, lm, search

    with Engine.open(index) as e:
        e.count("cat"), e.ntd("the"), e.infgram_prob("the ca", ord("t")), e.infgram_text("a cat")
        e.search_docs("cat", max_docs=2), e.count_cnf("cat AND dog"), e.creativity("a cat")
    literal = []
    for module in (kernels, search, docs, cnf, analysis, lm):
        for name, obj in vars(module).items():
            if isinstance(obj, numba.core.registry.CPUDispatcher):
                literal += [(name, sig) for sig in obj.signatures
                            if any(isinstance(t, numba.types.Literal) for t in sig)]
    assert literal == []


def test_a_missing_extra_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  index: Path) -> None:
    rank_file = tmp_path / "r50k_base.tiktoken"
    rank_file.write_text("", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "tiktoken", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'anygram\[tiktoken\]'"):
        load_tokenizer(rank_file)
    monkeypatch.setitem(sys.modules, "fastapi", None)
    result = CliRunner().invoke(main, ["serve", str(index), "--port", "0"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: anygram serve needs fastapi") and \
        "pip install 'anygram[server]'" in result.stderr
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    result = CliRunner().invoke(main, ["build", str(tmp_path / "t.parquet"), "--out",
                                       str(tmp_path / "idx")])
    assert result.exit_code == 1 and "pip install 'anygram[parquet]'" in result.stderr


def test_serve_port_0_prints_the_port_it_bound(index: Path) -> None:
    pytest.importorskip("uvicorn")
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.Popen([sys.executable, "-m", "anygram", "serve", str(index),
                             "--port", "0"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, env=environ)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        m = re.fullmatch(r"serving idx on http://127\.0\.0\.1:(\d+)/ \(Ctrl-C to stop\)\n",
                         first)
        assert m and int(m[1]) > 0, first
        # The port answers once the start-up is done (requests before wait on the socket).
        with urllib.request.urlopen(f"http://127.0.0.1:{m[1]}/v1/indexes", timeout=600) as r:
            assert json.load(r)["indexes"][0]["name"] == "idx"
    finally:
        proc.terminate()
        proc.wait(30)

