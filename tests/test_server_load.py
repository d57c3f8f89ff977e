"""A small load test: concurrent clients against a real uvicorn server on 127.0.0.1.

Bounded: 16 clients x 25 requests, each answer checked against the engine; the whole run
must finish in seconds with no error and a bounded tail latency.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from test_server import build_text_index, running_server  # noqa: E402

from anygram import Engine  # noqa: E402
from anygram.server import ServerLimits, create_app  # noqa: E402

CLIENTS = 16
REQUESTS_EACH = 25
QUERIES = ["the", "cat", "at", " on the ", "natural language", "zzz", "a", ""]


def test_concurrent_clients_get_correct_answers_quickly(tmp_path: Path) -> None:
    engine = Engine.open(build_text_index(tmp_path))
    expected = {q: engine.count(q).count for q in QUERIES}
    app = create_app({"tiny": engine}, ServerLimits(workers=2, max_pending=64, timeout_s=5))
    latencies: list[float] = []
    statuses: list[int] = []

    async def client(base: str, k: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            for i in range(REQUESTS_EACH):
                q = QUERIES[(k + i) % len(QUERIES)]
                started = time.perf_counter()
                if i % 3 == 0:
                    r = await c.get("/v1/tiny/count", params={"query": q})
                elif i % 3 == 1:
                    r = await c.post("/v1/tiny/ntd", json={"query": q, "top": 5})
                else:
                    r = await c.post("/", json={"index": "tiny", "query_type": "count",
                                                "query": q})
                latencies.append(time.perf_counter() - started)
                statuses.append(r.status_code)
                body = r.json()
                if i % 3 == 1:
                    assert body["prompt_count"] == expected[q]
                else:
                    assert body["count"] == expected[q]

    async def all_clients(base: str) -> None:
        await asyncio.wait_for(asyncio.gather(*(client(base, k) for k in range(CLIENTS))),
                               timeout=30)

    with running_server(app) as base:
        started = time.perf_counter()
        asyncio.run(all_clients(base))
        elapsed = time.perf_counter() - started

    assert statuses == [200] * (CLIENTS * REQUESTS_EACH)
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    print(f"\n{len(latencies)} requests from {CLIENTS} clients in {elapsed:.2f} s: "
          f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
    assert p99 < 2.0 and elapsed < 20
