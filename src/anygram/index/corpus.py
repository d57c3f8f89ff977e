"""Streaming readers for corpus files: JSON lines, plain text, Parquet and Arrow (Hugging Face
``datasets``), the text ones optionally compressed.

Files are read incrementally (line by line, or 1024 rows at a time for Parquet and Arrow), so a
corpus file of any size can be indexed with constant memory. Every problem is reported as a
:class:`~anygram.errors.CorpusError` naming the file and the 1-based line (or row) number.

Supported suffixes (case-insensitive), see :data:`SUPPORTED_SUFFIXES`:

* ``.jsonl``, ``.json``, ``.ndjson`` — one JSON object per line; also ``.gz`` / ``.zst`` compressed,
* ``.txt`` — one document per file or per non-empty line; also ``.txt.gz`` / ``.txt.zst``,
* ``.parquet`` — one document per row,
* ``.arrow`` — one document per row: Arrow IPC, as Hugging Face ``datasets`` writes it; a
  ``save_to_disk`` folder given as a directory is read through the files its ``state.json``
  lists (:func:`find_corpus_files`).
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import glob
import gzip
import io
import json
import os
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from .._extras import require
from ..errors import CorpusError, InvalidQueryError

__all__ = ["Document", "CorpusFiles", "iter_documents", "expand_inputs", "find_corpus_files",
           "SUPPORTED_SUFFIXES"]

_JSON_BASES: tuple[str, ...] = (".jsonl", ".json", ".ndjson")
_COMPRESSIONS: tuple[str, ...] = ("", ".gz", ".zst")

#: Every file suffix :func:`iter_documents` reads; compound suffixes like ``.jsonl.zst`` included.
SUPPORTED_SUFFIXES: tuple[str, ...] = (
    *(base + comp for comp in _COMPRESSIONS for base in _JSON_BASES),
    *(".txt" + comp for comp in _COMPRESSIONS),
    ".parquet",
    ".arrow",
)

#: Parquet/Arrow rows per batch: large enough to amortize Arrow overhead, small enough to bound
#: memory.
_BATCH_ROWS = 1024
#: The first bytes of an Arrow IPC file in the random-access format (the stream format has none).
_ARROW_FILE_MAGIC = b"ARROW1"
#: zstd window limit: 2 GiB, so files compressed with ``zstd --long=31`` can be read.
_ZSTD_MAX_WINDOW = 1 << 31
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Document:
    """One document of a corpus.

    Attributes:
        text: the document text.
        metadata: every other field of the JSON object / Parquet or Arrow row (empty for text
            files).
        path: the input path as given to :func:`iter_documents`.
        linenum: 0-based line number (JSON lines, text per line), row number (Parquet, Arrow),
            or 0 for a whole text file.
    """

    text: str
    metadata: dict[str, Any]
    path: str
    linenum: int


def _split_suffix(path: Path) -> tuple[str, str]:
    """Return ``(base_suffix, compression)`` of a supported file, e.g. ``(".jsonl", ".zst")``.

    Raises:
        CorpusError: the suffix is not supported.
    """
    name = path.name.lower()
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            for comp in (".gz", ".zst"):
                if suffix.endswith(comp):
                    return suffix[: -len(comp)], comp
            return suffix, ""
    raise CorpusError(
        f"{str(path)!r} has an unsupported suffix; supported suffixes are "
        f"{', '.join(SUPPORTED_SUFFIXES)} "
        "(rename or convert the file)"
    )


def _is_supported(path: Path) -> bool:
    """Whether :func:`iter_documents` can read ``path`` judging by its name."""
    try:
        _split_suffix(path)
    except CorpusError:
        return False
    return True


@contextmanager
def _open_binary(path: Path, compression: str) -> Iterator[IO[bytes]]:
    """Open ``path`` for streaming binary reads, decompressing gzip/zstd on the fly.

    Binary rather than text mode so each line can be decoded separately: a UTF-8 error is then
    reported at its exact line instead of wherever a decoder chunk boundary fell.
    """
    if compression == ".gz":
        with gzip.open(path, "rb") as fh:
            yield fh  # type: ignore[misc]  # GzipFile is an IO[bytes]
    elif compression == ".zst":
        import zstandard

        with open(path, "rb") as raw:
            # read_across_frames: multi-frame files (pzstd, concatenated shards) would otherwise
            # stop silently after the first frame.
            reader = zstandard.ZstdDecompressor(max_window_size=_ZSTD_MAX_WINDOW).stream_reader(
                raw, read_across_frames=True
            )
            with io.BufferedReader(reader, buffer_size=1 << 20) as fh:
                yield fh
    else:
        with open(path, "rb") as fh:
            yield fh


def _stream_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean a (compressed) file is corrupt or truncated."""
    import zstandard

    return (OSError, EOFError, zlib.error, zstandard.ZstdError)


