#!/usr/bin/env python3
"""The corpus tools' cost (issue 16): ``anygram dedup`` time and peak memory per token against
the index's build time, and ``anygram contamination`` µs per benchmark token.

``python bench/bench_corpus_tools.py IDX [--min-tokens 50] [--bench FILE.jsonl]``: IDX is an
anygram index (its manifest gives the build time); the dedup runs in a fresh child process
(peak RSS from ``getrusage``, the page cache warmed by one read of the shard files first, as a
build leaves them); the contamination of ``--bench`` examples (JSONL, a ``text`` field; by
default the first 200 documents of IDX itself, re-read, so that every example is covered)
with ``n = 13``. anygram is imported from ``../src``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"

DEDUP = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from anygram import Engine
from anygram.tools import dedup
engine = Engine.open(sys.argv[2])
for s in engine.shards:  # warm, as a build leaves them
    _ = int(s.ds[::4096].sum()) + int(s.sa[::4096].sum())
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
dup = dedup.find_duplicates(engine, int(sys.argv[3]))
find_s = time.perf_counter() - t
report = dup.report(0)
total_s = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"find_s": find_s, "with_report_s": total_s, "rss_before_kb": before,
                  "peak_rss_kb": peak, "report": report}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("index", type=Path)
    p.add_argument("--min-tokens", type=int, default=50)
    p.add_argument("--bench", type=Path, default=None)
    p.add_argument("--examples", type=int, default=200)
    p.add_argument("--out", type=Path, default=HERE / "out" / "corpus_tools.json")
    args = p.parse_args()
    sys.path.insert(0, str(SRC))
    from anygram import Engine
    from anygram.tools import contamination as tc

    manifest = json.loads((args.index / "manifest.json").read_text())
    tokens = sum(s["num_tokens"] for s in manifest["shards"])
    out = {"index": str(args.index), "tokens": tokens, "shards": len(manifest["shards"]),
           "build_s": manifest["build"].get("seconds"), "min_tokens": args.min_tokens}
    run = subprocess.run([sys.executable, "-c", DEDUP, str(SRC), str(args.index),
                          str(args.min_tokens)], capture_output=True, text=True, check=True)
    d = json.loads(run.stdout.strip().splitlines()[-1])
    out["dedup"] = {**{k: v for k, v in d.items() if k != "report"},
                    "s_per_million_tokens": d["find_s"] / tokens * 1e6,
                    "peak_extra_bytes_per_token": (d["peak_rss_kb"] - d["rss_before_kb"])
                    * 1024 / tokens,
                    "vs_build": d["find_s"] / out["build_s"] if out["build_s"] else None,
                    **{k: d["report"][k] for k in ("spans", "removed_tokens",
                                                   "share_of_tokens", "share_of_documents")}}
    engine = Engine.open(args.index)
    if args.bench is not None:
        examples = list(tc.read_examples(args.bench))[:args.examples]
        ids = [engine.tokenize(t) for t in examples]
    else:
        ids = [list(engine.get_doc(d, max_tokens=2000, decode=False).token_ids)
               for d in range(min(args.examples, engine.num_docs))]
    tc.example_contamination(engine, ids[0][:50])  # kernels loaded
    t = time.perf_counter()
    covered = [tc.example_contamination(engine, x).coverage for x in ids]
    seconds = time.perf_counter() - t
    n = sum(len(x) for x in ids)
    out["contamination"] = {"examples": len(ids), "tokens": n, "seconds": seconds,
                            "us_per_token": seconds / n * 1e6 if n else None,
                            "mean_coverage": sum(covered) / len(covered) if covered else None}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
