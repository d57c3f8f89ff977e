"""What takedown costs per query: latency with N removed documents vs none, same index, same run.

    python bench/bench_takedown.py INDEX_DIR [--removed 0,10,1000,10000] [--queries 2000]

INDEX_DIR is copied (hard links for shard files) so the original is not modified. Queries are
n-grams read at random positions of the index. Prints median µs per query and the ratio to
N = 0 for count (n = 2, 5), ntd (2-token prompts) and infgram_prob (20-token prompts).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from anygram import Engine
from anygram import takedown as td


def _copy_index(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file() and not f.name.startswith("takedown"):
            os.link(f, dst / f.name)


def _median_us(fn, queries, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        for q in queries:
            fn(q)
        times.append((time.perf_counter() - t) / len(queries) * 1e6)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("index", type=Path)
    ap.add_argument("--removed", default="0,10,1000,10000")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()

    base = Engine.open(args.index, takedown=False)
    rng = np.random.default_rng(0)
    shard = base.shards[0]
    toks = shard.ds.view(f"<u{shard.token_width}")
    sep = (1 << (8 * shard.token_width)) - 1

    def ngrams(n: int, count: int) -> list[list[int]]:
        out: list[list[int]] = []
        while len(out) < count:
            p = int(rng.integers(0, toks.shape[0] - n - 1))
            q = toks[p:p + n].tolist()
            if sep not in q:
                out.append(q)
        return out

    ops = {
        "count n=2": (lambda e: e.count, ngrams(2, args.queries)),
        "count n=5": (lambda e: e.count, ngrams(5, args.queries)),
        "ntd n=2": (lambda e: e.ntd, ngrams(2, args.queries // 10)),
        "infgram_prob n=20": (lambda e: (lambda q: e.infgram_prob(q[:-1], q[-1])),
                              ngrams(21, args.queries // 4)),
    }
    with tempfile.TemporaryDirectory() as tmp:
        idx = Path(tmp) / "idx"
        _copy_index(args.index, idx)
        results: dict[int, dict[str, float]] = {}
        for n_removed in [int(x) for x in args.removed.split(",")]:
            n_removed = min(n_removed, base.num_docs)
            ids = rng.choice(base.num_docs, size=n_removed, replace=False).tolist()
            t = time.perf_counter()
            td.set_removed(idx, ids)
            took = time.perf_counter() - t
            eng = Engine.open(idx)
            results[n_removed] = {}
            for name, (make, queries) in ops.items():
                fn = make(eng)
                fn(queries[0])  # compile / warm
                results[n_removed][name] = _median_us(fn, queries, args.reps)
            print(f"removed {n_removed:>6} docs (takedown took {took:.2f} s): " + ", ".join(
                f"{k} {v:.1f} µs ({v / results[0][k] if 0 in results else 1:.2f}x)"
                for k, v in results[n_removed].items()))
        shutil.rmtree(idx)


if __name__ == "__main__":
    main()
