#!/usr/bin/env python3
"""Disk-resident (cold page cache) queries: anygram vs infini-gram 2.6.0, same index, same run.

Issue 11, item 7. Every measurement opens the index in a child process; this driver only
reads token windows to make queries (its maps are dropped before any cold trial), evicts
the page cache and collects figures. anygram is imported from ``../src``: the benchmark
measures the checkout it sits in.

Parts, for each index directory (an anygram index; infini-gram opens the same directory as
v4: ``InfiniGramEngine(index_dir=..., eos_token_id=..., vocab_size=..., token_dtype=...,
ds_prefetch_depth=0, sa_prefetch_depth=0, od_prefetch_depth=0)``):

cold
    For each op (count n=1,2,5,10; prob = 5-gram prompt + next token; ntd with
    ``max_support=1000`` and 1-, 2-, 5-token prompts; infgram_prob with 20-token prompts),
    ``--trials`` different queries, engines alternating. One trial = one fresh process whose
    kernels are already loaded: it evicts every file under the index directory (takedown
    subdirectories included) with ``posix_fadvise(POSIX_FADV_DONTNEED)``, opens the engine
    and runs exactly one query, timed. Storage reads come from ``/proc/self/io``
    ``read_bytes`` before/after the query (pages = bytes / 4096; mmap faults and read-ahead
    included), with major and minor page faults. Fresh process: a per-engine "zygote"
    imports the engine and runs every op on a tiny index this script builds (same token width,
    vocabulary and shard count, so the measured index stays cold), then ``fork()``\\s one
    child per trial (``--fresh fork``, the default: a new process with the kernels loaded and
    nothing of the measured index). When the zygote holds more than one thread after its
    warm-up (forking then is unsafe), or with ``--fresh spawn``, every trial is a new
    interpreter that warms up on the tiny index itself (slower, same measurement).
    Queries are windows at random positions of the index with no separator (every count
    >= 1); infgram_prob prompts are 21-token windows with one of the last 9 prompt tokens
    replaced by a random id (bench_core's convention when there is no held-out text). The
    two engines' answers (counts, suffix lengths) are compared per trial.
    A mincore() check after one eviction says whether eviction worked on this filesystem.

open
    ``--open-runs`` new interpreters per engine, alternating, each doing nothing but the
    import, then evict and ``open`` (timed, with its storage reads and page faults): what a
    new process pays to open a cold index. (Not the trials' open: in a forked child, the
    pages ``open`` allocates can be copy-on-write faults on the zygote's heap; a trial's query
    after it makes a few dozen minor faults, so query figures are unaffected.)

first query
    Warm page cache, a fresh interpreter per run (nothing warmed up): import, ``open``, then
    20 queries of one op; reported: the first query's time over the median of queries
    2..20 (what a new process pays once: kernel loading, lazy imports, tokenizer), and the
    warm ``open`` time. One op (count n=5) with ``--quick``, otherwise count, prob, ntd and
    infgram_prob, ``--first-reps`` runs each.

warm
    Warm page cache, one process with both engines open (as bench_core): for each op a batch
    of queries, timed ``--reps`` times, engines alternating; median µs/query and ratio. ntd
    rows give anygram with ``max_support=1000`` and exact (infini-gram always samples above
    1000). Batch API: if ``Engine`` has ``count_many`` (and ``prob_many``, ``ntd_many``,
    ``infgram_prob_many``), the rate of one ``*_many`` call over ``--batch`` queries vs the
    same queries one call each (answers compared); skipped with a note when absent.

Indexes: directories on the command line, and/or ``--build CORPUS.npy --shards 1,16
--tokens 20M``, which writes the first N document tokens of a bench_core token cache (u8/u16/
u32 ids, the all-ones separator before each document) as one index per shard count with
``anygram.index.build.build_index_from_ids(..., shard_tokens=...)`` (the smallest budget that
gives that many shards), reused on later runs. ``--quick`` with neither: a synthetic 1M-token
corpus at 1 and 4 shards, 3 trials per op (a smoke test, < 2 minutes).

``--parts cold,first,warm`` picks parts (cold includes open); ``--ops`` the cold ops, by
name. Output: tables on stdout, every figure in ``bench/out/bench_disk_<tag>.json`` (+
``.txt``): loadavg at start and per index, index size, shard count, anygram's git commit.

Caveats:
- Cold latency is the latency of this machine's storage (a VM disk here; the host may cache
  what the guest evicted), so read pages are the steadier figure; both engines see the same
  storage in the same run. Wall-clock figures vary with the load (recorded).
- ``POSIX_FADV_DONTNEED`` leaves pages that another process maps or has dirtied: nothing
  else may have the index open during the run (the mincore check shows what stayed).
- A forked child shares its parent's memory copy-on-write (``gc.freeze()`` before the fork
  keeps the collector from writing to it); the query's minor faults are recorded: a few
  dozen, tens of µs against milliseconds of I/O. ``--fresh spawn`` checks it (on the 20M
  16-shard index the two modes gave the same pages and medians within the noise).
- An index built from ids (``--build``) has no tokenizer; an index with one (``anygram
  build``) makes anygram's ``open`` load it, which the cold ``open`` figures then include.
- The first-query part is warm-index by design; cold ``open`` is the open part's.

Examples::

    python bench/bench_disk.py --quick
    python bench/bench_disk.py --build bench/out/cache/corpus_XXXX.npy --shards 1,16 \\
        --tokens 20M --trials 40
    python bench/bench_disk.py IDX_1SHARD IDX_16SHARDS --trials 60 --queries 2000
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import mmap
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import bench_core as core
import numpy as np

HERE = core.HERE
PAGE = 4096
READY, RESULT = "READY ", "RESULT "  # prefixes of a worker's protocol lines on stdout
NTD_SUPPORT = 1000
ENGINES = ("anygram", "infinigram")
SHORT = {"anygram": "ag", "infinigram": "ig"}


@dataclass(frozen=True)
class Op:
    """One benchmarked operation: its query set (a key of ``core.make_queries``) and kind."""

    name: str
    kind: str  # count | prob | ntd | infgram_prob


OPS = (
    *(Op(f"count n={n}", "count") for n in (1, 2, 5, 10)),
    Op("prob (5-gram)", "prob"),
    *(Op(f"ntd prompt={n}", "ntd") for n in (1, 2, 5)),
    Op("infgram_prob (20 tok)", "infgram_prob"),
)
FIRST_QUERY_OPS = ("count n=5", "prob (5-gram)", "ntd prompt=2", "infgram_prob (20 tok)")
BATCH_METHODS = {"count": "count_many", "prob": "prob_many", "ntd": "ntd_many",
                 "infgram_prob": "infgram_prob_many"}


# ============================================================================ the index


@dataclass(frozen=True)
class IndexInfo:
    """What both engines need to open an index, and what the report says about it."""

    path: str
    token_width: int
    vocab_size: int
    eos_id: int
    shard_names: tuple[str, ...]
    num_tokens: int
    bytes: int

    @property
    def dtype(self) -> str:
        return {1: "u8", 2: "u16", 4: "u32"}[self.token_width]

    @property
    def sep(self) -> int:
        return (1 << (8 * self.token_width)) - 1

    def token_arrays(self) -> list[np.ndarray]:
        """Each shard's tokens, memory-mapped (drop them before evicting)."""
        return [np.memmap(Path(self.path) / f"tokenized.{s}", dtype=f"<u{self.token_width}",
                          mode="r") for s in self.shard_names]


