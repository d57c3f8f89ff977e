"""The document commands: ``search`` (hits with their text in context) and ``get-doc``."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..engine import Engine
    from ..query.results import DocWindow

from ._common import (
    _check_jsonl,
    _cnf_options,
    _emit,
    _emit_rows,
    _engine,
    _index_options,
    _is_cnf,
    _jsonl_option,
    _query,
    _query_options,
    main,
)


def _flat(text: str) -> str:
    """Text on one line: newlines and tabs shown as spaces."""
    return re.sub(r"[\r\n\t]+", " ", text)


def _doc_header(w: DocWindow) -> str:
    """``doc 12 · shard 0 · pos 345 · corpus.jsonl:11 · title``: where a window comes from."""
    parts = [f"doc {w.doc_id}", f"shard {w.shard}"]
    if w.match_pos is not None:
        parts.append(f"pos {w.match_pos}")
    parts.append(f"{w.doc_len} tokens")
    meta = w.metadata or {}
    if "path" in meta:
        parts.append(f"{Path(str(meta['path'])).name}:{meta.get('linenum', '?')}")
    fields = meta.get("metadata")
    if isinstance(fields, dict):
        for key in ("title", "id", "url"):
            if key in fields:
                parts.append(f"{key}: {fields[key]}")
                break
    if w.removed:
        parts.append("[taken down]")
    return " · ".join(parts)


def _show(engine: Engine, ids: list[int]) -> str:
    """Decoded text of ``ids`` on one line, or the ids themselves without a tokenizer."""
    if engine.tokenizer is None:
        return " ".join(map(str, ids))
    return _flat(engine.decode(ids))


def _window_text(engine: Engine, w: DocWindow, color: bool) -> str:
    """The window's text with its match marked: bold on a terminal, ``>>>match<<<`` otherwise.

    The three parts are decoded separately, so a character cut by the match edge shows as
    U+FFFD on both sides.
    """
    ids = w.token_ids
    if w.match_offset is None:
        body = _show(engine, ids)
    else:
        a, b = w.match_offset, w.match_offset + w.match_len
        match = _show(engine, ids[a:b])
        match = click.style(match, bold=True, fg="red") if color else f">>>{match}<<<"
        sep = "" if engine.tokenizer is not None else " "
        body = sep.join(x for x in (_show(engine, ids[:a]), match, _show(engine, ids[b:])) if x)
    return ("… " if w.start > 0 else "") + body + (" …" if w.end < w.doc_len else "")


@main.command()
@_index_options()
@_query_options("TEXT")
@click.option("--max-docs", type=click.IntRange(min=0), default=10, show_default=True,
              metavar="N", help="Hits to show.")
@click.option("--order", type=click.Choice(["position", "random", "rank"]),
              default="position", show_default=True,
              help="Corpus order, a seeded random order, or suffix-array order.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of --order random.")
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True,
              metavar="K", help="Skip the first K occurrences (paging).")
@click.option("--window", type=click.IntRange(min=0), default=None, metavar="N",
              help="Tokens of context on each side of a match (default 100).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_jsonl_option("hit (its document window)")
@_cnf_options
def search(index: tuple[Path, ...], tokenizer: str | None, token_dtype: str | None,
           pretty: bool, text: str | None, ids: str | None, max_docs: int, order: str,
           seed: int, offset: int, window: int | None, as_json: bool, jsonl: bool,
           max_diff_tokens: int, max_clause_freq: int) -> None:
    """Find the documents where TEXT (or token ids) occurs, with the match in context.

    Prints the exact number of occurrences, then one hit per occurrence: where it is
    (document, shard, position, source file and line, title) and its window of text with
    the match marked. Pages never repeat an occurrence: continue with --offset. TEXT may
    combine phrases with AND / OR (see `anygram count --help`); hits are then the matches.

    \b
    Example:
      anygram search --index idx/ "natural language" --max-docs 5
      anygram search --index idx/ " the United States" --order random --seed 7 --window 20
      anygram search --index idx/ --ids 464,1578 --offset 10 --json --pretty
      anygram search --index idx/ "Paris AND France OR French" --max-diff-tokens 30
      anygram search --index idx/ "natural language" --max-docs 1000 --jsonl > hits.jsonl
    """
    _check_jsonl(jsonl, as_json, pretty)
    with _engine(index, tokenizer, token_dtype) as engine:
        if _is_cnf(text) and ids is None:
            cnf = engine.search_docs_cnf(
                text, max_docs=max_docs, offset=offset, seed=seed, max_ctx_len=window,
                order="random" if order == "random" else "position",
                max_diff_tokens=max_diff_tokens, max_clause_freq=max_clause_freq)
            if as_json:
                _emit({"query": text, **cnf.to_dict()}, pretty)
                return
            res: Any = cnf
            windows = [h.window for h in cnf.hits if h.window is not None]
        else:
            q = _query(engine, text, ids, "query")
            res = engine.search_docs(q, max_docs=max_docs, offset=offset,
                                     order=order,  # type: ignore[arg-type]  # a click.Choice
                                     seed=seed, max_ctx_len=window)
            if as_json:
                _emit({"token_ids": q, **res.to_dict()}, pretty)
                return
            windows = list(res.hits)
        if jsonl:
            _emit_rows(w.to_dict() for w in windows)
            if res.next_offset is not None:  # the rows are the hits: paging goes to stderr
                click.echo(f"more: --offset {res.next_offset}", err=True)
            return
        color = sys.stdout.isatty()
        shown = (f"; hits {offset + 1}-{offset + len(res.hits)}" if res.hits
                 else "; no hits on this page")
        seeded = f", seed {seed}" if order == "random" else ""
        approx = " (estimated)" if getattr(res, "approx", False) else ""
        click.echo(f"{res.count:,} occurrence(s){approx}{shown} (order {order}{seeded})")
        for w in windows:
            click.echo("")
            click.echo(_doc_header(w))
            click.echo("  " + _window_text(engine, w, color))
        if res.next_offset is not None:
            click.echo(f"\nmore: --offset {res.next_offset}")


@main.command("get-doc")
@_index_options(tokenizer="Tokenizer that decodes the document's text (default: the one "
                          "the index was built with).")
@click.argument("doc_ids", nargs=-1, required=True, type=int, metavar="DOC_ID...")
@click.option("--max-tokens", type=click.IntRange(min=0), default=None, metavar="N",
              help="Show only each document's first N tokens.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the document as JSON (several: a list of them).")
@_jsonl_option("document")
def get_doc(index: tuple[Path, ...], tokenizer: str | None, token_dtype: str | None,
            pretty: bool, doc_ids: tuple[int, ...], max_tokens: int | None, as_json: bool,
            jsonl: bool) -> None:
    """Show documents DOC_ID... (global numbers, 0-based): their source, metadata and text.

    \b
    Example:
      anygram get-doc --index idx/ 1234
      anygram get-doc --index idx/ 1234 --max-tokens 50 --json --pretty
      anygram get-doc --index idx/ 3 14 15 92 --jsonl
    """
    _check_jsonl(jsonl, as_json, pretty)
    with _engine(index, tokenizer, token_dtype) as engine:
        docs = engine.get_docs(list(doc_ids), max_tokens=max_tokens)
        if jsonl:
            _emit_rows(doc.to_dict() for doc in docs)
            return
        if as_json:
            _emit(docs[0].to_dict() if len(docs) == 1 else [d.to_dict() for d in docs], pretty)
            return
        for k, doc in enumerate(docs):
            if k:
                click.echo("")
            _show_doc(engine, doc)


def _show_doc(engine: Engine, doc: DocWindow) -> None:
    """One document as ``get-doc`` prints it: where from, its metadata, its text."""
    click.echo(_doc_header(doc))
    if doc.metadata and isinstance(doc.metadata.get("metadata"), dict):
        for key, value in doc.metadata["metadata"].items():
            click.echo(f"  {key}: {json.dumps(value, ensure_ascii=False)}")
    click.echo("")
    body = (engine.decode(doc.token_ids) if engine.tokenizer is not None
            else " ".join(map(str, doc.token_ids)))
    click.echo(body)
    if doc.end < doc.doc_len:
        click.echo(f"… ({doc.end} of {doc.doc_len} tokens)")
