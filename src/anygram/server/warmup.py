"""Start-up warm-up: before a server answers, load every compiled kernel a request can run
and the state each index makes on first use, so no request pays for them.

A numba kernel is compiled (or loaded from the on-disk cache) the first time it is called
with a new shape of arguments: seconds on a cold cache, tens of milliseconds from the cache,
paid by whichever request calls it first. Which kernels a query runs depends on the data: a
CNF query picks one of several plans by the counts of its clauses, a takedown adds its own
steps, a token that never occurs stops a query before any kernel. So the warm-up runs
queries whose paths are known:

- :func:`warm_kernels`: every query shape on a tiny index built for it (with a document
  taken down, every short prompt in its next-token table, and again without the table),
  each CNF plan of :mod:`anygram.shards.cnf_costs` forced in turn, and the sampled CNF
  answers. Its arrays have the types of any index's (raw bytes, whatever the
  token width), so the kernels it loads serve every index, at a cost that does not grow with
  the served ones.
- :func:`warm_index`: on each served index, the same queries over tokens of its first
  document (the plans the cost model picks), which also load its tokenizer, its word starts
  and its lazily made tables.

Everything here is best effort: a query that fails is logged and skipped, never stops the
server.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from ..engine import Engine
from ..errors import AnygramError
from ..index.build import build_index_from_ids
from ..kernels.tallies import sum_tallies
from ..query.cnf import plans as cnf_plans
from ..query.documents import Order
from ..tools import takedown
from .indexes import ServedIndex

log = logging.getLogger("anygram.server")

#: The exact CNF plans a shard can run (the names of :mod:`anygram.shards.cnf_costs`).
CNF_PLANS = ("windows", "probe", "merge", "split", "driver", "marks", "marks_split")

#: The tiny index of :func:`warm_kernels`: documents over 9 token ids, each phrase in several
#: documents and close to the others (so every CNF plan finds matches), one taken down.
_DOCS = [[1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 9, 3, 4, 2, 3][k:] + [1, 2, 3, 4][:k] for k in range(8)]
_REMOVED = 3


def warm_up(indexes: Sequence[ServedIndex]) -> None:
    """Load the kernels of every route and each index's lazily made state (module doc)."""
    steps: list[Callable[[], None]] = [warm_kernels,
                                       *(partial(warm_index, ix.engine) for ix in indexes)]
    for step in steps:
        try:
            step()
        except Exception:  # noqa: BLE001 - best effort: the server starts all the same
            log.warning("start-up warm-up failed (the first requests will load the "
                        "kernels)", exc_info=True)


def warm_kernels() -> None:
    """Every query shape, every CNF plan and the sampled answers, on a tiny index: once per
    process (the kernels it loads are the process's)."""
    with _kernels_lock:
        if not _kernels_warm:
            _warm_kernels()
            _kernels_warm.append(True)


_kernels_lock = threading.Lock()
_kernels_warm: list[bool] = []


def _warm_kernels() -> None:
    with tempfile.TemporaryDirectory(prefix="anygram-warm-up-") as tmp:
        path = Path(tmp) / "index"
        # every 1- and 2-token prompt in its next-token table: the table's lookups warmed
        build_index_from_ids(_DOCS, path, vocab_size=1000, ntd_threshold=1)
        takedown.take_down(path, [_REMOVED])
        engine = Engine.open(path)
        _run(_queries(engine, _DOCS[0][:6], doc_id=0))
        without_table = Engine.open(path, ntd_table=False)  # and the suffix array's counting
        _run(_ntd_queries(without_table, _DOCS[0][:6]))
        without_table.close()
        # What merges the next-token tallies of several shards (this index has one)
        sum_tallies(np.arange(2, dtype=np.int64), np.ones(2, dtype=np.int64))
        for plan in CNF_PLANS:
            with _forced(plan=plan):
                _run(_cnf_queries(engine, _DOCS[0][:6]))
        with _forced(sample=True):
            _run(_cnf_queries(engine, _DOCS[0][:6], max_clause_freq=1))
        engine.close()


def warm_index(engine: Engine) -> None:
    """The queries of every route over tokens of the index's first live document, as the
    cost model plans them; its tokenizer and word starts loaded."""
    found = _first_document(engine)
    if engine.tokenizer is not None:
        _run([lambda: engine.tokenize(engine.decode(found[1] if found else [])),
              lambda: engine.tokenizer.word_start_ids()])  # type: ignore[union-attr]
    if found is not None:
        doc_id, ids = found
        _run(_queries(engine, ids, doc_id))


def _first_document(engine: Engine, tries: int = 64) -> tuple[int, list[int]] | None:
    """A live document of at least 6 tokens among the first ``tries``, and its first 6."""
    for doc_id in range(min(engine.num_docs, tries)):
        with contextlib.suppress(AnygramError):
            window = engine.get_doc(doc_id, max_tokens=6, decode=False)
            if not window.removed and len(window.token_ids) >= 6:
                return doc_id, [int(t) for t in window.token_ids]
    return None


Call = Callable[[], object]


