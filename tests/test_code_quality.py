"""The code stays lint-clean (ruff) and type-checks (mypy) as configured in pyproject.toml.

Both tools are dev dependencies pinned to a minor version, so a new release cannot turn CI
red on its own; run ``ruff check --fix`` / ``mypy src/anygram`` locally to see the details.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("tool, args", [
    ("ruff", ("check", "--no-cache", "src", "tests", "bench")),
    ("mypy", ("--cache-dir", "/dev/null", "src/anygram")),
])
def test_tool_is_clean(tool: str, args: tuple[str, ...]) -> None:
    pytest.importorskip(tool)
    r = _run(tool, *args)
    assert r.returncode == 0, f"{tool} found problems:\n{r.stdout}{r.stderr}"
