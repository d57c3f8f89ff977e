#!/usr/bin/env python3
"""anygram vs infini-gram 2.6.0 on the same index, in the same run.

Two parts (``--parts build,query``):

build
    On the same tokenized shard (``tokenized.0`` + ``offset.0``, infini-gram v4 layout), time
    and measure peak RSS of
      (a) anygram's suffix-table construction (``anygram.index.suffix_array.build_table``), in a
          fresh Python process (the package import, numba included, is part of the measured
          process);
      (b) infini-gram's indexer: ``rust_indexing make-part`` (one process per CPU, parts of
          ds_size/cpus bytes + a 100,000-byte overlap, aligned to the token width), ``merge``,
          ``concat``: exactly what ``infini_gram/indexing.py build_sa`` runs, with one job
          batch (its fastest setting when the shard fits in RAM).
    Then check that the two ``table.0`` files are byte-identical, and check sampled adjacent
    suffix pairs of anygram's table for order. When the corpus is JSONL, anygram's full
    ``build_index`` (tokenization included) is timed once as well and reported separately.

query
    Both engines open the same index directory (warm page cache):
    ``InfiniGramEngine(..., ds_prefetch_depth=0, sa_prefetch_depth=0, od_prefetch_depth=0)``
    and ``anygram.Engine.open``. For each operation a batch of queries is timed R times
    (engines alternate); the table gives the median and min µs per query and the ratio
    anygram / infini-gram, and counts the disagreements between the two engines' answers.

Corpus: JSONL files/dirs (tokenized once with ``anygram.build_index`` and cached as
``OUT/cache/*.npy``; documents are shuffled with a fixed seed so that any prefix, and the
held-out tail, is a mix of all sources), or a ``.npy`` of token ids where the all-ones id
(65535 for uint16) separates documents. ``--quick`` without a corpus uses a synthetic
~1M-token corpus (a smoke test of the script, < 1 minute).

Examples::

    python bench/bench_core.py --quick
    python bench/bench_core.py DATA/english DATA/code --tokenizer tok/hf/gpt2/tokenizer.json \\
        --tokens 100M --build-tokens 10M,30M,100M --queries 2000 --reps 5
    python bench/bench_core.py bench/out/cache/XXXX.npy --tokens 100M --parts query
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SRC = REPO / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

HACK = 100000  # infini_gram/indexing.py's overlap between parts (and merge's --hacksize)


# ============================================================================ small helpers


def parse_count(s: str) -> int:
    s = s.strip().upper().replace("_", "")
    mult = 1
    for suf, m in (("K", 10**3), ("M", 10**6), ("B", 10**9), ("G", 10**9)):
        if s.endswith(suf):
            s, mult = s[:-1], m
            break
    return int(float(s) * mult)


def human(n: int) -> str:
    for suf, m in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= m and n % (m // 10 or 1) == 0:
            v = n / m
            return f"{v:g}{suf}"
    return str(n)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                    else "")
    return env


def rust_indexing_path() -> Path:
    import infini_gram
    p = Path(infini_gram.__file__).resolve().parent / "rust_indexing"
    if not p.exists():
        raise SystemExit(f"infini-gram's rust_indexing binary not found at {p}")
    return p


def ig_ratio(ds_size: int) -> int:
    """infini_gram/indexing.py: ratio = int(np.ceil(np.log2(ds_size) / 8))."""
    return int(np.ceil(np.log2(ds_size) / 8))


def vm_rss_kb(pid: int | str = "self") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    out = []
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    kids = [int(x) for x in f.read().split()]
                out.extend(kids)
                stack.extend(kids)
        except OSError:
            continue
    return out


@dataclass
class ProcStat:
    cmd: str
    wall_s: float
    user_s: float
    sys_s: float
    maxrss_kb: int  # wait4's ru_maxrss: the process (or its largest waited-for descendant)
    returncode: int
    stdout: str = ""

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


@dataclass
class GroupStat:
    procs: list[ProcStat]
    wall_s: float
    sampled_peak_kb: int  # largest sampled sum of RSS over the processes and their children

    @property
    def cpu_s(self) -> float:
        return sum(p.cpu_s for p in self.procs)

    @property
    def sum_maxrss_kb(self) -> int:
        return sum(p.maxrss_kb for p in self.procs)


def run_group(cmds: list[list[str]], *, env: dict[str, str] | None = None,
              cwd: str | None = None, capture: bool = False, poll_s: float = 0.005
              ) -> GroupStat:
    """Run commands concurrently; per-process rusage from wait4, plus a sampled tree RSS peak."""
    def raise_nofile() -> None:  # indexing.py raises RLIMIT_NOFILE the same way
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    out_files = []
    procs = []
    t0 = time.perf_counter()
    for c in cmds:
        f = open(os.devnull, "w") if not capture else None
        p = subprocess.Popen(c, env=env, cwd=cwd, preexec_fn=raise_nofile,
                             stdout=subprocess.PIPE if capture else f,
                             stderr=None if capture else subprocess.STDOUT)
        procs.append(p)
        out_files.append(f)
    starts = [t0] * len(procs)
    done: dict[int, ProcStat] = {}
    peak = 0
    while len(done) < len(procs):
        tot = 0
        for i, p in enumerate(procs):
            if i in done:
                continue
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                p.returncode = os.waitstatus_to_exitcode(status)
                stdout = p.stdout.read().decode() if capture and p.stdout else ""
                done[i] = ProcStat(" ".join(cmds[i]), time.perf_counter() - starts[i],
                                   ru.ru_utime, ru.ru_stime, ru.ru_maxrss, p.returncode, stdout)
                continue
            tot += vm_rss_kb(p.pid) + sum(vm_rss_kb(d) for d in _descendants(p.pid))
        peak = max(peak, tot)
        if len(done) < len(procs):
            # sample often at first, then back off (the poller shares the CPUs it measures)
            time.sleep(poll_s)
            poll_s = min(poll_s * 1.05, 0.1)
    for f in out_files:
        if f:
            f.close()
    stats = [done[i] for i in range(len(procs))]
    for s in stats:
        if s.returncode != 0:
            raise RuntimeError(f"command failed ({s.returncode}): {s.cmd}\n{s.stdout[-2000:]}")
    return GroupStat(stats, time.perf_counter() - t0, peak)


def median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_header() -> dict[str, Any]:
    """What every result file starts with: argv, machine, package versions, anygram's git
    commit and the uncommitted files under src/ (the code measured is ``REPO/src``)."""
    res: dict[str, Any] = {
        "argv": sys.argv, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg_start": loadavg(),
                    "mem_GB": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                    / 2**30, 1)},
    }
    try:
        from importlib.metadata import version
        res["versions"] = {p: version(p) for p in ("infini-gram", "numpy", "numba",
                                                   "pydivsufsort")}
    except Exception:  # pragma: no cover
        pass
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "src"],
                               capture_output=True, text=True).stdout.split("\n")
        res["anygram_git"] = {"head": head, "dirty_src": [x for x in dirty if x.strip()]}
    except OSError:
        pass
    return res


# ============================================================================ corpus


@dataclass
class Corpus:
    tokens: np.ndarray  # tokenized-file layout: each document preceded by the separator id
    sep: int
    width: int
    vocab_size: int
    eos_id: int
    description: dict[str, Any] = field(default_factory=dict)


def synthetic_corpus(n_tokens: int, seed: int, vocab: int = 50257) -> np.ndarray:
    """Zipf-ish ids with copied spans (long repeats), documents of 50-2000 tokens."""
    rng = np.random.default_rng(seed)
    ranks = rng.zipf(1.15, size=n_tokens * 2)
    ranks = ranks[ranks < vocab - 1][:n_tokens]
    perm = rng.permutation(vocab - 1)
    toks = perm[ranks].astype(np.uint16)
    # copy ~10% of the corpus as spans of 20-400 tokens from earlier positions
    for _ in range(n_tokens // 2000):
        L = int(rng.integers(20, 400))
        dst = int(rng.integers(L, n_tokens - L))
        src = int(rng.integers(0, dst - L + 1))
        toks[dst:dst + L] = toks[src:src + L]
    pieces = []
    pos = 0
    while pos < n_tokens:
        L = int(rng.integers(50, 2000))
        pieces.append(np.array([0xFFFF], dtype=np.uint16))
        pieces.append(toks[pos:pos + L])
        pos += L
    return np.concatenate(pieces)


def corpus_key(paths: list[Path], tokenizer: str) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{int(st.st_mtime)}\n".encode())
    h.update(Path(tokenizer).read_bytes() if Path(tokenizer).is_file() else tokenizer.encode())
    return h.hexdigest()[:16]


def full_build_and_cache(inputs: list[str], tokenizer: str, out: Path, seed: int, cpus: int,
                         keep: bool, refresh: bool = False) -> Path:
    """Tokenize + index JSONL with anygram.build_index (timed, fresh process), cache ids."""
    from anygram.index.corpus import expand_inputs
    paths = expand_inputs(inputs)
    key = corpus_key(paths, tokenizer)
    cache_dir = out / "cache"
    cache_dir.mkdir(parents=True, exist_ok=True)
    npy = cache_dir / f"corpus_{key}.npy"
    meta = cache_dir / f"corpus_{key}.json"
    if npy.exists() and meta.exists() and not refresh:
        log(f"using cached token ids {npy}")
        return npy
    idx = out / f"fullbuild_{key}"
    shutil.rmtree(idx, ignore_errors=True)
    total_bytes = sum(p.stat().st_size for p in paths)
    log(f"anygram.build_index over {len(paths)} files ({total_bytes / 1e6:.0f} MB), "
        f"tokenizer {tokenizer}, {cpus} workers: this tokenizes everything (minutes) ...")
    code = ("import json,sys,time; t=time.perf_counter(); import anygram; "
            "m=anygram.build_index(json.loads(sys.argv[1]), sys.argv[2], tokenizer=sys.argv[3], "
            "workers=int(sys.argv[4]), progress=False); "
            "print(json.dumps({'seconds': time.perf_counter()-t, 'num_tokens': m.num_tokens, "
            "'num_docs': m.num_docs, 'shards': len(m.shards), 'token_width': m.token_width, "
            "'vocab_size': m.vocab_size, 'eos_id': m.eos_id}))")
    g = run_group([[sys.executable, "-c", code, json.dumps([str(p) for p in paths]), str(idx),
                    tokenizer, str(cpus)]], env=child_env(), capture=True)
    ps = g.procs[0]
    info = json.loads(ps.stdout.strip().splitlines()[-1])
    full = {
        "what": "anygram.build_index(JSONL) incl. tokenization + suffix table, fresh process",
        "inputs": [str(p) for p in paths], "input_bytes": total_bytes, "tokenizer": tokenizer,
        "workers": cpus, "wall_s": round(g.wall_s, 2), "cpu_s_incl_children": round(ps.cpu_s, 2),
        "maxrss_single_process_MB": round(ps.maxrss_kb / 1024, 1),
        "sampled_peak_tree_rss_MB": round(g.sampled_peak_kb / 1024, 1), **info,
        "Mtok_per_s_wall": round(info["num_tokens"] / g.wall_s / 1e6, 3),
        "loadavg_after": loadavg(),
    }
    log(f"full build: {full['wall_s']} s wall, {info['num_tokens']:,} tokens")
    # concatenate shards, shuffle documents
    width = info["token_width"]
    dt = np.dtype(f"<u{width}")
    docs: list[np.ndarray] = []
    arrays = []
    for s in range(info["shards"]):
        a = np.fromfile(idx / f"tokenized.{s}", dtype=dt)
        offs = np.fromfile(idx / f"offset.{s}", dtype=np.uint64).astype(np.int64) // width
        bounds = np.append(offs, a.shape[0])
        arrays.append(a)
        docs.extend(a[bounds[i]:bounds[i + 1]] for i in range(offs.shape[0]))
    order = np.random.default_rng(seed).permutation(len(docs))
    arr = np.concatenate([docs[i] for i in order])
    del docs, arrays
    if npy.exists():  # --refresh-cache: the ids must come out the same
        old = np.load(npy, mmap_mode="r")
        full["cache_unchanged"] = bool(old.shape == arr.shape and np.array_equal(old, arr))
        del old
    tmp = npy.with_name(npy.stem + ".tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, npy)  # never truncate a file another run may have mapped
    full["cache"] = str(npy)
    full["shuffled_docs_seed"] = seed
    meta.write_text(json.dumps(full, indent=2))
    if not keep:
        shutil.rmtree(idx, ignore_errors=True)
    return npy


def load_corpus(args: argparse.Namespace) -> Corpus:
    if not args.corpus:
        n = parse_count(args.tokens) + 200_000
        arr = synthetic_corpus(n, args.seed)
        return Corpus(arr, 0xFFFF, 2, 50257, 50256,
                      {"kind": "synthetic", "tokens": int(arr.shape[0]),
                       "note": "Zipf(1.15) ids over 50,257, ~10% copied spans, docs 50-2000"})
    desc: dict[str, Any] = {}
    if len(args.corpus) == 1 and args.corpus[0].endswith(".npy"):
        npy = Path(args.corpus[0])
    else:
        if not args.tokenizer:
            raise SystemExit("--tokenizer is required for a JSONL corpus")
        npy = full_build_and_cache(args.corpus, args.tokenizer, Path(args.out), args.seed,
                                   args.cpus, args.keep_full_index, args.refresh_cache)
    meta = npy.with_suffix(".json")
    if meta.exists():
        desc["full_build"] = json.loads(meta.read_text())
    arr = np.load(npy, mmap_mode="r")
    if arr.dtype.kind != "u" or arr.dtype.itemsize not in (1, 2, 4):
        raise SystemExit(f"{npy}: need an unsigned 8/16/32-bit array, not {arr.dtype}")
    width = arr.dtype.itemsize
    sep = (1 << (8 * width)) - 1
    vocab = desc.get("full_build", {}).get("vocab_size") or args.vocab_size
    eos = desc.get("full_build", {}).get("eos_id")
    if args.vocab_size:
        vocab = args.vocab_size
    if args.eos_id is not None:
        eos = args.eos_id
    if not vocab:
        mx = 0
        for i in range(0, arr.shape[0], 1 << 26):
            c = np.asarray(arr[i:i + (1 << 26)])
            c = c[c != sep]
            if c.size:
                mx = max(mx, int(c.max()))
        vocab = mx + 1
    if eos is None:
        eos = vocab - 1
    desc.update({"kind": "npy", "path": str(npy), "positions": int(arr.shape[0]),
                 "dtype": str(arr.dtype)})
    return Corpus(arr, sep, width, int(vocab), int(eos), desc)


def cut_prefix(c: Corpus, n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n_tokens`` document tokens (as positions incl. separators) and the rest."""
    arr = c.tokens
    if arr.shape[0] == 0 or arr[0] != c.sep:
        raise SystemExit("corpus array must start with a document separator")
    seps = np.flatnonzero(np.asarray(arr) == c.sep)
    m = n_tokens
    for _ in range(64):
        k = int(np.searchsorted(seps, m))  # separators in arr[:m]
        m2 = n_tokens + k
        if m2 == m:
            break
        m = m2
    if m > arr.shape[0]:
        raise SystemExit(f"corpus has only {arr.shape[0] - seps.shape[0]:,} tokens, "
                         f"fewer than the {n_tokens:,} asked for")
    while m > 0 and arr[m - 1] == c.sep:  # a shard does not end with a separator
        m -= 1
    return arr[:m], arr[m:]


