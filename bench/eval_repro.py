#!/usr/bin/env python3
"""Reproduce the direction of the infini-gram paper's headline results with ``anygram eval``
(docs/evaluation.md, "Reproducing the paper's results").

Steps (``--steps``, default all, in this order; each reads what the previous ones wrote under
``--work``):

split
    For every ``*.jsonl`` under ``--data`` (a "source"), hold out a seeded random share of its
    documents (``--heldout-fraction``, at least ``--min-heldout``); each held-out text is cut
    to its first ``--max-chars`` characters (at a line end where there is one). Held-out texts
    go to ``heldout.jsonl`` (and ``heldout_<group>.jsonl`` per group: the first folder under
    ``--data``, e.g. ``code``, ``english``, renamed by ``--group-map``), every other document
    to ``train/<source>``.
    Decontamination as in the paper (which filtered its reference data against its
    evaluation data with 13-gram overlap): a training document is dropped when at least
    ``--decon-threshold`` of its whitespace-word 13-grams occur in the held-out texts (a
    document of fewer than 13 words: when its words equal a held-out text's).
build
    ``anygram build train/ --out index/ --tokenizer TOK --shard-tokens N``; wall and CPU time
    and peak RSS from ``wait4`` (the build and the tokenizer workers it waits for), tokens and
    shards from its summary, bytes on disk.
train
    A small GPT-2 (``GPT2LMHeadModel``, the index's GPT-2 tokenizer, CPU) trained from scratch
    on random windows of a seeded random sample of the training documents
    (``--lm-train-tokens``) for ``--lm-steps`` steps; saved with ``save_pretrained`` (and the
    tokenizer beside it) in ``lm/``.
eval
    ``anygram eval --index index/ --texts heldout.jsonl --lm lm/ --plot ...`` and the same per
    group; JSON summaries in ``eval_<name>.json``, plots in ``--plots``.
report
    A markdown table of the figures (``report.md``), from the JSON files.

Heavy steps run one at a time; run the whole script under ``nice -n 19`` on a shared machine.
Not run by the tests or CI.

Example::

    nice -n 19 python bench/eval_repro.py --data /data/big --work /tmp/eval \\
        --tokenizer tok/gpt2/tokenizer.json --plots docs/img
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

STEPS = ("split", "build", "train", "eval", "report")
SRC = Path(__file__).resolve().parent.parent / "src"


# ----------------------------------------------------------------------------- helpers


def parse_size(s: str) -> int:
    """``200M`` -> 200_000_000 (K, M, G suffixes)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]?)", s.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {s!r}")
    return int(float(m.group(1)) * {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}[m.group(2).upper()])


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sources(data: Path) -> list[Path]:
    return sorted(p for p in data.rglob("*.jsonl") if p.is_file())


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def cut(text: str, max_chars: int) -> str:
    """The first ``max_chars`` characters, ending at the last line end inside them if any."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    nl = head.rfind("\n")
    return head[:nl] if nl > max_chars // 2 else head


_P = np.uint64(1_000_003)


def ngram_hashes(text: str, n: int) -> np.ndarray:
    """Hashes of the whitespace-word ``n``-grams of ``text`` (empty when it has fewer words)."""
    words = text.split()
    if len(words) < n:
        return np.zeros(0, np.uint64)
    h = np.fromiter((hash(w) for w in words), dtype=np.int64, count=len(words)).view(np.uint64)
    m = len(words) - n + 1
    acc = np.zeros(m, np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            acc = acc * _P + h[k:k + m]
    return acc


def run_measured(cmd: list[str], stdout_path: Path | None = None) -> dict[str, Any]:
    """Run ``cmd``; wall time, CPU time and peak RSS of it and the children it waited for."""
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    log("$ " + " ".join(cmd))
    t0 = time.monotonic()
    out = stdout_path.open("wb") if stdout_path else subprocess.PIPE
    p = subprocess.Popen(cmd, stdout=out, env=env)
    data = b""
    if stdout_path is None:
        assert p.stdout is not None
        data = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    if stdout_path is not None:
        out.close()  # type: ignore[union-attr]
        data = stdout_path.read_bytes()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"command failed ({code}): {' '.join(cmd)}")
    return {"wall_s": round(wall, 1), "cpu_s": round(ru.ru_utime + ru.ru_stime, 1),
            "peak_rss_mb": round(ru.ru_maxrss / 1024, 1), "stdout": data.decode()}


def anygram_cmd() -> list[str]:
    return [sys.executable, "-m", "anygram"]


# ----------------------------------------------------------------------------- split


def step_split(a: argparse.Namespace) -> None:
    work: Path = a.work
    train_dir = work / "train"
    if train_dir.exists():
        shutil.rmtree(train_dir)
    train_dir.mkdir(parents=True)
    rng = random.Random(a.seed)
    srcs = sources(a.data)
    if not srcs:
        raise SystemExit(f"no *.jsonl under {a.data}")
    # Pass 1: choose and cut the held-out documents of every source.
    held: list[dict[str, Any]] = []
    chosen: dict[Path, set[int]] = {}
    for src in srcs:
        n = sum(1 for _ in iter_jsonl(src))
        k = min(n - 1, max(a.min_heldout, round(a.heldout_fraction * n)))
        idx = set(rng.sample(range(n), k))
        chosen[src] = idx
        rel = src.relative_to(a.data)
        for i, d in enumerate(iter_jsonl(src)):
            if i in idx:
                text = cut(d["text"], a.max_chars)
                if text.strip():
                    held.append({"text": text, "source": str(rel), "line": i,
                                 "group": a.group_map.get(rel.parts[0], rel.parts[0])})
        log(f"split: {rel}: {n} documents, {k} held out")
    grams = np.unique(np.concatenate([ngram_hashes(h["text"], a.decon_ngram) for h in held]))
    short = {" ".join(h["text"].split()) for h in held
             if len(h["text"].split()) < a.decon_ngram}
    # Pass 2: write the training documents, dropping the contaminated ones.
    stats: dict[str, Any] = {"sources": {}, "params": {
        "seed": a.seed, "heldout_fraction": a.heldout_fraction, "min_heldout": a.min_heldout,
        "max_chars": a.max_chars, "decon_ngram": a.decon_ngram,
        "decon_threshold": a.decon_threshold}}
    for src in srcs:
        rel = src.relative_to(a.data)
        out = train_dir / "__".join(rel.parts)
        kept = dropped = chars = 0
        with out.open("w", encoding="utf-8") as f:
            for i, d in enumerate(iter_jsonl(src)):
                if i in chosen[src]:
                    continue
                text = d["text"]
                g = ngram_hashes(text, a.decon_ngram)
                if g.shape[0]:
                    pos = np.minimum(np.searchsorted(grams, g), grams.shape[0] - 1)
                    bad = (grams[pos] == g).mean() >= a.decon_threshold
                else:
                    bad = " ".join(text.split()) in short
                if bad:
                    dropped += 1
                    continue
                kept += 1
                chars += len(text)
                f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
        h = [x for x in held if x["source"] == str(rel)]
        stats["sources"][str(rel)] = {
            "train_docs": kept, "train_chars": chars, "decontaminated_docs": dropped,
            "heldout_docs": len(h), "heldout_chars": sum(len(x["text"]) for x in h)}
        log(f"split: {rel}: {kept} training documents, {dropped} dropped (decontamination)")
    groups = sorted({h["group"] for h in held})
    for name, rows in [("heldout", held)] + [(f"heldout_{g}", [h for h in held if h["group"] == g])
                                             for g in groups]:
        with (work / f"{name}.jsonl").open("w", encoding="utf-8") as f:
            for h in rows:
                f.write(json.dumps(h, ensure_ascii=False) + "\n")
    stats["groups"] = groups
    write_json(work / "split.json", stats)


# ----------------------------------------------------------------------------- build


def step_build(a: argparse.Namespace) -> None:
    idx = a.work / "index"
    cmd = anygram_cmd() + ["build", str(a.work / "train"), "--out", str(idx), "--tokenizer",
                           str(a.tokenizer), "--shard-tokens", str(a.shard_tokens),
                           "--workers", str(a.workers), "--no-metadata", "--overwrite"]
    r = run_measured(cmd)
    summary = json.loads(r.pop("stdout").strip().splitlines()[-1])
    r["summary"] = summary
    r["bytes_on_disk"] = sum(p.stat().st_size for p in idx.rglob("*") if p.is_file())
    r["command"] = " ".join(cmd)
    write_json(a.work / "build.json", r)
    log(f"build: {json.dumps(r)}")


# ----------------------------------------------------------------------------- train


def lm_training_ids(a: argparse.Namespace) -> np.ndarray:
    """Token ids of a seeded random sample of the training documents (EOS after each)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(a.tokenizer))
    eos = tok.token_to_id("<|endoftext|>")
    files = sorted((a.work / "train").glob("*.jsonl"))
    total = sum(f.stat().st_size for f in files)
    # ~3.5 bytes per GPT-2 token on this mix: sample a share of the documents that gives a
    # little more than needed, then keep the first tokens of the shuffled sample.
    share = min(1.0, 1.5 * a.lm_train_tokens * 3.5 / total)
    rng = random.Random(a.seed + 1)
    texts = [d["text"] for f in files for d in iter_jsonl(f) if rng.random() < share]
    rng.shuffle(texts)
    ids: list[int] = []
    for i in range(0, len(texts), 256):
        for enc in tok.encode_batch(texts[i:i + 256], add_special_tokens=False):
            ids.extend(enc.ids)
            ids.append(eos)
        if len(ids) >= a.lm_train_tokens:
            break
    return np.asarray(ids[:a.lm_train_tokens], dtype=np.int64)


