"""Exact next-token distributions of 1- and 2-token prompts: anygram with its next-token table,
anygram without it, and infini-gram 2.6's *sampled* ntd (``max_support=1000``), on the same
index, warm page cache, in one run (issue 11 item 6).

    python bench/bench_ntd.py INDEX_DIR [--work DIR] [--threshold 256] [--queries 300]
        [--reps 5] [--tag NAME]

INDEX_DIR (an anygram or infini-gram v4 directory) is not modified: its shard files are
hard-linked into ``--work`` (default ``bench/out/ntd-<name>``), where the next-token tables
are written (built here unless one of ``--threshold`` is there; build time and size reported).
Prompts are windows of 1 and 2 tokens at random positions of the index (no separator inside),
so frequent prompts come up as often as they occur. Each op runs the batch once (answers
collected, kernels warm), then ``--reps`` times with the engines alternating; the figure is
the median over reps of the mean µs per query, and its ratio to infini-gram's sampled ntd.
Answers with and without the table are compared for equality (and to infini-gram's where it
did not sample). Results: ``bench/out/bench_ntd_<tag>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_core as core
import numpy as np

from anygram import Engine
from anygram.index import ntd_table
from anygram.index.format import DEFAULT_NTD_THRESHOLD


def link_index(src: Path, work: Path) -> None:
    """``work``: the shard files (and manifest) of ``src``, hard-linked; its own sidecars."""
    work.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and f.name.split(".")[0] in (
                "tokenized", "table", "offset", "metadata", "metaoff", "manifest"):
            if not (work / f.name).exists():
                os.link(f, work / f.name)


def ensure_tables(eng: Engine, threshold: int) -> dict[str, Any]:
    """Each shard's table at ``threshold`` in its directory (built unless there): build
    seconds and bytes."""
    seconds, size, tokens = 0.0, 0, 0
    for s in eng.shards:
        path = s.directory / ntd_table.table_name(s.file_suffix)
        args = (s.ds, s.sa, s.token_width, s.ptr_width)
        found = ntd_table.read(path, *args, s.identity) if path.exists() else None
        if found is None or found.threshold != threshold:
            t = time.perf_counter()
            table = ntd_table.build(*args, threshold=threshold)
            seconds += time.perf_counter() - t
            ntd_table.write(path, table, *args, s.identity)
        size += path.stat().st_size
        tokens += s.num_tokens
    return {"threshold": threshold, "build_s": round(seconds, 2), "bytes": size,
            "bytes_per_token": round(size / max(tokens, 1), 3)}


def mean_us(fn: Callable[[Any], Any], queries: list[Any]) -> float:
    t = time.perf_counter()
    for q in queries:
        fn(q)
    return (time.perf_counter() - t) / len(queries) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index", type=Path)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--threshold", type=int, default=DEFAULT_NTD_THRESHOLD)
    ap.add_argument("--dtype", default=None, help="u8/u16/u32 (an index without manifest)")
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--eos", type=int, default=50256)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default=None)
    args = ap.parse_args()
    from infini_gram.engine import InfiniGramEngine

    src = args.index.resolve()
    work = args.work or core.HERE / "out" / f"ntd-{src.name}"
    link_index(src, work)
    res: dict[str, Any] = core.run_header()
    res["index"] = str(src)
    plain = Engine.open(work, token_dtype=args.dtype, vocab_size=args.vocab, eos_id=args.eos,
                        ntd_table=False)
    core.log(f"next-token tables at threshold {args.threshold} in {work}")
    res["table"] = ensure_tables(plain, args.threshold)
    core.log(f"  {res['table']}")
    eng = Engine.open(work, token_dtype=args.dtype, vocab_size=args.vocab, eos_id=args.eos)
    width = eng.token_width
    ig = InfiniGramEngine(index_dir=str(work), eos_token_id=args.eos, vocab_size=args.vocab,
                          token_dtype=eng.token_dtype, ds_prefetch_depth=0,
                          sa_prefetch_depth=0, od_prefetch_depth=0)
    core.log("warming the page cache")
    for s in eng.shards:
        for a in (s.ds, s.sa):
            np.asarray(a[::4096]).sum()
    rng = np.random.default_rng(args.seed)
    sep = (1 << (8 * width)) - 1
    tokens = [np.asarray(s.ds).view(f"<u{width}") for s in eng.shards]
    res["shards"], res["tokens"] = eng.num_shards, eng.num_tokens
    res["rows"] = []
    print("| prompt | ig sampled µs | ag exact, table µs | ratio | ag exact, no table µs | "
          "ratio | ag max_support=1000 µs | ag ntd_many, table µs/query | in table | "
          "mean count | mean distinct | table == no table | == ig (not sampled) |")
    print("|" + "---|" * 13)
    for k in (1, 2):
        qs = [w.tolist() for w in core.sample_windows(tokens, sep, k, args.queries, rng)]
        ops: dict[str, Callable[[Any], Any]] = {
            "ig": lambda q: ig.ntd(q, max_support=1000),
            "table": eng.ntd,
            "no_table": plain.ntd,
            "ag_sampled": lambda q: eng.ntd(q, max_support=1000),
        }
        answers = {name: [fn(q) for q in qs] for name, fn in ops.items()}
        same = sum(a == b for a, b in zip(answers["table"], answers["no_table"]))
        exact_ig = [(a, b) for a, b in zip(answers["table"], answers["ig"]) if not b["approx"]]
        same_ig = sum(core.ag_dist(a, args.eos) == core.ig_dist(b) for a, b in exact_ig)
        assert eng.ntd_many(qs) == answers["table"]
        in_table = 0
        for q in qs:
            ranges = eng.find(q).ranges
            in_table += all(hi - lo >= args.threshold for lo, hi in ranges if hi > lo)
        times: dict[str, list[float]] = {name: [] for name in [*ops, "many"]}
        for r in range(args.reps):
            order = list(ops) if r % 2 == 0 else list(reversed(ops))
            for name in order:
                times[name].append(mean_us(ops[name], qs))
            t = time.perf_counter()
            eng.ntd_many(qs)
            times["many"].append((time.perf_counter() - t) / len(qs) * 1e6)
        med = {name: core.median(v) for name, v in times.items()}
        row = {
            "prompt_tokens": k, "queries": len(qs), "median_us": med,
            "ratio_table_vs_ig_sampled": round(med["table"] / med["ig"], 4),
            "ratio_no_table_vs_ig_sampled": round(med["no_table"] / med["ig"], 4),
            "share_in_table": round(in_table / len(qs), 3),
            "mean_prompt_count": round(float(np.mean([a.prompt_count
                                                      for a in answers["table"]])), 1),
            "mean_distinct_next": round(float(np.mean([len(a.counts)
                                                       for a in answers["table"]])), 1),
            "table_equals_no_table": f"{same}/{len(qs)}",
            "equals_ig_where_exact": f"{same_ig}/{len(exact_ig)}",
            "loadavg": core.loadavg(),
        }
        res["rows"].append(row)
        print(f"| {k} | {med['ig']:.1f} | {med['table']:.1f} | "
              f"{row['ratio_table_vs_ig_sampled']:.3f} | {med['no_table']:.1f} | "
              f"{row['ratio_no_table_vs_ig_sampled']:.3f} | {med['ag_sampled']:.1f} | "
              f"{med['many']:.1f} | {row['share_in_table']:.2f} | {row['mean_prompt_count']} | "
              f"{row['mean_distinct_next']} | {row['table_equals_no_table']} | "
              f"{row['equals_ig_where_exact']} |", flush=True)
    out = core.HERE / "out" / f"bench_ntd_{args.tag or src.name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    core.log(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
