"""``anygram build`` and ``anygram info``: make an index and describe one."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from ..index.format import (
    DEFAULT_NTD_THRESHOLD,
    DEFAULT_SAMPLE_STRIDE,
    DTYPE_OF_WIDTH,
    PLACEMENTS,
    Manifest,
    Placement,
)
from ._common import F, _emit, _engine, _index_options, main

#: Options of a build from text that a build from token ids has no use for, and the other way
#: round: giving one with the other build is a usage error, not a silent no-op.
_TEXT_ONLY = ("workers", "text_field", "txt_mode", "no_metadata", "ray_address",
              "placement")
_IDS_ONLY = ("vocab_size", "ids_dtype")


def _given(ctx: click.Context, names: tuple[str, ...]) -> list[str]:
    """The options among ``names`` that the user typed, as typed (``--text-field``)."""
    typed = []
    for param in ctx.command.params:
        if param.name in names and ctx.get_parameter_source(param.name) \
                is not click.core.ParameterSource.DEFAULT:
            typed.append(max(param.opts, key=len))
    return typed


def _reading_options(f: F) -> F:
    """``--workers``, ``--text-field``, ``--txt-mode``: how a build (or an add) reads and
    tokenizes its inputs."""
    f = click.option("--txt-mode", type=click.Choice(["file", "line"]), default="file",
                     show_default=True,
                     help="A .txt file is one document, or one per line.")(f)
    f = click.option("--text-field", default="text", show_default=True,
                     help="JSON field / Parquet or Arrow column holding the text.")(f)
    return click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
                        help="Tokenizer processes (default: all cores).")(f)


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUTS...")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), metavar="DIR",
              help="Index directory to create.")
@click.option("--tokenizer", default=None, metavar="bytes|PATH",
              help="'bytes' (UTF-8 bytes as ids; the default), or a tokenizer.json / "
                   "*.tiktoken / sentencepiece *.model file. With --from-ids: the tokenizer "
                   "the ids were made with, recorded so that text queries work.")
@click.option("--from-ids", "from_ids", is_flag=True,
              help="INPUTS are pre-tokenized files (nanoGPT train.bin, Dolma/OLMo .npy): "
                   "flat arrays of ids with --eos-id ending each document.")
@click.option("--vocab-size", type=click.IntRange(min=1), default=None, metavar="V",
              help="With --from-ids (required): ids are 0..V-1.")
@click.option("--ids-dtype", type=click.Choice(["u8", "u16", "u32"]), default=None,
              help="With --from-ids: the id type of raw files (default: u16 when V <= 65536, "
                   "else u32); a .npy with a header has its own.")
@click.option("--shard-tokens", type=click.IntRange(min=1), default=None, metavar="N",
              help="Token positions per shard (default: what fits in 60% of RAM).")
@_reading_options
@click.option("--no-metadata", is_flag=True,
              help="Do not store the documents' other fields, path and line number.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted build (same inputs and options) after its last "
                   "finished shard.")
@click.option("--overwrite", is_flag=True, help="Replace an existing index at --out.")
@click.option("--eos-id", type=click.IntRange(min=0), default=None, metavar="N",
              help="Id recorded as end-of-document (default: the tokenizer's). With "
                   "--from-ids (required): the id that ends each document in the files.")
@click.option("--sample-stride", type=click.IntRange(min=1), default=DEFAULT_SAMPLE_STRIDE,
              show_default=True, metavar="N",
              help="Keep every N-th suffix in each shard's search sample (~25 bytes each, "
                   "held in RAM by a searching process: fewer disk reads per query).")
@click.option("--no-sample-index", is_flag=True,
              help="Write no search sample (one is built on the index's first use).")
@click.option("--ntd-threshold", type=click.IntRange(min=1), default=DEFAULT_NTD_THRESHOLD,
              show_default=True, metavar="N",
              help="Keep in each shard's next-token table the exact next-token counts of every "
                   "1- and 2-token prompt occurring at least N times, so that their exact ntd "
                   "reads no suffix array (~0.4 bytes a token at 256, ~0.6 at 64).")
@click.option("--no-ntd-table", is_flag=True,
              help="Write no next-token table (one is built on the index's first exact ntd).")
@click.option("--ray", "ray_address", default=None, metavar="ADDRESS",
              help="Tokenize and sort on the Ray cluster at ADDRESS ('auto': the one started "
                   "on this machine; pip install 'anygram[ray]'), with --out and the "
                   "tokenizer at the same path on every node. The index is the same as a "
                   "local build's. See docs/cluster.md.")
@click.option("--placement", type=click.Choice(PLACEMENTS), default="shared",
              show_default=True,
              help="With --ray, where the shards are kept: 'shared', in --out as every node "
                   "sees it (a shared filesystem); 'label', on the local disks of the nodes "
                   "labelled anygram-node=<name>, round robin, each under --out's path on "
                   "its node, the manifest naming each shard's node.")
@click.option("--quiet", "-q", is_flag=True,
              help="No progress on stderr (by default: each phase of each shard).")
@click.pass_context
def build(ctx: click.Context, inputs: tuple[str, ...], out: Path, tokenizer: str | None,
          from_ids: bool, vocab_size: int | None, ids_dtype: str | None,
          shard_tokens: int | None, workers: int | None, text_field: str, txt_mode: str,
          no_metadata: bool, resume: bool, overwrite: bool, eos_id: int | None,
          sample_stride: int, no_sample_index: bool, ntd_threshold: int, no_ntd_table: bool,
          ray_address: str | None, placement: Placement, quiet: bool) -> None:
    """Build an index over corpus files, directories or glob patterns.

    Reads .jsonl/.json/.ndjson (optionally .gz/.zst), .txt, .parquet and .arrow files, and
    Hugging Face datasets folders (save_to_disk); files in directories that are not corpus
    files are skipped and counted. With --from-ids, INPUTS are files of token ids instead.
    Prints a one-line JSON summary (shards, docs, tokens, seconds) when done.

    \b
    Example:
      anygram build corpus.jsonl --out idx/
      anygram build 'data/*.jsonl.zst' --out idx/ --tokenizer gpt2.tiktoken --workers 4
      anygram build notes/ --out idx/ --txt-mode line --no-metadata --overwrite
      anygram build saved_dataset/ --out idx/ --text-field content
      anygram build /shared/corpus/ --out /shared/idx/ --ray auto --shard-tokens 1000000000
      anygram build corpus/ --out /data/idx/ --ray auto --placement label
      anygram build --from-ids train.bin --out idx/ --eos-id 50256 --vocab-size 50257 \\
          --tokenizer gpt2.tiktoken
    """
    from ..index.build import build_index, build_index_from_token_files

    started = time.perf_counter()
    sidecars = {"sample_stride": 0 if no_sample_index else sample_stride,
                "ntd_threshold": 0 if no_ntd_table else ntd_threshold}
    try:
        if from_ids:
            misplaced = _given(ctx, _TEXT_ONLY)
            if misplaced:
                raise click.UsageError(f"{', '.join(misplaced)}: not for --from-ids (the "
                                       "files hold token ids, not text)")
            if eos_id is None or vocab_size is None:
                raise click.UsageError("--from-ids needs --eos-id (the id that ends each "
                                       "document) and --vocab-size")
            manifest = build_index_from_token_files(
                [Path(p) for p in inputs], out, eos_id=eos_id, vocab_size=vocab_size,
                dtype=ids_dtype, tokenizer=tokenizer, shard_tokens=shard_tokens,
                resume=resume, overwrite=overwrite, progress=not quiet, **sidecars)
        else:
            misplaced = _given(ctx, _IDS_ONLY)
            if misplaced:
                raise click.UsageError(f"{', '.join(misplaced)}: only with --from-ids")
            manifest = build_index(list(inputs), out, tokenizer=tokenizer or "bytes",
                                   shard_tokens=shard_tokens, workers=workers,
                                   text_field=text_field, txt_mode=txt_mode,
                                   metadata=not no_metadata, resume=resume,
                                   overwrite=overwrite, eos_id=eos_id, progress=not quiet,
                                   ray_address=ray_address, placement=placement,
                                   **sidecars)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: the same command with --resume continues after the last "
                   "finished shard", err=True)
        sys.exit(130)
    summary: dict[str, Any] = {
        "index": str(out), "shards": len(manifest.shards), "docs": manifest.num_docs,
        "tokens": manifest.num_tokens,
        "token_dtype": {1: "u8", 2: "u16", 4: "u32"}[manifest.token_width],
        "seconds": round(time.perf_counter() - started, 3)}
    if not from_ids:
        summary["skipped_files"] = manifest.build.get("skipped_files", 0)
    _emit(summary)


@main.command("add")
@click.argument("index", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True)
@click.option("--shard-tokens", type=click.IntRange(min=1), default=None, metavar="N",
              help="Token positions per new shard (default: as a build's).")
@_reading_options
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
def add(index: Path, inputs: tuple[str, ...], shard_tokens: int | None, workers: int | None,
        text_field: str, txt_mode: str, quiet: bool) -> None:
    """Add the documents of INPUTS to the index at INDEX, as new shards.

    They are tokenized with the index's tokenizer and get the next document ids; the index's
    other documents, their ids and its takedowns are unchanged. Processes that opened the
    index before keep seeing it as it was; those that open it after see the new documents.
    Killed at any moment, the index is as it was before or as it is after. Prints a one-line
    JSON summary.

    \b
    Example:
      anygram add idx/ more.jsonl 'crawl-2026-12/*.jsonl.zst'
    """
    from ..index.grow import add_documents

    started = time.perf_counter()
    manifest = add_documents(index, list(inputs), shard_tokens=shard_tokens, workers=workers,
                             text_field=text_field, txt_mode=txt_mode, progress=not quiet)
    added = manifest.build["added"][-1]
    _emit({"index": str(index), "shards": len(manifest.shards),
           "added_shards": added["shards"], "docs": manifest.num_docs,
           "added_docs": added["docs"], "first_added_doc_id": manifest.num_docs - added["docs"],
           "tokens": manifest.num_tokens, "seconds": round(time.perf_counter() - started, 3)})


@main.command("compact")
@click.argument("index", type=click.Path(path_type=Path))
@click.option("--shard-tokens", type=click.IntRange(min=1), default=None, metavar="N",
              help="Token positions per merged shard at most (default: as a build's).")
def compact(index: Path, shard_tokens: int | None) -> None:
    """Merge runs of small consecutive shards of INDEX into larger ones.

    Every answer and every document id stays the same. The compacted index is made beside
    it and exchanged with it in one atomic step: killed at any moment, the index is the old
    one or the new one. Prints a one-line JSON summary.

    \b
    Example:
      anygram compact idx/ --shard-tokens 1000000000
    """
    from ..index.grow import compact as compact_index

    started = time.perf_counter()
    manifest = compact_index(index, shard_tokens=shard_tokens)
    _emit({"index": str(index), "shards": len(manifest.shards), "docs": manifest.num_docs,
           "tokens": manifest.num_tokens, "seconds": round(time.perf_counter() - started, 3)})


@main.command()
@_index_options(tokenizer=None)
def info(index: tuple[Path, ...], token_dtype: str | None, pretty: bool) -> None:
    """Describe an index: token type, vocabulary, tokenizer, shards and totals.

    \b
    Example:
      anygram info --index idx/ --pretty
    """
    from ..index.format import MANIFEST_NAME, read_manifest

    manifest = (read_manifest(index[0])
                if len(index) == 1 and (index[0] / MANIFEST_NAME).is_file() else None)
    if manifest is not None and any(s.node is not None for s in manifest.shards):
        _emit(_node_local_info(index[0], manifest), pretty)
        return
    with _engine(index, None, token_dtype) as engine:
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


def _node_local_info(index: Path, manifest: Manifest) -> dict[str, Any]:
    """What ``info`` says of an index whose shards are kept on the nodes of a cluster
    (``build --placement label``), from its manifest: this machine may hold none of them."""
    return {
        "index": str(index), "token_dtype": DTYPE_OF_WIDTH[manifest.token_width],
        "vocab_size": manifest.vocab_size, "eos_id": manifest.eos_id,
        "tokenizer": manifest.tokenizer, "num_shards": len(manifest.shards),
        "num_docs": manifest.num_docs, "num_tokens": manifest.num_tokens,
        "shards": [{"name": s.name, "directory": str(index), "docs": s.num_docs,
                    "tokens": s.num_tokens, "ptr_width": s.ptr_width, "node": s.node}
                   for s in manifest.shards],
        "has_metadata": manifest.has_metadata, "created_by": manifest.created_by,
        "build": manifest.build}
