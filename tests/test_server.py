"""The HTTP server (``anygram.server``), in process: every route, every error class.

Answers are checked against the Python API on a tiny byte-level index (and an ids-only
index without a tokenizer). ``tests/test_server_schema.py`` fuzzes the OpenAPI schema,
``tests/test_server_load.py`` runs a real uvicorn server and ``tests/e2e/`` drives the page in
headless Chromium; they import the fixtures' builders from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import httpx  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from anygram import Engine, build_index  # noqa: E402
from anygram.cli import main  # noqa: E402
from anygram.compat import InfiniGramEngine  # noqa: E402
from anygram.index.build import build_index_from_ids  # noqa: E402
from anygram.server import ServerLimits, create_app  # noqa: E402

CORPUS = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog met the other cat",
    "naïve café, the end",
    "natural language processing is fun; natural languages are many",
]
ID_DOCS = [[1, 2, 3, 4], [2, 3, 4, 5, 2, 3], [7, 7, 7], [3, 4]]
ERROR_KEYS = {"ok", "error", "type", "status"}


def build_text_index(directory: Path) -> Path:
    """A byte-level index of :data:`CORPUS` in ``directory/tiny``."""
    corpus = directory / "tiny.jsonl"
    corpus.write_text("".join(json.dumps({"text": t, "n": i}) + "\n"
                              for i, t in enumerate(CORPUS)), encoding="utf-8")
    out = directory / "tiny"
    build_index(corpus, out, tokenizer="bytes", progress=False, workers=1)
    return out


@contextlib.contextmanager
def running_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port) in a thread; yield its base URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    # Wait for readiness however long the start-up takes (its warm-up compiles every kernel
    # into a cold cache: tens of seconds on a loaded machine); a failed start ends the thread.
    # The cap only keeps a hung start-up from hanging the suite.
    deadline = time.monotonic() + 900
    while not server.started:
        assert thread.is_alive(), "uvicorn failed to start (see the log above)"
        assert time.monotonic() < deadline, "uvicorn still starting after 15 minutes"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def build_ids_index(directory: Path) -> Path:
    out = directory / "ids"
    build_index_from_ids(ID_DOCS, out, vocab_size=1000)
    return out


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("server")
    return {"tiny": build_text_index(base), "ids": build_ids_index(base)}


@pytest.fixture(scope="module")
def engines(dirs: dict[str, Path]) -> dict[str, Engine]:
    return {name: Engine.open(path) for name, path in dirs.items()}


@pytest.fixture(scope="module")
def client(engines: dict[str, Engine]) -> TestClient:
    with TestClient(create_app(engines), base_url="http://localhost") as c:
        yield c


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True
    return body


def error(response: httpx.Response, status: int, type_: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["ok"] is False and body["status"] == status and body["error"]
    if type_ is not None:
        assert body["type"] == type_, body
    return body


def both(client: TestClient, route: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST the payload as JSON and GET it as a query string; both must answer the same."""
    posted = ok(client.post(route, json=payload))
    params = {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in payload.items()}
    got = ok(client.get(route, params=params))
    for body in (posted, got):
        assert isinstance(body.pop("latency_ms"), float)
    assert posted == got
    return posted


# ----------------------------------------------------------------------------- meta routes


def test_indexes_lists_every_index_with_its_info(client: TestClient,
                                                 engines: dict[str, Engine]) -> None:
    body = ok(client.get("/v1/indexes"))
    by_name = {ix["name"]: ix for ix in body["indexes"]}
    assert set(by_name) == {"tiny", "ids"}
    tiny = by_name["tiny"]
    assert tiny["num_docs"] == len(CORPUS) == engines["tiny"].num_docs
    assert tiny["num_tokens"] == engines["tiny"].num_tokens
    assert tiny["token_dtype"] == "u8" and tiny["tokenizer"]["kind"] == "bytes"
    assert by_name["ids"]["tokenizer"] is None and by_name["ids"]["token_dtype"] == "u16"
    assert {"count", "prob", "ntd", "infgram-prob", "infgram-ntd", "find"} <= set(
        tiny["operations"])


def test_limits_route_shows_the_limits(client: TestClient) -> None:
    assert ok(client.get("/v1/limits"))["limits"] == ServerLimits().to_dict()


def test_home_is_the_page_for_browsers_and_the_index_list_for_programs(
        client: TestClient) -> None:
    page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'name="viewport"' in page.text and "/static/app.js" in page.text
    assert client.get("/", headers={"Accept": "application/json"}).json() == ["ids", "tiny"]
    for asset in ("app.js", "style.css", "index.html"):
        assert client.get(f"/static/{asset}").status_code == 200


def test_openapi_has_every_route_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for op in ("count", "prob", "ntd", "infgram-prob", "infgram-ntd", "find"):
        item = spec["paths"][f"/v1/{{index}}/{op}"]
        assert set(item) == {"get", "post"}
        assert {"200", "400", "404", "413", "422", "503", "504"} <= set(item["post"]["responses"])
    assert "post" in spec["paths"]["/"]
    schemas = spec["components"]["schemas"]
    assert schemas["QueryRequest"]["examples"] and schemas["InfiniGramRequest"]["examples"]


# ----------------------------------------------------------------------------- query routes


@pytest.mark.parametrize("text", ["the", "cat", "at", "natural language", "zzz", "", "é"])
def test_count_and_find_match_the_engine(client: TestClient, engines: dict[str, Engine],
                                         text: str) -> None:
    eng = engines["tiny"]
    ids = eng.tokenize(text)
    for payload in ({"query": text}, {"query_ids": ids}):
        body = both(client, "/v1/tiny/count", payload)
        assert body == {"ok": True, "index": "tiny", **eng.count(ids).to_dict(),
                        "token_ids": ids, "tokens": [eng.decode([t]) for t in ids]}
        found = both(client, "/v1/tiny/find", payload)
        assert found["count"] == eng.find(ids).count
        assert found["ranges"] == [list(r) for r in eng.find(ids).ranges]


def test_empty_ids_in_a_query_string_are_the_empty_query(client: TestClient,
                                                         engines: dict[str, Engine]) -> None:
    body = ok(client.get("/v1/tiny/count?query_ids="))
    assert body["count"] == engines["tiny"].count([]).count and body["token_ids"] == []
    repeated = ok(client.get("/v1/tiny/count?query_ids=116&query_ids=104,101"))
    assert repeated["token_ids"] == [116, 104, 101]


def test_prob_and_infgram_prob_match_the_engine(client: TestClient,
                                                engines: dict[str, Engine]) -> None:
    eng = engines["tiny"]
    for prompt, cont in (("the ", "c"), ("sat on th", "e"), ("qqq the ", "m"), ("zz", "z")):
        ids, cont_id = eng.tokenize(prompt), eng.tokenize(cont)[0]
        for payload in ({"query": prompt, "cont": cont}, {"query_ids": ids, "cont_id": cont_id}):
            body = both(client, "/v1/tiny/prob", payload)
            assert {k: body[k] for k in ("prompt_count", "cont_count", "prob")} == eng.prob(
                ids, cont_id).to_dict()
            assert body["cont_id"] == cont_id and body["cont_token"] == cont
            inf = both(client, "/v1/tiny/infgram-prob", payload)
            expect = eng.infgram_prob(ids, cont_id)
            assert {k: inf[k] for k in expect.to_dict()} == expect.to_dict()
            suffix = ids[len(ids) - expect.suffix_len:]
            assert inf["suffix_ids"] == suffix and inf["longest_suffix"] == eng.decode(suffix)


def test_ntd_and_infgram_ntd_match_the_engine(client: TestClient,
                                              engines: dict[str, Engine]) -> None:
    eng = engines["tiny"]
    for prompt in ("the ", "a", "", "xx at"):
        ids = eng.tokenize(prompt)
        body = both(client, "/v1/tiny/ntd", {"query": prompt})
        d = eng.ntd(ids)
        assert body["prompt_count"] == d.prompt_count and body["end_count"] == d.end_count
        assert body["distinct_next_tokens"] == len(d.counts)
        assert [(e["token_id"], e["count"]) for e in body["next_tokens"]] == d.most_common(100)
        assert all(e["token"] == eng.decode([e["token_id"]]) for e in body["next_tokens"])
        inf = both(client, "/v1/tiny/infgram-ntd", {"query_ids": ids, "top": 2})
        r = eng.infgram_ntd(ids)
        assert inf["suffix_len"] == r.suffix_len and inf["prompt_count"] == r.prompt_count
        assert [(e["token_id"], e["count"]) for e in inf["next_tokens"]] == r.dist.most_common(2)
        assert inf["suffix_ids"] == ids[len(ids) - r.suffix_len:]


