#!/usr/bin/env python3
"""search_docs latency: anygram vs infini-gram 2.6.0 on the same index, in the same run.

Both engines open the same index directory (warm page cache): infini-gram as
``InfiniGramEngine(..., ds_prefetch_depth=0, sa_prefetch_depth=0, od_prefetch_depth=0)`` (its
fastest warm-cache setting) and anygram with ``Engine.open``. The queries are n-grams cut at
random positions of the index (no separator inside, so every query occurs), ``--per-n`` of
each length in ``--lengths``. Each variant runs every query once per repetition, variants
alternating; the table gives the median wall and CPU µs per query over all queries and
repetitions (CPU: the process's, which counts infini-gram's threads too), and the ratios
anygram / infini-gram.

Variants:

- ``infini-gram``: ``search_docs(ids, maxnum=K, max_disp_len=D)`` (samples K occurrences with
  replacement, unseeded; returns token ids and raw metadata lines);
- ``anygram random ids``: ``search_docs(ids, max_docs=K, max_disp_len=D, order="random",
  decode=False)``: the like-for-like row (K distinct seeded occurrences, token ids, parsed
  metadata);
- ``anygram random ids, read``: the same, then every hit's ``token_ids`` and ``metadata``
  read (a window's token list and parsed metadata are built on first access, so the row
  above does not pay for them);
- ``anygram compat``: ``anygram.compat.InfiniGramEngine.search_docs`` with infini-gram's
  arguments and result dicts (token id lists and raw metadata lines, as infini-gram's);
- ``anygram random text``: the same as ``random ids`` with the windows decoded to text;
- ``anygram rank ids`` / ``anygram position ids``: the other two orders (position order
  locates and partially sorts every occurrence: O(count)).

Checks (reported, never fatal): counts equal infini-gram's; every anygram hit holds the query
at ``match_offset``; hits are distinct; and for random ranks, ``get_doc_by_rank`` windows
(both conventions) equal infini-gram's ``get_doc_by_rank`` / ``get_doc_by_rank_2``.

The index is built with ``anygram.build_index`` from JSONL (cached under ``OUT`` by input
paths, sizes and tokenizer), or given with ``--index``.

Examples::

    python3 /work/shared/data/wiki_summaries.py /tmp/wiki en-us
    python3 /work/shared/data/gcide.py /tmp/gcide
    anygram fetch gpt2-tokenizer --out /tmp/tok
    python bench/bench_search.py /tmp/wiki/*.jsonl /tmp/gcide/gcide.jsonl \\
        --tokenizer /tmp/tok/gpt2.tiktoken
    python bench/bench_search.py --index IDX_DIR --per-n 100 --reps 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

import anygram  # noqa: E402


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def index_for(corpus: list[str], tokenizer: str, out: Path) -> Path:
    """An anygram index of ``corpus`` under ``out``, built once per (inputs, tokenizer)."""
    h = hashlib.sha256()
    for p in sorted(corpus) + [tokenizer]:
        st = Path(p).stat()
        h.update(f"{Path(p).resolve()}:{st.st_size}:{int(st.st_mtime)}\n".encode())
    d = out / f"search_idx_{h.hexdigest()[:16]}"
    if not (d / "manifest.json").exists():
        log(f"building {d} from {len(corpus)} file(s)")
        t0 = time.perf_counter()
        anygram.build_index(corpus, d, tokenizer=tokenizer, overwrite=True, progress=False)
        log(f"built in {time.perf_counter() - t0:.1f} s")
    return d


def warm(d: Path) -> None:
    for p in sorted(d.iterdir()):
        if p.is_file():
            with open(p, "rb") as f:
                while f.read(1 << 26):
                    pass


def make_queries(eng: anygram.Engine, lengths: list[int], per_n: int,
                 rng: np.random.Generator) -> dict[int, list[list[int]]]:
    """``per_n`` n-grams of each length, cut at random positions of random shards."""
    sep = (1 << (8 * eng.token_width)) - 1
    toks = [np.frombuffer(s.ds, dtype=f"<u{eng.token_width}") for s in eng.shards]
    sizes = np.array([t.shape[0] for t in toks], dtype=np.float64)
    out: dict[int, list[list[int]]] = {}
    for n in lengths:
        qs: list[list[int]] = []
        while len(qs) < per_n:
            t = toks[int(rng.choice(len(toks), p=sizes / sizes.sum()))]
            p = int(rng.integers(0, t.shape[0] - n))
            w = t[p:p + n]
            if not (w == sep).any():
                qs.append(w.tolist())
        out[n] = qs
    return out


def time_each(fn: Callable[[list[int]], Any], qs: list[list[int]]
              ) -> tuple[list[float], list[float]]:
    """Wall and CPU µs of each query (CPU: this process, all threads: infini-gram's too)."""
    wall, cpu = [], []
    for q in qs:
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn(q)
        wall.append((time.perf_counter() - t0) * 1e6)
        cpu.append((time.process_time() - c0) * 1e6)
    return wall, cpu


def check_windows(ig: Any, eng: anygram.Engine, samples: int, disp: int,
                  rng: np.random.Generator) -> dict[str, int]:
    """get_doc_by_rank(_2) windows of random ranks: anygram vs infini-gram."""
    same = compared = 0
    for _ in range(samples):
        s = int(rng.integers(0, eng.num_shards))
        sh = eng.shards[s]
        rank = int(rng.integers(0, sh.num_positions - sh.num_docs))  # the last ranks: separators
        qlen, ctx = int(rng.integers(0, 6)), int(rng.integers(0, 40))
        a = eng.get_doc_by_rank(s, rank, max_disp_len=disp, decode=False)
        b = ig.get_doc_by_rank(s=s, rank=rank, max_disp_len=disp)
        a2 = eng.get_doc_by_rank(s, rank, query_len=qlen, max_ctx_len=ctx, decode=False)
        b2 = ig.get_doc_by_rank_2(s=s, rank=rank, needle_len=qlen, max_ctx_len=ctx)
        for x, y in ((a, b), (a2, b2)):
            compared += 1
            same += (x.token_ids == y["token_ids"] and x.doc_id == y["doc_ix"]
                     and x.doc_len == y["doc_len"] and x.match_offset == y["needle_offset"])
    return {"compared": compared, "equal": same}


def read_all(result: anygram.SearchResult) -> anygram.SearchResult:
    """Read every hit's token ids and metadata (materialised on first access)."""
    for h in result.hits:
        h.token_ids, h.metadata  # noqa: B018  # the reads are the point
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    from infini_gram.engine import InfiniGramEngine

    from anygram.compat import InfiniGramEngine as AnygramInfiniGram

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.index:
        d = Path(args.index)
    else:
        if not args.corpus or not args.tokenizer:
            raise SystemExit("give JSONL files and --tokenizer, or --index DIR")
        d = index_for(args.corpus, args.tokenizer, out)
    warm(d)
    eng = anygram.Engine.open(d)
    dtype = eng.token_dtype
    eos = eng.eos_id if eng.eos_id is not None else eng.vocab_size - 1
    ig = InfiniGramEngine(index_dir=str(d), eos_token_id=eos, vocab_size=eng.vocab_size,
                          token_dtype=dtype, ds_prefetch_depth=0, sa_prefetch_depth=0,
                          od_prefetch_depth=0)
    ag_ig = AnygramInfiniGram(index_dir=str(d), eos_token_id=eos, vocab_size=eng.vocab_size,
                              token_dtype=dtype)
    rng = np.random.default_rng(args.seed)
    lengths = [int(x) for x in args.lengths.split(",")]
    queries = make_queries(eng, lengths, args.per_n, rng)
    K, D = args.max_docs, args.max_disp_len
    eng.search_docs(queries[lengths[0]][0], max_docs=K, max_disp_len=D, order="random")  # JIT

    variants: dict[str, Callable[[list[int]], Any]] = {
        "infini-gram": lambda q: ig.search_docs(q, maxnum=K, max_disp_len=D),
        "anygram random ids": lambda q: eng.search_docs(q, max_docs=K, max_disp_len=D,
                                                        order="random", decode=False),
        "anygram random ids, read": lambda q: read_all(
            eng.search_docs(q, max_docs=K, max_disp_len=D, order="random", decode=False)),
        "anygram compat": lambda q: ag_ig.search_docs(q, maxnum=K, max_disp_len=D),
        "anygram random text": lambda q: eng.search_docs(q, max_docs=K, max_disp_len=D,
                                                         order="random"),
        "anygram rank ids": lambda q: eng.search_docs(q, max_docs=K, max_disp_len=D,
                                                      order="rank", decode=False),
        "anygram position ids": lambda q: eng.search_docs(q, max_docs=K, max_disp_len=D,
                                                          order="position", decode=False,
                                                          max_sorted=10**9),
    }

    # Correctness first (untimed).
    checks = {"count_equal": 0, "count_compared": 0, "hits_hold_query": 0, "hits": 0,
              "distinct_pages": 0, "pages": 0, "ig_pages_with_repeats": 0}
    for qs in queries.values():
        for q in qs:
            a = eng.search_docs(q, max_docs=K, max_disp_len=D, order="random", decode=False)
            b = ig.search_docs(q, maxnum=K, max_disp_len=D)
            checks["count_compared"] += 1
            checks["count_equal"] += a.count == b["cnt"]
            checks["pages"] += 1
            keys = {(h.shard, h.match_pos) for h in a.hits}
            checks["distinct_pages"] += len(keys) == len(a.hits)
            checks["ig_pages_with_repeats"] += len(set(b["idxs"])) < len(b["idxs"])
            for h in a.hits:
                checks["hits"] += 1
                checks["hits_hold_query"] += h.match_ids == q
    checks["windows_vs_infinigram"] = check_windows(ig, eng, args.window_checks, D, rng)

    rows = []
    for n, qs in queries.items():
        times: dict[str, list[float]] = {v: [] for v in variants}
        cpu: dict[str, list[float]] = {v: [] for v in variants}
        for rep in range(args.reps):
            order = list(variants) if rep % 2 == 0 else list(reversed(variants))
            for v in order:
                wall_v, cpu_v = time_each(variants[v], qs)
                times[v].extend(wall_v)
                cpu[v].extend(cpu_v)
        counts = [eng.count(q).count for q in qs]
        base = statistics.median(times["infini-gram"])
        base_cpu = statistics.median(cpu["infini-gram"])
        rows.append({
            "n": n, "queries": len(qs), "count_median": statistics.median(counts),
            "count_max": max(counts),
            "us_median": {v: round(statistics.median(t), 1) for v, t in times.items()},
            "us_mean": {v: round(statistics.fmean(t), 1) for v, t in times.items()},
            "ratio_median": {v: round(statistics.median(t) / base, 3)
                             for v, t in times.items()},
            "cpu_us_median": {v: round(statistics.median(t), 1) for v, t in cpu.items()},
            "cpu_ratio_median": {v: round(statistics.median(t) / base_cpu, 3)
                                 for v, t in cpu.items()},
        })
        log(f"n={n}: " + ", ".join(f"{v} {rows[-1]['us_median'][v]:.0f}" for v in variants))
    return {
        "index": str(d), "num_tokens": eng.num_tokens, "num_docs": eng.num_docs,
        "token_dtype": dtype, "shards": eng.num_shards, "max_docs": K, "max_disp_len": D,
        "reps": args.reps, "rows": rows, "checks": checks,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "loadavg": list(os.getloadavg())},
    }


