"""The query commands: ``count``, ``find``, ``prob``, ``infgram-prob``, ``ntd`` and
``infgram-ntd``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

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
    main.command(name)(_index_options()(_query_options("PROMPT")(cont_opt(command))))


def _ntd_command(name: str, infgram: bool) -> None:
    def command(index: tuple[Path, ...], tokenizer: str | None, token_dtype: str | None,
                pretty: bool, text: str | None, ids: str | None, max_support: int | None,
                top: int | None, jsonl: bool) -> None:
        _check_jsonl(jsonl, pretty=pretty)
        with _engine(index, tokenizer, token_dtype) as engine:
            prompt = _query(engine, text, ids, "prompt")
            if infgram:
                res = engine.infgram_ntd(prompt, max_support=max_support)
                d = res.to_dict()
                d["suffix_ids"] = prompt[len(prompt) - res.suffix_len:]
            else:
                d = engine.ntd(prompt, max_support=max_support).to_dict()
            payload = {"token_ids": prompt, **_with_tokens(engine, d, top)}
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