def _decode_line(raw: bytes, where: str, first: bool) -> str:
    """Decode one line as strict UTF-8, dropping a leading byte-order mark on the first line."""
    if first and raw.startswith(_UTF8_BOM):
        raw = raw[len(_UTF8_BOM) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{where}: invalid UTF-8 at byte {exc.start} of the line ({exc.reason}); "
            "re-encode the file as UTF-8"
        ) from None


def _read_json_lines(
    path: Path, shown: str, compression: str, text_field: str
) -> Iterator[Document]:
    """Documents of a JSON-lines file, one JSON object per non-blank line."""
    linenum = -1
    try:
        with _open_binary(path, compression) as fh:
            for linenum, raw in enumerate(fh):
                if not raw.strip():
                    continue  # blank lines are allowed, but still counted in line numbers
                where = f"{shown}, line {linenum + 1}"
                line = _decode_line(raw, where, linenum == 0)
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    hint = (
                        "; this looks like one JSON document spanning many lines, "
                        "convert it to JSON lines "
                        "(one object per line)"
                        if linenum == 0 and line.strip() in ("[", "{")
                        else "; fix or remove the line"
                    )
                    raise CorpusError(
                        f"{where}: not valid JSON ({exc.msg} at column {exc.colno}){hint}"
                    ) from None
                if not isinstance(obj, dict):
                    raise CorpusError(
                        f"{where}: expected a JSON object with a {text_field!r} field, got a "
                        f"{type(obj).__name__}; write one object per line"
                    )
                try:
                    text = obj.pop(text_field)
                except KeyError:
                    keys = ", ".join(repr(k) for k in list(obj)[:10]) or "none"
                    raise CorpusError(
                        f"{where}: the object has no {text_field!r} field (fields: {keys}); "
                        "pick the right field with text_field"
                    ) from None
                if not isinstance(text, str):
                    raise CorpusError(
                        f"{where}: field {text_field!r} is a {type(text).__name__}, not a string; "
                        "pick a text field with text_field"
                    )
                # Lone surrogates can only come from \\u escapes; check only then to keep the
                # common path fast. They have no UTF-8 form, so tokenizers would choke later.
                if b"\\u" in raw or b"\\U" in raw:
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError as exc:
                        raise CorpusError(
                            f"{where}: field {text_field!r} is not valid UTF-8 text "
                            f"({exc.reason} at "
                            f"character {exc.start}); remove the unpaired \\ud800-\\udfff escape"
                        ) from None
                yield Document(text=text, metadata=obj, path=shown, linenum=linenum)
    except _stream_errors() as exc:
        raise CorpusError(
            f"{shown}: read failed after line {linenum + 1} ({type(exc).__name__}: {exc}); "
            "the file may be truncated or corrupt, re-create or re-download it"
        ) from exc


def _read_text(path: Path, shown: str, compression: str, txt_mode: str) -> Iterator[Document]:
    """Documents of a text file: the whole file, or each non-empty line."""
    linenum = -1
    try:
        with _open_binary(path, compression) as fh:
            if txt_mode == "file":
                data = fh.read()
                if data.startswith(_UTF8_BOM):
                    data = data[len(_UTF8_BOM) :]
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    line = data.count(b"\n", 0, exc.start) + 1
                    raise CorpusError(
                        f"{shown}, line {line}: invalid UTF-8 ({exc.reason}); "
                        "re-encode the file as UTF-8"
                    ) from None
                yield Document(text=text, metadata={}, path=shown, linenum=0)
                return
            for linenum, raw in enumerate(fh):
                # Strip only the line terminator (\n or \r\n); other whitespace is content.
                if raw.endswith(b"\n"):
                    raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
                if not raw:
                    continue
                text = _decode_line(raw, f"{shown}, line {linenum + 1}", linenum == 0)
                if text:
                    yield Document(text=text, metadata={}, path=shown, linenum=linenum)
    except _stream_errors() as exc:
        raise CorpusError(
            f"{shown}: read failed after line {max(linenum, 0) + 1} ({type(exc).__name__}: {exc}); "
            "the file may be truncated or corrupt, re-create or re-download it"
        ) from exc