def test_ntd_max_support_samples(client: TestClient, engines: dict[str, Engine]) -> None:
    body = ok(client.post("/v1/tiny/ntd", json={"query": "", "max_support": 5}))
    expect = engines["tiny"].ntd([], max_support=5)
    assert body["approx"] is True and body["prompt_count"] == expect.prompt_count


def test_an_index_without_tokenizer_takes_ids(client: TestClient,
                                              engines: dict[str, Engine]) -> None:
    body = both(client, "/v1/ids/count", {"query_ids": [2, 3]})
    assert body["count"] == engines["ids"].count([2, 3]).count == 3
    assert "tokens" not in body
    ntd = ok(client.post("/v1/ids/ntd", json={"query_ids": [2, 3]}))
    assert all("token" not in e for e in ntd["next_tokens"])
    inf = ok(client.post("/v1/ids/infgram-prob", json={"query_ids": [9, 2, 3], "cont_id": 4}))
    assert inf["suffix_len"] == 2 and inf["longest_suffix"] is None
    error(client.post("/v1/ids/count", json={"query": "the"}), 400, "TokenizerError")
    error(client.post("/v1/ids/prob", json={"query_ids": [2], "cont": "x"}), 400,
          "TokenizerError")


def _single(client: TestClient, index: str, op: str, query: dict[str, Any],
            extra: dict[str, Any]) -> dict[str, Any]:
    body = ok(client.post(f"/v1/{index}/{op}", json={**query, **extra}))
    for key in ("ok", "index", "latency_ms"):
        del body[key]
    return body


def test_batch_answers_what_the_single_routes_do(client: TestClient) -> None:
    queries = [{"query": "the "}, {"query_ids": [97, 116]}, {"query": ""}, {"query": "zebra"},
               {"query": "the "}]
    pairs = [{"query": "the ", "cont": "c"}, {"query_ids": [116, 104], "cont_id": 101},
             {"query": "qqq the ", "cont": "m"}, {"query": "zz", "cont": "z"}]
    for op, items, extra in (("count", queries, {}), ("ntd", queries, {"top": 3}),
                             ("infgram-ntd", queries, {"max_support": 4}),
                             ("prob", pairs, {}), ("infgram-prob", pairs, {})):
        body = ok(client.post("/v1/tiny/batch", json={"op": op, "queries": items, **extra}))
        assert body["op"] == op and body["index"] == "tiny"
        assert body["results"] == [_single(client, "tiny", op, q, extra) for q in items], op
    ids = ok(client.post("/v1/ids/batch", json={"op": "count", "queries": [
        {"query_ids": [2, 3]}, {"query_ids": [7]}]}))
    assert [r["count"] for r in ids["results"]] == [3, 3] and "tokens" not in ids["results"][0]
    assert ok(client.post("/v1/tiny/batch", json={"op": "count", "queries": []}))[
        "results"] == []


def test_a_bad_batch_query_rejects_the_batch_and_is_named(engines: dict[str, Engine]) -> None:
    limits = ServerLimits(max_batch=3, max_query_tokens=4, max_support=7)
    with TestClient(create_app(engines, limits), base_url="http://localhost") as c:
        def bad(payload: dict[str, Any], status: int, type_: str, where: str) -> None:
            body = error(c.post("/v1/tiny/batch", json=payload), status, type_)
            assert where in body["error"], body

        q = {"query": "a"}
        bad({"op": "count", "queries": [q, {"query_ids": [300]}]}, 400,
            "TokenOutOfRangeError", "queries[1]")
        bad({"op": "count", "queries": [q, q, {"query": "abcde"}]}, 422,
            "LimitExceededError", "queries[2]")
        bad({"op": "count", "queries": [q] * 4}, 422, "LimitExceededError", "at most 3")
        bad({"op": "prob", "queries": [{"query": "a", "cont": "ab"}]}, 400,
            "InvalidQueryError", "queries[0]")
        bad({"op": "prob", "queries": [q]}, 400, "InvalidQueryError", "cont")
        bad({"op": "infgram-prob", "queries": [{"query": "a", "cont_id": 900}]}, 400,
            "TokenOutOfRangeError", "cont_id")
        bad({"op": "count", "queries": [{"query": "a", "cont": "b"}]}, 400,
            "InvalidQueryError", "queries[0]")
        bad({"op": "count", "queries": [{}]}, 400, "InvalidQueryError", "queries[0]")
        bad({"op": "count", "queries": [q], "top": 1}, 400, "InvalidQueryError", "ntd")
        bad({"op": "ntd", "queries": [q], "max_support": 8}, 422, "LimitExceededError",
            "max_support")
        bad({"op": "nope", "queries": [q]}, 422, "ValidationError", "op")
        bad({"op": "count", "queries": [{"query": "a", "x": 1}]}, 422, "ValidationError", "")
        error(c.get("/v1/tiny/batch?op=count"), 405, "MethodNotAllowedError")


# ----------------------------------------------------------------------------- errors


def test_bad_input_is_400(client: TestClient) -> None:
    error(client.post("/v1/tiny/count", json={"query_ids": [300]}), 400, "TokenOutOfRangeError")
    error(client.get("/v1/tiny/count?query_ids=-1"), 400, "TokenOutOfRangeError")
    error(client.post("/v1/tiny/prob", json={"query": "the", "cont": "ab"}), 400,
          "InvalidQueryError")
    error(client.post("/v1/tiny/prob", json={"query": "the", "cont_id": 10**30}), 400)
    error(client.post("/v1/tiny/count", content=b"{not json",
                      headers={"content-type": "application/json"}), 400, "BadRequestError")


def test_unknown_index_route_and_method(client: TestClient) -> None:
    body = error(client.get("/v1/nope/count?query=a"), 404, "UnknownIndexError")
    assert "tiny" in body["error"]
    error(client.post("/v1/nope/ntd", json={"query": "a"}), 404, "UnknownIndexError")
    error(client.get("/v2/whatever"), 404, "NotFoundError")
    error(client.get("/v1/tiny/not-an-operation"), 404, "NotFoundError")
    r = client.delete("/v1/tiny/count")
    error(r, 405, "MethodNotAllowedError")
    assert r.headers["allow"] == "GET, POST"


def test_validation_errors_are_422(client: TestClient) -> None:
    for payload in ({}, {"query": "a", "query_ids": [1]}, {"query_ids": "x"},
                    {"query_ids": [1.5]}, {"query": 3}, {"query": "a", "extra": 1}):
        error(client.post("/v1/tiny/count", json=payload), 422, "ValidationError")
    error(client.post("/v1/tiny/count", json=[1, 2]), 422, "ValidationError")
    error(client.post("/v1/tiny/prob", json={"query": "a"}), 422, "ValidationError")
    error(client.post("/v1/tiny/ntd", json={"query": "a", "top": -1}), 422, "ValidationError")
    error(client.get("/v1/tiny/count"), 422, "ValidationError")
    error(client.get("/v1/tiny/count?query=a&bogus=1"), 422, "ValidationError")
    error(client.get("/v1/tiny/count?query_ids=1,x"), 422, "ValidationError")