def index_files(path: str | Path) -> list[Path]:
    """Every regular file under the index directory (takedown subdirectories included)."""
    return sorted(Path(root) / f for root, _, files in os.walk(path) for f in files)


def describe_index(path: Path) -> IndexInfo:
    manifest = path / "manifest.json"
    if not manifest.is_file():
        raise SystemExit(f"{path}: no manifest.json (bench_disk measures anygram indexes)")
    m = json.loads(manifest.read_text())
    eos = m.get("eos_id")
    return IndexInfo(str(path.resolve()), int(m["token_width"]), int(m["vocab_size"]),
                     int(eos if eos is not None else m["vocab_size"] - 1),
                     tuple(s["name"] for s in m["shards"]),
                     sum(int(s["num_tokens"]) for s in m["shards"]),
                     sum(f.stat().st_size for f in index_files(path)))


def evict(path: str | Path) -> None:
    """Drop the index's pages from the page cache (pages another process maps stay)."""
    for f in index_files(path):
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fdatasync(fd)  # DONTNEED skips dirty pages (a fresh build's, say)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def warm_page_cache(files: list[Path]) -> None:
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass


def resident_pages(files: list[Path]) -> tuple[int, int]:
    """(resident, total) pages of the files in the page cache, by mincore(2)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    resident = total = 0
    for f in files:
        size = f.stat().st_size
        if not size:
            continue
        pages = -(-size // mmap.PAGESIZE)
        fd = os.open(f, os.O_RDONLY)
        try:
            addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
            if addr in (None, ctypes.c_void_p(-1).value):
                raise OSError(ctypes.get_errno(), f"mmap {f}")
            vec = (ctypes.c_ubyte * pages)()
            try:
                if libc.mincore(addr, size, vec) != 0:
                    raise OSError(ctypes.get_errno(), f"mincore {f}")
            finally:
                libc.munmap(addr, size)
        finally:
            os.close(fd)
        resident += int((np.frombuffer(vec, dtype=np.uint8) & 1).sum())
        total += pages
    return resident, total


def io_counters() -> tuple[int, int, int]:
    """(bytes this process made the kernel read from storage, major, minor page faults)."""
    with open("/proc/self/io") as f:
        read_bytes = next(int(line.split()[1]) for line in f if line.startswith("read_bytes:"))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return read_bytes, ru.ru_majflt, ru.ru_minflt


def io_delta(before: tuple[int, int, int], prefix: str) -> dict[str, float]:
    after = io_counters()
    return {f"{prefix}_pages": (after[0] - before[0]) / PAGE,
            f"{prefix}_majflt": after[1] - before[1], f"{prefix}_minflt": after[2] - before[2]}


# ============================================================================ building


def shards_for_budget(doc_positions: list[int], budget: int) -> int:
    """How many shards the builder makes: it starts a new shard when a document would
    take the current one past ``budget`` positions."""
    shards, current = 0, 0
    for p in doc_positions:
        if current and current + p > budget:
            shards += 1
            current = 0
        current += p
    return shards + (current > 0)


def budget_for_shards(doc_positions: list[int], shards: int) -> int:
    """The smallest ``shard_tokens`` that gives at most ``shards`` shards."""
    lo, hi = -(-sum(doc_positions) // shards), max(sum(doc_positions), 1)
    while lo < hi:
        mid = (lo + hi) // 2
        if shards_for_budget(doc_positions, mid) <= shards:
            hi = mid
        else:
            lo = mid + 1
    return lo


def ensure_index(tokens: np.ndarray, sep: int, out: Path, shards: int, vocab_size: int,
                 eos_id: int, rebuild: bool) -> Path:
    """``out``: ``tokens`` (each document preceded by ``sep``) indexed as ``shards`` shards
    with ``build_index_from_ids``; an index already there from the same input is reused."""
    from anygram.index.build import build_index_from_ids
    starts = np.flatnonzero(np.asarray(tokens) == sep)
    ends = np.append(starts[1:], tokens.shape[0])
    n_tokens = int(tokens.shape[0] - starts.shape[0])
    budget = budget_for_shards((ends - starts).tolist(), shards)
    manifest = out / "manifest.json"
    if manifest.is_file() and not rebuild:
        m = json.loads(manifest.read_text())
        if (m["vocab_size"], m["eos_id"], m["build"].get("shard_tokens"),
                sum(s["num_tokens"] for s in m["shards"])) == (vocab_size, eos_id, budget,
                                                               n_tokens):
            core.log(f"reusing {out}")
            return out

    def docs() -> Iterator[np.ndarray]:
        for s, e in zip(starts.tolist(), ends.tolist()):
            yield tokens[s + 1:e]

    core.log(f"building {out}: {n_tokens:,} tokens as {shards} shard(s)")
    t0 = time.perf_counter()
    build_index_from_ids(docs(), out, vocab_size=vocab_size, eos_id=eos_id,
                         shard_tokens=budget, overwrite=True)
    core.log(f"  built in {time.perf_counter() - t0:.1f} s")
    return out


def build_from_corpus(args: argparse.Namespace, out: Path) -> list[Path]:
    """``--build`` (or ``--quick``'s synthetic corpus): one index per ``--shards`` count."""
    corpus = core.load_corpus(argparse.Namespace(
        corpus=[args.build] if args.build else [], tokens=args.tokens, seed=args.seed,
        vocab_size=args.vocab_size, eos_id=args.eos_id, tokenizer=None))
    prefix, _ = core.cut_prefix(corpus, core.parse_count(args.tokens))
    stem = Path(args.build).stem if args.build else "synthetic"
    return [ensure_index(prefix, corpus.sep, out / f"{stem}_{args.tokens}_s{n}", n,
                         corpus.vocab_size, corpus.eos_id, args.rebuild)
            for n in sorted({int(x) for x in args.shards.split(",")})]


def warmup_index(info: IndexInfo, out: Path) -> IndexInfo:
    """A tiny index like ``info`` (width, vocabulary, eos, shard count) to load the kernels
    on, so that the measured index stays cold. ~4,000 tokens a shard, Zipf-like ids (some
    prompt is followed > 1,000 times, so ntd samples)."""
    shards = len(info.shard_names)
    path = out / f"warmup_v{info.vocab_size}_e{info.eos_id}_s{shards}"
    tokens = core.synthetic_corpus(max(20_000, 4_000 * shards), seed=1,
                                   vocab=min(info.vocab_size, 50257))
    ensure_index(tokens, 0xFFFF, path, shards, info.vocab_size, info.eos_id, rebuild=False)
    return describe_index(path)


# ============================================================================ the engines


def open_engine(engine: str, info: IndexInfo) -> Any:
    if engine == "anygram":
        import anygram
        return anygram.Engine.open(info.path, token_dtype=info.dtype,
                                   vocab_size=info.vocab_size, eos_id=info.eos_id)
    from infini_gram.engine import InfiniGramEngine
    return InfiniGramEngine(index_dir=info.path, eos_token_id=info.eos_id,
                            vocab_size=info.vocab_size, token_dtype=info.dtype,
                            ds_prefetch_depth=0, sa_prefetch_depth=0, od_prefetch_depth=0)


# The numbers both engines must agree on, from each one's answer to one op kind.
AG_SUMMARY: dict[str, Callable[[Any], Any]] = {
    "count": lambda r: r.count,
    "prob": lambda r: [r.prompt_count, r.cont_count],
    "ntd": lambda r: r.prompt_count,
    "infgram_prob": lambda r: [r.suffix_len, r.prompt_count, r.cont_count],
}
IG_SUMMARY: dict[str, Callable[[Any], Any]] = {
    "count": lambda r: r["count"],
    "prob": lambda r: [r["prompt_cnt"], r["cont_cnt"]],
    "ntd": lambda r: r["prompt_cnt"],
    "infgram_prob": lambda r: [r["suffix_len"], r["prompt_cnt"], r["cont_cnt"]],
}


def query_fn(engine: str, eng: Any, kind: str, exact: bool = False) -> Callable[[Any], Any]:
    """``query -> answer summary`` for one op kind. ``exact``: anygram's ntd without
    ``max_support`` (infini-gram's ntd always samples above it)."""
    support = None if exact else NTD_SUPPORT
    calls: dict[str, Callable[[Any], Any]] = {
        "count": lambda q: eng.count(q),
        "prob": lambda q: eng.prob(q[0], q[1]),
        "ntd": lambda q: eng.ntd(q, max_support=support),
        "infgram_prob": lambda q: eng.infgram_prob(q[0], q[1]),
    }
    call = calls[kind]
    if engine == "anygram":
        summary = AG_SUMMARY[kind]
        return lambda q: summary(call(q))
    summary = IG_SUMMARY[kind]

    def checked(q: Any) -> Any:
        r = call(q)
        if "error" in r:  # infini-gram answers bad input with a dict, not an exception
            raise RuntimeError(f"infini-gram {kind}({q}): {r['error']}")
        return summary(r)

    return checked


# ============================================================================ worker processes
#
# The driver runs ``bench_disk.py --worker MODE`` and speaks JSON lines: the job on stdin,
# ``READY {...}`` / ``RESULT {...}`` lines on stdout (anything else there is passed to stderr).


def _emit(prefix: str, obj: Any) -> None:
    sys.stdout.write(prefix + json.dumps(obj) + "\n")
    sys.stdout.flush()


def warm_up(engine: str, tiny: IndexInfo, queries: dict[str, list[Any]]) -> None:
    """Run every op kind on the tiny index: loads (or compiles) every kernel the trials use."""
    eng = open_engine(engine, tiny)
    for op in OPS:
        fn = query_fn(engine, eng, op.kind)
        for q in queries[op.name]:
            fn(q)
    if engine == "anygram":
        eng.close()
    del eng
    gc.collect()


def cold_open(engine: str, info: IndexInfo) -> tuple[Any, dict[str, Any]]:
    """Evict, then open: the engine, the open's time, storage reads and page faults."""
    evict(info.path)
    before = io_counters()
    t0 = time.perf_counter()
    eng = open_engine(engine, info)
    return eng, {"open_ms": (time.perf_counter() - t0) * 1e3, **io_delta(before, "open")}


def cold_trial(engine: str, info: IndexInfo, op: Op, query: Any) -> dict[str, Any]:
    """Evict, open, one query: the query's time, reads and faults (and the open's)."""
    eng, out = cold_open(engine, info)
    fn = query_fn(engine, eng, op.kind)
    before = io_counters()
    t0 = time.perf_counter()
    answer = fn(query)
    out["query_ms"] = (time.perf_counter() - t0) * 1e3
    return {**out, **io_delta(before, "query"), "answer": answer}


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _forked_trial(job: dict[str, Any], info: IndexInfo) -> dict[str, Any]:
    """Run one trial in a child forked from this (warmed-up) process."""
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()  # the child's gc passes would otherwise write to every inherited object
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one trial, then _exit (no cleanup of the parent's state)
        os.close(r)
        try:
            out = cold_trial(job["engine"], info, Op(**job["op"]), job["query"])
        except BaseException as e:  # report anything, never return into the parent's loop
            out = {"error": repr(e)}
        data = json.dumps(out).encode()
        while data:
            data = data[os.write(w, data):]
        os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 1 << 16):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        return {"error": f"trial process died (wait status {status})"}
    return json.loads(b"".join(chunks))


def worker_serve(setup: dict[str, Any]) -> None:
    """Zygote: warm up on the tiny index, then one cold trial per stdin line, each in a
    forked child; or, when forking is off or unsafe, exactly one trial in this process."""
    engine = setup["engine"]
    info = IndexInfo(**setup["index"])
    t0 = time.perf_counter()
    warm_up(engine, IndexInfo(**setup["tiny"]), setup["tiny_queries"])
    deadline = time.monotonic() + 5  # the closed engine's shard threads end on their own
    while _threads() > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    fork = setup["fork"] and _threads() == 1
    _emit(READY, {"warmup_s": time.perf_counter() - t0, "threads": _threads(), "fork": fork})
    for line in sys.stdin:
        job = {**json.loads(line), "engine": engine}
        if fork:
            _emit(RESULT, _forked_trial(job, info))
            continue
        _emit(RESULT, cold_trial(engine, info, Op(**job["op"]), job["query"]))
        return


def _import_engine(engine: str) -> float:
    """Import the engine's package: seconds."""
    t0 = time.perf_counter()
    if engine == "anygram":
        from anygram import Engine  # noqa: F401  (anygram imports its engine lazily)
    else:
        import infini_gram.engine  # noqa: F401
    return time.perf_counter() - t0


def worker_open(setup: dict[str, Any]) -> None:
    """New interpreter, nothing done but the import: open the evicted index."""
    engine, info = setup["engine"], IndexInfo(**setup["index"])
    import_s = _import_engine(engine)
    _, out = cold_open(engine, info)
    _emit(RESULT, {"import_s": import_s, **out})


def worker_first(setup: dict[str, Any]) -> None:
    """Fresh interpreter, warm index: import, open, then the op's queries one by one."""
    engine, info, op = setup["engine"], IndexInfo(**setup["index"]), Op(**setup["op"])
    import_s = _import_engine(engine)
    t0 = time.perf_counter()
    eng = open_engine(engine, info)
    open_ms = (time.perf_counter() - t0) * 1e3
    fn = query_fn(engine, eng, op.kind)
    times = []
    for q in setup["queries"]:
        t0 = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - t0) * 1e3)
    _emit(RESULT, {"import_s": import_s, "open_ms": open_ms, "query_ms": times})


