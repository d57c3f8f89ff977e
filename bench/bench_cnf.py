#!/usr/bin/env python3
"""CNF (AND/OR) counting: anygram vs infini-gram 2.6.0 on the same index, in the same run.

For each query, on the same index with a warm page cache:

- ``ig``: infini-gram's ``count_cnf`` at its defaults (``max_clause_freq=50000``,
  ``max_diff_tokens=100``; engine opened with prefetch depths 0, its fastest warm setting).
  It subsamples every clause above ``50000 / shards`` occurrences (``approx=True``).
- ``ag exact``: ``Engine.count_cnf(..., max_clause_freq=None)``: always exact.
- ``ag capped``: ``Engine.count_cnf(...)`` at its defaults (cap 50,000 on the rarest clause:
  above it, an unbiased estimate from 50,000 sampled anchors when the cost model predicts
  that to be cheaper than the exact answer, else exact). Column ``ag sampled``: how many
  of these calls sampled (``approx=True``); the others are exact.

Timing: every query is run once (answers), then ``--reps`` times with the three engines
alternating; per query the median is kept. Tables give, per band of the rarest clause's
count, the median latency of each engine and the median and worst per-query ratio
``ag exact / ig``.

Accuracy: infini-gram anchors on its rarest clause, so its count is compared with anygram's
exact count of the same query with the clauses sorted by count (rarest first = the anchor);
2-clause queries only (with 3 clauses infini-gram chains ranges, a different semantics).
Reported: how often infini-gram is exact, and its relative error when it is not.
anygram's capped estimate is compared with anygram's exact count (same query) and its
reported standard error.

Queries (token ids, from the indexed text itself): a random position of a random document
gives a term of 1-2 tokens; a second term starts 1-60 tokens later in the same document, so
every pair co-occurs at least once. Bands by the rarest clause's count: rare (< 1,000), mid
(1,000-50,000), frequent (50,000-250,000: infini-gram samples every clause) and very
frequent (> 250,000, e.g. whitespace tokens of code). Extra kinds: 3 clauses, and
OR clauses (2 terms). Terms are drawn frequency-weighted (positions) or as a random
distinct token, until each band has ``--queries`` queries (or a draw budget runs out).
Queries where one clause implies another (``x AND x``, ``x y AND x``) are skipped: anygram
drops such clauses for free, which would flatter it.

Index: ``--npy`` takes a token array in the layout of a ``tokenized`` file (each document
preceded by the all-ones separator id), e.g. ``bench/out/cache/corpus_*.npy`` from
``bench_core.py``, cut to the first ``--tokens`` tokens; ``--jsonl`` builds one with
``anygram.build_index`` and ``--tokenizer``. Indexes are kept in ``--out`` and reused.
``--index`` opens an existing index directory instead (e.g. to compare two versions of the
code on the same index under different ``--tag``s).

Examples::

    python3 /work/shared/data/wiki_summaries.py /tmp/wiki en-us
    python bench/bench_cnf.py --jsonl /tmp/wiki/wiki_summaries_en-us.jsonl --tokenizer bytes \\
        --tag wiki_bytes
    python bench/bench_cnf.py --npy bench/out/cache/corpus_8b1bf0a95108a83a.npy --tokens 20M \\
        --tag gpt2_20M
    python bench/bench_cnf.py --index bench/out/cnf_wiki_bytes --tag wiki_bytes_after
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

from anygram import Engine, build_index  # noqa: E402
from anygram.index.format import ptr_width_for  # noqa: E402
from anygram.index.suffix_array import build_table  # noqa: E402

IG_CAP = 50_000  # infini-gram's default max_clause_freq
D = 100  # infini-gram's default max_diff_tokens
BANDS = [("rare", 0, 1_000), ("mid", 1_000, 50_000), ("frequent", 50_000, 250_000),
         ("very frequent", 250_000, 10**18)]
KINDS = ["2 clauses", "3 clauses", "OR clause"]


def parse_count(s: str) -> int:
    s = s.strip().upper()
    mult = {"K": 10**3, "M": 10**6, "B": 10**9}.get(s[-1:], 1)
    return int(float(s[:-1] if mult > 1 else s) * mult)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ============================================================================ the index


def index_from_npy(npy: Path, n_tokens: int, out: Path) -> tuple[Path, dict[str, Any]]:
    """The first ``n_tokens`` document tokens of a tokenized-layout array as a v4 shard."""
    arr = np.load(npy, mmap_mode="r")
    width = arr.dtype.itemsize
    sep = (1 << (8 * width)) - 1
    d = out / f"cnf_{npy.stem}_{n_tokens}"
    info = {"source": str(npy), "dtype": str(arr.dtype)}
    if (d / "table.0").exists():
        return d, info
    head = np.asarray(arr[:n_tokens + n_tokens // 10 + 1000])
    seps = np.flatnonzero(head == sep)
    # Keep whole documents: cut at the first separator preceded by n_tokens document tokens.
    doc_tokens_before = seps - np.arange(seps.shape[0])
    k = int(np.searchsorted(doc_tokens_before, n_tokens))
    cut = int(seps[k]) if k < seps.shape[0] else head.shape[0]
    data = head[:cut]
    d.mkdir(parents=True, exist_ok=True)
    data.astype(f"<u{width}").tofile(d / "tokenized.0")
    (np.flatnonzero(data == sep).astype("<u8") * width).tofile(d / "offset.0")
    log(f"building the suffix table of {cut:,} positions in {d}")
    build_table(d / "tokenized.0", d / "table.0", width, ptr_width_for(cut * width))
    return d, info


def index_from_jsonl(paths: list[str], tokenizer: str, out: Path, tag: str
                     ) -> tuple[Path, dict[str, Any]]:
    d = out / f"cnf_{tag}"
    if not (d / "manifest.json").exists():
        log(f"building {d} from {paths} with tokenizer {tokenizer}")
        build_index(paths, d, tokenizer=tokenizer, overwrite=True, progress=False)
    return d, {"source": paths, "tokenizer": tokenizer}


# ============================================================================ queries


class QueryMaker:
    """Draws CNF queries from the text of the index's first shard."""

    def __init__(self, eng: Engine, rng: np.random.Generator):
        self.eng = eng
        self.rng = rng
        s = eng.shards[0]
        self.toks = np.frombuffer(s.ds, dtype=f"<u{s.token_width}")
        self.sep = (1 << (8 * s.token_width)) - 1
        self.offsets = np.asarray(s.offsets) // s.token_width
        self.counts: dict[tuple[int, ...], int] = {}
        self.distinct = np.unique(self.toks[self.rng.integers(0, self.toks.shape[0], 200_000)])
        self.distinct = self.distinct[self.distinct != self.sep]

    def count(self, term: list[int]) -> int:
        key = tuple(term)
        if key not in self.counts:
            self.counts[key] = self.eng.count(term).count
        return self.counts[key]

    def term_at(self, p: int, doc_end: int) -> list[int] | None:
        n = int(self.rng.integers(1, 3))
        if p + n > doc_end:
            return None
        return self.toks[p:p + n].tolist()

    def pair(self) -> tuple[list[int], list[int]] | None:
        """Two terms of one document, 1-60 tokens apart."""
        doc = int(self.rng.integers(0, self.offsets.shape[0]))
        lo = int(self.offsets[doc]) + 1
        hi = int(self.offsets[doc + 1]) if doc + 1 < self.offsets.shape[0] else self.toks.shape[0]
        if hi - lo < 4:
            return None
        p = int(self.rng.integers(lo, hi - 2))
        q = p + int(self.rng.integers(1, 61))
        a, b = self.term_at(p, hi), self.term_at(min(q, hi - 1), hi)
        if a is None or b is None:
            return None
        if self.rng.random() < 0.3:  # a random distinct token instead: rarer terms
            a = [int(self.rng.choice(self.distinct))]
        return a, b

    def make(self, per_band: int, budget: int = 20_000) -> list[dict[str, Any]]:
        want = {(k, b[0]): per_band for k in KINDS for b in BANDS}
        out = []
        for _ in range(budget):
            if not any(want.values()):
                break
            kind = KINDS[int(self.rng.integers(0, len(KINDS)))]
            pr = self.pair()
            if pr is None:
                continue
            a, b = pr
            if kind == "2 clauses":
                cnf = [[a], [b]]
            elif kind == "3 clauses":
                pr2 = self.pair()
                if pr2 is None:
                    continue
                cnf = [[a], [b], [pr2[1]]]
            else:
                pr2 = self.pair()
                if pr2 is None:
                    continue
                cnf = [[a], [b, pr2[0]]]
            if any(p == q for c in cnf for i, p in enumerate(c) for q in c[i + 1:]):
                continue
            # No clause implied by another (e.g. "x AND x"): the engine would skip checking
            # it, which no real query gets for free.
            if any(i != j and all(any(p[:len(q)] == q for q in cnf[j]) for p in cnf[i])
                   for i in range(len(cnf)) for j in range(len(cnf))):
                continue
            counts = [sum(self.count(p) for p in c) for c in cnf]
            if min(counts) == 0:
                continue
            band = next(name for name, lo, hi in BANDS if lo <= min(counts) < hi)
            if want[(kind, band)] <= 0:
                continue
            want[(kind, band)] -= 1
            out.append({"kind": kind, "band": band, "cnf": cnf, "counts": counts})
        missing = {f"{k}/{b}": n for (k, b), n in want.items() if n}
        if missing:
            log(f"draw budget exhausted; missing queries: {missing}")
        return out