def test_limits_are_422(engines: dict[str, Engine]) -> None:
    limits = ServerLimits(max_query_chars=10, max_query_tokens=4, max_top=5, default_top=5,
                          max_support=7)
    with TestClient(create_app(engines, limits), base_url="http://localhost") as c:
        body = error(c.post("/v1/tiny/count", json={"query": "x" * 11}), 422,
                     "LimitExceededError")
        assert "10" in body["error"]
        error(c.post("/v1/tiny/count", json={"query": "abcde"}), 422, "LimitExceededError")
        error(c.post("/v1/tiny/count", json={"query_ids": [1] * 5}), 422, "LimitExceededError")
        ok(c.post("/v1/tiny/count", json={"query_ids": [1] * 4}))
        error(c.post("/v1/tiny/ntd", json={"query": "a", "top": 6}), 422, "LimitExceededError")
        error(c.post("/v1/tiny/ntd", json={"query": "a", "max_support": 8}), 422,
              "LimitExceededError")
        assert len(ok(c.post("/v1/tiny/ntd", json={"query": ""}))["next_tokens"]) == 5
        error(c.post("/", json={"index": "tiny", "query_type": "ntd", "query": "a",
                                "max_support": 8}), 422, "LimitExceededError")


def test_body_too_large_is_413(engines: dict[str, Engine]) -> None:
    with TestClient(create_app(engines, ServerLimits(max_body_bytes=100)),
                    base_url="http://localhost") as c:
        big = {"query": "a" * 200}
        error(c.post("/v1/tiny/count", json=big), 413, "BodyTooLargeError")
        error(c.post("/", json={"index": "tiny", "query_type": "count", **big}), 413)

        def chunks():  # no Content-Length: the limit is enforced as the body streams
            yield b'{"query": "'
            for _ in range(20):
                yield b"aaaaaaaaaa"
            yield b'"}'

        error(c.post("/v1/tiny/count", content=chunks(),
                     headers={"content-type": "application/json"}), 413, "BodyTooLargeError")
        ok(c.post("/v1/tiny/count", json={"query": "a"}))


# ----------------------------------------------------------------------------- hosts, headers


def test_only_loopback_host_names_are_answered_by_default(client: TestClient) -> None:
    # A page whose name was made to resolve to 127.0.0.1 (DNS rebinding) sends its own name.
    for host in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000",
                 "index.localhost"):
        ok(client.get("/v1/tiny/count", params={"query": "a"}, headers={"host": host}))
    for host in ("evil.example.com", "evil.example.com:8000", "127.0.0.1.nip.io",
                 "localhost.evil.com", "0.0.0.0"):
        for r in (client.get("/v1/tiny/count", params={"query": "a"}, headers={"host": host}),
                  client.get(f"/v1/tiny/docs/{0}", headers={"host": host}),
                  client.post("/", json={"index": "tiny", "query_type": "count", "query": "a"},
                              headers={"host": host}),
                  client.get("/", headers={"host": host, "accept": "text/html"})):
            assert host in error(r, 400, "InvalidHostError")["error"]


def test_allowed_hosts_widen_or_name_the_hosts(engines: dict[str, Engine]) -> None:
    with TestClient(create_app(engines, allowed_hosts=["*"]), base_url="http://a.example") as c:
        ok(c.get("/v1/tiny/count", params={"query": "a"}))
    with TestClient(create_app(engines, allowed_hosts=["ix.example.org", "*.corp.example"]),
                    base_url="http://ix.example.org") as c:
        ok(c.get("/v1/tiny/count", params={"query": "a"}))
        ok(c.get("/v1/tiny/count", params={"query": "a"}, headers={"host": "a.corp.example"}))
        error(c.get("/v1/tiny/count", params={"query": "a"}, headers={"host": "localhost"}),
              400, "InvalidHostError")


def test_allowed_hosts_follow_serve_host_and_allow_host() -> None:
    from anygram.cli.serve import allowed_hosts
    from anygram.server.middleware import LOOPBACK_HOSTS

    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert allowed_hosts(host, ()) == list(LOOPBACK_HOSTS)
    for host in ("0.0.0.0", "::", "192.168.1.5", "ix.example.org"):
        assert allowed_hosts(host, ()) == ["*"]
    assert allowed_hosts("0.0.0.0", ("ix.example.org",)) == [*LOOPBACK_HOSTS, "ix.example.org"]