def worker_warm(setup: dict[str, Any]) -> None:
    """Warm page cache, both engines in this process: per-op latency, then the batch API."""
    info = IndexInfo(**setup["index"])
    engines = {e: open_engine(e, info) for e in ENGINES}
    reps = setup["reps"]
    rows = []
    for op in OPS:
        qs = setup["queries"][op.name]
        variants = {"": query_fn("anygram", engines["anygram"], op.kind)}
        if op.kind == "ntd":
            variants = {f" [ag max_support={NTD_SUPPORT}]": variants[""],
                        " [ag exact]": query_fn("anygram", engines["anygram"], op.kind,
                                                exact=True)}
        ig = query_fn("infinigram", engines["infinigram"], op.kind)
        ig_answers = [ig(q) for q in qs]  # also the warm-up pass
        disagree = {v: sum(fn(q) != a for q, a in zip(qs, ig_answers))
                    for v, fn in variants.items()}
        times: dict[str, list[tuple[float, float]]] = {v: [] for v in [*variants, "ig"]}
        for r in range(reps):
            order = [*variants, "ig"] if r % 2 == 0 else ["ig", *variants]
            for v in order:
                times[v].append(core.time_batch(ig if v == "ig" else variants[v], qs))
        for v in variants:
            ag_w, ag_c = core.median([t[0] for t in times[v]]), core.median(
                [t[1] for t in times[v]])
            ig_w, ig_c = core.median([t[0] for t in times["ig"]]), core.median(
                [t[1] for t in times["ig"]])
            rows.append({"op": op.name + v, "queries": len(qs), "anygram_us": ag_w,
                         "infinigram_us": ig_w, "ratio": core.ratio(ag_w, ig_w),
                         "ratio_cpu": core.ratio(ag_c, ig_c), "disagreements": disagree[v]})
        print(f"warm {op.name}: {rows[-1]['anygram_us']:.1f} vs "
              f"{rows[-1]['infinigram_us']:.1f} µs", file=sys.stderr, flush=True)
    _emit(RESULT, {"ops": rows, "batch": batch_rates(engines["anygram"], setup["batch"], reps)})


