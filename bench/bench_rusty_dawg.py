#!/usr/bin/env python3
"""Per-token ∞-gram of whole texts: anygram's ``infgram_text`` vs rusty-dawg's CDAWG walk.

rusty-dawg (``pip install rusty-dawg==0.2.2``; not a dependency of anygram) builds a compacted
DAWG of the corpus; walking a text through it with ``transition_and_count`` gives, after each
token, the longest suffix of the text so far that occurs in the corpus (``state.get_length()``)
and its count (``get_suffix_count(state)``): the quantity ``infgram_text`` reports as
``suffix_len`` / ``prompt_count`` for the next position.

On the same token ids (the documents in the first ``--tokens`` positions of the cached corpus
``bench/out/cache/corpus_*.npy``: each document preceded by the separator id 65535), this script

1. builds the anygram index (``anygram.index.build.build_index_from_ids``) in a fresh process, and
   its suffix table alone (``anygram.index.suffix_array.build_table`` on the written
   ``tokenized.0``) in another;
2. builds the CDAWG (``Cdawg(ids).build(); fill_counts()``) in a fresh process. The ids are the
   same array plus a final 65535: 65535 is rusty-dawg's ``Cdawg.EOS``, and without it at the end
   of the sequence some counts are wrong (checked against brute force on small corpora); the
   separator also keeps matches inside documents, as in anygram. The same process then walks
   the held-out texts token by token and writes lengths, counts and timings;
3. opens the anygram index, runs ``infgram_text`` on the same texts (after ``--warm`` other
   texts), and compares: CDAWG state after ``text[:j]`` vs anygram entry ``j`` (j = 1..n-1);
   counts are compared where the suffix is non-empty.

Wall/CPU time and peak RSS of the child processes come from ``wait4``; phase times and RSS are
reported by the children. The held-out texts are cut from the part of the corpus after the
indexed prefix (no separator inside). rusty-dawg's ``__init__`` imports ``transformers`` for a
type hint; the child replaces it with a stub module so that neither the import time nor its
memory is counted.

Examples::

    python bench/bench_rusty_dawg.py --quick            # 1M tokens, ~1 minute
    python bench/bench_rusty_dawg.py --tokens 10M --texts 40 --len 500
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SRC = REPO / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

OUT = HERE / "out"
SEP = 0xFFFF


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def rss_mb() -> dict[str, float]:
    """Current and peak RSS of this process (``/proc/self/status``), MB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line[:5].lower()] = round(int(line.split()[1]) / 1024, 1)
    return out


def parse_count(s: str) -> int:
    s = s.strip().upper().replace("_", "")
    mult = 1
    for suf, m in (("K", 10**3), ("M", 10**6), ("G", 10**9), ("B", 10**9)):
        if s.endswith(suf):
            s, mult = s[:-1], m
            break
    return int(float(s) * mult)


def default_corpus() -> Path | None:
    found = sorted((OUT / "cache").glob("corpus_*.npy")) if (OUT / "cache").exists() else []
    return found[0] if found else None


def corpus_cut(corpus: Path, n_tokens: int) -> int:
    """The end of the documents in the first ``n_tokens`` positions (a separator's index)."""
    arr = np.load(corpus, mmap_mode="r")
    seps = np.flatnonzero(np.asarray(arr[n_tokens:n_tokens * 2 + 1_000_000]) == SEP)
    return n_tokens + int(seps[0]) if seps.shape[0] else int(arr.shape[0])


def windows(pool: np.ndarray, length: int, count: int, rng: np.random.Generator
            ) -> list[list[int]]:
    out: list[list[int]] = []
    while len(out) < count:
        p = int(rng.integers(0, pool.shape[0] - length))
        w = pool[p:p + length]
        if not (w == SEP).any():
            out.append(w.astype(np.int64).tolist())
    return out