def test_every_answer_has_the_security_headers(client: TestClient) -> None:
    page = client.get("/", headers={"accept": "text/html"})
    csp = page.headers["content-security-policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'",
                      "connect-src 'self'", "object-src 'none'", "frame-ancestors 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert client.get("/static/app.js").headers["content-security-policy"] == csp
    api = client.get("/v1/tiny/count", params={"query": "a"})
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    # FastAPI's interactive docs load their scripts from a CDN: only framing is forbidden.
    assert client.get("/docs").headers["content-security-policy"] == "frame-ancestors 'none'"
    refused = client.get("/v1/tiny/count", params={"query": "a"}, headers={"host": "evil.com"})
    for r in (page, api, refused, client.get("/nowhere"),
              client.post("/v1/tiny/count", json={"query": 5})):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_the_page_sets_no_inline_style_the_csp_would_block() -> None:
    # style-src 'self' blocks style attributes written as markup (setAttribute("style")),
    # not the CSSOM (node.style): the bar chart's widths must be set through the latter.
    from anygram.server.app import STATIC_DIR

    js = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    assert 'setAttribute("style"' not in js and "style=" not in html
    assert "<script>" not in html and " on" + "click=" not in html


GARBAGE: list[Any] = [
    {"query_ids": [[[1]], []]}, {"query_ids": [[[]]]}, {"query": " AND "}, {"query": "a OR OR b"},
    {"query": "x", "max_docs": 2**70}, {"query": "x", "offset": -1}, {"query": "x", "seed": -5},
    {"query": "x", "max_clause_freq": 0}, {"query": "x", "max_diff_tokens": 2**65},
    None, 0, "", "x", [], [[]], {"query": None}, {"query_ids": None}, {"query_ids": [[1]]},
    {"query_ids": [True]}, {"query_ids": [2**64]}, {"query_ids": [-(2**70)]},
    {"query": "\x00\ud7ff\U0010ffff"}, {"query": "the", "cont": ""},
    {"query": "the", "cont_id": -1},
    {"query_ids": [1], "top": 2**80}, {"query_ids": [1], "max_support": 0},
    {"query_ids": [1], "max_support": 2**70}, {"query": "a" * 5000},
]


ALL_OPS = ["count", "prob", "ntd", "infgram-prob", "infgram-ntd", "find"] + (
    ["search"] if hasattr(Engine, "search_docs") else []) + (
    ["cnf/count", "cnf/search", "cnf/docs-with-all"] if hasattr(Engine, "count_cnf") else []) + [
    "creativity", "infgram-text", "attribute"]


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("index", ["tiny", "ids"])
def test_bad_input_never_gives_500(client: TestClient, op: str, index: str) -> None:
    for payload in GARBAGE:
        r = client.post(f"/v1/{index}/{op}", json=payload)
        assert r.status_code in (200, 400, 422), (payload, r.text)
        if r.status_code != 200:
            assert set(r.json()) == ERROR_KEYS
    for compat in ({"index": index, "query_type": op.replace("-", "_"), "query_ids": [2**40]},
                   {"index": index, "query_type": op.replace("-", "_"), "query": "x" * 2000}):
        r = client.post("/", json=compat)
        assert r.status_code in (200, 400, 422), (compat, r.text)
    # A lone surrogate (valid JSON, not encodable text), in the query and in cont.
    for raw in ('{"query": "a\\udcff"}', '{"query": "a", "cont": "\\ud800"}',
                '{"index": "' + index + '", "query_type": "count", "query": "\\udcff"}'):
        r = client.post(f"/v1/{index}/{op}" if "index" not in raw else "/", content=raw,
                        headers={"content-type": "application/json"})
        assert r.status_code in (200, 400, 422), (raw, r.text)


def test_an_unexpected_fault_is_500_without_details(engines: dict[str, Engine]) -> None:
    class Broken:
        def __getattr__(self, name: str) -> Any:
            return getattr(engines["tiny"], name)

        def count(self, ids: Any) -> Any:
            raise RuntimeError("secret detail")

    with TestClient(create_app({"b": Broken()}),  # type: ignore[dict-item]
                    base_url="http://localhost") as c:
        body = error(c.post("/v1/b/count", json={"query_ids": [1]}), 500, "InternalServerError")
        assert "secret" not in body["error"]
        ok(c.post("/v1/b/ntd", json={"query_ids": [1]}))


# ----------------------------------------------------------------------------- concurrency


class _Blocking:
    """An engine whose ``count`` waits for ``release`` (the kernels of a slow query)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.release = threading.Event()
        self.started = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def count(self, ids: Any) -> Any:
        self.started += 1
        self.release.wait(10)
        return self._engine.count(ids)


async def _wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_overload_answers_503_at_once(engines: dict[str, Engine]) -> None:
    slow = _Blocking(engines["tiny"])
    app = create_app({"slow": slow}, ServerLimits(workers=1, max_pending=2))  # type: ignore[dict-item]
    pool = app.state.pools["light"]

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            first = [asyncio.create_task(c.post("/v1/slow/count", json={"query": "the"}))
                     for _ in range(2)]
            await _wait_for(lambda: pool.pending == 2)
            started = time.perf_counter()
            r = await c.post("/v1/slow/count", json={"query": "the"})
            assert time.perf_counter() - started < 1.0
            error(r, 503, "OverloadedError")
            slow.release.set()
            for t in first:
                assert (await t).json()["count"] == engines["tiny"].count("the").count
            await _wait_for(lambda: pool.pending == 0)
            ok(await c.post("/v1/slow/count", json={"query": "the"}))

    asyncio.run(scenario())
    pool.shutdown()


def test_time_budget_answers_504_and_frees_the_slot(engines: dict[str, Engine]) -> None:
    slow = _Blocking(engines["tiny"])
    app = create_app({"slow": slow}, ServerLimits(workers=1, max_pending=4,  # type: ignore[dict-item]
                                                  timeout_s=0.2))
    pool = app.state.pools["light"]

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            started = time.perf_counter()
            r = await c.post("/v1/slow/count", json={"query": "the"})
            assert 0.15 < time.perf_counter() - started < 2.0
            error(r, 504, "TimeBudgetExceededError")
            assert pool.pending == 1  # the engine call cannot be interrupted: it still counts
            slow.release.set()
            await _wait_for(lambda: pool.pending == 0)
            ok(await c.post("/v1/slow/count", json={"query": "the"}))

    asyncio.run(scenario())
    pool.shutdown()


class _SlowAnalysis(_Blocking):
    """An engine whose ``creativity`` (a heavy request) waits for ``release``; ``count`` (a
    light one) does not."""

    def count(self, ids: Any) -> Any:
        return self._engine.count(ids)

    def creativity(self, ids: Any) -> Any:
        self.started += 1
        self.release.wait(10)
        return self._engine.creativity(ids)


def test_slow_heavy_requests_leave_the_light_lane_free(engines: dict[str, Engine]) -> None:
    slow = _SlowAnalysis(engines["tiny"])
    app = create_app({"slow": slow}, ServerLimits(  # type: ignore[dict-item]
        workers=1, max_pending=4, heavy_workers=1, max_heavy_pending=2))
    heavy, light = app.state.pools["heavy"], app.state.pools["light"]
    expected = engines["tiny"].count("the").count

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            stuck = [asyncio.create_task(c.post("/v1/slow/creativity", json={"query": "a cat"}))
                     for _ in range(2)]
            await _wait_for(lambda: heavy.pending == 2 and slow.started == 1)
            # The heavy lane is full: one more heavy request is refused at once, on /v1 and
            # on POST / alike ...
            error(await c.post("/v1/slow/attribute", json={"query": "a cat"}), 503,
                  "OverloadedError")
            error(await c.post("/", json={"index": "slow", "query_type": "count",
                                          "query": "a AND cat"}), 503, "OverloadedError")
            # ... while light requests are answered at once, on its one thread.
            for _ in range(5):
                started = time.perf_counter()
                assert ok(await c.get("/v1/slow/count", params={"query": "the"}))["count"] \
                    == expected
                assert time.perf_counter() - started < 1.0
            r = await c.post("/", json={"index": "slow", "query_type": "count", "query": "the"})
            assert r.status_code == 200 and r.json()["count"] == expected
            assert light.pending == 0 and heavy.pending == 2
            slow.release.set()
            for task in stuck:
                assert ok(await task)["lengths"] == engines["tiny"].creativity("a cat")
            await _wait_for(lambda: heavy.pending == 0)

    asyncio.run(scenario())
    for pool in (heavy, light):
        pool.shutdown()


# ----------------------------------------------------------------------------- infini-gram API


def test_infini_gram_payload_gives_the_engine_numbers(client: TestClient,
                                                      engines: dict[str, Engine],
                                                      dirs: dict[str, Path]) -> None:
    eng = engines["tiny"]
    ref = InfiniGramEngine(index_dir=str(dirs["tiny"]), eos_token_id=0, vocab_size=255,
                           token_dtype="u8")
    for text in ("the ", "cat", "zz the c", "natural languag"):
        ids = eng.tokenize(text)
        for key, value in (("query", text), ("query_ids", ids)):
            def ask(query_type: str, _key: str = key, _value: Any = value,
                    _ids: list[int] = ids, **extra: Any) -> dict[str, Any]:
                r = client.post("/", json={"index": "tiny", "query_type": query_type,
                                           _key: _value, **extra})
                assert r.status_code == 200, r.text
                body = r.json()
                assert isinstance(body.pop("latency"), float)
                assert body.pop("token_ids") == _ids
                assert body.pop("tokens") == [eng.decode([t]) for t in _ids]
                return body

            assert ask("count") == ref.count(input_ids=ids) == {
                "count": eng.count(ids).count, "approx": False}
            found = ask("find")
            assert found["cnt"] == eng.find(ids).count
            assert found["segment_by_shard"] == [list(s) for s in
                                                 ref.find(input_ids=ids)["segment_by_shard"]]
            prob = ask("prob")
            assert prob == ref.prob(prompt_ids=ids[:-1], cont_id=ids[-1])
            p = eng.prob(ids[:-1], ids[-1])
            assert (prob["prompt_cnt"], prob["cont_cnt"]) == (p.prompt_count, p.cont_count)
            inf = ask("infgram_prob")
            q = eng.infgram_prob(ids[:-1], ids[-1])
            assert inf["suffix_len"] == q.suffix_len and inf["cont_cnt"] == q.cont_count
            prompt = ids[:-1]
            assert inf.pop("longest_suffix") == eng.decode(prompt[len(prompt) - q.suffix_len:])
            assert inf == ref.infgram_prob(prompt_ids=ids[:-1], cont_id=ids[-1])
            ntd = ask("ntd", max_support=1000)
            expect = ref.ntd(prompt_ids=ids)
            assert ntd["prompt_cnt"] == expect["prompt_cnt"] == eng.ntd(ids).prompt_count
            assert {int(t): (e["cont_cnt"], e["token"]) for t, e in
                    ntd["result_by_token_id"].items()} == {
                t: (e["cont_cnt"], eng.decode([t])) for t, e in
                expect["result_by_token_id"].items()}
            ingram = ask("infgram_ntd")
            r = eng.infgram_ntd(ids)
            assert ingram["suffix_len"] == r.suffix_len and ingram["prompt_cnt"] == r.prompt_count
            assert ingram["longest_suffix"] == eng.decode(ids[len(ids) - r.suffix_len:])


def test_infini_gram_payload_errors(client: TestClient, engines: dict[str, Engine]) -> None:
    base = {"index": "tiny", "query_type": "count"}
    # `corpus` is infini-gram's old name of `index`; unknown extra fields are ignored.
    assert ok_compat(client.post("/", json={"corpus": "tiny", "query_type": "count",
                                            "query": "the", "source": "x"}))["count"] == (
        engines["tiny"].count("the").count)
    error(client.post("/", json={**base}), 400, "BadRequestError")
    error(client.post("/", json={**base, "query": "a", "query_ids": [1]}), 400)
    error(client.post("/", json={"query_type": "count", "query": "a"}), 404, "UnknownIndexError")
    error(client.post("/", json={**base, "index": "nope", "query": "a"}), 404)
    error(client.post("/", json={**base, "query_type": "__class__", "query": "a"}), 400,
          "BadRequestError")
    error(client.post("/", json={"index": "ids", "query_type": "attribute", "query_ids": [1],
                                 "enforce_bow": True}), 400, "TokenizerError")
    if hasattr(Engine, "count_cnf"):  # infini-gram's count of a CNF query
        eng = engines["tiny"]
        cnf = [[eng.tokenize("cat")], [eng.tokenize("dog")]]
        for key, value in (("query", "cat AND dog"), ("query_ids", cnf)):
            body = ok_compat(client.post("/", json={**base, key: value}))
            # infini-gram's anchor: the rarer clause ("dog", 2 occurrences; "cat", 3).
            assert body["count"] == eng.count_cnf(cnf[::-1], anchor=0).count \
                != eng.count_cnf(cnf, anchor=0).count
            assert body["count"] == eng.count_cnf(cnf).count  # anygram's default: the rarest
            assert body["approx"] is False
            assert body["token_ids"] == cnf and body["tokens"] == [[list("cat")], [list("dog")]]
        error(client.post("/", json={**base, "query": "a AND b", "max_diff_tokens": 0}), 422)
    else:
        error(client.post("/", json={**base, "query": "cat AND dog"}), 501)
    error(client.post("/", json={**base, "query_type": "ntd", "query_ids": [[[1]], [[2]]]}),
          400, "InvalidQueryError")
    error(client.post("/", json={**base, "query_type": "prob", "query_ids": []}), 400,
          "InvalidQueryError")
    body = error(client.post("/", json={**base, "query_ids": [70000]}), 400,
                 "InvalidQueryError")
    assert "range" in body["error"]
    error(client.post("/", json={**base, "query_type": "ntd", "query": "a",
                                 "max_support": 0}), 422)
    error(client.post("/", json={"index": "ids", "query_type": "count", "query": "a"}), 400,
          "TokenizerError")


def ok_compat(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


# ----------------------------------------------------------------------------- CLI


def test_serve_get_answers_in_process(dirs: dict[str, Path], engines: dict[str, Engine]) -> None:
    runner = CliRunner()
    r = runner.invoke(main, ["serve", str(dirs["tiny"]), "--name", f"other={dirs['ids']}",
                             "--get", "/v1/tiny/count?query=the"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["count"] == engines["tiny"].count("the").count
    r = runner.invoke(main, ["serve", "--name", f"other={dirs['ids']}", "--get",
                             "/v1/other/count?query_ids=2,3"])
    assert r.exit_code == 0 and json.loads(r.stdout)["count"] == 3
    r = runner.invoke(main, ["serve", str(dirs["tiny"]), "--get", "/v1/tiny/count?query_ids=999"])
    assert r.exit_code == 1 and json.loads(r.stdout)["type"] == "TokenOutOfRangeError"
    r = runner.invoke(main, ["serve", str(dirs["tiny"]), "--max-batch", "7",
                             "--max-body-bytes", "1000", "--get", "/v1/limits"])
    limits = json.loads(r.stdout)["limits"]
    assert (limits["max_batch"], limits["max_body_bytes"]) == (7, 1000), r.stdout


@pytest.mark.parametrize("args", [
    [], ["--name", "noequals"], ["--name", "bad name=x"], ["--name", "a=x", "--name", "a=y"],
])
def test_serve_rejects_bad_names(args: list[str]) -> None:
    r = CliRunner().invoke(main, ["serve", *args, "--get", "/"])
    assert r.exit_code == 2, r.output


def test_serve_help_says_loopback() -> None:
    r = CliRunner().invoke(main, ["serve", "--help"])
    assert r.exit_code == 0 and "127.0.0.1" in r.output


def test_limits_validate() -> None:
    with pytest.raises(ValueError):
        ServerLimits(max_docs=0)
    with pytest.raises(ValueError):
        ServerLimits(default_top=10, max_top=5)
    with pytest.raises(ValueError):
        create_app({})


# ----------------------------------------------------------------------------- documents, CNF

needs_docs = pytest.mark.skipif(not hasattr(Engine, "search_docs"),
                                reason="the engine has no document search yet")
needs_cnf = pytest.mark.skipif(not hasattr(Engine, "count_cnf"),
                               reason="the engine has no CNF queries yet")


@needs_docs
def test_search_matches_the_engine_and_highlights(client: TestClient,
                                                  engines: dict[str, Engine]) -> None:
    eng = engines["tiny"]
    body = both(client, "/v1/tiny/search", {"query": "the", "max_docs": 3, "order": "position"})
    expect = eng.search_docs("the", max_docs=3, order="position")
    assert body["count"] == expect.count == eng.count("the").count
    assert [h["doc_id"] for h in body["hits"]] == [h.doc_id for h in expect.hits]
    assert body["next_offset"] == 3
    for hit in body["hits"]:
        assert "".join(s["text"] for s in hit["spans"]) == hit["text"]
        assert any(s["clause"] == 0 and s["text"] == "the" for s in hit["spans"])
    page2 = ok(client.post("/v1/tiny/search", json={"query": "the", "max_docs": 3,
                                                    "order": "position", "offset": 3}))
    seen = {(h["doc_id"], h["match_pos"]) for h in body["hits"] + page2["hits"]}
    assert len(seen) == len(body["hits"]) + len(page2["hits"])
    rnd = ok(client.post("/v1/tiny/search", json={"query": "the", "seed": 7}))
    assert len(rnd["hits"]) == ServerLimits().default_docs
    assert rnd == {**ok(client.post("/v1/tiny/search", json={"query": "the", "seed": 7})),
                   "latency_ms": rnd["latency_ms"]}
    ids = ok(client.post("/v1/ids/search", json={"query_ids": [2, 3], "max_ctx_len": 1}))
    assert ids["count"] == 3 and all(h["spans"] is None for h in ids["hits"])


@needs_docs
def test_search_errors_and_limits(engines: dict[str, Engine]) -> None:
    limits = ServerLimits(max_docs=3, default_docs=2, max_offset=5, max_sorted=2,
                          max_ctx_len=10, max_disp_len=20, default_disp_len=20)
    with TestClient(create_app(engines, limits), base_url="http://localhost") as c:
        error(c.post("/v1/tiny/search", json={"query": ""}), 400, "InvalidQueryError")
        error(c.post("/v1/tiny/search", json={"query": "a", "max_docs": 4}), 422,
              "LimitExceededError")
        error(c.post("/v1/tiny/search", json={"query": "a", "offset": 6}), 422,
              "LimitExceededError")
        error(c.post("/v1/tiny/search", json={"query": "the", "order": "position"}), 422,
              "LimitExceededError")
        ok(c.post("/v1/tiny/search", json={"query": "naïve", "order": "position"}))
        error(c.post("/v1/tiny/search", json={"query": "a", "max_ctx_len": 11}), 422)
        error(c.post("/v1/tiny/search", json={"query": "a", "max_disp_len": 21}), 422)
        error(c.post("/v1/tiny/search", json={"query": "a", "max_disp_len": 5,
                                               "max_ctx_len": 5}), 400, "InvalidQueryError")
        error(c.post("/v1/tiny/search", json={"query": "a", "order": "best"}), 422,
              "ValidationError")
        assert len(ok(c.post("/v1/tiny/search", json={"query": "a"}))["hits"]) == 2
        error(c.get("/v1/tiny/docs/0?max_tokens=21"), 422, "LimitExceededError")


@needs_docs
def test_get_doc(client: TestClient, engines: dict[str, Engine]) -> None:
    eng = engines["tiny"]
    body = ok(client.get("/v1/tiny/docs/1"))
    assert isinstance(body.pop("latency_ms"), float)
    assert body == {"ok": True, "index": "tiny", **eng.get_doc(1, max_tokens=1000).to_dict()}
    assert body["text"] == CORPUS[1] and body["metadata"]["metadata"] == {"n": 1}
    short = ok(client.get("/v1/tiny/docs/0?max_tokens=3"))
    assert short["text"] == CORPUS[0][:3]
    assert ok(client.get("/v1/ids/docs/2"))["token_ids"] == ID_DOCS[2]
    for bad in (len(CORPUS), -1, 10**12):
        error(client.get(f"/v1/tiny/docs/{bad}"), 404, "DocumentNotFoundError")
    error(client.get("/v1/tiny/docs/x"), 422, "ValidationError")
    error(client.get("/v1/nope/docs/0"), 404, "UnknownIndexError")


@needs_cnf
def test_cnf_routes_match_the_engine(client: TestClient, engines: dict[str, Engine]) -> None:
    eng = engines["tiny"]
    text = "cat AND dog OR mat"
    cnf = [[eng.tokenize("cat")], [eng.tokenize("dog"), eng.tokenize("mat")]]
    for payload in ({"query": text}, {"query_ids": cnf}):
        body = ok(client.post("/v1/tiny/cnf/count", json={**payload, "max_diff_tokens": 30}))
        expect = eng.count_cnf(cnf, max_diff_tokens=30)
        assert body["count"] == expect.count and body["approx"] is False
        assert body["token_ids"] == cnf and body["clauses"] == [["cat"], ["dog", "mat"]]
    got = ok(client.get("/v1/tiny/cnf/count", params={"query_ids": json.dumps(cnf)}))
    assert got["count"] == eng.count_cnf(cnf).count
    found = ok(client.post("/v1/tiny/cnf/search", json={"query": text, "order": "position"}))
    expect_s = eng.search_docs_cnf(cnf, order="position", max_docs=5)
    assert found["count"] == expect_s.count
    assert [h["doc_id"] for h in found["hits"]] == [h.doc_id for h in expect_s.hits]
    for hit in found["hits"]:
        labels = {s["clause"] for s in hit["spans"]}
        assert {0, 1} <= labels
    docs = ok(client.post("/v1/tiny/cnf/docs-with-all", json={"query": "cat AND dog",
                                                              "max_ids": 10}))
    all_expect = eng.count_docs_with_all([[eng.tokenize("cat")], [eng.tokenize("dog")]],
                                         return_ids=True)
    assert docs["count"] == all_expect.count
    assert docs["doc_ids"] == list(all_expect.doc_ids or [])
    ok(client.post("/v1/ids/cnf/count", json={"query_ids": [[[2, 3]], [[7]]]}))
    error(client.post("/v1/ids/cnf/count", json={"query": "a AND b"}), 400, "TokenizerError")


@needs_cnf
def test_cnf_limits_and_errors(engines: dict[str, Engine]) -> None:
    limits = ServerLimits(max_cnf_clauses=2, max_cnf_terms=2, max_query_tokens=10,
                          max_clause_freq=100, max_diff_tokens=50)
    with TestClient(create_app(engines, limits), base_url="http://localhost") as c:
        for payload in ({"query": "a AND b AND c"}, {"query": "a OR b OR c"},
                        {"query_ids": [[[1] * 6], [[2] * 5]]},
                        {"query": "a AND b", "max_clause_freq": 101},
                        {"query": "a AND b", "max_diff_tokens": 51}):
            error(c.post("/v1/tiny/cnf/count", json=payload), 422, "LimitExceededError")
        error(c.post("/v1/tiny/cnf/count", json={"query": "a AND "}), 400, "InvalidQueryError")
        error(c.post("/v1/tiny/cnf/count", json={"query_ids": []}), 400)
        error(c.post("/v1/tiny/cnf/count", json={"query_ids": [[[999]]]}), 400,
              "TokenOutOfRangeError")
        error(c.post("/v1/tiny/cnf/count", json={"query_ids": [[1]]}), 422, "ValidationError")
        error(c.get("/v1/tiny/cnf/count?query_ids=[[["), 422, "ValidationError")
        error(c.post("/v1/tiny/cnf/search", json={"query": "a AND b", "order": "rank"}), 422,
              "ValidationError")


# ----------------------------------------------------------------------------- infini-gram
#                                                              documents, search and CNF


def test_infini_gram_payload_search_and_documents(client: TestClient,
                                                  engines: dict[str, Engine]) -> None:
    from anygram.compat import InfiniGramEngine
    eng = engines["tiny"]
    base = {"index": "tiny"}
    shim = InfiniGramEngine([str(s.directory) for s in eng.shards][:1], eos_token_id=0,
                            vocab_size=255, token_dtype="u8")
    ids = eng.tokenize("natural")
    body = ok_compat(client.post("/", json={**base, "query_type": "search_docs",
                                            "query": "natural", "maxnum": 3,
                                            "max_disp_len": 20}))
    expect = shim.search_docs(ids, maxnum=3, max_disp_len=20)
    assert body["cnt"] == expect["cnt"] == eng.count(ids).count > 0
    assert body["idxs"] == expect["idxs"] and body["approx"] is False
    assert body["message"] == (f"{expect['cnt']} occurrences found. Displaying the documents "
                               f"of occurrences #{expect['idxs']}")
    assert body["token_ids"] == ids and "latency" in body and body["tokens"] == list("natural")
    for doc, want in zip(body["documents"], expect["documents"]):
        assert {k: doc[k] for k in want} == want
        assert "".join(t for t, _ in doc["spans"]) == eng.decode(doc["token_ids"])
        assert ["natural", "0"] in doc["spans"]
    none = ok_compat(client.post("/", json={**base, "query_type": "search_docs",
                                            "query": "zzzz"}))
    assert none["message"] == "0 occurrences found" and none["documents"] == []

    rank = body["cnt"] and eng.find(ids).ranges[0][0]
    doc = ok_compat(client.post("/", json={**base, "query_type": "get_doc_by_rank",
                                           "query": "natural", "s": 0, "rank": rank,
                                           "max_disp_len": 30}))
    got = shim.get_doc_by_rank(0, rank, 30)
    # As infini-gram's server, the answer's token_ids are the query's (they overwrite the
    # document's): the window's text is in the spans.
    assert {k: doc[k] for k in got if k != "token_ids"} == {
        k: v for k, v in got.items() if k != "token_ids"}
    assert doc["token_ids"] == ids
    assert "".join(t for t, _ in doc["spans"]) == eng.decode(got["token_ids"])
    assert ["natural", "0"] in doc["spans"]
    pos = int(eng.positions(0, rank, rank + 1)[0])
    byptr = ok_compat(client.post("/", json={**base, "query_type": "get_doc_by_ptr",
                                             "query": "natural AND fun", "s": 0, "ptr": pos,
                                             "max_disp_len": 30}))
    assert byptr["token_ids"] == [[eng.tokenize("natural")], [eng.tokenize("fun")]]
    assert {k: byptr[k] for k in got if k != "token_ids"} == {
        k: doc[k] for k in got if k not in ("token_ids", "spans")}
    assert ["natural", "0"] in byptr["spans"]
    error(client.post("/", json={**base, "query_type": "get_doc_by_rank", "query": "a",
                                 "s": 0}), 400, "BadRequestError")
    error(client.post("/", json={**base, "query_type": "get_doc_by_rank", "query": "a",
                                 "s": 0, "rank": 10**9}), 400, "InvalidQueryError")
    error(client.post("/", json={**base, "query_type": "search_docs", "query": "a",
                                 "maxnum": 11}), 422)


def test_infini_gram_payload_cnf(client: TestClient, engines: dict[str, Engine]) -> None:
    eng = engines["tiny"]
    base = {"index": "tiny"}
    cnf = [[eng.tokenize("natural")], [eng.tokenize("fun"), eng.tokenize("many")]]
    # The clauses occur twice each: infini-gram anchors on the first (ties keep the order).
    want = eng.find_cnf(cnf, max_diff_tokens=40)
    shim = InfiniGramEngine(index_dir=str(eng.shards[0].directory), eos_token_id=0,
                            vocab_size=255, token_dtype="u8")
    for key, value in (("query", "natural AND fun OR many"), ("query_ids", cnf)):
        f = ok_compat(client.post("/", json={**base, "query_type": "find_cnf", key: value,
                                             "max_diff_tokens": 40}))
        assert f["cnt"] == want.count > 0 and f["approx"] is False
        # infini-gram's pointers: a partner before the anchor stands for it.
        assert f["ptrs_by_shard"] == shim.find_cnf(cnf, max_diff_tokens=40)["ptrs_by_shard"]
        assert f["token_ids"] == cnf
        c = ok_compat(client.post("/", json={**base, "query_type": "count", key: value,
                                             "max_diff_tokens": 40}))
        assert (c["count"], c["approx"]) == (want.count, False)
        for qt in ("search_docs", "search_docs_cnf"):
            s = ok_compat(client.post("/", json={**base, "query_type": qt, key: value,
                                                 "max_diff_tokens": 40, "maxnum": 10}))
            assert s["cnt"] == want.count == len(s["documents"])
            assert s["message"].startswith(f"{want.count} occurrences found.")
            for doc in s["documents"]:
                labels = {label for _, label in doc["spans"]}
                assert "0" in labels and labels <= {"0", "1", None}
    single = ok_compat(client.post("/", json={**base, "query_type": "find_cnf",
                                              "query": "natural"}))
    assert single["cnt"] == eng.count("natural").count
    error(client.post("/", json={**base, "query_type": "find_cnf", "query": "a AND b",
                                 "max_clause_freq": 10**9}), 422)
    error(client.post("/", json={**base, "query_type": "infgram_ntd", "query": "a AND b"}),
          400, "InvalidQueryError")


# ----------------------------------------------------------------------------- whole-text analyses

ANALYSES = ["creativity", "infgram-text", "attribute"]


@pytest.mark.parametrize("text", ["the cat sat on the log", "qqq the mat", "é", ""])
def test_text_analyses_match_the_engine(client: TestClient, engines: dict[str, Engine],
                                        text: str) -> None:
    eng = engines["tiny"]
    ids = eng.tokenize(text)
    body = both(client, "/v1/tiny/creativity", {"query": text})
    assert body["lengths"] == eng.creativity(ids)
    assert body["token_ids"] == ids and len(body["tokens"]) == len(ids)
    body = both(client, "/v1/tiny/infgram-text", {"query": text})
    want = eng.infgram_text(ids).to_dict()
    for key in ("suffix_len", "prompt_count", "cont_count", "prob"):
        assert body[key] == want[key], key
    body = both(client, "/v1/tiny/attribute", {"query": text, "max_cnt": 2, "max_docs": 1,
                                               "max_ctx_len": 5})
    r = eng.attribute(ids, max_cnt=2, max_docs_per_span=1)
    assert [(s["start"], s["end"], s["count"], s["unigram_logprob_sum"]) for s in body["spans"]] \
        == [(s.start, s.end, s.count, s.unigram_logprob_sum) for s in r.spans]
    for got, span in zip(body["spans"], r.spans):
        assert got["text"] == eng.decode(ids[span.start:span.end])
        assert [(d["shard"], d["pos"], d["doc_id"]) for d in got["docs"]] == \
            [(d.shard, d.pos, d.doc_id) for d in span.docs]
        for d in got["docs"]:  # the window, the span marked as the hit
            assert "".join(sp["text"] for sp in d["spans"] if sp.get("hit")) == got["text"]


@pytest.mark.parametrize("text, n", [("the cat sat on the log", 5), ("qqq the mat", 2),
                                     ("", 13)])
def test_contamination_matches_the_tool(client: TestClient, engines: dict[str, Engine],
                                        text: str, n: int) -> None:
    from anygram.tools.contamination import example_contamination
    eng = engines["tiny"]
    ids = eng.tokenize(text)
    body = both(client, "/v1/tiny/contamination", {"query": text, "n": n, "max_docs": 2})
    want = example_contamination(eng, ids, n=n, max_docs=2).to_dict()
    for key in ("longest_match", "longest_at", "coverage", "covered", "count", "docs"):
        assert body[key] == want[key], key
    assert body["token_ids"] == ids
    error(client.post("/v1/tiny/contamination", json={"query": text, "n": 0}), 422)


def test_attribute_options_and_ids(client: TestClient, engines: dict[str, Engine]) -> None:
    eng = engines["ids"]
    text = [1, 2, 3, 4, 5, 2, 3, 9]
    body = both(client, "/v1/ids/attribute", {"query_ids": text, "delim_ids": [3],
                                              "min_len": 2, "max_cnt": 5, "max_docs": 0})
    r = eng.attribute(text, delim_ids=[3], min_len=2, max_cnt=5, max_docs_per_span=0)
    assert [(s["start"], s["end"], s["count"]) for s in body["spans"]] == \
        [(s.start, s.end, s.count) for s in r.spans] != []
    assert all(s["docs"] == [] and s["text"] is None for s in body["spans"])
    assert "tokens" not in body
    assert both(client, "/v1/ids/creativity", {"query_ids": text})["lengths"] == \
        eng.creativity(text)


def test_attribute_enforce_bow_uses_the_tokenizers_word_starts(client: TestClient,
                                                                engines: dict[str, Engine]
                                                                ) -> None:
    eng = engines["tiny"]
    text = "the cat sat on the log"
    ids = eng.tokenize(text)
    bows = eng.tokenizer.word_start_ids()
    want = eng.attribute(ids, max_cnt=3, enforce_bow=True, bow_ids=bows)
    assert want.spans and want.spans != eng.attribute(ids, max_cnt=3).spans
    body = both(client, "/v1/tiny/attribute", {"query": text, "max_cnt": 3, "max_docs": 0,
                                               "enforce_bow": True})
    assert [(s["start"], s["end"], s["count"]) for s in body["spans"]] == \
        [(s.start, s.end, s.count) for s in want.spans]
    body = ok_compat(client.post("/", json={"index": "tiny", "query_type": "attribute",
                                            "query_ids": ids, "max_cnt": 3,
                                            "enforce_bow": True}))
    assert body["spans"] == want.to_infini_gram(eng.token_width)["spans"]
    error(client.post("/v1/ids/attribute", json={"query_ids": [1], "enforce_bow": True}), 400,
          "TokenizerError")


def test_infgram_text_nan_is_null(tmp_path: Path) -> None:
    """With every document taken down every probability is NaN in the engine: null in JSON."""
    from anygram.tools.takedown import take_down

    d = tmp_path / "empty"
    build_index_from_ids([[1, 2], [3]], d, vocab_size=100)
    take_down(d, [0, 1])
    eng = Engine.open(d)
    assert all(p != p for p in eng.infgram_text([1, 2]).prob.tolist())  # NaN
    with TestClient(create_app({"empty": eng}), base_url="http://localhost") as c:
        body = ok(c.post("/v1/empty/infgram-text", json={"query_ids": [1, 2]}))
        assert body["prob"] == [None, None] and body["prompt_count"] == [0, 0]
        assert ok(c.get("/v1/empty/creativity", params={"query_ids": "1,2"}))["lengths"] == \
            [0, 0]
        assert ok(c.post("/v1/empty/attribute", json={"query_ids": [1, 2]}))["spans"] == []


def test_text_analyses_errors_and_limits(client: TestClient, engines: dict[str, Engine]) -> None:
    for route in ANALYSES:
        error(client.post(f"/v1/tiny/{route}", json={"query_ids": [300]}), 400,
              "TokenOutOfRangeError")
        error(client.post(f"/v1/ids/{route}", json={"query": "a"}), 400, "TokenizerError")
        error(client.post(f"/v1/nope/{route}", json={"query": "a"}), 404, "UnknownIndexError")
        error(client.post(f"/v1/tiny/{route}", json={"query": "a", "query_ids": [1]}), 422,
              "ValidationError")
        error(client.post(f"/v1/tiny/{route}", json={"query": "a", "extra": 1}), 422,
              "ValidationError")
        error(client.put(f"/v1/tiny/{route}", json={"query": "a"}), 405)
    for bad in ({"min_len": -1}, {"max_cnt": 0}, {"delim_ids": [True]}, {"max_docs": -1}):
        error(client.post("/v1/tiny/attribute", json={"query": "a", **bad}), 422,
              "ValidationError")
    error(client.post("/v1/tiny/attribute", json={"query": "a", "delim_ids": [999]}), 400,
          "TokenOutOfRangeError")
    limits = ServerLimits(max_query_chars=10, max_query_tokens=4, max_docs=2, default_docs=2,
                          max_ctx_len=3, max_attribute_cnt=5)
    with TestClient(create_app(engines, limits), base_url="http://localhost") as c:
        for route in ANALYSES:
            error(c.post(f"/v1/tiny/{route}", json={"query": "x" * 11}), 422,
                  "LimitExceededError")
            error(c.post(f"/v1/ids/{route}", json={"query_ids": [1] * 5}), 422,
                  "LimitExceededError")
            ok(c.post(f"/v1/ids/{route}", json={"query_ids": [1] * 4}))
        for bad in ({"max_docs": 3}, {"max_ctx_len": 4}, {"max_cnt": 6},
                    {"delim_ids": [1] * 5}):
            error(c.post("/v1/ids/attribute", json={"query_ids": [1], **bad}), 422,
                  "LimitExceededError")
        error(c.post("/", json={"index": "ids", "query_type": "attribute", "query_ids": [1],
                                "max_cnt": 6}), 422, "LimitExceededError")


def _docs_sorted(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spans with their docs in corpus order (infini-gram lists them in suffix-array order)."""
    return [{**sp, "docs": sorted(sp["docs"], key=lambda d: (d["s"], d["ptr"]))}
            for sp in spans]


def test_infini_gram_payload_creativity_and_attribute(client: TestClient,
                                                      engines: dict[str, Engine]) -> None:
    eng = engines["tiny"]
    text = "the cat sat on the log"
    ids = eng.tokenize(text)
    body = ok_compat(client.post("/", json={"index": "tiny", "query_type": "creativity",
                                            "query": text}))
    assert body["rs"] == eng.creativity_rs(ids) and body["token_ids"] == ids
    assert isinstance(body["latency"], float)
    payload = {"index": "tiny", "query_type": "attribute", "query_ids": ids,
               "delim_ids": eng.tokenize(" "), "min_len": 2, "max_cnt": 3,
               "enforce_bow": False}
    body = ok_compat(client.post("/", json=payload))
    want = eng.attribute(ids, delim_ids=eng.tokenize(" "), min_len=2, max_cnt=3)
    assert _docs_sorted(body["spans"]) == want.to_infini_gram(eng.token_width)["spans"] != []
    assert body["tokens"] == list(text)
    # Defaults: delim_ids [], min_len 1, max_cnt 10 (infini-gram's engine needs them all).
    body = ok_compat(client.post("/", json={"index": "tiny", "query_type": "attribute",
                                            "query": text}))
    assert _docs_sorted(body["spans"]) == eng.attribute(ids).to_infini_gram(
        eng.token_width)["spans"]
    for bad in ({"query_ids": [300]}, {"query": "a", "delim_ids": [300]},
                {"query": "a", "min_len": -1}):
        error(client.post("/", json={"index": "tiny", "query_type": "attribute", **bad}), 400,
              "InvalidQueryError")
    error(client.post("/", json={"index": "tiny", "query_type": "creativity",
                                 "query_ids": [300]}), 400, "InvalidQueryError")
    error(client.post("/", json={"index": "tiny", "query_type": "attribute", "query": "a",
                                 "max_cnt": 0}), 422, "LimitExceededError")


# ----------------------------------------------------------------------------- infini-gram
#                                                                text, tokens and spans


@pytest.mark.parametrize("kind", ["hf-bytelevel", "hf-llama-legacy"])
def test_infini_gram_payload_reads_text_as_its_server(tmp_path: Path, kind: str) -> None:
    """Text as infini-gram's server tokenizes it: a space in front for GPT-2-style
    tokenizers, no lone "▁" first for Llama-style ones; ``tokens`` are the pieces."""
    from test_query_text import MAKERS, SENTENCES

    from anygram.tokenization import load_tokenizer

    make, name = MAKERS[kind]
    spec = make(tmp_path / name)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in SENTENCES))
    build_index(corpus, tmp_path / "idx", tokenizer=spec, progress=False, workers=1)
    tok = load_tokenizer(spec)
    with TestClient(create_app({"i": Engine.open(tmp_path / "idx")}),
                    base_url="http://localhost") as c:
        for text in ("quick brown", "the lazy dog", "1990 dog"):
            if kind == "hf-bytelevel":
                ids = tok.encode(" " + text)
            else:
                ids = tok.encode(text)
                if tok.pieces(ids[:1]) == ["▁"]:
                    ids = ids[1:]
            body = ok_compat(c.post("/", json={"index": "i", "query_type": "count",
                                               "query": text}))
            assert body["token_ids"] == ids and body["tokens"] == tok.pieces(ids)
            cnf = ok_compat(c.post("/", json={"index": "i", "query_type": "count",
                                              "query": f"{text} AND sat"}))
            assert cnf["token_ids"][0] == [ids]
            assert cnf["tokens"] == [[tok.pieces(ids)], [tok.pieces(cnf["token_ids"][1][0])]]
        assert ok_compat(c.post("/", json={"index": "i", "query_type": "count",
                                           "query": "quick brown"}))["count"] == 2
        ntd = ok_compat(c.post("/", json={"index": "i", "query_type": "ntd",
                                          "query": "the lazy"}))
        (entry,) = ntd["result_by_token_id"].values()  # "dog" twice
        assert entry["token"] == tok.pieces(tok.encode(" dog" if kind == "hf-bytelevel"
                                                       else "dog"))[0].replace("Ġ", " ")
        assert ok_compat(c.post("/", json={"index": "i", "query_type": "count",
                                           "query": ""}))["token_ids"] == []