def many_fn(many: Callable[..., Any], kind: str) -> Callable[[list[Any]], Any]:
    """A list of queries as ``Engine.<kind>_many`` takes them."""
    if kind == "ntd":
        return lambda qs: many(qs, max_support=NTD_SUPPORT)
    if kind in ("prob", "infgram_prob"):
        return lambda qs: many([tuple(q) for q in qs])  # (prompt, cont) pairs
    return many


def batch_rates(ag: Any, queries: dict[str, list[Any]], reps: int) -> dict[str, Any]:
    """µs/query of one ``*_many(queries)`` call vs one call per query, where the engine has
    the method (answers compared)."""
    out: dict[str, Any] = {}
    for kind, method in BATCH_METHODS.items():
        if not hasattr(ag, method):
            out[kind] = {"skipped": f"Engine has no {method}"}
            continue
        qs = queries[kind]
        run_many, single = many_fn(getattr(ag, method), kind), query_fn("anygram", ag, kind)
        try:
            answers = [AG_SUMMARY[kind](r) for r in run_many(qs)]
        except TypeError as e:  # a signature this script does not know
            out[kind] = {"skipped": f"{method}: {e}"}
            continue
        batch_us, single_us = [], []
        for r in range(reps):
            for which in (("batch", "single") if r % 2 == 0 else ("single", "batch")):
                if which == "single":
                    single_us.append(core.time_batch(single, qs)[0])
                    continue
                t0 = time.perf_counter()
                run_many(qs)
                batch_us.append((time.perf_counter() - t0) / len(qs) * 1e6)
        b, s = core.median(batch_us), core.median(single_us)
        out[kind] = {"queries": len(qs), "batch_us": b, "single_us": s,
                     "speedup": core.ratio(s, b),
                     "answers_equal": answers == [single(q) for q in qs]}
    return out


