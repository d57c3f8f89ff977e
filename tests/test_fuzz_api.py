"""Fuzz the Python API: any argument values give an answer or an anygram error, never another
exception (a TypeError, OverflowError, RecursionError, numba's errors, ...).

Every public method of :class:`anygram.Engine` is called with its own signature and values
drawn from a mix of plausible ones (small ids, text, token lists, CNFs; numpy arrays where
ids may be one) and junk (huge and negative ints, floats, NaN, bools, lone surrogates, bytes,
nested lists, None, dicts: what a JSON body or a careless caller passes). Parameters that
size the work (``max_new_tokens``, ``max_docs``, ...) get no huge ints: the Python API does
what it is asked, however long (the HTTP server bounds it).
Examples per test: ``ANYGRAM_MAX_EXAMPLES`` (conftest.py), at most 150 here.
"""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anygram import AnygramError, Engine, build_index
from anygram import takedown as td

#: Parameters whose value sets how much work a call does: small values only.
WORK = {"max_new_tokens", "max_docs", "max_tokens", "sample", "max_cnt", "max_docs_per_span",
        "max_support", "top_k", "max_sorted", "n", "max_ctx_len", "max_disp_len", "offset",
        "query_len", "min_len", "max_diff_tokens", "max_clause_freq"}
#: Methods not fuzzed: lifecycle, and views of the shards that trust their arguments.
SKIP = {"close", "positions", "docs_at", "doc_starts", "doc_span", "doc_id", "is_removed",
        "open"}

junk = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2 ** 70), 2 ** 70), st.sampled_from([2 ** 63, 2 ** 64, -(2 ** 63) - 1]),
    st.text(max_size=12), st.sampled_from(["\ud800", "a\udfffb", "", " AND ", "x OR y"]),
    st.binary(max_size=6), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
small = st.integers(-3, 40)
ids = st.lists(st.integers(-2, 260), max_size=6)
texts = st.text(alphabet="the cat sat on a mat AND OR \n", max_size=30)
nested = st.recursive(st.one_of(small, st.text(max_size=4)),
                      lambda inner: st.lists(inner, max_size=3), max_leaves=8)
cnfs = st.one_of(texts, st.lists(st.lists(st.one_of(ids, texts, small), max_size=3),
                                 max_size=3), nested)


#: Parameters documented to take token ids as a numpy array too.
ARRAYS = {"query_ids", "prompt_ids", "query", "text", "ids", "doc_ids", "requests",
          "delim_ids", "bow_ids"}


def value(name: str) -> st.SearchStrategy[Any]:
    """What a parameter called ``name`` is drawn from."""
    plausible: list[st.SearchStrategy[Any]] = [small, ids, texts]
    if name in ARRAYS:
        plausible.append(st.builds(np.array, ids))
    if name in ("cnf",):
        plausible.append(cnfs)
    if name in ("requests", "doc_ids", "prompts"):
        plausible += [st.lists(st.tuples(small, small), max_size=3), st.lists(ids, max_size=3)]
    if name == "order":
        plausible.append(st.sampled_from(["position", "random", "rank", "nope"]))
    if name == "model":
        plausible.append(st.sampled_from(["infgram", "ngram", "kn", "nope"]))
    base = st.one_of(*plausible, nested)
    if name in WORK:
        return st.one_of(base, st.none(), st.booleans(), st.floats(), st.text(max_size=3))
    return st.one_of(base, junk)


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small index with metadata, several shards and a takedown."""
    root = tmp_path_factory.mktemp("fuzz")
    words = "the cat sat on a mat and the dog ran".split()
    with open(root / "c.jsonl", "w") as f:
        for i in range(40):
            f.write(json.dumps({"text": " ".join(words[i % 7:i % 7 + 4 + i % 5]),
                                "k": i}) + "\n")
    build_index(root / "c.jsonl", root / "idx", shard_tokens=400, progress=False)
    td.take_down(root / "idx", [2])
    return root / "idx"


@pytest.fixture(scope="module")
def engine(directory: Path) -> Engine:
    return Engine.open(directory)


METHODS = sorted(name for name, f in inspect.getmembers(Engine, inspect.isfunction)
                 if not name.startswith("_") and name not in SKIP)


def _call(f: Any, args: list[Any], kwargs: dict[str, Any]) -> str:
    """``"answered"`` or ``"refused"`` (an AnygramError that says why); any other exception
    fails the test, named."""
    try:
        f(*args, **kwargs)
    except AnygramError as e:
        assert str(e).strip(), f"{type(e).__name__} without a message"
        return "refused"
    except Exception as e:  # noqa: BLE001 - the point: name what escaped
        pytest.fail(f"{getattr(f, '__name__', f)} raised {type(e).__name__}: {e}")
    return "answered"


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=min(settings().max_examples, 150), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_engine_methods_raise_only_anygram_errors(engine, method, data):
    f = getattr(engine, method)
    params = [p for p in inspect.signature(f).parameters.values()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    args, kwargs = [], {}
    for p in params:
        required = p.default is inspect.Parameter.empty
        if not required and not data.draw(st.booleans(), label=f"give {p.name}"):
            continue
        v = data.draw(value(p.name), label=p.name)
        if p.kind is p.POSITIONAL_OR_KEYWORD and required:
            args.append(v)
        else:
            kwargs[p.name] = v
    assert _call(f, args, kwargs) in ("answered", "refused")


@settings(max_examples=min(settings().max_examples, 60), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_open_and_takedown_raise_only_anygram_errors(directory, tmp_path_factory, data):
    """Engine.open's options, and takedown ids (on a copy: the engine's index stays)."""
    opened = _call(Engine.open, [data.draw(st.one_of(st.just(directory), st.just(str(directory)),
                                            st.just([directory, directory]),
                                            st.just([]), junk), label="path")],
          {k: data.draw(value(k), label=k) for k in ("token_dtype", "load", "vocab_size",
                                                     "eos_id", "tokenizer")
           if data.draw(st.booleans(), label=f"give {k}")})
    assert opened in ("answered", "refused")
    copy = Path(tmp_path_factory.mktemp("td")) / "idx"
    shutil.copytree(directory, copy)
    assert _call(td.take_down, [copy, data.draw(st.lists(st.one_of(small, junk), max_size=3),
                                         label="ids")], {}) in ("answered", "refused")
    assert _call(td.undo, [copy, data.draw(st.one_of(st.none(), st.lists(st.one_of(small, junk),
                                                                     max_size=3)), label="ids")],
                 {}) in ("answered", "refused")