def step_train(a: argparse.Namespace) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.workers)
    t0 = time.monotonic()
    ids = lm_training_ids(a)
    log(f"train: {ids.shape[0]} training tokens in {time.monotonic() - t0:.0f} s")
    ctx, bs = a.lm_context, a.lm_batch
    cfg = GPT2Config(vocab_size=50257, n_positions=ctx, n_embd=a.lm_dim, n_layer=a.lm_layers,
                     n_head=a.lm_heads, bos_token_id=50256, eos_token_id=50256)
    model = GPT2LMHeadModel(cfg)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=a.lm_lr, weight_decay=0.1,
                            betas=(0.9, 0.95))
    warm = max(1, a.lm_steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + np.cos(np.pi * min(s, a.lm_steps)
                                                                     / a.lm_steps)))
    gen = np.random.default_rng(a.seed)
    model.train()
    losses = []
    t1 = time.monotonic()
    for step in range(a.lm_steps):
        starts = gen.integers(0, ids.shape[0] - ctx, size=bs)
        x = torch.from_numpy(np.stack([ids[s:s + ctx] for s in starts]))
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 50 == 0 or step == a.lm_steps - 1:
            log(f"train: step {step} loss {np.mean(losses[-50:]):.3f} "
                f"({time.monotonic() - t1:.0f} s)")
    wall = time.monotonic() - t1
    out = a.work / "lm"
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(str(out))
    PreTrainedTokenizerFast(tokenizer_file=str(a.tokenizer), eos_token="<|endoftext|>",
                            bos_token="<|endoftext|>").save_pretrained(str(out))
    info = {"params": params, "n_layer": a.lm_layers, "n_embd": a.lm_dim, "n_head": a.lm_heads,
            "context": ctx, "batch": bs, "steps": a.lm_steps, "lr": a.lm_lr,
            "train_tokens_pool": int(ids.shape[0]), "tokens_seen": a.lm_steps * bs * ctx,
            "train_wall_s": round(wall, 1), "final_loss": round(float(np.mean(losses[-50:])), 3)}
    write_json(a.work / "train.json", info)
    log(f"train: {json.dumps(info)}")


