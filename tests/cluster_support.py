"""What the cluster tests share: a corpus, an in-process stand-in for the Ray opener, and a
battery of random queries of every kind whose answers two engines must agree on."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from anygram import Engine, InvalidQueryError
from anygram.cluster.host import SHARDS, TAKEDOWN, HostSpec, ShardHost
from anygram.cluster.remote import InProcessTransport, RemoteShards
from anygram.index.build import build_index

WORDS = ("the", "cat", "sat", "on", "a", "mat", "dog", "ran", "and", "then", "hid", "ÿ")


def write_corpus(path: Path, docs: int, seed: int) -> Path:
    """JSON lines of short random sentences over :data:`WORDS`, with metadata."""
    rng = random.Random(seed)
    with path.open("w") as f:
        for i in range(docs):
            words = [rng.choice(WORDS) for _ in range(rng.randint(0, 14))]
            f.write(json.dumps({"text": " ".join(words), "id": i, "src": rng.choice("xyz")})
                    + "\n")
    return path


def index_files(directory: Path) -> dict[str, bytes]:
    """Every file of an index but its manifest's build timing, by relative path."""
    out = {}
    for p in sorted(directory.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.name == "manifest.json":
                manifest = json.loads(data)
                manifest["build"].pop("seconds")
                data = json.dumps(manifest, sort_keys=True).encode()
            out[str(p.relative_to(directory))] = data
    return out


def kill_first(title: str, stop: threading.Event, killed: list[int]) -> None:
    """Kill -9 the first process whose title starts with ``title`` (a Ray worker names
    itself after the task it runs), unless ``stop`` is set first."""
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(title.encode()):
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.005)


def build_corpus_index(tmp: Path, docs: int = 60, seed: int = 0,
                       shard_tokens: int = 800) -> Path:
    """A byte-tokenized index of :func:`write_corpus` in several shards."""
    corpus = write_corpus(tmp / "corpus.jsonl", docs, seed)
    out = tmp / "idx"
    build_index(corpus, out, shard_tokens=shard_tokens, workers=1, progress=False)
    return out


