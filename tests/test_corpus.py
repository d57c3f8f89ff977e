"""Tests of anygram.index.corpus: every format read back from files written in tmp_path."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from anygram.errors import CorpusError, InvalidQueryError
from anygram.index.corpus import SUPPORTED_SUFFIXES, Document, expand_inputs, iter_documents

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

    got = expand_inputs(
        [str(tmp_path / "top*"), tmp_path / "top1.jsonl", str(tmp_path / "d" / "*.jsonl")]
    )
    assert got == [files[0], files[5], files[6]]  # de-duplicated, sorted, .csv skipped

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
