"""Tests of anygram.index.corpus: every format read back from files written in tmp_path."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hf_datasets import save_to_disk, write_arrow

from anygram.errors import CorpusError, InvalidQueryError, MissingDependencyError
from anygram.index.corpus import (
    SUPPORTED_SUFFIXES,
    Document,
    expand_inputs,
    find_corpus_files,
    iter_documents,
)

RECORDS: list[dict[str, Any]] = [
    {"text": "hello world", "id": 1, "source": "a"},
    {"text": "naïve café — ünïcode ✓", "id": 2, "source": "b"},
    {"text": "line one\nline two", "id": 3, "source": "c"},
]


def _jsonl_bytes(records: list[dict[str, Any]], blank_after_first: bool = True) -> bytes:
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    if blank_after_first:
        lines.insert(1, "")  # a blank line: skipped, but counted
    return ("\n".join(lines) + "\n").encode("utf-8")


def _zst(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


def _expected(path: Path) -> list[Document]:
    return [
        Document(
            text=r["text"],
            metadata={"id": r["id"], "source": r["source"]},
            path=str(path),
            linenum=n,
        )
        for r, n in zip(RECORDS, [0, 2, 3], strict=True)
    ]


@pytest.mark.parametrize(
    "name",
    ["c.jsonl", "c.json", "c.ndjson", "c.jsonl.gz", "c.json.gz", "c.jsonl.zst", "c.JSON.ZST"],
)
def test_jsonl_formats(tmp_path: Path, name: str) -> None:
    data = _jsonl_bytes(RECORDS)
    if name.lower().endswith(".gz"):
        data = gzip.compress(data)
    elif name.lower().endswith(".zst"):
        data = _zst(data)
    path = tmp_path / name
    path.write_bytes(data)
    assert list(iter_documents(path)) == _expected(path)
    assert list(iter_documents(str(path)))[0].path == str(path)


def test_jsonl_custom_text_field(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"body": "x", "text": "meta", "n": [1, {"a": null}]}\n')
    (doc,) = iter_documents(path, text_field="body")
    assert doc.text == "x" and doc.metadata == {"text": "meta", "n": [1, {"a": None}]}


def test_multi_frame_zstd(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl.zst"
    path.write_bytes(
        _zst(_jsonl_bytes(RECORDS[:2], False)) + _zst(_jsonl_bytes(RECORDS[2:], False))
    )
    assert [d.text for d in iter_documents(path)] == [r["text"] for r in RECORDS]


def test_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"text": "a"}\r\n\r\n{"text": "b"}\r\n')
    assert [(d.text, d.linenum) for d in iter_documents(path)] == [("a", 0), ("b", 2)]


@pytest.mark.parametrize("suffix", [".txt", ".txt.gz", ".txt.zst"])
def test_txt_modes(tmp_path: Path, suffix: str) -> None:
    content = "first line\n\n  indented  \nlast ✓\n".encode()
    data = (
        gzip.compress(content)
        if suffix.endswith(".gz")
        else _zst(content)
        if suffix.endswith(".zst")
        else content
    )
    path = tmp_path / f"doc{suffix}"
    path.write_bytes(data)
    assert list(iter_documents(path)) == [Document(content.decode(), {}, str(path), 0)]
    assert list(iter_documents(path, txt_mode="line")) == [
        Document("first line", {}, str(path), 0),
        Document("  indented  ", {}, str(path), 2),
        Document("last ✓", {}, str(path), 3),
    ]


def test_txt_line_mode_without_final_newline_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_bytes(b"a\r\nb")
    assert [d.text for d in iter_documents(path, txt_mode="line")] == ["a", "b"]


def test_parquet(tmp_path: Path) -> None:
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "c.parquet"
    table = pa.table(
        {
            "id": [r["id"] for r in RECORDS],
            "text": [r["text"] for r in RECORDS],
            "source": [r["source"] for r in RECORDS],
        }
    )
    pq.write_table(table, path, row_group_size=2)
    docs = list(iter_documents(path))
    assert docs == [
        Document(r["text"], {"id": r["id"], "source": r["source"]}, str(path), i)
        for i, r in enumerate(RECORDS)
    ]

    # non-JSON types become JSON-safe
    path2 = tmp_path / "typed.parquet"
    ts = datetime.datetime(2024, 1, 2, 3, 4, 5)
    pq.write_table(
        pa.table(
            {
                "text": ["a", "b"],
                "when": pa.array([ts, None], type=pa.timestamp("s")),
                "blob": pa.array([b"raw", b"\xff\x00"], type=pa.binary()),
                "tags": [["x", "y"], []],
            }
        ),
        path2,
    )
    docs2 = list(iter_documents(path2))
    json.dumps([d.metadata for d in docs2])  # must not raise
    assert docs2[0].metadata == {"when": ts.isoformat(), "blob": "raw", "tags": ["x", "y"]}
    assert docs2[1].metadata["when"] is None and isinstance(docs2[1].metadata["blob"], str)


def test_parquet_many_batches(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "big.parquet"
    n = 2500  # more than two read batches of 1024 rows
    pq.write_table(pa.table({"text": [f"doc {i}" for i in range(n)], "i": list(range(n))}), path)
    docs = list(iter_documents(path))
    assert len(docs) == n
    assert all(d.text == f"doc {d.linenum}" and d.metadata == {"i": d.linenum} for d in docs)


def test_parquet_errors(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"body": ["a", None]}), path)
    with pytest.raises(CorpusError, match="no column 'text'.*body"):
        list(iter_documents(path))
    with pytest.raises(CorpusError, match=r"c\.parquet, row 2: .*null"):
        list(iter_documents(path, text_field="body"))


# ---------------------------------------------------------------- Arrow and datasets folders


def _records_table() -> Any:
    import pyarrow as pa

    return pa.table({"id": [r["id"] for r in RECORDS], "text": [r["text"] for r in RECORDS],
                     "source": [r["source"] for r in RECORDS]})


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "file"])
def test_arrow_ipc(tmp_path: Path, stream: bool) -> None:
    path = write_arrow(tmp_path / "c.arrow", _records_table(), stream=stream, batch_rows=2)
    assert list(iter_documents(path)) == [
        Document(r["text"], {"id": r["id"], "source": r["source"]}, str(path), i)
        for i, r in enumerate(RECORDS)
    ]


def test_arrow_big_batches_and_typed_columns(tmp_path: Path) -> None:
    import pyarrow as pa

    n = 2500  # one record batch, read 1024 rows at a time
    table = pa.table({"text": pa.array([f"doc {i}" for i in range(n)], type=pa.large_string()),
                      "i": list(range(n)), "tags": [["a", str(i)] for i in range(n)],
                      "blob": pa.array([b"\xff" if i == 7 else b"ok" for i in range(n)])})
    path = write_arrow(tmp_path / "big.arrow", table, batch_rows=n)
    docs = list(iter_documents(path))
    assert [d.text for d in docs] == [f"doc {i}" for i in range(n)]
    assert docs[5].metadata == {"i": 5, "tags": ["a", "5"], "blob": "ok"}
    assert docs[7].metadata["blob"].startswith("base64:")
    json.dumps([d.metadata for d in docs])  # JSON-safe


def test_arrow_errors(tmp_path: Path) -> None:
    import pyarrow as pa

    path = write_arrow(tmp_path / "c.arrow", pa.table({"body": ["a", None], "n": [1, 2]}))
    with pytest.raises(CorpusError, match="no column 'text'.*body"):
        list(iter_documents(path))
    with pytest.raises(CorpusError, match=r"c\.arrow, row 2: .*null"):
        list(iter_documents(path, text_field="body"))
    with pytest.raises(CorpusError, match="column 'n' has type int64, not string"):
        list(iter_documents(path, text_field="n"))
    junk = _write(tmp_path, "junk.arrow", b"this is not arrow data at all")
    with pytest.raises(CorpusError, match=r"junk\.arrow: not a readable Arrow IPC file"):
        list(iter_documents(junk))


def test_arrow_and_parquet_without_pyarrow_name_the_extra(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    arrow = write_arrow(tmp_path / "c.arrow", _records_table())
    parquet = _write(tmp_path, "c.parquet", b"PAR1")
    for name in ("pyarrow", "pyarrow.ipc", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    with pytest.raises(MissingDependencyError, match=r"reading the Arrow file .*c\.arrow "
                                                     r"needs pyarrow.*anygram\[parquet\]"):
        list(iter_documents(arrow))
    with pytest.raises(MissingDependencyError, match=r"anygram\[parquet\]"):
        list(iter_documents(parquet))


def test_datasets_save_to_disk_folder(tmp_path: Path) -> None:
    import pyarrow as pa

    table = pa.table({"text": [f"row {i}" for i in range(7)], "label": list(range(7))})
    data = save_to_disk(tmp_path / "ds", table, shards=3)
    write_arrow(tmp_path / "ds" / "cache-deadbeef.arrow", table)  # not listed: not data
    found = find_corpus_files([tmp_path / "ds"])
    assert found.files == data
    assert [p.name for p in found.skipped] == ["cache-deadbeef.arrow", "dataset_info.json",
                                               "state.json"]
    docs = [d for f in found.files for d in iter_documents(f)]
    assert [(d.text, d.metadata) for d in docs] == [(f"row {i}", {"label": i}) for i in range(7)]

    (data[1]).unlink()
    with pytest.raises(CorpusError, match=r"state\.json lists the data file "
                                          r"'data-00001-of-00003\.arrow'.*incomplete"):
        find_corpus_files([tmp_path / "ds"])


def test_datasets_dataset_dict_folder(tmp_path: Path) -> None:
    import pyarrow as pa

    root = tmp_path / "dd"
    train = save_to_disk(root / "train", pa.table({"text": ["a", "b"]}))
    test = save_to_disk(root / "test", pa.table({"text": ["c"]}))
    (root / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    found = find_corpus_files(root)
    assert found.files == sorted(train + test, key=str)
    assert sorted(p.relative_to(root).as_posix() for p in found.skipped) == [
        "dataset_dict.json", "test/dataset_info.json", "test/state.json",
        "train/dataset_info.json", "train/state.json"]
    # A JSON-lines corpus that happens to be named dataset_dict.json is still read elsewhere.
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "dataset_dict.json").write_text('{"text": "x"}\n')
    assert find_corpus_files(tmp_path / "plain").files == [tmp_path / "plain" / "dataset_dict.json"]


# ---------------------------------------------------------------- errors


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("content", "line", "what"),
    [
        (b'{"text": "ok"}\n\n{"text": broken}\n', 3, "not valid JSON"),
        (b'{"text": "ok"}\n[1, 2]\n', 2, "expected a JSON object"),
        (b'{"text": "ok"}\n{"body": "x"}\n', 2, "no 'text' field"),
        (b'{"text": 5}\n', 1, "not a string"),
        (b'{"text": "ok"}\n{"text": "\xff\xfe"}\n', 2, "invalid UTF-8"),
        (b'{"text": "lone \\ud800 surrogate"}\n', 1, "not valid UTF-8"),
    ],
)
def test_jsonl_errors(tmp_path: Path, content: bytes, line: int, what: str) -> None:
    path = _write(tmp_path, "bad.jsonl", content)
    with pytest.raises(CorpusError) as info:
        list(iter_documents(path))
    message = str(info.value)
    assert f"bad.jsonl, line {line}:" in message
    assert what in message


def test_errors_in_compressed_files(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.jsonl.gz", gzip.compress(b'{"text": "a"}\nnope\n'))
    with pytest.raises(CorpusError, match=r"bad\.jsonl\.gz, line 2: not valid JSON"):
        list(iter_documents(path))
    truncated = _write(tmp_path, "cut.jsonl.gz", gzip.compress(_jsonl_bytes(RECORDS * 50))[:-30])
    with pytest.raises(CorpusError, match=r"cut\.jsonl\.gz.*truncated or corrupt"):
        list(iter_documents(truncated))


def test_invalid_utf8_in_txt(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.txt", b"fine\nalso fine\nbad \xff here\n")
    with pytest.raises(CorpusError, match=r"bad\.txt, line 3: invalid UTF-8"):
        list(iter_documents(path))
    with pytest.raises(CorpusError, match=r"bad\.txt, line 3: invalid UTF-8"):
        list(iter_documents(path, txt_mode="line"))


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "data.csv", b"text\nhello\n")
    with pytest.raises(CorpusError) as info:
        iter_documents(path)  # checked eagerly, before iteration
    assert "data.csv" in str(info.value) and ".jsonl.zst" in str(info.value)
    with pytest.raises(CorpusError, match="no such file"):
        iter_documents(tmp_path / "missing.jsonl")
    with pytest.raises(InvalidQueryError):
        iter_documents(_write(tmp_path, "a.txt", b"x"), txt_mode="para")  # type: ignore[arg-type]


def test_supported_suffixes() -> None:
    for suffix in (
        ".jsonl",
        ".json",
        ".ndjson",
        ".jsonl.gz",
        ".json.gz",
        ".jsonl.zst",
        ".json.zst",
        ".txt",
        ".txt.gz",
        ".txt.zst",
        ".parquet",
        ".arrow",
    ):
        assert suffix in SUPPORTED_SUFFIXES


# ---------------------------------------------------------------- expand_inputs


def test_expand_inputs(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / ".hidden").mkdir()
    files = [
        tmp_path / "d" / "b.jsonl",
        tmp_path / "d" / "a.txt",
        tmp_path / "d" / "sub" / "c.jsonl.zst",
        tmp_path / "d" / ".hidden" / "x.jsonl",
        tmp_path / "d" / "notes.md",
        tmp_path / "top1.jsonl",
        tmp_path / "top2.jsonl",
        tmp_path / "top.csv",
    ]
    for f in files:
        f.write_text("")

    got = expand_inputs([tmp_path / "d"])
    assert got == sorted([files[1], files[0], files[2]], key=str)
    found = find_corpus_files(tmp_path / "d")
    assert found.files == got and found.skipped == [files[4]]  # notes.md; hidden: not counted

    got = expand_inputs(
        [str(tmp_path / "top*"), tmp_path / "top1.jsonl", str(tmp_path / "d" / "*.jsonl")]
    )
    assert got == [files[0], files[5], files[6]]  # de-duplicated, sorted, .csv skipped
    assert find_corpus_files([str(tmp_path / "top*")]).skipped == [files[7]]

    assert expand_inputs([str(tmp_path / "**" / "*.zst")]) == [files[2]]

    with pytest.raises(CorpusError, match="nothing matched"):
        expand_inputs([str(tmp_path / "*.parquet")])
    with pytest.raises(CorpusError, match="does not exist"):
        expand_inputs([tmp_path / "nope.jsonl"])
    with pytest.raises(CorpusError, match="unsupported suffix"):
        expand_inputs([tmp_path / "top.csv"])
    with pytest.raises(CorpusError, match="no input"):
        expand_inputs([])


# ---------------------------------------------------------------- streaming


def test_streaming_is_lazy(tmp_path: Path) -> None:
    import zstandard

    n = 20_000
    path = tmp_path / "big.jsonl.zst"
    with open(path, "wb") as raw, zstandard.ZstdCompressor().stream_writer(raw) as out:
        for i in range(n):
            out.write(json.dumps({"text": f"document number {i}", "i": i}).encode() + b"\n")
        out.write(b"this last line is not JSON\n")

    docs = iter_documents(path)
    first = next(docs)  # succeeds although the end of the file is broken: nothing was read ahead
    assert first == Document("document number 0", {"i": 0}, str(path), 0)
    assert next(docs).linenum == 1
    with pytest.raises(CorpusError, match=rf"big\.jsonl\.zst, line {n + 1}: not valid JSON"):
        for _ in docs:
            pass