# ============================================================================ index files


def write_shard(prefix: np.ndarray, width: int, sep: int, d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    tok = d / "tokenized.0"
    np.ascontiguousarray(prefix).astype(f"<u{width}", copy=False).tofile(tok)
    offs = np.flatnonzero(np.asarray(prefix) == sep).astype(np.uint64) * np.uint64(width)
    offs.astype("<u8").tofile(d / "offset.0")


def link_shard(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("tokenized.0", "offset.0"):
        t = dst / name
        if t.exists():
            t.unlink()
        os.link(src / name, t)


def files_equal(a: Path, b: Path, chunk: int = 1 << 26) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x = fa.read(chunk)
            y = fb.read(chunk)
            if x != y:
                return False
            if not x:
                return True


def check_sorted_sample(d: Path, width: int, samples: int, seed: int) -> dict[str, Any]:
    """Sampled adjacent pairs of table.0: suffix(r) <= suffix(r+1) bytewise; aligned pointers;
    the table is a permutation in size. Returns counts."""
    ds = np.memmap(d / "tokenized.0", dtype=np.uint8, mode="r")
    sa_bytes = np.memmap(d / "table.0", dtype=np.uint8, mode="r")
    n_pos = ds.shape[0] // width
    k = sa_bytes.shape[0] // n_pos
    rng = np.random.default_rng(seed)
    ranks = rng.integers(0, n_pos - 1, size=min(samples, max(n_pos - 1, 1)))

    def ptr(r: int) -> int:
        return int.from_bytes(bytes(sa_bytes[r * k:(r + 1) * k]), "little")

    bad = misaligned = 0
    n = ds.shape[0]
    for r in ranks.tolist():
        p, q = ptr(r), ptr(r + 1)
        if p % width or q % width or p >= n or q >= n:
            misaligned += 1
            continue
        L = 64
        while True:
            a = bytes(ds[p:p + L])
            b = bytes(ds[q:q + L])
            if a != b or (p + L >= n or q + L >= n):
                if a > b:
                    bad += 1
                break
            L *= 4
    return {"pairs": int(ranks.shape[0]), "out_of_order": bad, "bad_pointers": misaligned,
            "ptr_width": k}


def _lcp(ds: np.ndarray, p: int, q: int) -> int:
    """Length in bytes of the common prefix of the suffixes at byte offsets p and q."""
    n = ds.shape[0]
    L = 0
    step = 1 << 12
    while True:
        x = ds[p + L:min(p + L + step, n)]
        y = ds[q + L:min(q + L + step, n)]
        m = min(x.shape[0], y.shape[0])
        ne = np.flatnonzero(x[:m] != y[:m])
        if ne.size:
            return L + int(ne[0])
        if m < step:
            return L + m
        L += step
        step = min(step * 4, 1 << 22)


def diff_tables(ag_dir: Path, ig_dir: Path, width: int, max_pairs: int = 2000
                ) -> dict[str, Any]:
    """Where the two tables differ: entries, runs, and the common-prefix length of the
    suffixes involved (infini-gram's merge compares only the first --hacksize bytes)."""
    ds = np.memmap(ag_dir / "tokenized.0", dtype=np.uint8, mode="r")
    n_pos = ds.shape[0] // width
    k = (ag_dir / "table.0").stat().st_size // n_pos
    if (ig_dir / "table.0").stat().st_size != n_pos * k:
        return {"note": "tables have different sizes (pointer widths differ?)"}
    a = np.memmap(ag_dir / "table.0", dtype=np.uint8, mode="r").reshape(-1, k)
    b = np.memmap(ig_dir / "table.0", dtype=np.uint8, mode="r").reshape(-1, k)
    diffs = []
    step = 1 << 22
    for i in range(0, n_pos, step):
        diffs.append(i + np.flatnonzero((a[i:i + step] != b[i:i + step]).any(axis=1)))
    diff = np.concatenate(diffs)
    out: dict[str, Any] = {"entries_differing": int(diff.shape[0]), "entries": n_pos}
    if not diff.size:
        return out
    runs = np.split(diff, np.flatnonzero(np.diff(diff) > 1) + 1)
    out["runs"] = len(runs)

    def ptr(t: np.ndarray, r: int) -> int:
        return int.from_bytes(bytes(t[r]), "little")

    lcps = []
    for r in runs:
        for i in range(int(r[0]), int(r[-1])):
            lcps.append(_lcp(ds, ptr(a, i), ptr(a, i + 1)))
            if len(lcps) >= max_pairs:
                break
        if len(lcps) >= max_pairs:
            break
    arr = np.array(lcps)
    # a run is a block of ranks whose suffixes infini-gram ordered differently; the max LCP in
    # each run says whether truncated comparisons (>= hacksize bytes equal) explain it
    run_max = []
    for r in runs[:500]:
        run_max.append(max([_lcp(ds, ptr(a, i), ptr(a, i + 1))
                            for i in range(int(r[0]), int(r[-1]))] or [0]))
    out.update({
        "adjacent_pairs_checked": int(arr.shape[0]),
        "lcp_bytes_median": float(np.median(arr)) if arr.size else None,
        "lcp_bytes_min": int(arr.min()) if arr.size else None,
        "share_pairs_lcp_ge_hacksize": round(float((arr >= HACK).mean()), 4) if arr.size
        else None,
        "runs_checked": len(run_max),
        "runs_with_lcp_ge_hacksize": int(sum(m >= HACK for m in run_max)),
    })
    return out


def count_agreement(ag_dir: Path, ig_dir: Path, c: Corpus, queries: int, seed: int
                    ) -> dict[str, Any]:
    """Counts of random corpus n-grams (n = 1..1000) on the two tables, by one engine."""
    import anygram
    dtype = {1: "u8", 2: "u16", 4: "u32"}[c.width]
    ea = anygram.Engine.open(ag_dir, token_dtype=dtype, vocab_size=c.vocab_size)
    eb = anygram.Engine.open(ig_dir, token_dtype=dtype, vocab_size=c.vocab_size)
    ds = np.memmap(ag_dir / "tokenized.0", dtype=f"<u{c.width}", mode="r")
    rng = np.random.default_rng(seed)
    bad = done = 0
    for n in (1, 2, 5, 10, 100, 1000):
        for pos in rng.integers(0, ds.shape[0] - n, size=queries).tolist():
            w = np.asarray(ds[pos:pos + n])
            if (w == c.sep).any():
                continue
            done += 1
            bad += ea.count(w).count != eb.count(w).count
    return {"queries": done, "disagreements": bad, "n": [1, 2, 5, 10, 100, 1000]}


# ============================================================================ build part


AG_CHILD = r"""
import json, sys, time, resource
t0 = time.perf_counter()
from anygram.index import suffix_array as sa
from anygram.index.format import ptr_width_for
import_s = time.perf_counter() - t0
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1])
rss_import = rss()
from pathlib import Path
tok, table, width = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
ptr_width = ptr_width_for(tok.stat().st_size)
w0, c0 = time.perf_counter(), time.process_time()
sa.build_table(tok, table, width, ptr_width)
print(json.dumps({'import_s': import_s, 'call_wall_s': time.perf_counter() - w0,
                  'call_cpu_s': time.process_time() - c0, 'rss_after_import_kb': rss_import,
                  'ptr_width': ptr_width}))
"""


def build_anygram(d: Path, width: int) -> dict[str, Any]:
    (d / "table.0").unlink(missing_ok=True)
    g = run_group([[sys.executable, "-c", AG_CHILD, str(d / "tokenized.0"), str(d / "table.0"),
                    str(width)]], env=child_env(), capture=True)
    ps = g.procs[0]
    inner = json.loads(ps.stdout.strip().splitlines()[-1])
    return {"wall_s": g.wall_s, "cpu_s": ps.cpu_s, "peak_rss_kb": ps.maxrss_kb,
            "sampled_peak_kb": g.sampled_peak_kb, **inner}


def build_infinigram(d: Path, width: int, cpus: int) -> dict[str, Any]:
    """make-part x cpus (in parallel), merge, concat: infini_gram/indexing.py build_sa."""
    ri = str(rust_indexing_path())
    ds_path = d / "tokenized.0"
    sa_path = d / "table.0"
    sa_path.unlink(missing_ok=True)
    ds_size = ds_path.stat().st_size
    rat = ig_ratio(ds_size)
    total_jobs = cpus  # one batch: mem_bytes // 8 >= ds_size for any shard that fits in RAM
    S = ds_size // total_jobs
    if S % width:
        S += width - S % width
    parts_dir = d / "parts-0"
    merged_dir = d / "merged-0"
    shutil.rmtree(parts_dir, ignore_errors=True)
    shutil.rmtree(merged_dir, ignore_errors=True)
    parts_dir.mkdir()
    merged_dir.mkdir()
    make = []
    for i in range(total_jobs):
        s, e = i * S, min((i + 1) * S + HACK, ds_size)
        make.append([ri, "make-part", "--data-file", str(ds_path), "--parts-dir", str(parts_dir),
                     "--start-byte", str(s), "--end-byte", str(e), "--ratio", str(rat),
                     "--token-width", str(width)])
    g1 = run_group(make)
    g2 = run_group([[ri, "merge", "--data-file", str(ds_path), "--parts-dir", str(parts_dir),
                     "--merged-dir", str(merged_dir), "--num-threads", str(cpus),
                     "--hacksize", str(HACK), "--ratio", str(rat), "--token-width", str(width)]])
    shutil.rmtree(parts_dir)
    g3 = run_group([[ri, "concat", "--data-file", str(ds_path), "--merged-dir", str(merged_dir),
                     "--merged-file", str(sa_path), "--num-threads", str(cpus), "--ratio",
                     str(rat), "--token-width", str(width)]])
    shutil.rmtree(merged_dir)
    steps = {"make_part": g1, "merge": g2, "concat": g3}
    peak_kb = max(g1.sum_maxrss_kb, g2.sum_maxrss_kb, g3.sum_maxrss_kb)
    sampled = max(g1.sampled_peak_kb, g2.sampled_peak_kb, g3.sampled_peak_kb)
    return {
        "wall_s": sum(g.wall_s for g in steps.values()),
        "cpu_s": sum(g.cpu_s for g in steps.values()),
        "peak_rss_kb": peak_kb, "sampled_peak_kb": sampled, "ptr_width": rat, "jobs": total_jobs,
        "steps": {k: {"wall_s": round(g.wall_s, 3), "cpu_s": round(g.cpu_s, 3),
                      "maxrss_kb_per_process": [p.maxrss_kb for p in g.procs],
                      "sampled_peak_kb": g.sampled_peak_kb} for k, g in steps.items()},
    }


def run_build(c: Corpus, n_tokens: int, out: Path, reps: int, cpus: int, seed: int,
              check_pairs: int, keep: bool) -> dict[str, Any]:
    prefix, _ = cut_prefix(c, n_tokens)
    n_pos = int(prefix.shape[0])
    n_docs = int(np.count_nonzero(np.asarray(prefix) == c.sep))
    base = out / f"build_{human(n_tokens)}"
    shutil.rmtree(base, ignore_errors=True)
    write_shard(prefix, c.width, c.sep, base / "shard")
    link_shard(base / "shard", base / "ag")
    link_shard(base / "shard", base / "ig")
    # warm the input file so neither side pays a cold read
    with open(base / "shard" / "tokenized.0", "rb") as f:
        while f.read(1 << 26):
            pass
    log(f"build @ {n_tokens:,} tokens ({n_pos:,} positions, {n_docs:,} docs), "
        f"{reps} rep(s), load {loadavg()}")
    ag_runs, ig_runs = [], []
    for r in range(reps):
        ig_runs.append(build_infinigram(base / "ig", c.width, cpus))
        log(f"  infini-gram rep {r}: {ig_runs[-1]['wall_s']:.1f} s wall, "
            f"{ig_runs[-1]['cpu_s']:.1f} s CPU, peak {ig_runs[-1]['peak_rss_kb'] / 1024:.0f} MB "
            f"(steps: " + ", ".join(f"{k} {v['wall_s']:.1f}s" for k, v in
                                    ig_runs[-1]["steps"].items()) + ")")
        ag_runs.append(build_anygram(base / "ag", c.width))
        log(f"  anygram rep {r}: {ag_runs[-1]['wall_s']:.1f} s wall, "
            f"{ag_runs[-1]['cpu_s']:.1f} s CPU, peak {ag_runs[-1]['peak_rss_kb'] / 1024:.0f} MB")
    identical = files_equal(base / "ag" / "table.0", base / "ig" / "table.0")
    sorted_ag = check_sorted_sample(base / "ag", c.width, check_pairs, seed)
    sorted_ig = check_sorted_sample(base / "ig", c.width, check_pairs, seed + 1)
    log(f"  tables byte-identical: {identical}; sampled pairs out of order: anygram "
        f"{sorted_ag['out_of_order']}/{sorted_ag['pairs']}, infini-gram "
        f"{sorted_ig['out_of_order']}/{sorted_ig['pairs']}")
    table_diff = None if identical else diff_tables(base / "ag", base / "ig", c.width)
    if table_diff:
        log(f"  table diff: {table_diff}")
    counts = count_agreement(base / "ag", base / "ig", c, max(1, check_pairs // 40), seed)
    log(f"  counts on the two tables: {counts['disagreements']}/{counts['queries']} differ")

    def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "wall_s_median": round(median([x["wall_s"] for x in runs]), 3),
            "wall_s_min": round(min(x["wall_s"] for x in runs), 3),
            "cpu_s_median": round(median([x["cpu_s"] for x in runs]), 3),
            "peak_rss_MB": round(max(x["peak_rss_kb"] for x in runs) / 1024, 1),
            "peak_B_per_token": round(max(x["peak_rss_kb"] for x in runs) * 1024 / n_tokens, 2),
            "sampled_peak_B_per_token": round(max(x["sampled_peak_kb"] for x in runs) * 1024
                                              / n_tokens, 2),
            "runs": runs,
        }

    ag, ig = summarize(ag_runs), summarize(ig_runs)
    ag["net_peak_B_per_token"] = round(
        max(x["peak_rss_kb"] - x["rss_after_import_kb"] for x in ag_runs) * 1024 / n_tokens, 2)
    ag["call_wall_s_median"] = round(median([x["call_wall_s"] for x in ag_runs]), 3)
    ag["call_cpu_s_median"] = round(median([x["call_cpu_s"] for x in ag_runs]), 3)
    res = {
        "tokens": n_tokens, "positions": n_pos, "docs": n_docs,
        "tokenized_bytes": n_pos * c.width, "anygram": ag, "infinigram": ig,
        "ratio_wall": round(ratio(ag["wall_s_median"], ig["wall_s_median"]), 4),
        "ratio_cpu": round(ratio(ag["cpu_s_median"], ig["cpu_s_median"]), 4),
        "speedup_wall": round(ratio(ig["wall_s_median"], ag["wall_s_median"]), 2),
        "speedup_cpu": round(ratio(ig["cpu_s_median"], ag["cpu_s_median"]), 2),
        "tables_byte_identical": identical, "table_diff": table_diff,
        "count_agreement_between_tables": counts,
        "sorted_check": {"anygram": sorted_ag, "infinigram": sorted_ig},
        "loadavg_after": loadavg(),
    }
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    return res


# ============================================================================ query part


def ensure_query_index(c: Corpus, n_tokens: int, out: Path, reuse: bool
                       ) -> tuple[Path, np.ndarray, dict[str, Any]]:
    prefix, rest = cut_prefix(c, n_tokens)
    d = out / f"query_{human(n_tokens)}"
    info: dict[str, Any] = {"dir": str(d)}
    ok = (reuse and (d / "table.0").exists() and (d / "tokenized.0").exists()
          and (d / "tokenized.0").stat().st_size == prefix.shape[0] * c.width)
    if not ok:
        shutil.rmtree(d, ignore_errors=True)
        bdir = out / f"build_{human(n_tokens)}" / "ag"
        if (bdir / "table.0").exists() and (bdir / "tokenized.0").stat().st_size == \
                prefix.shape[0] * c.width:
            d.mkdir(parents=True)
            for name in ("tokenized.0", "offset.0", "table.0"):
                os.link(bdir / name, d / name)
            info["table_from"] = ("anygram.index.suffix_array.build_table (this run's build "
                                  "part; compared with rust_indexing's table there)")
        else:
            write_shard(prefix, c.width, c.sep, d)
            log(f"building query index at {d} with anygram.index.suffix_array.build_table")
            build_anygram(d, c.width)
            info["table_from"] = "anygram.index.suffix_array.build_table"
    else:
        info["table_from"] = "reused"
    return d, rest, info


def sample_windows(src: np.ndarray | list[np.ndarray], sep: int, length: int, count: int,
                   rng: np.random.Generator) -> np.ndarray:
    """``count`` windows of ``length`` tokens at random positions, none holding ``sep``.

    ``src`` is one token array or several (the shards of an index); with several, each
    window's array is drawn in proportion to the array's length.
    """
    arrays = [src] if isinstance(src, np.ndarray) else src
    sizes = np.array([max(a.shape[0] - length, 0) for a in arrays], dtype=np.float64)
    if not sizes.sum():
        raise SystemExit(f"no window of {length} tokens fits in the corpus")
    offsets = np.arange(length)[None, :]
    out = []
    got = 0
    while got < count:
        if len(arrays) == 1:
            pos = rng.integers(0, arrays[0].shape[0] - length, size=count * 2)
            w = arrays[0][pos[:, None] + offsets]
        else:
            which = rng.choice(len(arrays), size=count * 2, p=sizes / sizes.sum())
            parts = []
            for i in np.unique(which).tolist():
                pos = rng.integers(0, int(sizes[i]), size=int((which == i).sum()))
                parts.append(np.asarray(arrays[i][pos[:, None] + offsets], dtype=np.int64))
            w = np.concatenate(parts)[rng.permutation(count * 2)]
        w = w[(w != sep).all(axis=1)]
        out.append(w)
        got += w.shape[0]
    return np.concatenate(out)[:count]


def make_queries(ds: np.ndarray | list[np.ndarray], rest: np.ndarray, sep: int, vocab: int,
                 q: int, q_ntd: int, rng: np.random.Generator
                 ) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Queries of every op (keys: "count n=1", "prob (5-gram)", "ntd prompt=1",
    "infgram_prob (20 tok)", ...), windows of ``ds`` (one array or the shards' arrays)."""
    def windows(src: np.ndarray | list[np.ndarray], length: int, count: int) -> np.ndarray:
        return sample_windows(src, sep, length, count, rng)

    qs: dict[str, list[Any]] = {}
    for k in (1, 2, 5, 10):
        qs[f"count n={k}"] = [w.tolist() for w in windows(ds, k, q)]
    w6 = windows(ds, 6, q)
    qs["prob (5-gram)"] = [(w[:5].tolist(), int(w[5])) for w in w6]
    for k in (1, 2, 5):
        qs[f"ntd prompt={k}"] = [w.tolist() for w in windows(ds, k, q_ntd)]
    meta: dict[str, Any] = {}
    rest = np.asarray(rest)
    if rest.shape[0] - np.count_nonzero(rest == sep) >= 50 * 21:
        h = windows(rest, 21, q)
        meta["infgram_prompts"] = ("held-out: 20-token windows from the corpus tail that is not "
                                   "indexed (+ true next token)")
    else:
        h = windows(ds, 21, q).copy()
        off = rng.integers(11, 20, size=h.shape[0])  # perturb one of the last 9 prompt tokens
        h[np.arange(h.shape[0]), off] = rng.integers(0, vocab, size=h.shape[0])
        meta["infgram_prompts"] = ("indexed 20-token windows with one of the last 9 tokens "
                                   "replaced by a random id (+ true next token)")
    qs["infgram_prob (20 tok)"] = [(w[:20].tolist(), int(w[20])) for w in h]
    qs["infgram_ntd (20 tok)"] = [w[:20].tolist() for w in h[:q_ntd]]
    return qs, meta


def ig_dist(r: dict[str, Any]) -> dict[int, int]:
    return {int(t): int(v["cont_cnt"]) for t, v in r["result_by_token_id"].items()}


def ag_dist(d: Any, eos: int) -> dict[int, int]:
    out = dict(d.counts)
    if d.end_count:
        out[eos] = out.get(eos, 0) + d.end_count
    return out


def tv_distance(a: dict[int, int], b: dict[int, int]) -> float:
    sa, sb = sum(a.values()) or 1, sum(b.values()) or 1
    keys = set(a) | set(b)
    return 0.5 * sum(abs(a.get(k, 0) / sa - b.get(k, 0) / sb) for k in keys)


@dataclass
class Op:
    name: str
    queries: list[Any]
    ig: Callable[[Any], Any]
    ag: Callable[[Any], Any]
    compare: Callable[[Any, Any], tuple[bool, bool]]  # -> (compared, agree)
    note: str = ""
    extra: Callable[[list[Any], list[Any]], dict[str, Any]] | None = None


def time_batch(fn: Callable[[Any], Any], qs: list[Any]) -> tuple[float, float]:
    c0 = time.process_time()
    t0 = time.perf_counter()
    for x in qs:
        fn(x)
    t = time.perf_counter() - t0
    return t / len(qs) * 1e6, (time.process_time() - c0) / len(qs) * 1e6


def run_queries(c: Corpus, n_tokens: int, out: Path, q: int, q_ntd: int, reps: int, seed: int,
                reuse: bool) -> dict[str, Any]:
    from infini_gram.engine import InfiniGramEngine

    import anygram
    d, rest, info = ensure_query_index(c, n_tokens, out, reuse)
    dtype = {1: "u8", 2: "u16", 4: "u32"}[c.width]
    log(f"query index {d}: warming the page cache")
    for name in ("tokenized.0", "table.0", "offset.0"):
        with open(d / name, "rb") as f:
            while f.read(1 << 26):
                pass
    ds = np.memmap(d / "tokenized.0", dtype=f"<u{c.width}", mode="r")
    rng = np.random.default_rng(seed)
    qs, qmeta = make_queries(ds, rest, c.sep, c.vocab_size, q, q_ntd, rng)
    info.update(qmeta)
    eos = c.eos_id
    t0 = time.perf_counter()
    ig = InfiniGramEngine(index_dir=str(d), eos_token_id=eos, vocab_size=c.vocab_size,
                          token_dtype=dtype, ds_prefetch_depth=0, sa_prefetch_depth=0,
                          od_prefetch_depth=0)
    info["infinigram_open_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    ag = anygram.Engine.open(d, token_dtype=dtype, vocab_size=c.vocab_size, eos_id=eos)
    info["anygram_open_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    ag.count([1])  # JIT: load compiled kernels (numba cache) or compile them
    ag.ntd([1])
    ag.ntd([1], max_support=10)
    ag.infgram_prob([1, 2], 3)
    info["anygram_first_query_s"] = round(time.perf_counter() - t0, 3)

    def cmp_count(a: Any, b: Any) -> tuple[bool, bool]:
        return True, a.count == b["count"]

    def cmp_prob(a: Any, b: Any) -> tuple[bool, bool]:
        return True, (a.prompt_count, a.cont_count) == (b["prompt_cnt"], b["cont_cnt"])

    def cmp_ntd(a: Any, b: Any) -> tuple[bool, bool]:
        d_ = a.dist if hasattr(a, "dist") else a
        if hasattr(a, "dist") and a.suffix_len != b["suffix_len"]:
            return True, False
        if d_.prompt_count != b["prompt_cnt"]:
            return True, False
        if b["approx"]:
            return False, True  # infini-gram sampled: only prompt_cnt is comparable
        return True, ag_dist(d_, eos) == ig_dist(b)

    def cmp_infprob(a: Any, b: Any) -> tuple[bool, bool]:
        return True, ((a.suffix_len, a.prompt_count, a.cont_count)
                      == (b["suffix_len"], b["prompt_cnt"], b["cont_cnt"]))

    def ntd_extra(ag_res: list[Any], ig_res: list[Any]) -> dict[str, Any]:
        approx = [b["approx"] for b in ig_res]
        tvs = [tv_distance(ig_dist(b), ag_dist(a.dist if hasattr(a, "dist") else a, eos))
               for a, b in zip(ag_res, ig_res, strict=False) if b["approx"]]
        pc = [b["prompt_cnt"] for b in ig_res]
        return {"ig_approx_share": round(sum(approx) / len(approx), 3),
                "mean_prompt_cnt": round(float(np.mean(pc)), 1),
                "ig_approx_tv_vs_exact_mean": round(float(np.mean(tvs)), 4) if tvs else None,
                "mean_distinct_next": round(float(np.mean(
                    [len(b["result_by_token_id"]) for b in ig_res])), 1)}

    ops: list[Op] = []
    for k in (1, 2, 5, 10):
        ops.append(Op(f"count n={k}", qs[f"count n={k}"], ig.count, ag.count, cmp_count,
                      extra=lambda A, B: {"mean_count": round(float(np.mean(
                          [b["count"] for b in B])), 1)}))
    ops.append(Op("prob (5-gram)", qs["prob (5-gram)"], lambda x: ig.prob(x[0], x[1]),
                  lambda x: ag.prob(x[0], x[1]), cmp_prob))
    for k in (1, 2, 5):
        name = f"ntd prompt={k}"
        ops.append(Op(name + " [ag exact]", qs[name], ig.ntd, ag.ntd, cmp_ntd,
                      note="infini-gram samples above max_support=1000", extra=ntd_extra))
        ops.append(Op(name + " [ag max_support=1000]", qs[name], ig.ntd,
                      lambda x: ag.ntd(x, max_support=1000), cmp_ntd,
                      note="both approximate above 1000"))
    ops.append(Op("infgram_prob (20 tok)", qs["infgram_prob (20 tok)"],
                  lambda x: ig.infgram_prob(x[0], x[1]), lambda x: ag.infgram_prob(x[0], x[1]),
                  cmp_infprob, extra=lambda A, B: {"mean_suffix_len": round(float(np.mean(
                      [b["suffix_len"] for b in B])), 2), "mean_prompt_cnt": round(float(
                          np.mean([b["prompt_cnt"] for b in B])), 1)}))
    ops.append(Op("infgram_ntd (20 tok) [ag exact]", qs["infgram_ntd (20 tok)"], ig.infgram_ntd,
                  ag.infgram_ntd, cmp_ntd, extra=ntd_extra))
    ops.append(Op("infgram_ntd (20 tok) [ag max_support=1000]", qs["infgram_ntd (20 tok)"],
                  ig.infgram_ntd, lambda x: ag.infgram_ntd(x, max_support=1000), cmp_ntd))

    results = []
    ig_cache: dict[int, tuple[list[Any], list[float], list[float]]] = {}
    ag_exact: dict[int, list[Any]] = {}
    for op in ops:
        log(f"  {op.name}: {len(op.queries)} queries x {reps} reps, load {loadavg()}")
        # warm-up pass, which also collects the answers for the agreement check
        ag_res = [op.ag(x) for x in op.queries]
        key = id(op.queries)
        cached = ig_cache.get(key) if op.ig in (ig.ntd, ig.infgram_ntd) else None
        if cached is None:
            ig_res = [op.ig(x) for x in op.queries]
        else:
            ig_res = cached[0]
        errors = [b for b in ig_res if isinstance(b, dict) and "error" in b]
        if errors:
            raise RuntimeError(f"infini-gram error on {op.name}: {errors[0]}")
        compared = disagree = 0
        examples = []
        for x, a, b in zip(op.queries, ag_res, ig_res, strict=False):
            cmpd, agree = op.compare(a, b)
            compared += cmpd
            if cmpd and not agree:
                disagree += 1
                if len(examples) < 3:
                    examples.append({"query": x, "anygram": repr(a)[:400],
                                     "infinigram": repr(b)[:400]})
        ag_w, ag_c, ig_w, ig_c = [], [], [], []
        if cached is not None:
            ig_w, ig_c = list(cached[1]), list(cached[2])
        for r in range(reps):
            first_ag = r % 2 == 0
            for which in (("ag", "ig") if first_ag else ("ig", "ag")):
                if which == "ag":
                    w, cpu = time_batch(op.ag, op.queries)
                    ag_w.append(w)
                    ag_c.append(cpu)
                elif cached is None:
                    w, cpu = time_batch(op.ig, op.queries)
                    ig_w.append(w)
                    ig_c.append(cpu)
        if op.ig in (ig.ntd, ig.infgram_ntd):
            ig_cache[key] = (ig_res, ig_w, ig_c)
        row = {
            "op": op.name, "queries": len(op.queries),
            "anygram_us_median": round(median(ag_w), 2), "anygram_us_min": round(min(ag_w), 2),
            "infinigram_us_median": round(median(ig_w), 2),
            "infinigram_us_min": round(min(ig_w), 2),
            "ratio_median": round(ratio(median(ag_w), median(ig_w)), 4),
            "ratio_min": round(ratio(min(ag_w), min(ig_w)), 4),
            "anygram_cpu_us_median": round(median(ag_c), 2),
            "infinigram_cpu_us_median": round(median(ig_c), 2),
            "ratio_cpu_median": round(ratio(median(ag_c), median(ig_c)), 4),
            "compared": compared, "disagreements": disagree, "examples": examples,
            "note": op.note + (" (infini-gram timings shared with the row above)"
                               if cached is not None else ""),
        }
        if op.extra:
            row.update(op.extra(ag_res, ig_res))
        if "[ag exact]" in op.name:
            ag_exact[key] = ag_res
        if "max_support=1000" in op.name:
            ex = [a.dist if hasattr(a, "dist") else a for a in ag_res]
            row["ag_approx_share"] = round(sum(bool(e.approx) for e in ex) / len(ex), 3)
            if key in ag_exact:
                exact = [a.dist if hasattr(a, "dist") else a for a in ag_exact[key]]
                tvs = [tv_distance(ag_dist(e, eos), ag_dist(x, eos))
                       for e, x in zip(ex, exact, strict=False) if e.approx]
                row["ag_approx_tv_vs_exact_mean"] = round(float(np.mean(tvs)), 4) if tvs \
                    else None
        log(f"    anygram {row['anygram_us_median']:.1f} us, infini-gram "
            f"{row['infinigram_us_median']:.1f} us, ratio {row['ratio_median']:.3f}; "
            f"{disagree}/{compared} disagree")
        results.append(row)
    return {"tokens": n_tokens, "positions": int(ds.shape[0]), "index": info, "ops": results,
            "loadavg_after": loadavg()}


# ============================================================================ report


def fmt_table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(x) for x in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + " |"
            for r in cells]
    return "\n".join([line, sep, *body])


def report(res: dict[str, Any]) -> str:
    parts = []
    fb = res.get("corpus", {}).get("full_build")
    if fb:
        parts.append(
            f"anygram full build_index from JSONL (tokenization + table, {fb['workers']} "
            f"workers): {fb['num_tokens']:,} tokens, {fb['num_docs']:,} docs, "
            f"{fb['wall_s']} s wall, {fb['cpu_s_incl_children']} s CPU incl. children, "
            f"{fb['Mtok_per_s_wall']} Mtok/s, sampled peak tree RSS "
            f"{fb['sampled_peak_tree_rss_MB']} MB")
    if res.get("build"):
        rows = []
        for b in res["build"]:
            a, i = b["anygram"], b["infinigram"]
            st = i["runs"][len(i["runs"]) // 2]["steps"]
            rows.append([human(b["tokens"]), len(a["runs"]),
                         f"{a['wall_s_median']:.2f} / {a['cpu_s_median']:.2f}",
                         f"{i['wall_s_median']:.2f} / {i['cpu_s_median']:.2f}",
                         f"{b['ratio_wall']:.3f} ({b['speedup_wall']:.1f}x)",
                         f"{b['ratio_cpu']:.3f} ({b['speedup_cpu']:.1f}x)",
                         f"{a['peak_B_per_token']:.2f} (net {a['net_peak_B_per_token']:.2f})",
                         f"{i['peak_B_per_token']:.2f}",
                         "/".join(f"{st[k]['wall_s']:.1f}" for k in ("make_part", "merge",
                                                                     "concat")),
                         "yes" if b["tables_byte_identical"] else
                         (f"no: {b['table_diff'].get('entries_differing', '?'):,} entries differ; "
                          f"{b['table_diff'].get('runs_with_lcp_ge_hacksize', '?')}/"
                          f"{b['table_diff'].get('runs_checked', '?')} runs have LCP >= 100000 B"),
                         f"{b['count_agreement_between_tables']['disagreements']}/"
                         f"{b['count_agreement_between_tables']['queries']}",
                         f"{b['sorted_check']['anygram']['out_of_order']} / "
                         f"{b['sorted_check']['infinigram']['out_of_order']} of "
                         f"{b['sorted_check']['anygram']['pairs']}"])
        parts.append("Build (suffix table only; wall / CPU s, medians; peak RSS per document "
                     "token)\n" + fmt_table(
                         ["tokens", "reps", "anygram s", "infini-gram s", "ratio wall",
                          "ratio CPU", "anygram peak B/tok", "infini-gram peak B/tok",
                          "ig make-part/merge/concat wall s", "identical",
                          "count diffs between tables", "ag bad pairs / ig bad pairs"], rows))
    if res.get("query"):
        qr = res["query"]
        rows = []
        for r in qr["ops"]:
            extra = []
            for k in ("mean_count", "mean_prompt_cnt", "ig_approx_share", "ag_approx_share",
                      "mean_suffix_len", "ig_approx_tv_vs_exact_mean",
                      "ag_approx_tv_vs_exact_mean"):
                if r.get(k) is not None:
                    extra.append(f"{k}={r[k]}")
            rows.append([r["op"], r["queries"],
                         f"{r['anygram_us_median']:.1f} ({r['anygram_us_min']:.1f})",
                         f"{r['infinigram_us_median']:.1f} ({r['infinigram_us_min']:.1f})",
                         f"{r['ratio_median']:.3f}", f"{r['ratio_cpu_median']:.3f}",
                         f"{r['disagreements']}/{r['compared']}", " ".join(extra)])
        parts.append(f"Queries @ {qr['tokens']:,} tokens (µs/query, median (min) of R reps; "
                     "ratio = anygram / infini-gram)\n" + fmt_table(
                         ["op", "n", "anygram µs", "infini-gram µs", "ratio", "CPU ratio",
                          "disagree/compared", "notes"], rows))
    return "\n\n".join(parts)


# ============================================================================ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("Examples::")[-1])
    ap.add_argument("corpus", nargs="*", help="JSONL files/dirs, or one .npy of token ids "
                    "(separator id = all ones). Empty with --quick: synthetic corpus.")
    ap.add_argument("--tokenizer", help="tokenizer for a JSONL corpus (tokenizer.json, "
                    ".tiktoken, .model)")
    ap.add_argument("--tokens", default="100M", help="index size for queries (document tokens)")
    ap.add_argument("--build-tokens", default=None,
                    help="comma-separated sizes for the build comparison, each optionally "
                    "with :REPS (e.g. 10M:3,30M:3,100M); default: --tokens")
    ap.add_argument("--queries", type=int, default=2000, help="queries per op (count/prob/"
                    "infgram_prob)")
    ap.add_argument("--ntd-queries", type=int, default=300, help="queries per ntd op")
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions per op")
    ap.add_argument("--build-reps", type=int, default=1, help="repetitions per build size")
    ap.add_argument("--parts", default="build,query", help="build,query (comma-separated)")
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 1,
                    help="make-part processes / merge threads, and tokenizer workers")
    ap.add_argument("--vocab-size", type=int, default=None)
    ap.add_argument("--eos-id", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check-pairs", type=int, default=20000,
                    help="sampled adjacent SA pairs checked for order")
    ap.add_argument("--out", default=str(HERE / "out"))
    ap.add_argument("--tag", default=None, help="name of the JSON result (default: derived)")
    ap.add_argument("--keep-index", action="store_true", help="keep the build_* dirs")
    ap.add_argument("--reuse-index", action="store_true",
                    help="reuse OUT/query_<N> if it exists with the right size")
    ap.add_argument("--keep-full-index", action="store_true",
                    help="keep the index made by the full build_index from JSONL")
    ap.add_argument("--refresh-cache", action="store_true",
                    help="re-run (and re-time) the full build_index of a JSONL corpus even if "
                    "its token-id cache exists")
    ap.add_argument("--quick", action="store_true",
                    help="~1M tokens, 300 queries, 60 ntd queries, 3 reps (smoke test, <1 min)")
    args = ap.parse_args()
    if args.quick:
        args.tokens = "1M"
        args.build_tokens = None
        args.queries = min(args.queries, 300)
        args.ntd_queries = min(args.ntd_queries, 60)
        args.reps = min(args.reps, 3)
        args.check_pairs = min(args.check_pairs, 5000)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts <= {"build", "query"}:
        raise SystemExit(f"--parts takes build and/or query, not {args.parts}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n_query = parse_count(args.tokens)
    build_sizes = []  # (tokens, reps); "10M:3" = 3 repetitions at 10M
    for x in (args.build_tokens or args.tokens).split(","):
        n, _, r = x.partition(":")
        build_sizes.append((parse_count(n), int(r) if r else args.build_reps))

    import infini_gram  # noqa: F401  (fail early)
    t_start = time.time()
    res = run_header()
    c = load_corpus(args)
    res["corpus"] = c.description
    res["corpus"].update({"vocab_size": c.vocab_size, "eos_id": c.eos_id, "width": c.width})
    tag = args.tag or ("quick" if args.quick else f"core_{human(n_query)}")
    json_path = out / f"bench_core_{tag}.json"

    def save() -> None:
        res["elapsed_s"] = round(time.time() - t_start, 1)
        json_path.write_text(json.dumps(res, indent=2, default=str))

    if "build" in parts:
        res["build"] = []
        for n, reps in build_sizes:
            res["build"].append(run_build(c, n, out, reps, args.cpus, args.seed,
                                          args.check_pairs, args.keep_index or
                                          ("query" in parts and n == n_query)))
            save()
    if "query" in parts:
        res["query"] = run_queries(c, n_query, out, args.queries, args.ntd_queries, args.reps,
                                   args.seed, args.reuse_index)
        if not args.keep_index:
            shutil.rmtree(out / f"build_{human(n_query)}", ignore_errors=True)
    save()
    text = report(res)
    (out / f"bench_core_{tag}.txt").write_text(text + "\n")
    print(text)
    print(f"\nJSON: {json_path}")


if __name__ == "__main__":
    main()
