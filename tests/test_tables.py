"""Results as tables: ``to_pandas()`` and ``to_arrow()`` give one row per hit, span, token or
next token, with the same columns and types in both (an empty result too), and the values
of ``to_dict()``; a missing pandas or pyarrow names the extra to install."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from optional import pandas

from anygram import Engine, MissingDependencyError, build_index
from anygram.query.tables import Tabular
from anygram.tools.evaluation import evaluate

TEXTS = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog",
         "naïve café, the cat"]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    d = tmp_path_factory.mktemp("tables")
    with open(d / "c.jsonl", "w", encoding="utf-8") as f:
        for i, t in enumerate(TEXTS):
            f.write(json.dumps({"text": t, "title": f"t{i}", "tags": [i, "x"]}) + "\n")
    build_index(d / "c.jsonl", d / "idx", progress=False, shard_tokens=50)
    with Engine.open(d / "idx") as eng:
        yield eng


def _results(eng: Engine) -> dict[str, Tabular]:
    return {
        "search": eng.search_docs("the cat", max_docs=5, max_ctx_len=4),
        "search_empty": eng.search_docs("zebra"),
        "search_cnf": eng.search_docs_cnf("cat AND sat", max_docs=5, max_ctx_len=3),
        "find_cnf": eng.find_cnf("cat AND the"),
        "get_docs": eng.get_docs([3, 0, 1]),
        "get_docs_by_pos": eng.get_docs_by_pos([(0, 5)], query_len=3, max_ctx_len=2),
        "ntd": eng.ntd("the "),
        "ntd_empty": eng.ntd("zebra"),
        "infgram_ntd": eng.infgram_ntd("xyz the "),
        "kn_ntd": eng.kn_ntd("the c", n=3),
        "infgram_text": eng.infgram_text("the cat sat on a log"),
        "attribute": eng.attribute("my cat sat on the mat, naïve", max_cnt=3),
    }


# The rows each result's table holds, and a few of its columns' values, from to_dict().
def _expected(name: str, result: Any) -> tuple[int, dict[str, list[Any]]]:
    d = result.to_dict() if hasattr(result, "to_dict") else None
    if name.startswith("search"):
        hits = d["hits"]
        return len(hits), {"doc_id": [h["doc_id"] if "doc_id" in h else h["window"]["doc_id"]
                                      for h in hits],
                           "text": [h.get("text", (h.get("window") or {}).get("text"))
                                    for h in hits]}
    if name.startswith("get_docs"):
        return len(result), {"doc_id": [w.doc_id for w in result],
                             "token_ids": [w.token_ids for w in result],
                             "metadata": [json.dumps(w.metadata, ensure_ascii=False)
                                          for w in result]}
    if name == "find_cnf":
        pairs = result.pairs()
        return len(pairs), {"shard": [s for s, _ in pairs], "pos": [p for _, p in pairs]}
    if name in ("ntd", "ntd_empty", "infgram_ntd"):
        rows = d["next_tokens"]
        return len(rows), {"token_id": [r["token_id"] for r in rows],
                           "count": [r["count"] for r in rows],
                           "prob": [r["prob"] for r in rows]}
    if name == "kn_ntd":
        rows = d["next_tokens"]
        return len(rows), {"token_id": [r["token_id"] for r in rows],
                           "prob": [r["prob"] for r in rows]}
    if name == "infgram_text":
        return len(d["token_ids"]), {"token_id": d["token_ids"], "suffix_len": d["suffix_len"],
                                     "cont_count": d["cont_count"]}
    assert name == "attribute"
    spans = d["spans"]
    return len(spans), {"start": [s["start"] for s in spans], "count": [s["count"] for s in spans],
                        "doc_ids": [[x["doc_id"] for x in s["docs"]] for s in spans]}


WINDOW_COLUMNS = ["doc_id", "shard", "doc_len", "start", "token_ids", "text", "text_lossy",
                  "match_pos", "match_offset", "match_len", "metadata", "removed"]
COLUMNS = {
    "search": WINDOW_COLUMNS, "search_empty": WINDOW_COLUMNS, "search_cnf": WINDOW_COLUMNS,
    "get_docs": WINDOW_COLUMNS, "get_docs_by_pos": WINDOW_COLUMNS,
    "find_cnf": ["shard", "pos"],
    "ntd": ["token_id", "count", "prob"], "ntd_empty": ["token_id", "count", "prob"],
    "infgram_ntd": ["token_id", "count", "prob"], "kn_ntd": ["token_id", "prob"],
    "infgram_text": ["token_id", "suffix_len", "prompt_count", "cont_count", "prob"],
    "attribute": ["start", "end", "length", "count", "unigram_logprob_sum", "doc_ids",
                  "shards", "positions"],
}


def _same(a: Any, b: Any) -> bool:
    if isinstance(b, float) and isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def test_arrow_tables(engine: Engine) -> None:
    import pyarrow as pa

    results = _results(engine)
    assert len(results["search"].hits) > 1 and not results["search_empty"].hits
    types: dict[str, pa.DataType] = {}
    for name, result in results.items():
        table = result.to_arrow()
        assert isinstance(table, pa.Table)
        assert table.column_names == COLUMNS[name], name
        rows, values = _expected(name, result)
        assert table.num_rows == rows, name
        for col, want in values.items():
            assert table.column(col).to_pylist() == want, (name, col)
        for field in table.schema:  # a column has one type in every result, never null
            assert not pa.types.is_null(field.type), (name, field)
            assert types.setdefault(field.name, field.type) == field.type, (name, field)
    window = results["search"].to_arrow().schema
    assert window.field("token_ids").type == pa.list_(pa.int64())
    assert window.field("match_pos").type == pa.int64()
    assert window.field("metadata").type == pa.string()
    meta = json.loads(results["get_docs"].to_arrow().column("metadata")[0].as_py())
    assert meta["metadata"] == {"title": "t3", "tags": [3, "x"]}


def test_pandas_frames(engine: Engine) -> None:
    pd = pandas()
    for name, result in _results(engine).items():
        frame = result.to_pandas()
        assert isinstance(frame, pd.DataFrame)
        assert list(frame.columns) == COLUMNS[name], name
        rows, values = _expected(name, result)
        assert len(frame) == rows, name
        for col, want in values.items():
            got = frame[col].tolist()
            assert len(got) == len(want) and all(map(_same, got, want)), (name, col, got, want)
    hits = _results(engine)["search"].to_pandas()
    assert str(hits["doc_id"].dtype) == "int64" and str(hits["match_pos"].dtype) == "Int64"
    assert hits["text_lossy"].dtype == bool
    docs = engine.get_docs([0, 1]).to_pandas()
    assert docs["match_pos"].isna().all()  # a document is not about a match
    assert str(_results(engine)["search_empty"].to_pandas()["doc_id"].dtype) == "int64"
    result = evaluate(engine, ["the cat sat", "a dog", ""])
    frame = result.to_pandas()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 16
    assert frame["agree"].tolist() == result.to_arrow().column("agree").to_pylist()
    assert frame["text"].tolist() == [0] * 11 + [1] * 5
    assert result.to_pandas("by_suffix_len").to_dict("records") == \
        result.agreement_by_suffix_len()


def test_eval_tables(engine: Engine) -> None:
    import pyarrow as pa

    texts = ["the cat sat", "a dog", ""]
    result = evaluate(engine, texts)
    tokens = result.to_arrow()
    assert tokens.column_names == ["text", "dev", "position", "token_id", "suffix_len", "prob",
                                   "argmax", "agree", "sparse", "scored", "lm_logprob"]
    assert tokens.column("text").to_pylist() == [0] * 11 + [1] * 5
    assert tokens.column("token_id").to_pylist() == list(b"the cat sat") + list(b"a dog")
    assert tokens.column("position").to_pylist() == list(range(11)) + list(range(5))
    for t in result.texts:
        d = t.to_dict()
        assert d["suffix_len"] == t.suffix_len.tolist()
        assert d["lm_logprob"] == [None] * len(t.token_ids)
        assert t.to_arrow().column("agree").to_pylist() == t.agree.tolist()
    by_len = result.to_arrow("by_suffix_len")
    assert by_len.to_pylist() == result.agreement_by_suffix_len()
    assert by_len.schema.field("agreement").type == pa.float64()
    assert evaluate(engine, []).to_arrow().num_rows == 0
    assert evaluate(engine, []).to_arrow().schema == tokens.schema


def test_a_missing_package_names_the_extra(engine: Engine,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    result = engine.search_docs("the cat")
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingDependencyError, match=r"SearchResult\.to_pandas\(\) needs pandas"
                                                     r".*pip install 'anygram\[pandas\]'"):
        result.to_pandas()
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingDependencyError, match=r"EvalResult\.to_arrow\(\) needs pyarrow"
                                                     r".*pip install 'anygram\[parquet\]'"):
        evaluate(engine, ["the cat"]).to_arrow()


def test_every_result_has_to_dict() -> None:
    import dataclasses

    import anygram.lm.results as lm_results
    import anygram.query.results as query_results
    import anygram.tools.evaluation as evaluation

    classes = [c for m in (query_results, lm_results, evaluation) for c in vars(m).values()
               if isinstance(c, type) and c.__module__ == m.__name__
               and (dataclasses.is_dataclass(c) or c.__name__ == "DocWindow")]
    assert {"DocWindow", "SearchResult", "AttributionSpan", "KNNextTokenDist",
            "TextEval", "EvalResult"} <= {c.__name__ for c in classes}
    for c in classes:
        assert callable(getattr(c, "to_dict", None)), c


def test_lists_of_windows_are_still_lists(engine: Engine, tmp_path: Path) -> None:
    import pickle

    docs = engine.get_docs([0, 2])
    assert isinstance(docs, list) and docs == [engine.get_doc(0), engine.get_doc(2)]
    again = pickle.loads(pickle.dumps(docs))
    assert again == docs and np.array_equal(again.to_arrow().column("doc_id"), [0, 2])
