"""The HTTP server under load: do cheap queries keep their latency while slow ones run?
And how long does the first query after start-up take?

    python bench/bench_server_load.py INDEX_DIR [--fast 8] [--slow 4] [--seconds 10]
           [--parts fairness,first] [--serve-args '--workers 2']

Starts ``anygram serve`` on the index (a subprocess, from ``../src``) and waits until it
reports its start-up complete. Then:

* **fairness**: ``--fast`` clients loop on ``/count`` of a random indexed bigram for
  ``--seconds``, alone, then again while ``--slow`` clients loop on ``/attribute`` of a
  990-character text pieced from the index's documents (``max_cnt=1000``, ``max_docs=10``,
  ``max_ctx_len=1000``: legal, and slow). Reports the cheap queries' throughput, p50 and p99,
  and what the slow ones got (answers, statuses).
* **first**: in a fresh server, the first query of each shape the web page sends (a CNF with
  AND and OR alternatives, its search, an n-gram query's count, ntd, infgram-ntd,
  infgram-text, creativity, search): the latency of each, the first time and again.

Figures go to stdout and ``bench/out/bench_server_load.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shlex
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from anygram import Engine  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


@contextmanager
def served(index: Path, extra: list[str]) -> Iterator[tuple[str, float]]:
    """``anygram serve`` on ``index`` (name ``idx``): the base URL once start-up is complete,
    and the seconds start-up took."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "anygram", "serve", "--name", f"idx={index}",
                             "--port", "0", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        assert proc.stderr is not None
        port = None
        for line in proc.stderr:
            found = re.search(r"http://[^:]+:(\d+)/", line)
            if found:
                port = int(found.group(1))
            if "Application startup complete" in line:
                break
        else:
            raise RuntimeError(f"anygram serve exited with {proc.wait()}")
        assert port is not None
        # Keep reading its log, so a full pipe never blocks the server.
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        yield f"http://127.0.0.1:{port}", time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(30)


def slow_text(engine: Engine, seed: int = 1) -> str:
    """990 characters pieced from 20-80-character cuts of random documents: many short
    spans that occur, as model output has."""
    rng = random.Random(seed)
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < 990:
        d = engine.get_doc(rng.randrange(engine.num_docs), max_tokens=3000)
        t = engine.decode(list(d.token_ids))
        if len(t) < 200:
            continue
        k = rng.randrange(len(t) - 100)
        parts.append(t[k:k + rng.randrange(20, 80)])
    return " ".join(parts)[:990]


def bigrams(engine: Engine, n: int, seed: int = 2) -> list[list[int]]:
    rng = random.Random(seed)
    out: list[list[int]] = []
    while len(out) < n:
        d = engine.get_doc(rng.randrange(engine.num_docs), max_tokens=500)
        ids = list(d.token_ids)
        if len(ids) > 2:
            k = rng.randrange(len(ids) - 2)
            out.append(ids[k:k + 2])
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


async def load(base: str, queries: list[list[int]], text: str, fast: int, slow: int,
               seconds: float) -> dict[str, object]:
    latencies: list[float] = []
    fast_status: Counter[int] = Counter()
    slow_status: Counter[int] = Counter()
    slow_times: list[float] = []
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=fast + slow + 4)

    async def fast_client(c: httpx.AsyncClient, k: int) -> None:
        i = k
        while time.perf_counter() < stop:
            q = queries[i % len(queries)]
            i += fast
            t = time.perf_counter()
            r = await c.get("/v1/idx/count", params={"query_ids": ",".join(map(str, q))})
            latencies.append(time.perf_counter() - t)
            fast_status[r.status_code] += 1

    async def slow_client(c: httpx.AsyncClient) -> None:
        body = {"query": text, "max_cnt": 1000, "max_docs": 10, "max_ctx_len": 1000}
        while time.perf_counter() < stop:
            t = time.perf_counter()
            r = await c.post("/v1/idx/attribute", json=body)
            slow_times.append(time.perf_counter() - t)
            slow_status[r.status_code] += 1

    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as c:
        started = time.perf_counter()
        await asyncio.gather(*(fast_client(c, k) for k in range(fast)),
                             *(slow_client(c) for _ in range(slow)))
        elapsed = time.perf_counter() - started
    return {"fast_clients": fast, "slow_clients": slow, "seconds": round(elapsed, 2),
            "count_requests": len(latencies),
            "count_per_s": round(len(latencies) / elapsed, 1),
            "count_p50_ms": round(pct(latencies, 0.5) * 1000, 2),
            "count_p99_ms": round(pct(latencies, 0.99) * 1000, 2),
            "count_statuses": dict(fast_status),
            "attribute_requests": len(slow_times),
            "attribute_p50_ms": round(pct(slow_times, 0.5) * 1000, 1),
            "attribute_statuses": dict(slow_status)}