WORKERS = {"serve": worker_serve, "open": worker_open, "first": worker_first,
           "warm": worker_warm}


def worker_main(mode: str) -> None:
    WORKERS[mode](json.loads(sys.stdin.readline()))


# ============================================================================ driver side


class Worker:
    """A ``--worker`` child process: send the job, read its protocol lines."""

    def __init__(self, mode: str, setup: dict[str, Any]) -> None:
        env = core.child_env()
        if mode == "serve":  # numpy's BLAS pool would be a second thread: no safe fork
            env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.send(setup)

    def send(self, obj: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def read(self, prefix: str) -> Any:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return json.loads(line[len(prefix):])
            sys.stderr.write(line)
        code = self.proc.wait()
        raise RuntimeError(f"worker {self.proc.args} ended (exit {code}) before {prefix!r}")

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=120)


class TrialRunner:
    """Cold trials of one engine: a zygote that forks per trial, or a new one per trial."""

    def __init__(self, engine: str, setup: dict[str, Any], fork: bool) -> None:
        self.engine = engine
        self.setup = {**setup, "engine": engine, "fork": fork}
        self.fork = fork
        self.warmup_s: list[float] = []
        self.note = ""
        self.zygote: Worker | None = None

    def _start(self) -> Worker:
        w = Worker("serve", self.setup)
        ready = w.read(READY)
        self.warmup_s.append(ready["warmup_s"])
        if self.fork and not ready["fork"]:
            self.fork = False
            self.note = (f"{self.engine}: {ready['threads']} threads after warm-up, so no "
                         "fork: one new interpreter per trial")
            core.log(self.note)
        return w

    def trial(self, op: Op, query: Any) -> dict[str, Any]:
        w = self.zygote if self.zygote is not None else self._start()
        w.send({"op": asdict(op), "query": query})
        res = w.read(RESULT)
        if self.fork:
            self.zygote = w
        else:
            w.close()
        if "error" in res:
            raise RuntimeError(f"{self.engine} trial of {op.name} {query}: {res['error']}")
        return res

    def close(self) -> None:
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None


def stats(xs: list[float]) -> dict[str, float]:
    return {"median": core.median(xs), "p90": float(np.percentile(xs, 90)) if xs else math.nan,
            "min": min(xs) if xs else math.nan}


def run_cold(info: IndexInfo, tiny: IndexInfo, tiny_qs: dict[str, list[Any]],
             qs: dict[str, list[Any]], trials: int, fork: bool,
             ops: tuple[Op, ...] = OPS) -> dict[str, Any]:
    setup = {"index": asdict(info), "tiny": asdict(tiny), "tiny_queries": tiny_qs}
    runners = {e: TrialRunner(e, setup, fork) for e in ENGINES}
    per_op = []
    try:
        for op in ops:
            got: dict[str, list[dict[str, Any]]] = {e: [] for e in ENGINES}
            for i, q in enumerate(qs[op.name][:trials]):
                for e in (ENGINES if i % 2 == 0 else ENGINES[::-1]):
                    got[e].append(runners[e].trial(op, q))
            row: dict[str, Any] = {"op": op.name, "trials": len(got["anygram"]),
                                   "disagreements": sum(
                                       a["answer"] != b["answer"]
                                       for a, b in zip(got["anygram"], got["infinigram"]))}
            for e in ENGINES:
                for k in ("query_ms", "query_pages", "query_majflt", "query_minflt",
                          "open_ms", "open_pages", "open_minflt"):
                    row[f"{e}_{k}"] = stats([t[k] for t in got[e]])
            row["ratio_ms"] = core.ratio(row["anygram_query_ms"]["median"],
                                         row["infinigram_query_ms"]["median"])
            row["ratio_pages"] = core.ratio(row["anygram_query_pages"]["median"],
                                            row["infinigram_query_pages"]["median"])
            core.log(f"  cold {op.name}: anygram {row['anygram_query_ms']['median']:.2f} ms "
                     f"({row['anygram_query_pages']['median']:.0f} pages), infini-gram "
                     f"{row['infinigram_query_ms']['median']:.2f} ms "
                     f"({row['infinigram_query_pages']['median']:.0f} pages); "
                     f"load {core.loadavg()}")
            per_op.append(row)
    finally:
        for r in runners.values():
            r.close()
    return {
        "ops": per_op,
        "fresh_process": {e: ("fork of a warmed-up zygote" if r.fork else
                              "new interpreter, warmed up on the tiny index") for e, r in
                          runners.items()},
        "zygote_warmup_s": {e: r.warmup_s for e, r in runners.items()},
        "notes": [r.note for r in runners.values() if r.note],
        "loadavg_after": core.loadavg(),
    }