def run_child(mode: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run this script as ``--child mode`` in a fresh process; its JSON answer + wait4 rusage."""
    spec_path = OUT / f"rd_child_{mode}.json"
    spec_path.write_text(json.dumps(spec))
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", mode,
                          "--spec", str(spec_path)], stdout=subprocess.PIPE)
    assert p.stdout is not None
    stdout = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"child {mode} failed (status {status})")
    res = json.loads(stdout.decode().strip().splitlines()[-1])
    res["process"] = {"wall_s": round(wall, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
                      "maxrss_mb": round(ru.ru_maxrss / 1024, 1)}
    return res


# ============================================================================ children


def child_ag_build(spec: dict[str, Any]) -> dict[str, Any]:
    r0 = rss_mb()
    from anygram.index.build import build_index_from_ids
    r_import = rss_mb()
    arr = np.asarray(np.load(spec["corpus"], mmap_mode="r")[:spec["cut"]])
    seps = np.flatnonzero(arr == SEP)
    docs = [a[1:] for a in np.split(arr, seps[seps > 0])]
    r_docs = rss_mb()
    out = Path(spec["out"])
    shutil.rmtree(out, ignore_errors=True)
    c0, t0 = time.process_time(), time.perf_counter()
    build_index_from_ids(docs, out, vocab_size=50257, eos_id=50256)
    return {"build_wall_s": time.perf_counter() - t0, "build_cpu_s": time.process_time() - c0,
            "docs": len(docs), "rss_start": r0, "rss_after_import": r_import,
            "rss_after_ids": r_docs, "rss_end": rss_mb(),
            "disk_bytes": {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()}}


def child_ag_table(spec: dict[str, Any]) -> dict[str, Any]:
    from anygram.index.suffix_array import build_table
    r_import = rss_mb()
    src = Path(spec["out"]) / "tokenized.0"
    dst = OUT / "rd_table_check.0"
    c0, t0 = time.process_time(), time.perf_counter()
    build_table(src, dst, 2, spec["ptr_width"])
    res = {"build_wall_s": time.perf_counter() - t0, "build_cpu_s": time.process_time() - c0,
           "rss_after_import": r_import, "rss_end": rss_mb(),
           "same_table": dst.read_bytes() == (Path(spec["out"]) / "table.0").read_bytes()}
    dst.unlink()
    return res


def import_rusty_dawg() -> Any:
    """rusty_dawg, with ``transformers`` (imported only for a type hint) stubbed out."""
    t = types.ModuleType("transformers")
    tu = types.ModuleType("transformers.tokenization_utils")
    tu.PreTrainedTokenizer = object  # type: ignore[attr-defined]
    t.tokenization_utils = tu  # type: ignore[attr-defined]
    sys.modules["transformers"] = t
    sys.modules["transformers.tokenization_utils"] = tu
    import rusty_dawg  # type: ignore[import-untyped]
    return rusty_dawg


def child_rd(spec: dict[str, Any]) -> dict[str, Any]:
    rd = import_rusty_dawg()
    res: dict[str, Any] = {"rss_after_import": rss_mb()}
    c0, t0 = time.process_time(), time.perf_counter()
    arr = np.load(spec["corpus"], mmap_mode="r")[:spec["cut"]]
    ids = np.asarray(arr).tolist()
    ids.append(SEP)  # Cdawg.EOS must end the sequence (see the module docstring)
    res["to_list_s"] = time.perf_counter() - t0
    res["rss_after_list"] = rss_mb()
    phases = {}
    c1, t1 = time.process_time(), time.perf_counter()
    cdawg = rd.Cdawg(ids)
    phases["ctor"] = (time.perf_counter() - t1, time.process_time() - c1)
    del ids
    res["rss_after_ctor_del_list"] = rss_mb()
    c1, t1 = time.process_time(), time.perf_counter()
    cdawg.build()
    phases["build"] = (time.perf_counter() - t1, time.process_time() - c1)
    res["rss_after_build"] = rss_mb()
    c1, t1 = time.process_time(), time.perf_counter()
    cdawg.fill_counts()
    phases["fill_counts"] = (time.perf_counter() - t1, time.process_time() - c1)
    res["rss_after_fill_counts"] = rss_mb()
    res["phases_wall_cpu_s"] = phases
    res["build_wall_s"] = time.perf_counter() - t0
    res["build_cpu_s"] = time.process_time() - c0
    res["nodes"], res["edges"] = cdawg.node_count(), cdawg.edge_count()

    trans, count = cdawg.transition_and_count, cdawg.get_suffix_count

    def walk(text: list[int]) -> tuple[list[int], list[int]]:
        state = cdawg.get_initial()
        lens, cnts = [], []
        for tok in text:
            state = trans(state, tok)
            lens.append(state.get_length())
            cnts.append(count(state))
        return lens, cnts

    texts, warm = spec["texts"], spec["warm_texts"]
    for t in warm:
        walk(t)
    runs = []
    for _ in range(spec["reps"]):
        c1, t1 = time.process_time(), time.perf_counter()
        answers = [walk(t) for t in texts]
        runs.append((time.perf_counter() - t1, time.process_time() - c1))
    tok = sum(len(t) for t in texts)
    res["walk_us_per_token"] = {"wall": statistics.median(r[0] for r in runs) / tok * 1e6,
                                "wall_min": min(r[0] for r in runs) / tok * 1e6,
                                "cpu": statistics.median(r[1] for r in runs) / tok * 1e6}
    # transition only (no count lookup), for the split of the cost
    c1, t1 = time.process_time(), time.perf_counter()
    for t in texts:
        state = cdawg.get_initial()
        for tok_ in t:
            state = trans(state, tok_)
            state.get_length()
    res["walk_no_count_us_per_token"] = {"wall": (time.perf_counter() - t1) / tok * 1e6,
                                         "cpu": (time.process_time() - c1) / tok * 1e6}
    res["answers"] = answers
    res["rss_end"] = rss_mb()
    return res


# ============================================================================ main


def timed(fn: Any, items: list[Any]) -> tuple[float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    for x in items:
        fn(x)
    return time.perf_counter() - t0, time.process_time() - c0


def run(args: argparse.Namespace) -> dict[str, Any]:
    corpus = Path(args.corpus) if args.corpus else default_corpus()
    if corpus is None or not corpus.exists():
        raise SystemExit("no corpus .npy: run bench/bench_core.py first or pass --corpus")
    n_tokens = parse_count(args.tokens)
    res: dict[str, Any] = {"args": vars(args), "machine": platform.machine(),
                           "cpus": os.cpu_count(), "loadavg_start": loadavg(),
                           "corpus": str(corpus)}
    try:
        from importlib.metadata import version
        res["rusty_dawg_version"] = version("rusty-dawg")
    except Exception:  # noqa: BLE001
        res["rusty_dawg_version"] = None
    cut = corpus_cut(corpus, n_tokens)
    arr = np.load(corpus, mmap_mode="r")
    pool = np.asarray(arr[cut:cut + 20_000_000])
    rng = np.random.default_rng(args.seed)
    texts = windows(pool, args.len, args.texts, rng)
    warm_texts = windows(pool, args.len, args.warm, rng)
    n_seps = int(np.count_nonzero(np.asarray(arr[:cut]) == SEP))
    res["positions"], res["docs"], res["doc_tokens"] = cut, n_seps, cut - n_seps
    log(f"{corpus.name}: {cut:,} positions ({n_seps:,} documents); {args.texts} texts of "
        f"{args.len} held-out tokens, {args.warm} warm-up texts")

    index = OUT / f"rd_anygram_{args.tokens}"
    spec = {"corpus": str(corpus), "cut": cut, "out": str(index)}
    log("anygram build_index_from_ids (fresh process)")
    res["anygram_build"] = run_child("ag-build", spec)
    man = json.loads((index / "manifest.json").read_text())
    ptr_width = (index / "table.0").stat().st_size // ((index / "tokenized.0").stat().st_size // 2)
    log("anygram sa.build_table alone (fresh process)")
    res["anygram_table"] = run_child("ag-table", {**spec, "ptr_width": ptr_width})
    res["anygram_manifest_tokens"] = man.get("num_tokens", man)

    log("rusty-dawg Cdawg build + walk (fresh process)")
    rdres = run_child("rd", {**spec, "texts": texts, "warm_texts": warm_texts,
                             "reps": args.reps})
    rd_answers = rdres.pop("answers")
    res["rusty_dawg"] = rdres

    log("anygram infgram_text")
    from anygram import Engine
    t0 = time.perf_counter()
    ag = Engine.open(index, token_dtype="u16", vocab_size=50257, eos_id=50256)
    ag.infgram_text(texts[0][:50])
    res["anygram_open_jit_s"] = round(time.perf_counter() - t0, 2)
    for t in warm_texts:
        ag.infgram_text(t)
    runs = [timed(ag.infgram_text, texts) for _ in range(args.reps)]
    tok = sum(len(t) for t in texts)
    res["anygram_walk_us_per_token"] = {
        "wall": statistics.median(r[0] for r in runs) / tok * 1e6,
        "wall_min": min(r[0] for r in runs) / tok * 1e6,
        "cpu": statistics.median(r[1] for r in runs) / tok * 1e6}

    compared = len_diff = cnt_compared = cnt_diff = empty = 0
    examples: list[dict[str, Any]] = []
    for i, (t, (lens, cnts)) in enumerate(zip(texts, rd_answers)):
        a = ag.infgram_text(t)
        for j in range(1, len(t)):
            compared += 1
            L, C = int(a.suffix_len[j]), int(a.prompt_count[j])
            if L != lens[j - 1]:
                len_diff += 1
                if len(examples) < 5:
                    examples.append({"text": i, "j": j, "anygram": [L, C],
                                     "rusty_dawg": [lens[j - 1], cnts[j - 1]]})
                continue
            if L == 0:
                empty += 1
                continue
            cnt_compared += 1
            if C != cnts[j - 1]:
                cnt_diff += 1
                if len(examples) < 5:
                    examples.append({"text": i, "j": j, "anygram": [L, C],
                                     "rusty_dawg": [lens[j - 1], cnts[j - 1]]})
    suffix = np.concatenate([ag.infgram_text(t).suffix_len[1:] for t in texts])
    res["agreement"] = {"positions": compared, "suffix_len_different": len_diff,
                        "counts_compared": cnt_compared, "counts_different": cnt_diff,
                        "empty_suffix": empty, "examples": examples,
                        "mean_suffix_len": float(suffix.mean())}
    res["loadavg_end"] = loadavg()
    return res


def report(res: dict[str, Any]) -> str:
    b, tb, rd = res["anygram_build"], res["anygram_table"], res["rusty_dawg"]
    n = res["doc_tokens"]
    aw, rw = res["anygram_walk_us_per_token"], rd["walk_us_per_token"]
    ag_disk = sum(v for k, v in b["disk_bytes"].items()
                  if k.split(".")[0] in ("tokenized", "table"))
    net_rd = rd["process"]["maxrss_mb"] - rd["rss_after_import"]["vmrss"]
    ag_net = b["process"]["maxrss_mb"] - b["rss_after_ids"]["vmrss"]
    lines = [
        f"corpus {Path(res['corpus']).name}: {res['positions']:,} positions, {n:,} document "
        f"tokens, {res['docs']:,} documents; rusty-dawg {res['rusty_dawg_version']}",
        f"loadavg {res['loadavg_start']} -> {res['loadavg_end']}; {res['args']['texts']} "
        f"held-out texts x {res['args']['len']} tokens, mean suffix_len "
        f"{res['agreement']['mean_suffix_len']:.2f}",
        "",
        "build (fresh process)                    wall s    CPU s   peak RSS MB  B/token",
        f"  anygram build_index_from_ids        {b['build_wall_s']:8.2f} {b['build_cpu_s']:8.2f}"
        f"   {b['process']['maxrss_mb']:9.1f}  {b['process']['maxrss_mb'] * 2**20 / n:6.1f}"
        f"  (net of import+ids: {ag_net:.0f} MB, {ag_net * 2**20 / n:.1f} B/tok)",
        f"  anygram sa.build_table only         {tb['build_wall_s']:8.2f} {tb['build_cpu_s']:8.2f}"
        f"   {tb['process']['maxrss_mb']:9.1f}  {tb['process']['maxrss_mb'] * 2**20 / n:6.1f}"
        f"  (same table: {tb['same_table']})",
        f"  rusty-dawg Cdawg+build+fill_counts  {rd['build_wall_s']:8.2f} {rd['build_cpu_s']:8.2f}"
        f"   {rd['process']['maxrss_mb']:9.1f}  {rd['process']['maxrss_mb'] * 2**20 / n:6.1f}"
        f"  (net of import: {net_rd:.0f} MB, {net_rd * 2**20 / n:.1f} B/tok; "
        f"{rd['nodes']:,} nodes, {rd['edges']:,} edges)",
        f"    phases wall/CPU s: list {rd['to_list_s']:.2f}; "
        + "; ".join(f"{k} {v[0]:.2f}/{v[1]:.2f}" for k, v in rd["phases_wall_cpu_s"].items())
        + f"; RSS after build {rd['rss_after_build']['vmrss']:.0f} MB, after fill_counts "
        f"{rd['rss_after_fill_counts']['vmrss']:.0f} MB",
        f"  anygram on disk (tokenized + table): {ag_disk / 2**20:.1f} MB "
        f"({ag_disk / n:.1f} B/token)",
        "",
        "per-token walk                         wall µs/token  CPU µs/token",
        f"  anygram infgram_text (warm)          {aw['wall']:10.2f}  {aw['cpu']:12.2f}",
        f"  rusty-dawg transition+length+count   {rw['wall']:10.2f}  {rw['cpu']:12.2f}",
        f"  rusty-dawg transition+length only    "
        f"{rd['walk_no_count_us_per_token']['wall']:10.2f}  "
        f"{rd['walk_no_count_us_per_token']['cpu']:12.2f}",
        f"  agreement: {({k: v for k, v in res['agreement'].items() if k != 'examples'})}",
    ]
    if res["agreement"]["examples"]:
        lines.append(f"  examples: {res['agreement']['examples']}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", help="the .npy of token ids (default bench/out/cache/"
                    "corpus_*.npy)")
    ap.add_argument("--tokens", default="10M", help="positions to index (cut at a document end)")
    ap.add_argument("--quick", action="store_true", help="1M tokens, 10 texts")
    ap.add_argument("--texts", type=int, default=40)
    ap.add_argument("--len", type=int, default=500)
    ap.add_argument("--warm", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default=None)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        spec = json.loads(Path(args.spec).read_text())
        fn = {"ag-build": child_ag_build, "ag-table": child_ag_table, "rd": child_rd}[args.child]
        print(json.dumps(fn(spec)))
        return
    if args.quick:
        args.tokens, args.texts, args.warm = "1M", min(args.texts, 10), min(args.warm, 20)
    OUT.mkdir(exist_ok=True)
    res = run(args)
    text = report(res)
    print(text)
    tag = args.tag or args.tokens
    (OUT / f"bench_rusty_dawg_{tag}.json").write_text(json.dumps(res, indent=1, default=str))
    (OUT / f"bench_rusty_dawg_{tag}.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