# ----------------------------------------------------------------------------- eval


def step_eval(a: argparse.Namespace) -> None:
    split = json.loads((a.work / "split.json").read_text())
    a.plots.mkdir(parents=True, exist_ok=True)
    runs = [("all", a.work / "heldout.jsonl")] + [
        (g, a.work / f"heldout_{g}.jsonl") for g in split["groups"]]
    for name, texts in runs:
        cmd = anygram_cmd() + ["eval", "--index", str(a.work / "index"), "--texts", str(texts),
                               "--plot", str(a.plots / f"eval_{name}.png")]
        if not a.no_lm:
            cmd += ["--lm", str(a.work / "lm")]
        r = run_measured(cmd)
        summary = json.loads(r.pop("stdout"))
        summary["run"] = r | {"command": " ".join(cmd)}
        write_json(a.work / f"eval_{name}.json", summary)
        s = summary["infgram"]
        log(f"eval {name}: agreement {s['agreement']:.3f} sparse {s['agreement_sparse']:.3f} "
            f"dense {s['agreement_dense']:.3f} ({r['wall_s']} s)"
            + (f"; test {summary['lm']['test']}" if "lm" in summary else ""))


# ----------------------------------------------------------------------------- report


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def step_report(a: argparse.Namespace) -> None:
    split = json.loads((a.work / "split.json").read_text())
    bp = a.work / "build.json"  # absent when the index was built by hand (--steps)
    build = json.loads(bp.read_text()) if bp.exists() else {}
    lines = ["| held-out set | texts | tokens | agreement | sparse | agreement sparse | "
             "agreement dense | median suffix len | PPL LM (test) | PPL mixed (test) | "
             "improvement | λ sparse / dense |", "|" + "---|" * 12]
    for name in ["all"] + split["groups"]:
        p = a.work / f"eval_{name}.json"
        if not p.exists():
            continue
        e = json.loads(p.read_text())
        s = e["infgram"]
        lm = e.get("lm")
        t = lm["test"] if lm else None
        lines.append(
            f"| {name} | {e['num_texts']} | {s['tokens']:,} | {pct(s['agreement'])} | "
            f"{pct(s['sparse_fraction'])} | {pct(s['agreement_sparse'])} | "
            f"{pct(s['agreement_dense'])} | {s['suffix_len_median']:.0f} | "
            + (f"{t['ppl_lm']:.2f} | {t['ppl_mixed']:.2f} | {pct(t['improvement'])} | "
               f"{lm['lambda_sparse']:.2f} / {lm['lambda_dense']:.2f} |" if lm
               else "– | – | – | – |"))
    bs = build.get("summary", {})
    train_docs = sum(v["train_docs"] for v in split["sources"].values())
    dropped = sum(v["decontaminated_docs"] for v in split["sources"].values())
    lines += ["", f"Index: {bs.get('tokens', 0):,} tokens, {bs.get('docs', train_docs):,} "
              f"documents ({dropped} dropped by decontamination), {bs.get('shards')} shards"
              + (f", {build['bytes_on_disk'] / 1e9:.2f} GB on disk; build {build['wall_s']:.0f} "
                 f"s wall, {build['cpu_s']:.0f} s CPU, peak RSS {build['peak_rss_mb']:.0f} MB."
                 if "wall_s" in build else ".")]
    tp = a.work / "train.json"
    if tp.exists():
        t = json.loads(tp.read_text())
        lines.append(f"LM: GPT-2 architecture, {t['params'] / 1e6:.1f}M parameters "
                     f"({t['n_layer']} layers, d={t['n_embd']}, context {t['context']}), "
                     f"{t['steps']} steps of {t['batch']}×{t['context']} tokens "
                     f"({t['tokens_seen']:,} tokens seen) in {t['train_wall_s']:.0f} s; "
                     f"final training loss {t['final_loss']}.")
    text = "\n".join(lines) + "\n"
    (a.work / "report.md").write_text(text, encoding="utf-8")
    print(text)


