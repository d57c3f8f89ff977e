"""``anygram build`` and ``anygram info``: make an index and describe one."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from ..index.format import DEFAULT_SAMPLE_STRIDE
from ._common import _emit, _engine, _index_options, main


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUTS...")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), metavar="DIR",
              help="Index directory to create.")
@click.option("--tokenizer", default="bytes", show_default=True, metavar="bytes|PATH",
              help="'bytes' (UTF-8 bytes as ids), or a tokenizer.json / *.tiktoken / "
                   "sentencepiece *.model file.")
@click.option("--shard-tokens", type=click.IntRange(min=1), default=None, metavar="N",
              help="Token positions per shard (default: what fits in 60% of RAM).")
@click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="Tokenizer processes (default: all cores).")
@click.option("--text-field", default="text", show_default=True,
              help="JSON field / Parquet column holding the text.")
@click.option("--txt-mode", type=click.Choice(["file", "line"]), default="file",
              show_default=True, help="A .txt file is one document, or one per line.")
@click.option("--no-metadata", is_flag=True,
              help="Do not store the documents' other fields, path and line number.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted build (same inputs and options) after its last "
                   "finished shard.")
@click.option("--overwrite", is_flag=True, help="Replace an existing index at --out.")
@click.option("--eos-id", type=click.IntRange(min=0), default=None, metavar="N",
              help="Id recorded as end-of-document (default: the tokenizer's).")
@click.option("--sample-stride", type=click.IntRange(min=1), default=DEFAULT_SAMPLE_STRIDE,
              show_default=True, metavar="N",
              help="Keep every N-th suffix in each shard's search sample (~25 bytes each, "
                   "held in RAM by a searching process: fewer disk reads per query).")
@click.option("--no-sample-index", is_flag=True,
              help="Write no search sample (one is built on the index's first use).")
@click.option("--quiet", "-q", is_flag=True,
              help="No progress on stderr (by default: each phase of each shard).")
def build(inputs: tuple[str, ...], out: Path, tokenizer: str, shard_tokens: int | None,
          workers: int | None, text_field: str, txt_mode: str, no_metadata: bool,
          resume: bool, overwrite: bool, eos_id: int | None, sample_stride: int,
          no_sample_index: bool, quiet: bool) -> None:
    """Build an index over corpus files, directories or glob patterns.

    Reads .jsonl/.json/.ndjson (optionally .gz/.zst), .txt and .parquet files. Prints a
    one-line JSON summary (shards, docs, tokens, seconds) when done.

    \b
    Example:
      anygram build corpus.jsonl --out idx/
      anygram build 'data/*.jsonl.zst' --out idx/ --tokenizer gpt2.tiktoken --workers 4
      anygram build notes/ --out idx/ --txt-mode line --no-metadata --overwrite
    """
    from ..index.build import build_index

    started = time.perf_counter()
    try:
        manifest = build_index(list(inputs), out, tokenizer=tokenizer,
                               shard_tokens=shard_tokens, workers=workers,
                               text_field=text_field, txt_mode=txt_mode,
                               metadata=not no_metadata, resume=resume, overwrite=overwrite,
                               eos_id=eos_id, progress=not quiet,
                               sample_stride=0 if no_sample_index else sample_stride)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: the same command with --resume continues after the last "
                   "finished shard", err=True)
        sys.exit(130)
    _emit({"index": str(out), "shards": len(manifest.shards), "docs": manifest.num_docs,
           "tokens": manifest.num_tokens,
           "token_dtype": {1: "u8", 2: "u16", 4: "u32"}[manifest.token_width],
           "seconds": round(time.perf_counter() - started, 3)})


@main.command()
@_index_options(tokenizer=None)
def info(index: tuple[Path, ...], token_dtype: str | None, pretty: bool) -> None:
    """Describe an index: token type, vocabulary, tokenizer, shards and totals.

    \b
    Example:
      anygram info --index idx/ --pretty
    """
    from ..index.format import MANIFEST_NAME, read_manifest

    with _engine(index, None, token_dtype) as engine:
        manifest = (read_manifest(index[0])
                    if len(index) == 1 and (index[0] / MANIFEST_NAME).is_file() else None)
        tok_spec = (manifest.tokenizer if manifest is not None
                    else engine.tokenizer.spec() if engine.tokenizer else None)
        payload: dict[str, Any] = {
            "index": [str(p) for p in index] if len(index) > 1 else str(index[0]),
            "token_dtype": engine.token_dtype,
            "vocab_size": engine.vocab_size,
            "eos_id": engine.eos_id,
            "tokenizer": tok_spec,
            "num_shards": engine.num_shards,
            "num_docs": engine.num_docs,
            "num_tokens": engine.num_tokens,
            "shards": [{"name": s.name, "directory": str(s.directory), "docs": s.num_docs,
                        "tokens": s.num_tokens, "ptr_width": s.ptr_width}
                       for s in engine.shards],
        }
        if manifest is not None:
            payload.update(has_metadata=manifest.has_metadata, created_by=manifest.created_by,
                           build=manifest.build)
    _emit(payload, pretty)