def report(res: dict[str, Any]) -> str:
    variants = list(res["rows"][0]["us_median"])
    head = ["n", "count (median / max)"] + [f"{v} µs" for v in variants] + \
        [f"ratio {v.removeprefix('anygram ')}" for v in variants[1:]]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in res["rows"]:
        cells = [str(r["n"]), f"{r['count_median']:,.0f} / {r['count_max']:,}"]
        cells += [f"{r['us_median'][v]:.0f} (CPU {r['cpu_us_median'][v]:.0f})"
                  for v in variants]
        cells += [f"{r['ratio_median'][v]:.2f} (CPU {r['cpu_ratio_median'][v]:.2f})"
                  for v in variants[1:]]
        lines.append(" | ".join(cells))
    c = res["checks"]
    w = c["windows_vs_infinigram"]
    return "\n".join([
        f"search_docs, max_docs={res['max_docs']}, max_disp_len={res['max_disp_len']}, "
        f"{res['num_tokens']:,} tokens, {res['num_docs']:,} docs, {res['token_dtype']}, "
        f"{res['shards']} shard(s), {res['reps']} reps; wall µs per query, median (CPU µs, "
        "median, all threads); ratio = anygram / infini-gram medians",
        *lines,
        f"checks: counts equal {c['count_equal']}/{c['count_compared']}; hits holding the "
        f"query {c['hits_hold_query']}/{c['hits']}; distinct pages {c['distinct_pages']}/"
        f"{c['pages']} (infini-gram pages with repeated occurrences: "
        f"{c['ig_pages_with_repeats']}/{c['pages']}); get_doc_by_rank windows equal to "
        f"infini-gram's {w['equal']}/{w['compared']}",
        f"loadavg {res['machine']['loadavg']}",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("Examples::")[-1])
    ap.add_argument("corpus", nargs="*", help="JSONL files to index (unless --index)")
    ap.add_argument("--tokenizer", help="tokenizer for the corpus (.tiktoken, tokenizer.json)")
    ap.add_argument("--index", help="an existing anygram index directory")
    ap.add_argument("--lengths", default="1,2,3,5,8", help="query lengths in tokens")
    ap.add_argument("--per-n", type=int, default=200, help="queries per length")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--max-docs", type=int, default=10)
    ap.add_argument("--max-disp-len", type=int, default=1000)
    ap.add_argument("--window-checks", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "out"))
    ap.add_argument("--tag", default="search")
    args = ap.parse_args()
    res = run(args)
    text = report(res)
    out = Path(args.out)
    (out / f"bench_{args.tag}.json").write_text(json.dumps(res, indent=2))
    (out / f"bench_{args.tag}.txt").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