def test_infini_gram_payload_bytes_and_spans(client: TestClient) -> None:
    """A bytes index reads ``\\xNN`` as a byte; ``spans`` cut each occurrence of each phrase
    apart, as infini-gram's server does."""
    body = ok_compat(client.post("/", json={"index": "tiny", "query_type": "count",
                                            "query": "\\x63at caf\\xc3\\xa9"}))
    assert body["token_ids"] == list("cat café".encode())
    assert body["tokens"] == [chr(b) for b in "cat café".encode()]
    found = ok_compat(client.post("/", json={"index": "tiny", "query_type": "search_docs",
                                             "query": "the", "maxnum": 10,
                                             "max_disp_len": 100}))
    spans = {tuple(tuple(s) for s in d["spans"]) for d in found["documents"]}
    assert (("the", "0"), (" cat sat on ", None), ("the", "0"), (" mat", None)) in spans
    cnf = ok_compat(client.post("/", json={"index": "tiny", "query_type": "search_docs",
                                           "query": "cat AND the OR a", "maxnum": 10,
                                           "max_disp_len": 100}))
    # Clause by clause, phrase by phrase: "cat" first, then "the" (in "other" too), then "a".
    assert [["a", "1"], [" ", None], ["cat", "0"], [" ", None], ["a", "1"], ["nd ", None],
            ["a", "1"], [" dog met ", None], ["the", "1"], [" o", None], ["the", "1"],
            ["r ", None], ["cat", "0"]] in [d["spans"] for d in cnf["documents"]]
    error(client.post("/", json={"index": "tiny", "query_type": "creativity", "query": ""}),
          400, "InvalidQueryError")


