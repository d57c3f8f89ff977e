"""The query commands: ``count``, ``find``, ``prob``, ``infgram-prob``, ``ntd`` and
``infgram-ntd``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from ..errors import InvalidQueryError
from ._common import (
    _check_jsonl,
    _cnf_options,
    _cont_id,
    _dist_options,
    _emit,
    _emit_rows,
    _engine,
    _index_options,
    _is_cnf,
    _jsonl_option,
    _query,
    _query_options,
    _token_text,
    _with_tokens,
    main,
)

if TYPE_CHECKING:
    from ..engine import Engine
    from ..query.results import (
        InfGramNextTokenDist,
        InfGramProbResult,
        NextTokenDist,
        ProbResult,
    )


@main.command()
@_index_options()
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
@_index_options()
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


def _prob_payload(engine: Engine, prompt: list[int], cont_id: int,
                  res: ProbResult | InfGramProbResult, infgram: bool) -> dict[str, Any]:
    """What ``prob`` and ``infgram-prob`` print (and ``batch`` writes per line)."""
    payload: dict[str, Any] = {"token_ids": prompt, "cont_id": cont_id}
    if engine.tokenizer is not None:
        payload["cont_token"] = _token_text(engine, cont_id)
    payload.update(res.to_dict())
    if infgram:
        payload["suffix_ids"] = prompt[len(prompt) - res.suffix_len:]  # type: ignore[union-attr]
    return payload


def _ntd_payload(engine: Engine, prompt: list[int], res: NextTokenDist | InfGramNextTokenDist,
                 top: int | None, infgram: bool) -> dict[str, Any]:
    """What ``ntd`` and ``infgram-ntd`` print (and ``batch`` writes per line)."""
    d = res.to_dict()
    if infgram:
        d["suffix_ids"] = prompt[len(prompt) - res.suffix_len:]  # type: ignore[union-attr]
    return {"token_ids": prompt, **_with_tokens(engine, d, top)}


def _prob_command(name: str, infgram: bool) -> None:
    def command(index: tuple[Path, ...], tokenizer: str | None, token_dtype: str | None,
                pretty: bool, text: str | None, ids: str | None, cont: str) -> None:
        with _engine(index, tokenizer, token_dtype) as engine:
            prompt = _query(engine, text, ids, "prompt")
            cont_id = _cont_id(engine, cont, ids_given=ids is not None)
            res = (engine.infgram_prob if infgram else engine.prob)(prompt, cont_id)
            payload = _prob_payload(engine, prompt, cont_id, res, infgram)
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
    main.command(name)(_index_options()(_query_options("PROMPT")(cont_opt(command))))


def _ntd_command(name: str, infgram: bool) -> None:
    def command(index: tuple[Path, ...], tokenizer: str | None, token_dtype: str | None,
                pretty: bool, text: str | None, ids: str | None, max_support: int | None,
                top: int | None, jsonl: bool) -> None:
        _check_jsonl(jsonl, pretty=pretty)
        with _engine(index, tokenizer, token_dtype) as engine:
            prompt = _query(engine, text, ids, "prompt")
            res = (engine.infgram_ntd if infgram else engine.ntd)(prompt,
                                                                 max_support=max_support)
            payload = _ntd_payload(engine, prompt, res, top, infgram)
        if jsonl:
            _emit_rows(payload["next_tokens"])
        else:
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
    jsonl = _jsonl_option("next token (token_id, count, prob; token: its text)")
    main.command(name)(_index_options()(_query_options("PROMPT")(_dist_options(
        jsonl(command)))))


_prob_command("prob", infgram=False)
_prob_command("infgram-prob", infgram=True)
_ntd_command("ntd", infgram=False)
_ntd_command("infgram-ntd", infgram=True)


# ----------------------------------------------------------------------------- batch

BATCH_OPS = ("count", "prob", "ntd", "infgram-prob", "infgram-ntd")
_ITEM_KEYS = {"query", "query_ids"}
_CONT_KEYS = {"cont", "cont_id"}


@main.command()
@_index_options(pretty=False)
@click.argument("op", type=click.Choice(BATCH_OPS))
@click.option("--input", "source", type=click.File("r", encoding="utf-8"), default="-",
              metavar="FILE", help="JSON lines to answer (default: standard input).")
@_dist_options
@click.option("--chunk", type=click.IntRange(min=1), default=10_000, show_default=True,
              metavar="N", help="Queries per engine call (one kernel call per shard each).")
@click.option("--on-error", type=click.Choice(["stop", "report"]), default="stop",
              show_default=True, help="A bad line: stop with an error, or report it on its "
                                      "own output line and go on.")
def batch(index: tuple[Path, ...], tokenizer: str | None, token_dtype: str | None, op: str,
          source: IO[str], max_support: int | None, top: int | None, chunk: int,
          on_error: str) -> None:
    """Answer many queries of one kind OP (count, prob, ntd, infgram-prob, infgram-ntd).

    Reads one query per line: a JSON object {"query": TEXT} or {"query_ids": [1, 2]}, or just
    a JSON string (text) or array (ids); prob and infgram-prob also need "cont" (the text of
    one token) or "cont_id". Writes one JSON line per query, in input order: what the single
    command prints for it. Blank lines are skipped. The queries are answered --chunk at a time
    with the engine's batch calls (sorted for locality: many times the rate of one command
    per query).

    A bad line (not JSON, an id outside the vocabulary, a cont of two tokens, ...) stops the
    command with "error: line N ..." and exit status 1, after the answers of the chunks before
    it; with --on-error report its output line is {"line": N, "error": ..., "type": ...}
    instead, and the others are answered.

    \b
    Example:
      anygram batch count --index idx/ --input queries.jsonl > counts.jsonl
      printf '"natural language"\\n[110, 97]\\n' | anygram batch count --index idx/
      anygram batch prob --index idx/ --input pairs.jsonl  # {"query": "the", "cont": " cat"}
      anygram batch ntd --index idx/ --input prompts.jsonl --max-support 1000 --top 10
    """
    if op not in ("ntd", "infgram-ntd") and (max_support is not None or top is not None):
        raise click.UsageError("--max-support and --top are options of ntd and infgram-ntd")
    with _engine(index, tokenizer, token_dtype) as engine:
        for lines in _chunks(source, chunk):
            _emit_rows(_answer_chunk(engine, op, lines, max_support, top, on_error == "report"))


def _chunks(source: IO[str], size: int) -> Iterator[list[tuple[int, str]]]:
    """The non-blank lines of ``source`` with their numbers (from 1), ``size`` at a time."""
    lines: list[tuple[int, str]] = []
    for number, line in enumerate(source, 1):
        if line.strip():
            lines.append((number, line))
            if len(lines) == size:
                yield lines
                lines = []
    if lines:
        yield lines


def _answer_chunk(engine: Engine, op: str, lines: list[tuple[int, str]],
                  max_support: int | None, top: int | None, report: bool) -> list[Any]:
    """One output row per line: its answer or (``report``) its error; without ``report``
    the error of the first bad line is raised."""
    errors: dict[int, InvalidQueryError] = {}
    items: dict[int, tuple[Any, Any]] = {}
    for k, (number, line) in enumerate(lines):
        try:
            items[k] = _parse_line(engine, line, needs_cont=op.endswith("prob"))
        except InvalidQueryError as exc:
            errors[k] = _on_line(number, exc)
    while items:
        keys = list(items)
        try:
            answers = _run_batch(engine, op, [items[k] for k in keys], max_support, top)
        except InvalidQueryError as exc:
            if exc.item is None:
                raise
            k = keys[exc.item]
            errors[k] = _on_line(lines[k][0], exc, item=exc.item)
            del items[k]
            continue
        rows_of = dict(zip(keys, answers))
        break
    else:
        rows_of = {}
    if errors and not report:
        raise errors[min(errors)]
    return [rows_of[k] if k in rows_of else {"line": lines[k][0], "error": str(errors[k]),
                                             "type": type(errors[k]).__name__}
            for k in range(len(lines))]


def _parse_line(engine: Engine, line: str, needs_cont: bool) -> tuple[Any, Any]:
    """A line's query (token ids, maybe not yet checked) and cont id."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidQueryError(f"is not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        value = {"query" if isinstance(value, str) else "query_ids": value}
    allowed = _ITEM_KEYS | (_CONT_KEYS if needs_cont else set())
    if set(value) - allowed or len(set(value) & _ITEM_KEYS) != 1 or (
            needs_cont and len(set(value) & _CONT_KEYS) != 1):
        hint = ' and exactly one of "cont" (text) or "cont_id"' if needs_cont else ""
        raise InvalidQueryError(f"needs exactly one of \"query\" (text) or \"query_ids\"{hint}"
                                f", and nothing else; got {sorted(value)}")
    query: Any = value.get("query_ids")
    if "query" in value:
        if not isinstance(value["query"], str):
            raise InvalidQueryError(f"has a query that is not text: {value['query']!r}")
        query = engine.tokenize(value["query"])
    if not needs_cont:
        return query, None
    if "cont_id" in value:
        return query, value["cont_id"]
    if not isinstance(value["cont"], str):
        raise InvalidQueryError(f"has a cont that is not text: {value['cont']!r}")
    cont = engine.tokenize(value["cont"])
    if len(cont) != 1:
        raise InvalidQueryError(f"has cont {value['cont']!r} of {len(cont)} tokens {cont}, not "
                                "exactly one (or give cont_id)")
    return query, cont[0]