class InProcessGroups:
    """The Ray opener's split over ``hosts`` hosts, with the hosts in this process (their
    answers pickled as over the wire)."""

    def __init__(self, hosts: int) -> None:
        self.hosts = hosts

    def __call__(self, index, vocab_size, *, load, takedown, search_sample, ntd_table,
                 reuse=None):
        n = len(index.shards)
        parts = max(1, min(self.hosts, n))
        bounds = [n * i // parts for i in range(parts + 1)]
        members = [list(range(a, b)) for a, b in zip(bounds, bounds[1:])]
        dirs = tuple(str(d) for d in index.directories)
        ids = tuple(s.identity.hex() for s in index.shards)
        hosts = [ShardHost(HostSpec(dirs, f"u{8 * index.token_width}", vocab_size, tuple(m),
                                    ids, h == 0, load, takedown, search_sample, ntd_table))
                 for h, m in enumerate(members)]
        facts = [h.facts() for h in hosts]
        transport = InProcessTransport(hosts)
        main = RemoteShards(transport, SHARDS, members, [f[SHARDS] for f in facts])
        held = facts[0][TAKEDOWN]
        if held is None:
            return main, None
        minus = [list(range(len(held.sizes)))] + [[] for _ in members[1:]]
        return main, RemoteShards(transport, TAKEDOWN, minus, [held] + [None] * (parts - 1))


def _answer(fn: Callable[[], Any]) -> Any:
    """An answer, or the error it raised (type and message), to compare."""
    try:
        return fn()
    except InvalidQueryError as exc:
        return ("error", type(exc).__name__, str(exc))


def battery(engine: Engine, seed: int, rounds: int) -> list[tuple[str, Any]]:
    """``rounds`` random queries of every kind (ids drawn from the index's own documents,
    so most occur) and their answers, in order."""
    rng = random.Random(seed)
    docs = [engine.get_doc(d, decode=False).token_ids for d in range(engine.num_docs)]
    longest = [d for d in docs if len(d) >= 2] or [[ord("a"), ord("b")]]

    def ngram(max_len: int = 6) -> list[int]:
        d = rng.choice(longest)
        a = rng.randrange(len(d))
        out = list(d[a:a + rng.randint(1, max_len)])
        if rng.random() < 0.1:
            out.append(rng.randrange(256))
        return out

    def text() -> list[int]:
        return ngram(8) + ngram(8) + [rng.randrange(256)] + ngram(8)

    def cnf() -> list[list[list[int]]]:
        return [[ngram(3) for _ in range(rng.randint(1, 2))] for _ in range(rng.randint(1, 3))]

    kinds: dict[str, Callable[[], Any]] = {
        "count": lambda: engine.count(ngram()),
        "find": lambda: engine.find(ngram()),
        "prob": lambda: engine.prob(ngram(), rng.randrange(256)),
        "ntd": lambda: engine.ntd(ngram(3)),
        "ntd_sampled": lambda: engine.ntd(ngram(2), max_support=rng.choice([1, 5, 1000])),
        "infgram_prob": lambda: engine.infgram_prob(ngram(), rng.randrange(256)),
        "infgram_ntd": lambda: engine.infgram_ntd(ngram()),
        "count_many": lambda: engine.count_many([ngram() for _ in range(5)]),
        "prob_many": lambda: engine.prob_many([(ngram(), rng.randrange(256))
                                               for _ in range(5)]),
        "ntd_many": lambda: engine.ntd_many([ngram(2) for _ in range(4)]),
        "infgram_prob_many": lambda: engine.infgram_prob_many(
            [(ngram(), rng.randrange(256)) for _ in range(4)]),
        "get_doc": lambda: engine.get_doc(rng.randrange(engine.num_docs)),
        "get_docs": lambda: engine.get_docs([rng.randrange(engine.num_docs)
                                             for _ in range(3)], max_tokens=5),
        "search_docs": lambda: engine.search_docs(
            ngram(3), max_docs=rng.randint(1, 6), offset=rng.randint(0, 4),
            order=rng.choice(["position", "rank", "random"]), seed=rng.randrange(9),
            max_ctx_len=rng.randint(1, 8)),
        "by_rank": lambda: _by_rank(engine, rng, ngram()),
        "count_cnf": lambda: engine.count_cnf(cnf(), max_diff_tokens=rng.randint(1, 30)),
        "find_cnf": lambda: engine.find_cnf(cnf(), max_diff_tokens=rng.randint(1, 30)),
        "search_docs_cnf": lambda: engine.search_docs_cnf(
            cnf(), max_docs=rng.randint(1, 5), max_diff_tokens=rng.randint(1, 30),
            seed=rng.randrange(9)),
        "count_docs_with_all": lambda: engine.count_docs_with_all(cnf()),
        "creativity": lambda: engine.creativity(text()),
        "infgram_text": lambda: engine.infgram_text(text()),
        "attribute": lambda: engine.attribute(text(), max_cnt=rng.choice([1, 3, 10]),
                                              max_docs_per_span=rng.choice([None, 2])),
    }
    out = []
    names = sorted(kinds)
    for i in range(rounds):
        name = names[i % len(names)]
        out.append((name, _answer(kinds[name])))
    return out


def _by_rank(engine: Engine, rng: random.Random, q: list[int]) -> Any:
    found = engine.find(q)
    pairs = [(s, a + rng.randrange(b - a)) for s, (a, b) in enumerate(found.ranges) if b > a]
    return engine.get_docs_by_rank(pairs, query_len=len(q), max_ctx_len=4) if pairs else found


def same(a: Any, b: Any) -> bool:
    """Answers equal, numpy arrays compared by value."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if hasattr(a, "__dataclass_fields__") and type(a) is type(b):
        return all(same(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    return bool(a == b)
