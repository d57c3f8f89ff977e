#!/usr/bin/env python3
"""Whole-text analyses, anygram vs infini-gram 2.6.0, on the same index in the same run.

Operations, on held-out texts (``--len`` tokens, default 500, cut from the part of the
corpus that is not indexed, no document separator inside):

- **infgram_text**: the ∞-gram of every token of a text in one call, in µs per token:
    - ``cold``: a freshly opened engine (kernels compiled, caches empty), first texts;
    - ``warm``: after ``--warm`` other held-out texts have gone through the same engine (its
      caches of token and token-pair ranges are then in their steady state), new texts;
  against calling ``infgram_prob(text[:j], text[j])`` for every position, with anygram and
  with infini-gram (on ``--per-pos-texts`` texts, every position). Answers are compared.
- **creativity**: anygram's ``creativity_rs`` vs infini-gram's ``creativity``, ms per text.
- **attribute**: ``max_cnt=10``, no delimiters, ``enforce_bow`` off and on (word starts: the
  GPT-2 ids whose token starts with ``Ġ``, when ``--tokenizer`` is given), ms per text; spans,
  counts and occurrence sets compared.

Each op is timed ``--reps`` times, engines alternating; tables give the median wall time
and the CPU time (``process_time``, which includes infini-gram's threads). The machine may be
shared: ``loadavg`` is recorded, CPU figures are the steadier ones.

Index: ``--index`` (default ``bench/out/query_100M``, written by ``bench/bench_core.py``:
the first 100M document tokens of ``--corpus``, the shuffled GPT-2 token ids cached as
``bench/out/cache/corpus_*.npy``); the held-out pool is the rest of that array. ``--quick``
builds a 2M-token index from the same array (or from a synthetic corpus when it is absent)
into ``bench/out/analysis_quick`` and runs everything small (< 1 minute).

Examples::

    python bench/bench_analysis.py --quick
    python bench/bench_analysis.py --index bench/out/query_100M \\
        --corpus bench/out/cache/corpus_8b1bf0a95108a83a.npy \\
        --tokenizer bench/out/data/tok/hf/gpt2/tokenizer.json --texts 40 --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SRC = REPO / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

OUT = HERE / "out"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def default_corpus() -> Path | None:
    found = sorted((OUT / "cache").glob("corpus_*.npy")) if (OUT / "cache").exists() else []
    return found[0] if found else None


def analysis_engine_class() -> type:
    """``anygram.Engine`` (it has the analyses)."""
    from anygram import Engine
    return Engine


# ============================================================================ data


def synthetic(n: int, seed: int = 0, vocab: int = 50257) -> np.ndarray:
    """Zipf ids with copied spans (so long matches exist), documents of 50-2000 tokens."""
    rng = np.random.default_rng(seed)
    ids = (rng.zipf(1.15, size=n) % (vocab - 1)).astype(np.uint16)
    for _ in range(n // 2000):  # ~10% of the text copied from elsewhere
        a, b, m = rng.integers(0, n - 200, size=2).tolist() + [int(rng.integers(5, 200))]
        ids[b:b + m] = ids[a:a + m]
    cuts = np.cumsum(rng.integers(50, 2000, size=n // 50))
    cuts = cuts[cuts < n]
    return np.insert(ids, np.concatenate(([0], cuts)), 0xFFFF)


def quick_index(corpus: Path | None, n_tokens: int) -> tuple[Path, np.ndarray, dict[str, Any]]:
    """An index of the documents in the first ``n_tokens`` positions; the rest is held out."""
    from anygram.index.build import build_index_from_ids
    arr = np.load(corpus, mmap_mode="r") if corpus else synthetic(n_tokens + 400_000)
    arr = np.asarray(arr[:n_tokens * 2])
    seps = np.flatnonzero(arr == 0xFFFF)
    after = seps[seps >= n_tokens]
    cut = int(after[0]) if after.shape[0] else arr.shape[0]
    kind = "npy" if corpus else "synthetic"
    d = OUT / f"analysis_quick_{kind}"
    if not (d / "manifest.json").exists():
        shutil.rmtree(d, ignore_errors=True)
        log(f"building {d} ({cut:,} positions)")
        docs = [a[1:] for a in np.split(arr[:cut], seps[(seps > 0) & (seps < cut)])]
        build_index_from_ids(docs, d, vocab_size=50257, eos_id=50256)
    return d, arr[cut:], {"kind": kind, "positions": cut}


def held_out(corpus: Path, index: Path, width: int) -> np.ndarray:
    """The corpus array after the indexed prefix (bench_core.py's cut), checked to match."""
    arr = np.load(corpus, mmap_mode="r")
    m = (index / "tokenized.0").stat().st_size // width
    ds = np.memmap(index / "tokenized.0", dtype=f"<u{width}", mode="r")
    if not np.array_equal(np.asarray(arr[m - 1000:m]), np.asarray(ds[-1000:])):
        raise SystemExit(f"{index} is not a prefix of {corpus}: pass the matching --corpus")
    return np.asarray(arr[m:])


def windows(pool: np.ndarray, length: int, count: int, rng: np.random.Generator,
            sep: int = 0xFFFF) -> list[list[int]]:
    out: list[list[int]] = []
    while len(out) < count:
        p = int(rng.integers(0, pool.shape[0] - length))
        w = pool[p:p + length]
        if not (w == sep).any():
            out.append(w.astype(np.int64).tolist())
    return out


def gpt2_bow_ids(tokenizer: Path | None) -> np.ndarray | None:
    """Ids of the GPT-2 tokens that start a word (``Ġ`` = a leading space), as the array a
    caller would keep (a list would be converted on every call)."""
    if tokenizer is None or not tokenizer.exists():
        return None
    vocab = json.loads(tokenizer.read_text())["model"]["vocab"]
    return np.array(sorted(i for t, i in vocab.items() if t.startswith("Ġ")), dtype=np.int64)


# ============================================================================ timing


def timed(fn: Callable[[Any], Any], items: list[Any]) -> tuple[float, float, list[Any]]:
    """(wall s, cpu s, answers) of ``fn`` over ``items``."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = [fn(x) for x in items]
    return time.perf_counter() - t0, time.process_time() - c0, out


def alternate(ops: dict[str, Callable[[], tuple[float, float]]], reps: int
              ) -> dict[str, dict[str, float]]:
    """Run each op ``reps`` times, alternating; median and min of wall and CPU seconds."""
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in ops}
    for _ in range(reps):
        for name, op in ops.items():
            runs[name].append(op())
    return {k: {"wall": statistics.median(r[0] for r in v), "wall_min": min(r[0] for r in v),
                "cpu": statistics.median(r[1] for r in v)} for k, v in runs.items()}


def ig_blind(eng: Any, text: list[int], i: int) -> bool:
    """infini-gram's creativity misses a match when ``text[i:]`` sorts before every suffix
    of a shard holding its first token (see docs/analyses.md)."""
    q = np.array(text[i:], dtype=f"<u{eng.token_width}").tobytes()
    w = eng.token_width
    for s in eng.shards:
        ds, sa, k = s.ds, s.sa, s.ptr_width
        first = int.from_bytes(bytes(sa[:k]), "little")
        if q < bytes(ds[first:first + len(q)]) and bytes(ds[first:first + w]) == q[:w]:
            return True
    return False


# ============================================================================ main


def run(args: argparse.Namespace) -> dict[str, Any]:
    from infini_gram.engine import InfiniGramEngine

    corpus = Path(args.corpus) if args.corpus else default_corpus()
    res: dict[str, Any] = {"args": vars(args), "machine": platform.machine(),
                           "cpus": os.cpu_count(), "loadavg_start": loadavg()}
    if args.quick:
        index, pool, info = quick_index(corpus, 2_000_000)
        res["index_source"] = info
    else:
        index = Path(args.index)
        if not (index / "table.0").exists():
            raise SystemExit(f"{index} has no table.0: build it with bench/bench_core.py")
        if corpus is None:
            raise SystemExit("--corpus (the .npy the index was cut from) is required")
        pool = held_out(corpus, index, 2)
    res["index"] = str(index)
    log(f"index {index}; warming the page cache")
    for name in ("tokenized.0", "table.0", "offset.0"):
        with open(index / name, "rb") as f:
            while f.read(1 << 26):
                pass
    rng = np.random.default_rng(args.seed)
    n_texts = args.texts
    texts = windows(pool, args.len, n_texts, rng)
    warm_texts = windows(pool, args.len, args.warm, rng)
    engine_cls = analysis_engine_class()

    def open_ag() -> Any:
        return engine_cls.open(index, token_dtype="u16", vocab_size=50257, eos_id=50256)

    ag = open_ag()
    res["num_tokens"] = ag.num_tokens
    res["num_positions"] = sum(s.num_positions for s in ag.shards)
    log(f"{ag!r}; {n_texts} texts of {args.len} tokens, {args.warm} warm-up texts")
    t0 = time.perf_counter()
    ig = InfiniGramEngine(index_dir=str(index), eos_token_id=50256, vocab_size=50257,
                          token_dtype="u16", ds_prefetch_depth=0, sa_prefetch_depth=0,
                          od_prefetch_depth=0, precompute_unigram_logprobs=True)
    res["infinigram_open_s"] = round(time.perf_counter() - t0, 2)
    bow = gpt2_bow_ids(Path(args.tokenizer)) if args.tokenizer else None

    # --- JIT: compile (or load) the kernels on a throwaway engine, then start cold.
    t0 = time.perf_counter()
    jit = open_ag()
    jit.infgram_text(texts[0][:50])
    jit.attribute(texts[0][:50])
    res["anygram_jit_s"] = round(time.perf_counter() - t0, 2)
    del jit

    # --- infgram_text: cold, warm; per-position baselines.
    if "infgram" not in args.ops:  # still warm the analysis caches as that section would
        log("warming the analysis caches")
        timed(ag.infgram_text, warm_texts)
    else:
        infgram_section(args, res, ag, ig, texts, warm_texts)
    if "creativity" in args.ops:
        creativity_section(args, res, ag, ig, texts)
    if "attribute" in args.ops:
        attribute_section(args, res, ag, index, texts, bow, ig)
    res["loadavg_end"] = loadavg()
    return res


def infgram_section(args: argparse.Namespace, res: dict[str, Any], ag: Any, ig: Any,
                    texts: list[list[int]], warm_texts: list[list[int]]) -> None:
    """infgram_text cold and warm, against infgram_prob at every position."""
    n_texts = len(texts)
    tok = n_texts * args.len
    cold_wall, cold_cpu, cold = timed(ag.infgram_text, texts[:args.cold_texts])
    res["infgram_text_cold_us_per_token"] = {
        "wall": cold_wall / (args.cold_texts * args.len) * 1e6,
        "cpu": cold_cpu / (args.cold_texts * args.len) * 1e6, "texts": args.cold_texts}
    log("warming the analysis caches")
    timed(ag.infgram_text, warm_texts)
    walk = alternate({"infgram_text": lambda: timed(ag.infgram_text, texts)[:2]}, args.reps)
    answers = [ag.infgram_text(t) for t in texts]
    res["infgram_text_warm_us_per_token"] = {k: v / tok * 1e6
                                             for k, v in walk["infgram_text"].items()}
    suffix = np.concatenate([a.suffix_len for a in answers])
    res["held_out"] = {"mean_suffix_len": float(suffix.mean()),
                       "median_suffix_len": float(np.median(suffix)),
                       "cont_seen_fraction": float(np.mean(
                           np.concatenate([a.cont_count for a in answers]) > 0))}
    from anygram.kernels import analysis as ka
    shard = ag.shards[0]
    caches = ag._core.shards._members[0].walk_caches  # warmed by the calls above
    fresh = [ka.suffix_walk(shard.ds, shard.sa, shard.ptr_width, 2,
                            np.array(t, dtype="<u2").view(np.uint8),
                            np.arange(len(t) + 1, dtype=np.int64), *caches)[3] for t in texts]
    res["fresh_searches_per_token"] = sum(fresh) / tok

    per = [(t, j) for t in texts[:args.per_pos_texts] for j in range(len(t))]
    log(f"per-position infgram_prob: {len(per)} calls per engine")
    pp = alternate({
        "anygram": lambda: timed(lambda x: ag.infgram_prob(x[0][:x[1]], x[0][x[1]]), per)[:2],
        "infini-gram": lambda: timed(
            lambda x: ig.infgram_prob(prompt_ids=x[0][:x[1]], cont_id=x[0][x[1]]), per)[:2],
    }, max(1, args.reps // 2))
    res["per_position_us"] = {k: {m: s / len(per) * 1e6 for m, s in v.items()}
                              for k, v in pp.items()}
    bad = 0
    for i, t in enumerate(texts[:args.per_pos_texts]):
        for j in range(len(t)):
            a = ag.infgram_prob(t[:j], t[j])
            b = ig.infgram_prob(prompt_ids=t[:j], cont_id=t[j])
            e = answers[i][j]
            bad += (e != a) or (b["suffix_len"], b["prompt_cnt"], b["cont_cnt"]) != \
                (e.suffix_len, e.prompt_count, e.cont_count)
    res["infgram_disagreements"] = {"positions": len(per), "different": bad}


def creativity_section(args: argparse.Namespace, res: dict[str, Any], ag: Any, ig: Any,
                       texts: list[list[int]]) -> None:
    n_texts = len(texts)
    tok = n_texts * args.len
    log("creativity")
    cr = alternate({
        "anygram": lambda: timed(ag.creativity_rs, texts)[:2],
        "infini-gram": lambda: timed(lambda t: ig.creativity(t)["rs"], texts)[:2],
    }, args.reps)
    res["creativity_ms_per_text"] = {k: {m: s / n_texts * 1e3 for m, s in v.items()}
                                     for k, v in cr.items()}
    diff = blind = 0
    for t in texts:
        for i, (a, b) in enumerate(zip(ag.creativity_rs(t), ig.creativity(t)["rs"])):
            if a != b:
                diff += 1
                blind += b < a and ig_blind(ag, t, i)
    res["creativity_disagreements"] = {"positions": tok, "different": diff,
                                       "explained_by_infini_gram_blind_spot": blind}


def attribute_section(args: argparse.Namespace, res: dict[str, Any], ag: Any, index: Path,
                      texts: list[list[int]], bow: np.ndarray | None, ig: Any) -> None:
    """attribute without and with enforce_bow; spans compared."""
    from infini_gram.engine import InfiniGramEngine
    n_texts = len(texts)
    variants: list[tuple[str, dict[str, Any]]] = [("plain", {})]
    if bow is not None:
        bow_path = OUT / "gpt2_bow_ids.txt"
        bow_path.write_text("\n".join(map(str, bow.tolist())) + "\n")
        ig_bow = InfiniGramEngine(index_dir=str(index), eos_token_id=50256, vocab_size=50257,
                                  token_dtype="u16", ds_prefetch_depth=0, sa_prefetch_depth=0,
                                  od_prefetch_depth=0, precompute_unigram_logprobs=True,
                                  bow_ids_path=str(bow_path))
        variants.append(("enforce_bow", {"enforce_bow": True}))
    res["attribute"] = {}
    for name, kw in variants:
        log(f"attribute ({name})")
        bow_kw = {"enforce_bow": True, "bow_ids": bow} if kw else {}
        ige = ig_bow if kw else ig

        def ag_attr(t: list[int], bow_kw: dict[str, Any] = bow_kw) -> list[dict[str, Any]]:
            return ag.attribute(t, max_cnt=10, **bow_kw).to_infini_gram(2)["spans"]

        def ig_attr(t: list[int], ige: Any = ige, bow: bool = bool(kw)) -> list[dict[str, Any]]:
            return ige.attribute(t, delim_ids=[], min_len=1, max_cnt=10,
                                 enforce_bow=bow)["spans"]

        at = alternate({"anygram": lambda f=ag_attr: timed(f, texts)[:2],
                        "infini-gram": lambda f=ig_attr: timed(f, texts)[:2]}, args.reps)
        spans = diff = 0
        for text in texts:
            a, b = ag_attr(text), ig_attr(text)
            spans += len(b)
            diff += [(s["l"], s["r"], s["count"], sorted((d["s"], d["ptr"]) for d in s["docs"]))
                     for s in a] != [(s["l"], s["r"], s["count"],
                                      sorted((d["s"], d["ptr"]) for d in s["docs"])) for s in b]
        res["attribute"][name] = {
            "ms_per_text": {k: {m: s / n_texts * 1e3 for m, s in v.items()}
                            for k, v in at.items()},
            "spans_per_text": spans / n_texts, "texts_with_different_spans": diff}


def report(res: dict[str, Any]) -> str:
    def r(a: float, b: float) -> str:
        return f"{b / a:.1f}x" if a > 0 else "-"

    lines = [
        f"index {res['index']}: {res['num_tokens']:,} tokens ({res['num_positions']:,} "
        f"positions); texts of {res['args']['len']} held-out tokens x {res['args']['texts']}",
        f"loadavg {res['loadavg_start']} -> {res['loadavg_end']}; infini-gram open "
        f"{res['infinigram_open_s']} s; anygram JIT {res['anygram_jit_s']} s",
    ]
    if "infgram_text_warm_us_per_token" in res:
        w = res["infgram_text_warm_us_per_token"]
        c = res["infgram_text_cold_us_per_token"]
        pp = res["per_position_us"]
        lines += [
            f"held-out: mean suffix_len {res['held_out']['mean_suffix_len']:.2f}, cont seen "
            f"{res['held_out']['cont_seen_fraction']:.1%}; fresh searches/token "
            f"{res['fresh_searches_per_token']:.2f}",
            "",
            "per-token ∞-gram                    wall µs/token   cpu µs/token   speed-up (cpu)",
            f"  anygram infgram_text  (warm)      {w['wall']:10.2f}   {w['cpu']:12.2f}",
            f"  anygram infgram_text  (cold, {c['texts']}) {c['wall']:10.2f}   "
            f"{c['cpu']:12.2f}",
            f"  anygram infgram_prob per position {pp['anygram']['wall']:10.2f}   "
            f"{pp['anygram']['cpu']:12.2f}   {r(w['cpu'], pp['anygram']['cpu'])}",
            f"  infini-gram infgram_prob per pos. {pp['infini-gram']['wall']:10.2f}   "
            f"{pp['infini-gram']['cpu']:12.2f}   {r(w['cpu'], pp['infini-gram']['cpu'])}",
            f"  disagreements: {res['infgram_disagreements']}",
        ]
    lines += ["", "per text (ms)                        anygram wall/cpu    infini-gram wall/cpu"
              "   speed-up wall/cpu"]
    rows = [("creativity", res["creativity_ms_per_text"])] \
        if "creativity_ms_per_text" in res else []
    rows += [(f"attribute ({k})", v["ms_per_text"]) for k, v in res.get("attribute", {}).items()]
    for name, v in rows:
        a, b = v["anygram"], v["infini-gram"]
        lines.append(f"  {name:<34} {a['wall']:8.2f} / {a['cpu']:7.2f}   {b['wall']:9.2f} / "
                     f"{b['cpu']:8.2f}    {r(a['wall'], b['wall'])} / {r(a['cpu'], b['cpu'])}")
    if "creativity_disagreements" in res:
        lines.append(f"  creativity disagreements: {res['creativity_disagreements']}")
    for k, v in res.get("attribute", {}).items():
        lines.append(f"  attribute ({k}): {v['spans_per_text']:.1f} spans/text, texts with "
                     f"different spans: {v['texts_with_different_spans']}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", default=str(OUT / "query_100M"))
    ap.add_argument("--corpus", help="the .npy of token ids the index was cut from "
                    "(default: bench/out/cache/corpus_*.npy)")
    ap.add_argument("--tokenizer", default=str(OUT / "data/tok/hf/gpt2/tokenizer.json"),
                    help="GPT-2 tokenizer.json, for the word starts of enforce_bow")
    ap.add_argument("--quick", action="store_true", help="a 2M-token index, few texts")
    ap.add_argument("--texts", type=int, default=40)
    ap.add_argument("--len", type=int, default=500)
    ap.add_argument("--warm", type=int, default=200, help="held-out texts run before timing")
    ap.add_argument("--cold-texts", type=int, default=5)
    ap.add_argument("--per-pos-texts", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default=None)
    ap.add_argument("--ops", nargs="+", choices=["infgram", "creativity", "attribute"],
                    default=["infgram", "creativity", "attribute"],
                    help="the sections to run (default: all)")
    args = ap.parse_args()
    if args.quick:
        args.texts, args.warm, args.per_pos_texts = min(args.texts, 10), min(args.warm, 20), 2
    res = run(args)
    text = report(res)
    print(text)
    tag = args.tag or ("quick" if args.quick else Path(res["index"]).name)
    OUT.mkdir(exist_ok=True)
    (OUT / f"bench_analysis_{tag}.json").write_text(json.dumps(res, indent=1, default=str))
    (OUT / f"bench_analysis_{tag}.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