def _run_batch(engine: Engine, op: str, items: list[tuple[Any, Any]],
               max_support: int | None, top: int | None) -> list[dict[str, Any]]:
    """The engine's batch call of ``op`` over ``items``, as the single commands print them."""
    queries = [q for q, _ in items]
    if op == "count":
        return [{"token_ids": list(q), **r.to_dict()}
                for q, r in zip(queries, engine.count_many(queries))]
    if op in ("prob", "infgram-prob"):
        infgram = op == "infgram-prob"
        probs: list[ProbResult | InfGramProbResult] = [
            *(engine.infgram_prob_many(items) if infgram else engine.prob_many(items))]
        return [_prob_payload(engine, list(q), c, r, infgram)
                for (q, c), r in zip(items, probs)]
    if op == "infgram-ntd":
        return [_ntd_payload(engine, list(q), r, top, True) for q, r in zip(
            queries, engine.infgram_ntd_many(queries, max_support=max_support))]
    return [_ntd_payload(engine, list(q), r, top, False)
            for q, r in zip(queries, engine.ntd_many(queries, max_support=max_support))]


def _on_line(number: int, exc: InvalidQueryError,
             item: int | None = None) -> InvalidQueryError:
    """``exc`` (of the same type) as the error of line ``number``."""
    # The engine names a batch item by its place in the chunk ("queries[3] has ..."): the
    # user knows it by its line.
    message = str(exc) if item is None else re.sub(
        rf"\b(?:queries|prompts|pairs)\[{item}\]", "", str(exc)).strip()
    return type(exc)(f"line {number} {message}")
