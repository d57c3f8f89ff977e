"""The start-up warm-up loads every kernel a request can run: after it, no request of any
route, query shape or CNF plan compiles or loads a kernel inside the request.

Checked in a fresh process (a process that already ran queries has its kernels loaded):
it starts the app (its lifespan runs the warm-up), notes every numba kernel's compiled
signatures, sends requests of every route and shape (each CNF plan forced in turn, the
sampled answers, a takedown, infini-gram's ``POST /``) and reports the signatures they added.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from test_server import ID_DOCS, build_text_index  # noqa: E402

from anygram import build_index_from_ids, takedown  # noqa: E402

SCRIPT = r'''
import importlib, json, pkgutil, sys
from fastapi.testclient import TestClient
from numba.core.registry import CPUDispatcher
import anygram.kernels
from anygram import Engine
from anygram.query.cnf import plans
from anygram.server import create_app
from anygram.server.operations import OPERATIONS
from anygram.server.warmup import CNF_PLANS

def signatures():
    out = {}
    for info in pkgutil.iter_modules(anygram.kernels.__path__):
        module = importlib.import_module(f"anygram.kernels.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, CPUDispatcher):
                out[f"{info.name}.{name}"] = sorted(map(str, obj.signatures))
    return out

text_dir, ids_dir = sys.argv[1:3]
app = create_app({"text": Engine.open(text_dir), "ids": Engine.open(ids_dir)})
QUERY = {"text": {"query": "the cat"}, "ids": {"query_ids": [2, 3]}}
CNF = {"text": [{"query": "cat AND the OR dog"}, {"query": "the AND a AND sat on OR mat"}],
       "ids": [{"query_ids": [[[2, 3]], [[4], [5, 2]]]}, {"query_ids": [[[7]], [[7, 7]]]}]}
TEXT = {"text": {"query": "the cat sat on the mat, the dog"},
        "ids": {"query_ids": [1, 2, 3, 4, 2, 3, 7, 7]}}
used = set()

def ask(c, index, path, body):
    used.add(path)
    r = c.post(f"/v1/{index}/{path}", json=body)
    assert r.status_code in (200, 400, 422), (path, body, r.text)

with TestClient(app, base_url="http://localhost") as c:
    before = signatures()
    for index in ("text", "ids"):
        q = QUERY[index]
        for path in ("count", "find", "ntd", "infgram-ntd"):
            ask(c, index, path, q)
        for path in ("ntd", "infgram-ntd"):
            ask(c, index, path, {**q, "max_support": 1})
            ask(c, index, path, {**q, "top": 1})
        for path in ("prob", "infgram-prob"):
            ask(c, index, path, {**q, "cont_id": 3})
        for order in ("random", "position", "rank"):
            ask(c, index, "search", {**q, "order": order, "max_ctx_len": 3})
            ask(c, index, "search", {**q, "order": order, "max_disp_len": 5, "offset": 1})
        for path in ("creativity", "infgram-text"):
            ask(c, index, path, TEXT[index])
        for extra in ({}, {"max_docs": 0}, {"min_len": 2, "max_cnt": 1, "delim_ids": [32]},
                      {"enforce_bow": True}):
            ask(c, index, "attribute", {**TEXT[index], **extra})
        for extra in ({}, {"n": 2}, {"max_docs": 0}):
            ask(c, index, "contamination", {**TEXT[index], **extra})
        assert c.get(f"/v1/{index}/docs/1?max_tokens=3").status_code == 200
        pair = {**q, "cont_id": 3}
        for op, extra in (("count", {}), ("prob", {}), ("infgram-prob", {}), ("ntd", {}),
                          ("ntd", {"max_support": 1}), ("infgram-ntd", {}),
                          ("infgram-ntd", {"max_support": 1, "top": 1})):
            queries = [pair, pair] if op.endswith("prob") else [q, q]
            ask(c, index, "batch", {"op": op, "queries": queries, **extra})
        for plan in (None, *CNF_PLANS):
            plans.FORCE_PLAN = plan
            for body in CNF[index]:
                ask(c, index, "cnf/count", body)
                ask(c, index, "cnf/count", {**body, "anchor": 1})
                ask(c, index, "cnf/search", {**body, "order": "position"})
                ask(c, index, "cnf/search", body)
                ask(c, index, "cnf/docs-with-all", {**body, "max_ids": 3})
            plans.FORCE_PLAN = None
        plans.FORCE_SAMPLE = True
        for body in CNF[index]:
            for path in ("cnf/count", "cnf/search", "cnf/docs-with-all"):
                ask(c, index, path, {**body, "max_clause_freq": 1})
        plans.FORCE_SAMPLE = None
        for qt, extra in (("count", {}), ("find", {}), ("prob", {}), ("ntd", {}),
                          ("infgram_prob", {}), ("infgram_ntd", {"max_support": 1}),
                          ("search_docs", {"maxnum": 2}), ("creativity", {}),
                          ("attribute", {}), ("get_doc_by_rank", {"s": 0, "rank": 3}),
                          ("find_cnf", {}), ("search_docs_cnf", {"maxnum": 2}),
                          ("get_doc_by_ptr", {"s": 0, "ptr": 4})):
            r = c.post("/", json={"index": index, "query_type": qt, **q, **extra})
            assert r.status_code in (200, 400, 422), (qt, r.text)
        for body in CNF[index]:
            for qt in ("count", "search_docs", "find_cnf"):
                r = c.post("/", json={"index": index, "query_type": qt, **body})
                assert r.status_code in (200, 400, 422), (qt, r.text)
    after = signatures()

missing = sorted(set(OPERATIONS) - used)
added = {k: sorted(set(v) - set(before.get(k, []))) for k, v in after.items()}
print(json.dumps({"missing_routes": missing,
                  "added": {k: v for k, v in added.items() if v},
                  "warmed": sum(len(v) for v in before.values())}))
'''


def test_no_request_compiles_a_kernel_after_start_up(tmp_path: Path) -> None:
    text = build_text_index(tmp_path)
    takedown.take_down(text, [2])  # the takedown steps too
    ids = tmp_path / "ids"  # every short prompt in its next-token table: its lookups asked
    build_index_from_ids(ID_DOCS, ids, vocab_size=1000, ntd_threshold=1)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(text), str(ids)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["missing_routes"] == []  # every route was asked
    assert report["warmed"] > 0
    assert report["added"] == {}, report["added"]


def test_a_failed_warm_up_does_not_stop_the_server(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    from fastapi.testclient import TestClient

    from anygram import Engine
    from anygram.server import create_app, warmup

    def broken() -> None:
        raise OSError("no space left for the warm-up index")

    monkeypatch.setattr(warmup, "warm_kernels", broken)
    engine = Engine.open(build_text_index(tmp_path))
    with TestClient(create_app({"tiny": engine}), base_url="http://localhost") as c:
        r = c.get("/v1/tiny/count", params={"query": "the"})
        assert r.status_code == 200 and r.json()["count"] == engine.count("the").count
    assert "warm-up failed" in caplog.text
