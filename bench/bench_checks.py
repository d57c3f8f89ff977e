#!/usr/bin/env python3
"""What the index-safety checks cost: ``Engine.open`` (warm and cold page cache) and the
kernels that check the suffix-array pointers they read.

Run it with the sources before and after a change to compare (the machine's noise is large:
figures are the minimum over ``--reps`` runs)::

    PYTHONPATH=src python bench/bench_checks.py IDX [--reps 15]
    python bench/bench_checks.py --make IDX   # a synthetic 20M-token, 8-shard u16 index

Cold opens drop the index files from the page cache with ``posix_fadvise(DONTNEED)`` (no
root needed); the figure then includes reading what the open-time checks read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
if os.environ.get("PYTHONPATH"):  # an explicit PYTHONPATH (e.g. an older checkout) wins
    sys.path.insert(0, os.environ["PYTHONPATH"].split(os.pathsep)[0])

from anygram import Engine, kernels  # noqa: E402
from anygram.kernels import cnf as kernels_cnf  # noqa: E402


def best(f: Callable[[], object], reps: int) -> float:
    """Minimum seconds of ``reps`` calls (after one warm-up call)."""
    f()
    out = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        f()
        out = min(out, time.perf_counter() - t)
    return out


def drop_cache(directory: Path) -> None:
    for p in directory.iterdir():
        if p.is_file():
            with open(p, "rb") as f:
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def make(directory: Path) -> None:
    from anygram.index.build import build_index_from_ids

    rng = np.random.default_rng(1)
    docs = ((rng.zipf(1.2, size=rng.integers(100, 1000)) % 30000).astype(np.uint16)
            for _ in range(36000))
    build_index_from_ids(docs, directory, vocab_size=30000, shard_tokens=2_500_000,
                         overwrite=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("index", type=Path)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--make", action="store_true", help="build the synthetic index first")
    args = ap.parse_args()
    if args.make:
        make(args.index)
    reps = args.reps
    eng = Engine.open(args.index)
    print(f"{eng!r}")
    t = best(lambda: Engine.open(args.index), reps)
    print(f"Engine.open, warm: {t * 1e3:.2f} ms")

    def cold() -> None:
        drop_cache(args.index)
        Engine.open(args.index)

    t = best(cold, 5)
    print(f"Engine.open, cold (fadvise DONTNEED first): {t * 1e3:.2f} ms")
    s = eng.shards[0]
    sa, k, w, n = s.sa, s.ptr_width, s.token_width, s.num_positions
    rng = np.random.default_rng(0)
    ranks = rng.integers(0, n, 1_000_000)
    rows = [
        ("Engine.positions (whole shard)", lambda: eng.positions(0, 0, n), n),
        ("rank_positions (whole shard)", lambda: kernels.rank_positions(sa, k, w, 0, n), n),
        ("positions_at (1M random ranks)", lambda: kernels.positions_at(sa, k, w, ranks),
         ranks.shape[0]),
        ("smallest_positions (whole shard, m=100)",
         lambda: kernels.smallest_positions(sa, k, w, 0, n, 100), n),
        ("mark_ranks (whole shard)", lambda: kernels_cnf.mark_ranks(
            sa, k, w, np.array([0]), np.array([n]), np.zeros(1, dtype=np.int64), 1, n), n),
    ]
    for name, f, count in rows:
        print(f"{name}: {best(f, reps) / count * 1e9:.3f} ns/rank")
    queries = []
    for p in rng.integers(1, n - 10, 3000).tolist():
        toks = s.ds[p * w:(p + 2) * w].view(f"<u{w}").tolist()
        if (1 << (8 * w)) - 1 not in toks:
            queries.append(toks)
    for name, f, count in [
        ("count (2-grams)", lambda: [eng.count(q) for q in queries], len(queries)),
        ("ntd (2-gram prompts)", lambda: [eng.ntd(q) for q in queries[:300]], 300),
        ("search_docs (random order, 20 docs)",
         lambda: [eng.search_docs(q[:1], max_docs=20, order="random", seed=1)
                  for q in queries[:100]], 100),
        ("count_cnf (two 1-token clauses, d=20)",
         lambda: [eng.count_cnf([[[a]], [[b]]], max_diff_tokens=20)
                  for a, b in queries[:20]], 20),
    ]:
        print(f"{name}: {best(f, max(3, reps // 3)) / count * 1e6:.1f} us/query")


if __name__ == "__main__":
    main()