def _queries(e: Engine, ids: list[int], doc_id: int) -> list[Call]:
    """One of each query the routes make (``ids``: 6 tokens that occur in this order)."""
    phrase, a, b = ids[:2], ids[0], ids[1]
    tok = e.tokenizer
    calls: list[Call] = [
        lambda: e.count(phrase), lambda: e.find(phrase), lambda: e.prob([a], b),
        lambda: e.ntd([a]), lambda: e.ntd([a], max_support=1),
        lambda: e.infgram_prob(phrase, ids[2]), lambda: e.infgram_ntd(phrase),
        lambda: e.infgram_ntd(phrase, max_support=1),
        lambda: e.get_doc(doc_id, max_tokens=8),
        lambda: e.infgram_text(ids), lambda: e.creativity(ids), lambda: e.creativity_rs(ids),
        lambda: e.attribute(ids, max_docs_per_span=2, with_context=True, max_ctx_len=4),
        lambda: e.attribute(ids, delim_ids=[ids[2]], min_len=2, max_cnt=1,
                            max_docs_per_span=0, with_context=False),
        lambda: e.attribute(ids, enforce_bow=True, max_docs_per_span=1, with_context=True,
                            bow_ids=ids[:3] if tok is None else tok.word_start_ids()),
        lambda: _located(e, phrase),
        lambda: e.count_many([phrase, ids[1:4]]),
        lambda: e.prob_many([([a], b), (ids[1:3], ids[3])]),
        lambda: e.ntd_many([[a], phrase]), lambda: e.ntd_many([[a]], max_support=1),
        lambda: e.infgram_prob_many([(phrase, ids[2]), (ids[1:3], ids[3])]),
        lambda: e.infgram_ntd_many([phrase, [b]]),
        lambda: e.infgram_ntd_many([phrase], max_support=1),
        *_cnf_queries(e, ids),
    ]
    orders: tuple[Order, ...] = ("random", "position", "rank")
    for order in orders:
        calls += [partial(e.search_docs, phrase, max_docs=2, order=order, max_ctx_len=4),
                  partial(e.search_docs, phrase, max_docs=2, offset=1, order=order,
                          max_disp_len=8)]
    return calls


def _ntd_queries(e: Engine, ids: list[int]) -> list[Call]:
    """The next-token queries of short prompts (a next-token table answers them when it can)."""
    phrase, a = ids[:2], ids[0]
    return [lambda: e.ntd([a]), lambda: e.ntd([a], max_support=1), lambda: e.ntd(phrase),
            lambda: e.ntd_many([[a], phrase]), lambda: e.infgram_ntd(phrase),
            lambda: e.infgram_ntd_many([phrase, [a]])]


def _located(e: Engine, phrase: list[int]) -> None:
    """What infini-gram's ``POST /`` reads by rank and by position (the compat layer)."""
    for shard, (lo, hi) in enumerate(e.find(phrase).ranges):
        if hi > lo:
            e.get_doc_by_rank(shard, lo, query_len=len(phrase), max_ctx_len=4)
            e.docs_at(shard, e.positions(shard, lo, hi))
            return


def _cnf_queries(e: Engine, ids: list[int], max_clause_freq: int | None = 50_000
                 ) -> list[Call]:
    """The CNF queries of the routes: an AND of a phrase and of an OR of a token and a
    phrase, and three clauses (the page's ``A AND B OR C``)."""
    two = [[ids[:2]], [ids[2:3], ids[3:5]]]
    three = [[ids[:1]], [ids[2:3]], [ids[4:5], ids[1:3]]]
    cap, d = max_clause_freq, 8
    return [
        lambda: e.count_cnf(two, max_clause_freq=cap, max_diff_tokens=d),
        lambda: e.count_cnf(three, max_clause_freq=cap, max_diff_tokens=d),
        lambda: e.count_cnf(two, max_clause_freq=cap, max_diff_tokens=d, anchor=1),
        lambda: e.find_cnf(two, max_clause_freq=cap, max_diff_tokens=d),
        lambda: e.search_docs_cnf(two, max_docs=2, order="random", max_clause_freq=cap,
                                  max_diff_tokens=d),
        lambda: e.search_docs_cnf(three, max_docs=2, max_clause_freq=cap, max_diff_tokens=d),
        lambda: e.count_docs_with_all(two, max_clause_freq=cap, return_ids=True),
        lambda: e.count_docs_with_all(three, max_clause_freq=cap),
    ]


@contextlib.contextmanager
def _forced(plan: str | None = None, sample: bool | None = None) -> Iterator[None]:
    """Force a CNF plan, or the sample, as the tests of the CNF layer do. (Module globals:
    the warm-up runs before the server answers any request.)"""
    saved = cnf_plans.FORCE_PLAN, cnf_plans.FORCE_SAMPLE
    cnf_plans.FORCE_PLAN, cnf_plans.FORCE_SAMPLE = plan, sample
    try:
        yield
    finally:
        cnf_plans.FORCE_PLAN, cnf_plans.FORCE_SAMPLE = saved


def _run(calls: Sequence[Call]) -> None:
    for call in calls:
        try:
            call()
        except AnygramError:
            pass  # a refused query (e.g. a window at a document edge) still ran its kernels
        except Exception:  # noqa: BLE001 - best effort: a fault is logged, start-up goes on
            log.warning("start-up warm-up: a query failed", exc_info=True)