def run_open(info: IndexInfo, runs: int) -> dict[str, Any]:
    """Cold open in new interpreters (import done, nothing else), engines alternating."""
    got: dict[str, list[dict[str, Any]]] = {e: [] for e in ENGINES}
    for r in range(runs):
        for e in (ENGINES if r % 2 == 0 else ENGINES[::-1]):
            w = Worker("open", {"engine": e, "index": asdict(info)})
            got[e].append(w.read(RESULT))
            w.close()
    out = {e: {k: stats([x[k] for x in got[e]]) for k in got[e][0]} for e in ENGINES}
    core.log(f"  cold open: anygram {out['anygram']['open_ms']['median']:.1f} ms, infini-gram "
             f"{out['infinigram']['open_ms']['median']:.1f} ms")
    return out


def run_first_query(info: IndexInfo, qs: dict[str, list[Any]], ops: tuple[str, ...],
                    reps: int) -> list[dict[str, Any]]:
    by_name = {op.name: op for op in OPS}
    rows = []
    for name in ops:
        runs: dict[str, list[dict[str, Any]]] = {e: [] for e in ENGINES}
        for r in range(reps):
            for e in (ENGINES if r % 2 == 0 else ENGINES[::-1]):
                w = Worker("first", {"engine": e, "index": asdict(info),
                                     "op": asdict(by_name[name]), "queries": qs[name]})
                runs[e].append(w.read(RESULT))
                w.close()
        row: dict[str, Any] = {"op": name, "runs": reps}
        for e in ENGINES:
            first = [x["query_ms"][0] for x in runs[e]]
            later = [core.median(x["query_ms"][1:]) for x in runs[e]]
            row[e] = {"import_s": core.median([x["import_s"] for x in runs[e]]),
                      "open_ms": core.median([x["open_ms"] for x in runs[e]]),
                      "first_ms": core.median(first), "later_ms": core.median(later),
                      "excess_ms": core.median([f - x for f, x in zip(first, later)])}
        core.log(f"  first query {name}: anygram +{row['anygram']['excess_ms']:.1f} ms, "
                 f"infini-gram +{row['infinigram']['excess_ms']:.1f} ms")
        rows.append(row)
    return rows