def first_queries(base: str, engine: Engine) -> list[dict[str, object]]:
    """Each shape of query the page sends, twice, in a fresh server: (route, ms, ms)."""
    doc = engine.decode(list(engine.get_doc(engine.num_docs // 2, max_tokens=60).token_ids))
    words = [w for w in re.findall(r"[A-Za-z]{3,}", doc)][:6] or ["the", "a", "of"]
    cnf = f"{words[0]} AND {words[1]} OR {words[2]}"
    phrase = " ".join(words[3:5]) if len(words) >= 5 else words[0]
    shapes = [("cnf/count", {"query": cnf}), ("cnf/search", {"query": cnf}),
              ("count", {"query": phrase}), ("ntd", {"query": phrase, "top": 20}),
              ("infgram-ntd", {"query": phrase, "top": 10}),
              ("infgram-text", {"query": phrase}), ("creativity", {"query": phrase}),
              ("search", {"query": phrase})]
    out = []
    with httpx.Client(base_url=base, timeout=120) as c:
        c.get("/v1/limits")  # the connection, opened outside the timings
        for route, body in shapes:
            times = []
            for _ in range(2):
                t = time.perf_counter()
                r = c.post(f"/v1/idx/{route}", json=body)
                times.append(round((time.perf_counter() - t) * 1000, 1))
                assert r.status_code == 200, r.text
            out.append({"route": route, "query": body["query"], "first_ms": times[0],
                        "again_ms": times[1]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("index", type=Path)
    ap.add_argument("--fast", type=int, default=8)
    ap.add_argument("--slow", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--parts", default="fairness,first")
    ap.add_argument("--serve-args", default="", help="extra `anygram serve` options")
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    extra = shlex.split(args.serve_args)
    engine = Engine.open(args.index)
    report: dict[str, object] = {"index": str(args.index), "serve_args": extra}
    if "first" in parts:
        with served(args.index, extra) as (base, startup_s):
            report["startup_s"] = round(startup_s, 2)
            report["first"] = first_queries(base, engine)
        print(f"start-up {report['startup_s']} s")
        for row in report["first"]:  # type: ignore[attr-defined]
            print(f"  first {row['route']:<13} {row['first_ms']:>8} ms, again "
                  f"{row['again_ms']:>6} ms  ({row['query']!r})")
    if "fairness" in parts:
        text = slow_text(engine)
        queries = bigrams(engine, 2000)
        with served(args.index, extra) as (base, _):
            alone = asyncio.run(load(base, queries, text, args.fast, 0, args.seconds))
            loaded = asyncio.run(load(base, queries, text, args.fast, args.slow, args.seconds))
        report["alone"], report["loaded"] = alone, loaded
        for name, r in (("alone", alone), ("loaded", loaded)):
            print(f"{name:>6}: count {r['count_per_s']} req/s, p50 {r['count_p50_ms']} ms, "
                  f"p99 {r['count_p99_ms']} ms {r['count_statuses']}; attribute "
                  f"{r['attribute_requests']} answers, p50 {r['attribute_p50_ms']} ms "
                  f"{r['attribute_statuses']}")
    OUT.mkdir(exist_ok=True)
    name = f"bench_server_load{'_' + args.tag if args.tag else ''}.json"
    (OUT / name).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