# ============================================================================ the run


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from infini_gram.engine import InfiniGramEngine

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.index:
        d, info = Path(args.index), {"source": args.index}
        # An index built by --npy has no manifest: its vocabulary size is given.
        eng = (Engine.open(d) if (d / "manifest.json").exists()
               else Engine.open(d, vocab_size=args.vocab_size))
    elif args.npy:
        d, info = index_from_npy(Path(args.npy), parse_count(args.tokens), out)
        eng = Engine.open(d, vocab_size=args.vocab_size)
    else:
        d, info = index_from_jsonl(args.jsonl, args.tokenizer, out, args.tag)
        eng = Engine.open(d)
    w = eng.token_width
    vocab = eng.vocab_size
    ig = InfiniGramEngine(index_dir=str(d), eos_token_id=min(eng.eos_id or 0, vocab - 1),
                          vocab_size=vocab, token_dtype=eng.token_dtype, ds_prefetch_depth=0,
                          sa_prefetch_depth=0, od_prefetch_depth=0)
    log(f"index {d}: {eng.num_tokens:,} tokens, {eng.num_docs:,} docs, {eng.token_dtype}")
    queries = QueryMaker(eng, np.random.default_rng(args.seed)).make(args.queries)
    log(f"{len(queries)} queries")

    def ig_count(q):
        r = ig.count_cnf(q["cnf"])
        return r["count"], r["approx"]

    def ag_exact(q):
        r = eng.count_cnf(q["cnf"], max_diff_tokens=D, max_clause_freq=None)
        return r.count, r.approx

    def ag_capped(q):
        r = eng.count_cnf(q["cnf"], max_diff_tokens=D, max_clause_freq=IG_CAP, seed=args.seed)
        return r.estimate, r.approx, r.stderr

    engines = {"ig": ig_count, "ag_exact": ag_exact, "ag_capped": ag_capped}
    for q in queries:  # answers (and warm-up: numba compiles on the first calls)
        q["ig"] = ig_count(q)
        q["ag_exact"] = ag_exact(q)
        q["ag_capped"] = ag_capped(q)
        order = sorted(range(len(q["cnf"])), key=lambda j: q["counts"][j])
        q["exact_rarest_first"] = eng.count_cnf([q["cnf"][j] for j in order],
                                                max_diff_tokens=D, max_clause_freq=None).count
    times: dict[str, list[list[float]]] = {k: [[] for _ in queries] for k in engines}
    cpu: dict[str, list[list[float]]] = {k: [[] for _ in queries] for k in engines}
    for rep in range(args.reps):
        names = list(engines) if rep % 2 == 0 else list(reversed(engines))
        for i, q in enumerate(queries):
            for name in names:
                c = time.process_time()
                t = time.perf_counter()
                engines[name](q)
                times[name][i].append(time.perf_counter() - t)
                cpu[name][i].append(time.process_time() - c)
    for i, q in enumerate(queries):
        q["ms"] = {k: median(times[k][i]) * 1e3 for k in engines}
        q["cpu_ms"] = {k: median(cpu[k][i]) * 1e3 for k in engines}

    rows = []
    for kind in KINDS:
        for band, _, _ in BANDS:
            qs = [q for q in queries if q["kind"] == kind and q["band"] == band]
            if not qs:
                continue
            ratio = [q["ms"]["ag_exact"] / q["ms"]["ig"] for q in qs]
            ratio_c = [q["ms"]["ag_capped"] / q["ms"]["ig"] for q in qs]
            ratio_cpu = [q["cpu_ms"]["ag_exact"] / max(q["cpu_ms"]["ig"], 1e-3) for q in qs]
            row: dict[str, Any] = {
                "kind": kind, "band": band, "queries": len(qs),
                "median_min_count": median([min(q["counts"]) for q in qs]),
                "ig_ms": median([q["ms"]["ig"] for q in qs]),
                "ag_exact_ms": median([q["ms"]["ag_exact"] for q in qs]),
                "ag_capped_ms": median([q["ms"]["ag_capped"] for q in qs]),
                "ratio_exact_median": median(ratio), "ratio_exact_max": max(ratio),
                "ratio_capped_median": median(ratio_c),
                "ratio_exact_cpu_median": median(ratio_cpu),
                "within_2x": sum(x <= 2.0 for x in ratio),
                "ig_approx": sum(q["ig"][1] for q in qs),
                "ag_capped_approx": sum(q["ag_capped"][1] for q in qs),
            }
            if kind == "2 clauses":
                exact = [q["exact_rarest_first"] for q in qs]
                igc = [q["ig"][0] for q in qs]
                rel = [abs(a - e) / max(e, 1) for a, e in zip(igc, exact)]
                row["ig_equal_exact"] = sum(a == e for a, e in zip(igc, exact))
                row["ig_rel_err_median"] = median(rel)
                row["ig_rel_err_max"] = max(rel)
                row["ig_exact_mode_mismatches"] = sum(
                    1 for q, a, e in zip(qs, igc, exact) if not q["ig"][1] and a != e)
            capped = [q for q in qs if q["ag_capped"][1]]
            if capped:
                rel = [abs(q["ag_capped"][0] - q["ag_exact"][0]) / max(q["ag_exact"][0], 1)
                       for q in capped]
                row["ag_capped_rel_err_median"] = median(rel)
                row["ag_capped_rel_err_max"] = max(rel)
                row["ag_capped_within_3se"] = sum(
                    abs(q["ag_capped"][0] - q["ag_exact"][0]) <= 3 * q["ag_capped"][2] + 0.5
                    for q in capped)
            rows.append(row)
    return {
        "index": str(d), "index_info": info, "tokens": eng.num_tokens, "docs": eng.num_docs,
        "token_dtype": eng.token_dtype, "token_width": w, "reps": args.reps,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "loadavg": os.getloadavg()},
        "rows": rows,
        "queries": [{k: v for k, v in q.items()} for q in queries],
    }


