"""Run every kind of query, and ``verify``, on index directories that may be damaged or
hostile; print one JSON line per directory. Used by ``test_hostile_index.py`` in a
subprocess, so a crash (a segfault) fails the test instead of killing pytest.

Usage: ``python hostile_probe.py KIND DIR...`` where KIND is ``text`` (a bytes-tokenized index:
queries are text) or ``words`` (an index of word ids: queries are words, see ``WORDS``).
Before each directory it prints ``BEGIN <dir>``, then ``{"dir": ..., "open": ..., "answers":
{...}, "verify": ...}``: an answer is its JSON, or ``"typed:<Error>"`` for an anygram error,
or ``"untyped:<Error>: ..."`` for any other exception (a defect).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from anygram import AnygramError, Engine, kernels
from anygram.index.verify import verify_index

#: The corpus vocabulary of the fixture indexes; the ``words`` index stores word i as id
#: ``WORD_BASE + i`` (above 255, so that index is u16).
WORDS = ("the cat dog sat on mat a red big small ran fast slow fox jumped over lazy "
         "bird sang tree near house").split()
WORD_BASE = 300


def encoder(kind: str) -> Callable[[str], list[int]]:
    if kind == "text":
        return lambda s: list(s.encode("utf-8"))
    return lambda s: [WORD_BASE + WORDS.index(w) for w in s.split()]


def queries(eng: Engine, plain: Engine, enc: Callable[[str], list[int]]
            ) -> dict[str, Callable[[], Any]]:
    """Calls that between them reach every kernel (test_probe_reaches_every_kernel);
    ``plain`` is the index opened without its search sample (the plain binary searches)."""
    cat, dog, the = enc("cat"), enc("dog"), enc("the")
    fox, lazy = enc("fox"), enc("lazy")
    cnf_rare = [[fox], [the]]  # a rare anchor: its partners probed in the text
    cnf_freq = [[the], [enc("a")], [cat, dog]]  # frequent clauses: marks
    sentence = enc("the cat sat on the mat")
    return {
        "count": lambda: [eng.count(q) for q in ([], the, the + cat, lazy + lazy + lazy)],
        "count_plain": lambda: [plain.count(q) for q in (the, the + cat, lazy + lazy + lazy)],
        "infgram_plain": lambda: plain.infgram_ntd(fox + the),
        "count_many": lambda: eng.count_many([the, the + cat, lazy, []]),
        "count_many_plain": lambda: plain.count_many([the, the + cat]),
        "prob_many": lambda: eng.prob_many([(the, cat[0]), (fox, the[0])]),
        "ntd_many": lambda: eng.ntd_many([the, cat], max_support=3),
        "infgram_prob_many": lambda: eng.infgram_prob_many([(fox + the, cat[0])]),
        "ntd": lambda: eng.ntd(the),
        "ntd_sampled": lambda: eng.ntd(the[:1], max_support=3),
        "prob": lambda: eng.prob(the, cat[0]),
        "infgram_prob": lambda: eng.infgram_prob(lazy + lazy + the, cat[0]),
        "infgram_ntd": lambda: eng.infgram_ntd(fox + the),
        "search_position": lambda: eng.search_docs(cat, max_docs=4, order="position"),
        "search_random": lambda: eng.search_docs(cat, max_docs=4, order="random", seed=3),
        "search_rank": lambda: eng.search_docs(the, max_docs=3, order="rank", offset=2),
        "get_docs": lambda: eng.get_docs([0, 1, eng.num_docs - 1], max_tokens=40),
        "get_by_rank": lambda: eng.get_docs_by_rank([(0, 7), (eng.num_shards - 1, 0)],
                                                    query_len=1),
        "get_by_pos": lambda: eng.get_docs_by_pos([(0, 5)], max_disp_len=6),
        **{f"cnf_{plan}_{i}": forced(plan, lambda q=q, d=d: eng.count_cnf(
            q, max_diff_tokens=d, max_clause_freq=None))
           for plan in PLANS for i, (q, d) in enumerate([(cnf_rare, 8), (cnf_freq, 3),
                                                         (cnf_freq, 500), ([[the], [cat]], 5)])},
        **{f"find_cnf_{plan}": forced(plan, lambda: eng.find_cnf(
            cnf_freq, max_diff_tokens=6, max_clause_freq=None)) for plan in PLANS},
        "cnf_sampled": lambda: eng.count_cnf([[the], [cat]], max_diff_tokens=20,
                                             max_clause_freq=5, seed=2),
        "find_cnf": lambda: eng.find_cnf([[cat], [dog]], max_diff_tokens=30,
                                         max_clause_freq=None),
        "search_cnf": lambda: eng.search_docs_cnf([[cat], [the]], max_docs=3, order="random",
                                                  max_diff_tokens=10, max_clause_freq=None),
        "docs_with_all": lambda: eng.count_docs_with_all([[cat], [dog], [the]],
                                                         max_clause_freq=None, return_ids=True),
        "docs_with_all_rare": lambda: eng.count_docs_with_all([[fox], [lazy]],
                                                              max_clause_freq=None),
        "docs_sampled": lambda: eng.count_docs_with_all([[the], [cat]], max_clause_freq=3),
        "infgram_text": lambda: eng.infgram_text(sentence),
        "creativity": lambda: eng.creativity(sentence),
        "attribute": lambda: eng.attribute(sentence, max_cnt=50, max_docs_per_span=2),
        "kn_ntd": lambda: eng.kn_ntd(the, n=3, top_k=5),
        "discounts": lambda: eng.estimate_discounts(3),
        "positions": lambda: kernels.rank_positions(eng.shards[0].sa, eng.shards[0].ptr_width,
                                                    eng.token_width, 0,
                                                    eng.shards[0].num_positions),
    }


#: The CNF plans the tests can force (``anygram.query.cnf.plans.FORCE_PLAN``), None the
#: chosen one: each reaches other kernels.
PLANS = (None, "driver", "probe", "windows", "marks", "marks_split", "merge", "split")


def forced(plan: str | None, call: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        from anygram.query.cnf import plans

        saved, plans.FORCE_PLAN = plans.FORCE_PLAN, plan
        try:
            return call()
        finally:
            plans.FORCE_PLAN = saved
    return run


def jsonable(x: Any) -> Any:
    if hasattr(x, "to_dict"):
        return jsonable(x.to_dict())
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    return x


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return jsonable(call())
    except AnygramError as e:
        return f"typed:{type(e).__name__}"
    except Exception as e:  # noqa: BLE001  (what the test looks for)
        return f"untyped:{type(e).__name__}: {e}"


def probe(kind: str, directory: str) -> dict[str, Any]:
    out: dict[str, Any] = {"dir": directory, "answers": {}}
    try:
        eng = Engine.open(directory)
        plain = Engine.open(directory, search_sample=False)
    except AnygramError as e:
        out["open"] = f"typed:{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001
        out["open"] = f"untyped:{type(e).__name__}: {e}"
    else:
        out["open"] = "ok"
        out["answers"] = {name: outcome(call)
                          for name, call in queries(eng, plain, encoder(kind)).items()}
    try:
        out["verify"] = verify_index(directory).ok
    except AnygramError as e:
        out["verify"] = f"typed:{type(e).__name__}"
    except Exception as e:  # noqa: BLE001
        out["verify"] = f"untyped:{type(e).__name__}: {e}"
    return out


if __name__ == "__main__":
    kind = sys.argv[1]
    for d in sys.argv[2:]:
        print(f"BEGIN {d}", flush=True)
        print(json.dumps(probe(kind, d)), flush=True)
