"""A running server applies a takedown: ``anygram serve`` and ``anygram takedown`` as a user
runs them, two processes over one index directory.

Every answer produced after ``anygram takedown`` returned must leave the document out: the
``/v1`` routes (count, search, the document itself) and infini-gram's ``POST /`` (whose
compat engine is made before the takedown, so it must pick the change up too); ``--undo``
brings it back the same way.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from test_server import CORPUS, build_text_index  # noqa: E402

DOC = 1  # "the dog sat on the log": the only document with "the log" and "dog sat"
PHRASE = "the log"
REPEATS = 25  # rounds of every query after each change


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "anygram", *args], capture_output=True,
                          text=True, timeout=300, env=os.environ.copy())


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, Path]]:
    """``anygram serve --name td=IDX --port 0`` on a fresh tiny index."""
    index = build_text_index(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "anygram", "serve", "--name", f"td={index}",
                             "--port", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=os.environ.copy())
    try:
        assert proc.stderr is not None
        port = None
        for line in proc.stderr:
            found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            port = int(found.group(1)) if found else port
            if "Application startup complete" in line:
                break
        assert port is not None, f"anygram serve exited with {proc.wait()}"
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # never a full pipe
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client, index
    finally:
        proc.terminate()
        proc.wait(30)


def _answers(c: httpx.Client) -> dict[str, Any]:
    """What every route says about the phrase and the document."""
    count = c.get("/v1/td/count", params={"query": PHRASE}).json()
    search = c.get("/v1/td/search", params={"query": PHRASE, "max_docs": 10}).json()
    doc = c.get(f"/v1/td/docs/{DOC}").json()
    cnf = c.get("/v1/td/cnf/count", params={"query": "dog sat AND the log"}).json()
    ig_count = c.post("/", json={"index": "td", "query_type": "count", "query": PHRASE}).json()
    ig_search = c.post("/", json={"index": "td", "query_type": "search_docs",
                                  "query": PHRASE, "maxnum": 10}).json()
    return {"count": count["count"], "search_count": search["count"],
            "search_docs": sorted(h["doc_id"] for h in search["hits"]),
            "doc_removed": doc["removed"], "doc_text": doc["text"], "cnf": cnf["count"],
            "ig_count": ig_count["count"], "ig_search_count": ig_search["cnt"],
            "ig_search_docs": sorted(d["doc_ix"] for d in ig_search["documents"])}


SHOWN = {"count": 1, "search_count": 1, "search_docs": [DOC], "doc_removed": False,
         "doc_text": CORPUS[DOC], "cnf": 1, "ig_count": 1, "ig_search_count": 1,
         "ig_search_docs": [DOC]}
REMOVED = {"count": 0, "search_count": 0, "search_docs": [], "doc_removed": True,
           "doc_text": None, "cnf": 0, "ig_count": 0, "ig_search_count": 0,
           "ig_search_docs": []}


def test_a_running_server_applies_a_takedown_and_its_undo_at_once(
        served: tuple[httpx.Client, Path]) -> None:
    client, index = served
    assert _answers(client) == SHOWN  # (the compat engine of POST / is made here)

    done = _cli("takedown", "--index", str(index), "--docs", str(DOC))
    assert done.returncode == 0, done.stderr
    for _ in range(REPEATS):
        assert _answers(client) == REMOVED

    done = _cli("takedown", "--index", str(index), "--undo")
    assert done.returncode == 0, done.stderr
    for _ in range(REPEATS):
        assert _answers(client) == SHOWN
