#!/usr/bin/env python3
"""The Ray cluster's cost: fan-out overhead and distributed build time (issue 12).

One index, two ways, same run: ``Engine.open`` (this process) and ``anygram.cluster.open``
over a ``ray.cluster_utils.Cluster`` of ``--nodes`` labelled worker nodes (1 CPU each; the
head has none), inside a loopback-only network namespace (Ray listens on every interface:
the script re-runs itself under ``unshare -n`` through tests/netns.py when it is not in one).

build
    A synthetic corpus (``--docs`` documents of Zipf-distributed words) built with the byte
    tokenizer at ``--shard-tokens``: locally (``workers=1``), with ``ray_address`` (sorts
    as Ray tasks), and with ``placement="label"`` (each shard written and sorted on its
    node's own directory), seconds each, and whether the first two are the same file for
    file.

queries (warm page cache)
    ``count`` of random 1-5-grams taken from the corpus: single calls one after another
    (median µs), from 8 and from 32 client threads at once (queries per second and median
    latency), and ``count_many`` batches of ``--batch`` queries (µs per query); single
    calls and batches of the node-local index too. Answers of the engines are compared.

anygram is imported from ``../src``: the benchmark measures the checkout it sits in.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))


def _only_loopback() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def _corpus(path: Path, docs: int, seed: int) -> Path:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(5000)]
    weights = [1 / (i + 1) for i in range(len(words))]
    with path.open("w") as f:
        for _ in range(docs):
            text = " ".join(rng.choices(words, weights, k=rng.randint(20, 200)))
            f.write(json.dumps({"text": text}) + "\n")
    return path


def _same_files(a: Path, b: Path) -> bool:
    def files(d: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(d.iterdir())
                if p.is_file() and p.name != "manifest.json"}
    return files(a) == files(b)


def _queries(engine, n: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        doc = engine.get_doc(rng.randrange(engine.num_docs), decode=False).token_ids
        if len(doc) < 5:
            continue
        k = rng.randint(1, 5)
        a = rng.randrange(len(doc) - k + 1)
        out.append(list(doc[a:a + k]))
    return out


def _sequential(engine, queries) -> float:
    """Median µs of one count."""
    times = []
    for q in queries:
        t = time.perf_counter()
        engine.count(q)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def _concurrent(engine, queries, clients: int) -> tuple[float, float]:
    """Queries per second and median latency (µs) with ``clients`` threads asking at once."""
    lat: list[float] = []
    lock = threading.Lock()
    chunks = [queries[i::clients] for i in range(clients)]

    def client(qs):
        mine = []
        for q in qs:
            t = time.perf_counter()
            engine.count(q)
            mine.append(time.perf_counter() - t)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=client, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(queries) / (time.perf_counter() - start), statistics.median(lat) * 1e6


def _batched(engine, queries, batch: int) -> float:
    """µs per query of count_many over batches of ``batch``."""
    start = time.perf_counter()
    for i in range(0, len(queries), batch):
        engine.count_many(queries[i:i + batch])
    return (time.perf_counter() - start) / len(queries) * 1e6


def run(args: argparse.Namespace) -> dict:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray.cluster_utils import Cluster

    from anygram import Engine, cluster
    from anygram.index.build import build_index

    tmp = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    out: dict = {"nodes": args.nodes, "docs": args.docs, "shard_tokens": args.shard_tokens}
    try:
        c = Cluster(initialize_head=True,
                    head_node_args={"num_cpus": 0, "include_dashboard": False})
        for i in range(args.nodes):  # (each with a disk of its own for node-local shards)
            c.add_node(num_cpus=1, labels={"anygram-node": f"n{i}"},
                       env_vars={"ANYGRAM_NODE_ROOT": str(tmp / f"node-{i}")})
        c.wait_for_nodes()
        ray.init(address=c.address, namespace="anygram", log_to_driver=False)
        corpus = _corpus(tmp / "c.jsonl", args.docs, 0)

        t = time.perf_counter()
        m = build_index(corpus, tmp / "local", shard_tokens=args.shard_tokens, workers=1,
                        progress=False)
        out["build_local_s"] = time.perf_counter() - t
        t = time.perf_counter()
        build_index(corpus, tmp / "ray", shard_tokens=args.shard_tokens, progress=False,
                    ray_address=c.address)
        out["build_ray_s"] = time.perf_counter() - t
        t = time.perf_counter()
        build_index(corpus, tmp / "placed", shard_tokens=args.shard_tokens, progress=False,
                    ray_address=c.address, placement="label")
        out["build_ray_label_s"] = time.perf_counter() - t
        out["shards"], out["tokens"] = len(m.shards), m.num_tokens
        out["same_files"] = _same_files(tmp / "local", tmp / "ray")

        local = Engine.open(tmp / "local")
        t = time.perf_counter()
        remote = cluster.open(tmp / "local", address=c.address)
        out["cluster_open_s"] = time.perf_counter() - t
        queries = _queries(local, args.queries, 1)
        for e in (local, remote):  # warm: pages, kernels, actors
            e.count_many(queries)
            _sequential(e, queries[:200])
        out["answers_equal"] = all(local.count(q) == remote.count(q) for q in queries[:500])
        rows = {}
        for name, e in (("local", local), ("cluster", remote)):
            row = {"single_us": _sequential(e, queries)}
            for clients in (8, 32):
                qps, p50 = _concurrent(e, queries, clients)
                row[f"c{clients}_qps"], row[f"c{clients}_p50_us"] = qps, p50
            row["batch_us_per_query"] = _batched(e, queries, args.batch)
            rows[name] = row
        placed = cluster.open(tmp / "placed", address=c.address)
        placed.count_many(queries)
        _sequential(placed, queries[:200])
        out["placed_answers_equal"] = all(local.count(q) == placed.count(q)
                                          for q in queries[:500])
        rows["cluster, node-local"] = {"single_us": _sequential(placed, queries),
                                       "batch_us_per_query": _batched(placed, queries,
                                                                      args.batch)}
        out["rows"] = rows
        cluster.stop(placed)
        cluster.stop(remote)
        ray.shutdown()
        c.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--docs", type=int, default=40_000)
    p.add_argument("--shard-tokens", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--out", type=Path, default=HERE / "out" / "cluster.json")
    args = p.parse_args()
    if not _only_loopback():
        netns = HERE.parent / "tests" / "netns.py"
        cmd = ["unshare", "-n", sys.executable, str(netns), sys.executable, *sys.argv]
        sys.exit(subprocess.run(cmd).returncode)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"{result['shards']} shards, {result['tokens']:,} tokens, {args.nodes} nodes")
    print(f"build: local {result['build_local_s']:.1f} s, Ray {result['build_ray_s']:.1f} s, "
          f"Ray node-local {result['build_ray_label_s']:.1f} s, same files: "
          f"{result['same_files']}; cluster open {result['cluster_open_s']:.2f} s; answers "
          f"equal: {result['answers_equal']} (node-local: {result['placed_answers_equal']})")
    print(f"{'':20} {'single µs':>10} {'8 cl q/s':>9} {'8 cl p50':>9} {'32 cl q/s':>10} "
          f"{'32 cl p50':>10} {'batch µs/q':>11}")
    for name, r in result["rows"].items():
        cells = [f"{r[k]:{w}.0f}" if k in r else f"{'-':>{w}}" for k, w in
                 (("c8_qps", 9), ("c8_p50_us", 9), ("c32_qps", 10), ("c32_p50_us", 10))]
        print(f"{name:20} {r['single_us']:10.0f} {' '.join(cells)} "
              f"{r['batch_us_per_query']:11.1f}")


if __name__ == "__main__":
    main()