# ----------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="folder of *.jsonl (a text field)")
    ap.add_argument("--work", type=Path, required=True, help="where everything is written")
    ap.add_argument("--tokenizer", type=Path, required=True,
                    help="the GPT-2 tokenizer.json (index and LM)")
    ap.add_argument("--plots", type=Path, default=Path("docs/img"), help="PNG folder")
    ap.add_argument("--steps", default=",".join(STEPS), help=f"subset of {','.join(STEPS)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--group-map", type=lambda s: dict(kv.split(":") for kv in s.split(",")),
                    default={"medium": "code"},
                    help="FOLDER:GROUP,...: group of the sources under a first-level folder "
                         "(default medium:code; other folders are their own group)")
    ap.add_argument("--heldout-fraction", type=float, default=0.002)
    ap.add_argument("--min-heldout", type=int, default=2)
    ap.add_argument("--max-chars", type=int, default=4000)
    ap.add_argument("--decon-ngram", type=int, default=13)
    ap.add_argument("--decon-threshold", type=float, default=0.8)
    ap.add_argument("--shard-tokens", type=parse_size, default=parse_size("200M"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--lm-train-tokens", type=parse_size, default=parse_size("5M"))
    ap.add_argument("--lm-steps", type=int, default=600)
    ap.add_argument("--lm-batch", type=int, default=4)
    ap.add_argument("--lm-context", type=int, default=256)
    ap.add_argument("--lm-dim", type=int, default=256)
    ap.add_argument("--lm-layers", type=int, default=4)
    ap.add_argument("--lm-heads", type=int, default=4)
    ap.add_argument("--lm-lr", type=float, default=2e-3)
    ap.add_argument("--no-lm", action="store_true", help="eval: the ∞-gram only")
    a = ap.parse_args()
    steps = a.steps.split(",")
    unknown = set(steps) - set(STEPS)
    if unknown:
        ap.error(f"unknown steps: {sorted(unknown)}")
    a.work.mkdir(parents=True, exist_ok=True)
    for name in STEPS:
        if name in steps:
            t0 = time.monotonic()
            globals()[f"step_{name}"](a)
            log(f"{name}: done in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