def make_query_sets(info: IndexInfo, args: argparse.Namespace) -> dict[str, Any]:
    """Every query set of one index (JSON-ready), read through maps that are closed after."""
    arrays = info.token_arrays()
    rng = np.random.default_rng(args.seed)
    empty = np.zeros(0, dtype=np.int64)

    def queries(q: int, q_ntd: int) -> dict[str, list[Any]]:
        qs, _ = core.make_queries(arrays, empty, info.sep, info.vocab_size, q, q_ntd, rng)
        return {k: [[[int(t) for t in x[0]], int(x[1])] if isinstance(x, tuple) else
                    [int(t) for t in x] for x in v] for k, v in qs.items()}

    sets = {"cold": queries(args.trials, args.trials),
            "first": queries(args.first_queries, args.first_queries),
            "warm": queries(args.queries, args.ntd_queries)}
    big = queries(args.batch, args.batch)
    per_n = -(-args.batch // 4)  # a batch of counts holds every length
    counts = [q for n in (1, 2, 5, 10) for q in big[f"count n={n}"][:per_n]]
    sets["batch"] = {"count": counts[:args.batch], "prob": big["prob (5-gram)"],
                     "ntd": big["ntd prompt=2"], "infgram_prob": big["infgram_prob (20 tok)"]}
    return sets  # the maps close with this frame


def measure_index(path: Path, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """The parts (``args.parts``) on one index: cold first, then the warm-cache parts."""
    info = describe_index(path)
    res: dict[str, Any] = {"index": asdict(info), "shards": len(info.shard_names),
                           "loadavg_start": core.loadavg()}
    core.log(f"index {path}: {len(info.shard_names)} shard(s), {info.num_tokens:,} tokens, "
             f"{info.bytes / 1e6:.1f} MB")
    qs = make_query_sets(info, args)
    files = index_files(path)
    if "cold" in args.parts:
        tiny = warmup_index(info, out)
        tiny_qs, _ = core.make_queries(tiny.token_arrays(), np.zeros(0, dtype=np.int64),
                                       tiny.sep, tiny.vocab_size, 8, 8,
                                       np.random.default_rng(0))
        evict(path)
        resident, total = resident_pages(files)
        res["eviction_check"] = {"resident_pages_after_evict": resident, "pages": total}
        if resident > total // 100:
            core.log(f"  WARNING: {resident}/{total} pages still cached after eviction "
                     "(mapped by another process?)")
        core.log(f"  cold trials: {args.trials} per op, fresh={args.fresh}")
        res["cold"] = run_cold(info, tiny, json.loads(json.dumps(tiny_qs, default=int)),
                               qs["cold"], args.trials, args.fresh == "fork", args.cold_ops)
        res["open"] = run_open(info, args.open_runs)
    if {"first", "warm"} & args.parts:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        res["warm_fits_in_free_ram"] = info.bytes < free
        if not res["warm_fits_in_free_ram"]:
            core.log(f"  WARNING: index {info.bytes / 1e9:.1f} GB > free RAM "
                     f"{free / 1e9:.1f} GB: 'warm' figures are partly cold")
        warm_page_cache(files)
    if "first" in args.parts:
        first_ops = FIRST_QUERY_OPS[:1] if args.quick else FIRST_QUERY_OPS
        res["first_query"] = run_first_query(info, qs["first"], first_ops, args.first_reps)
    if "warm" in args.parts:
        core.log(f"  warm: {args.queries} queries ({args.ntd_queries} ntd) x {args.reps} reps")
        w = Worker("warm", {"index": asdict(info), "queries": qs["warm"], "reps": args.reps,
                            "batch": qs["batch"]})
        res["warm"] = w.read(RESULT)
        w.close()
    res["loadavg_end"] = core.loadavg()
    return res


# ============================================================================ report

TARGETS = ("Targets (issue 11): cold ops <= 0.5x infini-gram at 1 and 16 shards; warm count "
           "<= 0.3x at 1 shard, <= 0.2x at 16; exact ntd of 1-2 token prompts <= 0.05x "
           "infini-gram's sampled ntd (warm); open <= 20 ms on a cold 16-shard index; first "
           "query <= 50 ms over a later one; batch count >= 3x the single-call rate.")


def _ms(s: dict[str, float]) -> str:
    return f"{s['median']:.2f} ({s['p90']:.2f})"


def _pages(s: dict[str, float]) -> str:
    return f"{s['median']:.0f} ({s['p90']:.0f})"


def report_cold(cold: dict[str, Any]) -> list[str]:
    rows = [[o["op"], o["trials"], _ms(o["anygram_query_ms"]), _ms(o["infinigram_query_ms"]),
             f"{o['ratio_ms']:.2f}", _pages(o["anygram_query_pages"]),
             _pages(o["infinigram_query_pages"]), f"{o['ratio_pages']:.2f}",
             f"{o['disagreements']}/{o['trials']}"] for o in cold["ops"]]
    parts = [f"Cold query (evicted; fresh process: {cold['fresh_process']['anygram']}): ms and "
             "pages read, median (p90)\n" + core.fmt_table(
                 ["op", "trials", "anygram ms", "infini-gram ms", "ratio", "anygram pages",
                  "infini-gram pages", "ratio", "disagree"], rows)]
    if cold["notes"]:
        parts.append("Notes: " + "; ".join(cold["notes"]))
    return parts


def report_open(opens: dict[str, Any]) -> list[str]:
    rows = [[e, _ms(opens[e]["open_ms"]), _pages(opens[e]["open_pages"]),
             _pages(opens[e]["open_minflt"]), f"{opens[e]['import_s']['median']:.2f}"]
            for e in ENGINES]
    return ["Open on a cold index in a new interpreter (after the import, before anything "
            "else): median (p90)\n" + core.fmt_table(
                ["engine", "open ms", "pages read", "minor faults", "import s"], rows)]


def report_first(first: list[dict[str, Any]]) -> list[str]:
    rows = [[f["op"], f["runs"], *(f"{f[e]['import_s']:.2f} / {f[e]['open_ms']:.1f} / "
                                   f"{f[e]['first_ms']:.2f} / {f[e]['later_ms']:.3f} / "
                                   f"{f[e]['excess_ms']:+.2f}" for e in ENGINES)]
            for f in first]
    return ["New process, warm index: import s / open ms / 1st query ms / median of queries "
            "2-20 ms / excess ms (medians over runs)\n"
            + core.fmt_table(["op", "runs", "anygram", "infini-gram"], rows)]


def report_warm(warm: dict[str, Any]) -> list[str]:
    rows = [[o["op"], o["queries"], f"{o['anygram_us']:.1f}", f"{o['infinigram_us']:.1f}",
             f"{o['ratio']:.3f}", f"{o['ratio_cpu']:.3f}", o["disagreements"]]
            for o in warm["ops"]]
    parts = ["Warm (page cache warm, same process): µs/query, median of reps\n"
             + core.fmt_table(["op", "n", "anygram µs", "infini-gram µs", "ratio",
                               "CPU ratio", "disagree"], rows)]
    rows = [[k, "skipped: " + v["skipped"]] if "skipped" in v else
            [k, f"{v['queries']} queries: batch {v['batch_us']:.2f} µs/q, single "
                f"{v['single_us']:.2f} µs/q, {v['speedup']:.2f}x; answers equal "
                f"{v['answers_equal']}"] for k, v in warm["batch"].items()]
    parts.append("Batch vs single calls (anygram, warm)\n"
                 + core.fmt_table(["op", "result"], rows))
    return parts


def report_index(r: dict[str, Any]) -> str:
    info = r["index"]
    head = (f"## {info['path']}: {r['shards']} shard(s), {info['num_tokens']:,} tokens, "
            f"{info['bytes'] / 1e6:.1f} MB; loadavg {r['loadavg_start']} -> "
            f"{r['loadavg_end']}")
    if "eviction_check" in r:
        check = r["eviction_check"]
        head += (f"; after eviction {check['resident_pages_after_evict']}/{check['pages']} "
                 "pages cached")
    parts = [head]
    if "cold" in r:
        parts += report_cold(r["cold"]) + report_open(r["open"])
    if "first_query" in r:
        parts += report_first(r["first_query"])
    if "warm" in r:
        parts += report_warm(r["warm"])
    return "\n\n".join(parts)


def summary_row(r: dict[str, Any]) -> list[Any]:
    """One index against the targets: '-' for a part that did not run."""
    row: list[Any] = [r["shards"]]
    if "cold" in r:
        cold = {o["op"]: o["ratio_ms"] for o in r["cold"]["ops"]}
        row += [f"{cold['count n=5']:.2f}" if "count n=5" in cold else "-",
                f"{max(cold.values()):.2f}",
                f"{r['open']['anygram']['open_ms']['median']:.1f}"]
    else:
        row += ["-"] * 3
    if "first_query" in r:
        row.append(f"{max(f['anygram']['excess_ms'] for f in r['first_query']):+.1f}")
    else:
        row.append("-")
    if "warm" in r:
        warm = {o["op"]: o["ratio"] for o in r["warm"]["ops"]}
        count = r["warm"]["batch"]["count"]
        row += [f"{warm['count n=5']:.3f}",
                f"{max(warm['ntd prompt=1 [ag exact]'], warm['ntd prompt=2 [ag exact]']):.3f}",
                f"{count['speedup']:.2f}" if "speedup" in count else "n/a"]
    else:
        row += ["-"] * 3
    return row


def report(res: dict[str, Any]) -> str:
    git = res.get("anygram_git", {})
    head = (f"bench_disk: anygram {git.get('head', '?')[:10]}"
            f"{' + uncommitted src' if git.get('dirty_src') else ''} vs infini-gram "
            f"{res.get('versions', {}).get('infini-gram', '?')}; {res['machine']['cpus']} "
            f"CPUs, loadavg at start {res['machine']['loadavg_start']}")
    table = core.fmt_table(["shards", "cold count n=5 ratio", "worst cold ratio",
                            "ag cold open ms", "ag 1st query +ms", "warm count n=5 ratio",
                            "exact ntd 1-2 ratio", "batch count x"],
                           [summary_row(r) for r in res["indexes"]])
    return "\n\n".join([head, *(report_index(r) for r in res["indexes"]),
                        "Summary (ratios anygram / infini-gram, medians)\n" + table, TARGETS])


# ============================================================================ main


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("Examples::")[-1])
    ap.add_argument("index", nargs="*", type=Path, help="anygram index directories")
    ap.add_argument("--build", metavar="CORPUS.npy",
                    help="build indexes from a bench_core token cache (see --shards, --tokens)")
    ap.add_argument("--shards", default="1,16", help="shard counts to build (default 1,16)")
    ap.add_argument("--tokens", default="20M", help="document tokens to index with --build")
    ap.add_argument("--rebuild", action="store_true", help="rebuild even if the index exists")
    ap.add_argument("--vocab-size", type=int, default=None)
    ap.add_argument("--eos-id", type=int, default=None)
    ap.add_argument("--parts", default="cold,first,warm",
                    help="which parts to run (comma-separated; default all)")
    ap.add_argument("--trials", type=int, default=40, help="cold trials per op and engine")
    ap.add_argument("--fresh", choices=("fork", "spawn"), default="fork",
                    help="a cold trial's process: forked from a warmed-up zygote, or a new "
                    "interpreter that warms up itself")
    ap.add_argument("--ops", default=None,
                    help="cold ops to run, by name, comma-separated (default all: "
                    + ", ".join(op.name for op in OPS) + ")")
    ap.add_argument("--open-runs", type=int, default=10,
                    help="new interpreters per engine that time a cold open")
    ap.add_argument("--queries", type=int, default=1000, help="warm queries per op")
    ap.add_argument("--ntd-queries", type=int, default=300, help="warm queries per ntd op")
    ap.add_argument("--reps", type=int, default=5, help="warm repetitions")
    ap.add_argument("--first-reps", type=int, default=3, help="new processes per op for "
                    "the first-query part")
    ap.add_argument("--first-queries", type=int, default=20, help="queries per such process")
    ap.add_argument("--batch", type=int, default=1000, help="queries of a batch call")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--tag", default=None)
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: synthetic 1M tokens at 1 and 4 shards unless indexes are "
                    "given; 3 trials, 200 warm queries, 2 reps, one first-query op")
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.parts = {x.strip() for x in args.parts.split(",") if x.strip()}
    if not args.parts <= {"cold", "first", "warm"}:
        ap.error(f"--parts takes cold, first and warm, not {args.parts}")
    names = [x.strip() for x in args.ops.split(",")] if args.ops else [op.name for op in OPS]
    by_name = {op.name: op for op in OPS}
    if unknown := [n for n in names if n not in by_name]:
        ap.error(f"--ops: no op {unknown}; the ops are {', '.join(by_name)}")
    args.cold_ops = tuple(by_name[n] for n in names)
    if args.quick:
        args.trials = min(args.trials, 3)
        args.open_runs = min(args.open_runs, 2)
        args.queries = min(args.queries, 200)
        args.ntd_queries = min(args.ntd_queries, 50)
        args.reps = min(args.reps, 2)
        args.first_reps = 1
        if not args.index and not args.build:
            args.tokens, args.shards = "1M", "1,4"
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        worker_main(args.worker)
        return
    import infini_gram  # noqa: F401  (fail early)
    out = args.out
    work = out / "disk"
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    res = core.run_header()
    paths = list(args.index)
    if args.build or (args.quick and not paths):
        paths += build_from_corpus(args, work)
    if not paths:
        raise SystemExit("give index directories, --build CORPUS.npy, or --quick")
    tag = args.tag or ("quick" if args.quick else "_".join(p.name for p in paths))
    json_path = out / f"bench_disk_{tag}.json"
    res["indexes"] = []
    for p in paths:
        res["indexes"].append(measure_index(p, args, work))
        res["elapsed_s"] = round(time.time() - t_start, 1)
        json_path.write_text(json.dumps(res, indent=2, default=str))
    text = report(res)
    (out / f"bench_disk_{tag}.txt").write_text(text + "\n")
    print(text)
    print(f"\nJSON: {json_path}  ({res['elapsed_s']} s)")


if __name__ == "__main__":
    main()