def _json_safe(value: Any) -> Any:
    """Convert a Python value from Arrow's ``to_pylist`` into something ``json.dumps`` accepts."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):  # map columns come back as lists of (key, value) tuples
        return [_json_safe(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            # Binary that is not text: base64 keeps it lossless and JSON-safe.
            return "base64:" + base64.b64encode(data).decode("ascii")
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (_dt.timedelta, decimal.Decimal)):
        return str(value)
    return str(value)


def _needs_conversion(arrow_type: Any) -> bool:
    """Whether values of this Arrow type may need :func:`_json_safe` (nested, binary, dates...)."""
    import pyarrow as pa

    t = pa.types
    simple = (
        t.is_null(arrow_type)
        or t.is_boolean(arrow_type)
        or t.is_integer(arrow_type)
        or t.is_floating(arrow_type)
        or t.is_string(arrow_type)
        or t.is_large_string(arrow_type)
    )
    return not simple


def _text_type(pa: Any, schema: Any, shown: str, text_field: str) -> bool:
    """Check that ``schema`` has a text column ``text_field``; whether it holds bytes."""
    if text_field not in schema.names:
        raise CorpusError(
            f"{shown}: no column {text_field!r} (columns: {', '.join(schema.names) or 'none'}); "
            "pick the text column with text_field"
        )
    text_type = schema.field(text_field).type
    t = pa.types
    is_binary = bool(t.is_binary(text_type) or t.is_large_binary(text_type))
    is_string_view = getattr(t, "is_string_view", lambda _: False)(text_type)
    if not (t.is_string(text_type) or t.is_large_string(text_type) or is_string_view
            or is_binary):
        raise CorpusError(
            f"{shown}: column {text_field!r} has type {text_type}, not string; "
            "pick a text column with text_field"
        )
    return is_binary


def _table_documents(pa: Any, batches: Iterator[Any], schema: Any, shown: str,
                     text_field: str) -> Iterator[Document]:
    """Documents of the rows of Arrow record ``batches`` (Parquet or Arrow IPC), one per row:
    the text column as text, every other column as metadata."""
    is_binary = _text_type(pa, schema, shown, text_field)
    meta_names = [name for name in schema.names if name != text_field]
    row = 0
    try:
        for batch in batches:
            texts = batch.column(text_field).to_pylist()
            columns: list[list[Any]] = []
            for name in meta_names:
                col = batch.column(name)
                values = col.to_pylist()
                columns.append(
                    [_json_safe(v) for v in values] if _needs_conversion(col.type) else values
                )
            for i, text in enumerate(texts):
                if text is None:
                    raise CorpusError(
                        f"{shown}, row {row + i + 1}: column {text_field!r} is null; "
                        "drop rows without text before indexing"
                    )
                if is_binary:
                    try:
                        text = text.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise CorpusError(
                            f"{shown}, row {row + i + 1}: column {text_field!r} is not valid UTF-8 "
                            f"({exc.reason}); store the text as UTF-8"
                        ) from None
                metadata = {
                    name: column[i] for name, column in zip(meta_names, columns, strict=True)
                }
                yield Document(text=text, metadata=metadata, path=shown, linenum=row + i)
            row += batch.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise CorpusError(
            f"{shown}: read failed after row {row} ({exc}); the file may be truncated or corrupt"
        ) from exc


def _read_parquet(path: Path, shown: str, text_field: str) -> Iterator[Document]:
    """Documents of a Parquet file, one per row, read in batches of 1024 rows."""
    pa = require("pyarrow", "parquet", f"reading the Parquet file {shown}")
    pq = require("pyarrow.parquet", "parquet", f"reading the Parquet file {shown}")

    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise CorpusError(
            f"{shown}: not a readable Parquet file ({exc}); check the file is complete"
        ) from exc
    yield from _table_documents(pa, pf.iter_batches(batch_size=_BATCH_ROWS), pf.schema_arrow,
                                shown, text_field)


def _sliced(batches: Iterator[Any]) -> Iterator[Any]:
    """``batches`` cut into batches of at most :data:`_BATCH_ROWS` rows (zero-copy slices),
    so a file written in huge batches is still converted a little at a time."""
    for batch in batches:
        for start in range(0, batch.num_rows, _BATCH_ROWS):
            yield batch.slice(start, _BATCH_ROWS)


def _read_arrow(path: Path, shown: str, text_field: str) -> Iterator[Document]:
    """Documents of an Arrow IPC file, one per row: the stream format that Hugging Face
    ``datasets`` writes (``data-00000-of-00001.arrow``, cache files) or the random-access
    file format (Feather v2); memory-mapped, read 1024 rows at a time."""
    pa = require("pyarrow", "parquet", f"reading the Arrow file {shown}")
    ipc = require("pyarrow.ipc", "parquet", f"reading the Arrow file {shown}")
    try:
        with pa.memory_map(str(path)) as source:
            if source.read(len(_ARROW_FILE_MAGIC)) == _ARROW_FILE_MAGIC:
                source.seek(0)
                file_reader = ipc.open_file(source)
                schema = file_reader.schema
                batches: Iterator[Any] = (file_reader.get_batch(i)
                                          for i in range(file_reader.num_record_batches))
            else:
                source.seek(0)
                stream_reader = ipc.open_stream(source)
                schema = stream_reader.schema
                batches = iter(stream_reader)
            yield from _table_documents(pa, _sliced(batches), schema, shown, text_field)
    except (OSError, pa.ArrowException) as exc:
        raise CorpusError(
            f"{shown}: not a readable Arrow IPC file ({exc}); check the file is complete"
        ) from exc


def iter_documents(
    path: str | Path,
    *,
    text_field: str = "text",
    txt_mode: Literal["file", "line"] = "file",
) -> Iterator[Document]:
    """Stream the documents of one corpus file.

    The file's format is chosen by its suffix (see :data:`SUPPORTED_SUFFIXES`). The path is checked
    when this function is called; parse errors surface while iterating.

    Args:
        path: the file; kept as given in :attr:`Document.path`.
        text_field: JSON field / Parquet or Arrow column holding the text; other fields become
            metadata.
        txt_mode: for ``.txt`` files, ``"file"`` makes the whole file one document, ``"line"``
            makes each non-empty line one document (without its line terminator).

    Raises:
        CorpusError: unsupported suffix, missing file, or (while iterating) malformed content.
        InvalidQueryError: ``txt_mode`` or ``text_field`` is invalid.
    """
    if txt_mode not in ("file", "line"):
        raise InvalidQueryError(f'txt_mode must be "file" or "line", got {txt_mode!r}')
    if not isinstance(text_field, str) or not text_field:
        raise InvalidQueryError(f"text_field must be a non-empty string, got {text_field!r}")
    shown = str(path)
    p = Path(path)
    base, compression = _split_suffix(p)
    if not p.exists():
        raise CorpusError(f"{shown}: no such file; check the path")
    if not p.is_file():
        raise CorpusError(
            f"{shown}: not a regular file; use expand_inputs() to list the files of a directory"
        )
    if base == ".parquet":
        return _read_parquet(p, shown, text_field)
    if base == ".arrow":
        return _read_arrow(p, shown, text_field)
    if base == ".txt":
        return _read_text(p, shown, compression, txt_mode)
    return _read_json_lines(p, shown, compression, text_field)


#: What Hugging Face ``datasets`` writes beside the data of a ``save_to_disk`` folder: the
#: state that lists the data files, and the description of a dataset dictionary's splits.
_DATASETS_STATE = "state.json"
_DATASETS_DICT = "dataset_dict.json"


def _read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing or not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _datasets_data_files(directory: Path) -> list[Path] | None:
    """The Arrow files of a Hugging Face ``datasets`` ``save_to_disk`` folder, as its
    ``state.json`` lists them; None when ``directory`` is not such a folder.

    Raises:
        CorpusError: ``state.json`` lists a file that is not there.
    """
    state = _read_json_object(directory / _DATASETS_STATE)
    entries = state.get("_data_files") if state is not None else None
    if not isinstance(entries, list):
        return None
    files = []
    for entry in entries:
        name = entry.get("filename") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not (directory / name).is_file():
            raise CorpusError(
                f"{directory / _DATASETS_STATE} lists the data file {name or entry!r}, which is "
                "not in the folder: the saved dataset is incomplete; save it again"
            )
        files.append(directory / name)
    return files


def _is_datasets_dict(directory: Path) -> bool:
    """Whether ``directory`` holds a ``datasets`` ``DatasetDict`` (``dataset_dict.json`` with
    its splits, each a ``save_to_disk`` folder below)."""
    info = _read_json_object(directory / _DATASETS_DICT)
    return info is not None and isinstance(info.get("splits"), list)


def _walk_directory(directory: Path) -> tuple[list[Path], list[Path]]:
    """Corpus files under ``directory``, recursively, and the other files met there.

    Hidden files and directories are passed over (not counted). In a ``datasets``
    ``save_to_disk`` folder the corpus files are the Arrow files its ``state.json`` lists;
    its JSON files describe the dataset and are skipped, like every unsupported file.
    """
    found: list[Path] = []
    skipped: list[Path] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        here = Path(root)
        data_files = _datasets_data_files(here)
        not_corpus = {_DATASETS_DICT} if _is_datasets_dict(here) else set()
        for name in files:
            if name.startswith("."):
                continue
            candidate = here / name
            if data_files is not None:
                corpus = candidate in data_files
            else:
                corpus = name not in not_corpus and _is_supported(candidate)
            (found if corpus else skipped).append(candidate)
    return found, skipped


@dataclass(frozen=True)
class CorpusFiles:
    """The corpus files that inputs name (sorted, each once) and the files met in their
    directories and glob matches that are not corpus files (``skipped``, sorted)."""

    files: list[Path]
    skipped: list[Path]


def find_corpus_files(inputs: Sequence[str | Path] | str | Path) -> CorpusFiles:
    """Expand input paths, glob patterns and directories into the corpus files they name.

    * an existing file is kept (its suffix must be supported);
    * a directory contributes every supported file below it, recursively (hidden entries
      passed over); a Hugging Face ``datasets`` ``save_to_disk`` folder (a ``Dataset``, or a
      ``DatasetDict`` of them) contributes the Arrow files its ``state.json`` lists;
    * a glob pattern (``*``, ``?``, ``[...]``; ``**`` recurses) contributes its supported
      matches, and matched directories are expanded as above.

    Files met in directories and glob matches that are not corpus files (other suffixes, a
    dataset folder's JSON description) are skipped and listed in ``skipped``. The same file
    reached twice (e.g. via a glob and by name) is listed once. Both lists are sorted so that
    builds are reproducible.

    Raises:
        CorpusError: no inputs, or an input names no corpus file.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if not inputs:
        raise CorpusError("no input files given; pass at least one file, directory or glob pattern")
    by_real: dict[Path, Path] = {}
    skipped: dict[Path, Path] = {}

    def add(candidates: list[Path], passed_over: list[Path]) -> None:
        for candidate in candidates:
            by_real.setdefault(candidate.resolve(), candidate)
        for other in passed_over:
            skipped.setdefault(other.resolve(), other)

    for item in inputs:
        shown = str(item)
        p = Path(item).expanduser()
        if p.is_file():
            _split_suffix(p)  # raises CorpusError naming the supported suffixes
            add([p], [])
        elif p.is_dir():
            files, others = _walk_directory(p)
            if not files:
                passed = f" ({len(others)} other file(s) skipped)" if others else ""
                raise CorpusError(
                    f"directory {shown!r} contains no files with a supported suffix "
                    f"({', '.join(SUPPORTED_SUFFIXES)}){passed}; check the path"
                )
            add(files, others)
        elif glob.has_magic(str(p)):
            matches = [Path(m) for m in glob.glob(str(p), recursive=True)]
            files = [m for m in matches if m.is_file() and _is_supported(m)]
            others = [m for m in matches if m.is_file() and not _is_supported(m)]
            for m in matches:
                if m.is_dir():
                    found, passed_over = _walk_directory(m)
                    files.extend(found)
                    others.extend(passed_over)
            if not files:
                detail = (
                    f"{len(matches)} path(s) matched but none is a supported file"
                    if matches
                    else "nothing matched"
                )
                raise CorpusError(
                    f"pattern {shown!r}: {detail}; supported suffixes are "
                    f"{', '.join(SUPPORTED_SUFFIXES)}"
                )
            add(files, others)
        else:
            raise CorpusError(
                f"input {shown!r} does not exist; check the path or quote the glob pattern"
            )
    # A file that one input names and another passes over (a glob's *.json beside a
    # dataset folder) is a corpus file.
    for real in by_real:
        skipped.pop(real, None)
    return CorpusFiles(files=sorted(by_real.values(), key=str),
                       skipped=sorted(skipped.values(), key=str))


def expand_inputs(inputs: Sequence[str | Path] | str | Path) -> list[Path]:
    """The corpus files that inputs name: :func:`find_corpus_files` without the skipped files.

    Raises:
        CorpusError: no inputs, or an input names no corpus file.
    """
    return find_corpus_files(inputs).files