@pytest.mark.parametrize("value", ["1_0", " 1", "+1", "1\n", "0x1"])
def test_an_int_in_a_query_string_is_written_in_digits(client: TestClient, value: str) -> None:
    error(client.get("/v1/tiny/cnf/docs-with-all",
                     params={"query": "cat", "max_diff_tokens": value}), 422)
    error(client.get("/v1/tiny/search", params={"query": "cat", "max_docs": value}), 422)
    ok(client.get("/v1/tiny/search", params={"query": "cat", "max_docs": "2.0"}))


def test_ids_as_text_are_for_query_strings_only(client: TestClient) -> None:
    # GET writes ids as text (`1,2` or repeated) and CNF clauses as JSON text ...
    assert ok(client.get("/v1/tiny/count", params={"query_ids": "99,97"}))["count"] == \
        ok(client.post("/v1/tiny/count", json={"query_ids": [99, 97]}))["count"]
    ok(client.get("/v1/tiny/cnf/count", params={"query_ids": "[[[99, 97]]]"}))
    ok(client.get("/v1/tiny/attribute", params={"query_ids": "99,97", "delim_ids": "46"}))
    # ... a JSON body as its schema says: a string where an id goes is refused (it was
    # split as a query string's, so [""] counted the empty query)
    for body in ({"query_ids": [""]}, {"query_ids": ["99,97"]}, {"query_ids": "99"}):
        error(client.post("/v1/tiny/count", json=body), 422)
    error(client.post("/v1/tiny/cnf/count", json={"query_ids": "[[[99]]]"}), 422)
    error(client.post("/v1/tiny/attribute", json={"query_ids": [99], "delim_ids": "46,10"}),
          422)