def report(res: dict[str, Any]) -> str:
    lines = [f"index: {res['index']} ({res['tokens']:,} tokens, {res['docs']:,} docs, "
             f"{res['token_dtype']}); d={D}, infini-gram cap {IG_CAP}; median of "
             f"{res['reps']} runs per query; loadavg {res['machine']['loadavg']}", ""]
    hdr = ["kind", "band", "n", "min count", "ig ms", "ag exact ms", "ag capped ms",
           "exact/ig med", "(cpu)", "max", "<=2x", "capped/ig med", "ag sampled",
           "ig approx"]
    rows = [[r["kind"], r["band"], r["queries"], f"{r['median_min_count']:,.0f}",
             f"{r['ig_ms']:.2f}", f"{r['ag_exact_ms']:.2f}", f"{r['ag_capped_ms']:.2f}",
             f"{r['ratio_exact_median']:.2f}", f"{r['ratio_exact_cpu_median']:.2f}",
             f"{r['ratio_exact_max']:.2f}", f"{r['within_2x']}/{r['queries']}",
             f"{r['ratio_capped_median']:.2f}", f"{r['ag_capped_approx']}/{r['queries']}",
             f"{r['ig_approx']}/{r['queries']}"]
            for r in res["rows"]]
    widths = [max(len(str(x)) for x in col) for col in zip(hdr, *rows)]
    for row in [hdr, *rows]:
        lines.append("  ".join(str(x).rjust(wd) for x, wd in zip(row, widths)))
    lines += ["", "accuracy, 2-clause queries (infini-gram vs exact count anchored on the "
              "rarest clause; anygram capped vs anygram exact):"]
    for r in res["rows"]:
        if r["kind"] != "2 clauses":
            continue
        s = (f"  {r['band']:>13}: ig exact on {r['ig_equal_exact']}/{r['queries']}, rel. err "
             f"median {r['ig_rel_err_median']:.3f} max {r['ig_rel_err_max']:.3f}; ig "
             f"wrong while approx=False: {r['ig_exact_mode_mismatches']}")
        if "ag_capped_rel_err_median" in r:
            s += (f"; ag capped rel. err median {r['ag_capped_rel_err_median']:.3f} max "
                  f"{r['ag_capped_rel_err_max']:.3f}, within 3 stderr "
                  f"{r['ag_capped_within_3se']}/{r['ag_capped_approx']}")
        lines.append(s)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--npy", help="token array in tokenized-file layout")
    src.add_argument("--jsonl", nargs="+", help="JSONL corpus files")
    src.add_argument("--index", help="an existing index directory (built by --npy or --jsonl)")
    ap.add_argument("--tokenizer", default="bytes", help="for --jsonl (default: bytes)")
    ap.add_argument("--tokens", default="20M", help="for --npy: document tokens to index")
    ap.add_argument("--vocab-size", type=int, default=50257,
                    help="for --npy, and --index without a manifest")
    ap.add_argument("--queries", type=int, default=12, help="per kind and band")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "out"))
    ap.add_argument("--tag", default="cnf")
    args = ap.parse_args()
    res = run(args)
    text = report(res)
    print(text)
    out = Path(args.out)
    (out / f"bench_cnf_{args.tag}.json").write_text(json.dumps(res, indent=1, default=str))
    (out / f"bench_cnf_{args.tag}.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
