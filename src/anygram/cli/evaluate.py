"""``anygram eval`` (the ∞-gram on held-out text, alone or mixed with a causal LM) and
``anygram color`` (a text coloured by ∞-gram suffix length). Logic: ``anygram.tools.evaluation``
and ``anygram.tools.render``."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import (
    _check_jsonl,
    _emit,
    _emit_rows,
    _engine,
    _index_options,
    _jsonl_option,
    _query,
    _query_options,
    main,
)


@main.command("eval")
@_index_options(tokenizer="Tokenizer of the held-out texts (default: the one the index was "
                          "built with).")
@click.option("--texts", "texts", required=True, metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Held-out texts: JSONL (a text field), .txt (one per line) or Parquet.")
@click.option("--text-field", default="text", show_default=True, help="JSON field of the text.")
@click.option("--lm", "lm", default=None, metavar="DIR",
              help="A saved Hugging Face causal LM using the index's tokenizer (needs the "
                   "'lm' extra): report its perplexity alone and mixed with the ∞-gram.")
@click.option("--dev-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.5, show_default=True, help="Share of the texts that fit the weights.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the dev split.")
@click.option("--bos-id", type=click.IntRange(min=0), default=None, metavar="ID",
              help="Token the LM sees before each text (then the first token is scored too).")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), default=None,
              metavar="PNG", help="Write agreement vs suffix length and the histogram "
                                  "(needs the 'plots' extra).")
@click.option("--html", "html_path", type=click.Path(path_type=Path), default=None,
              metavar="HTML", help="Write the texts coloured by suffix length.")
@_jsonl_option("token of every text (instead of the summary: text, dev, position, "
               "token_id, suffix_len, prob, argmax, agree, sparse, scored, lm_logprob)")
def eval_(index: tuple[Path, ...], tokenizer: str | None, token_dtype: str | None,
          pretty: bool, texts: Path, text_field: str, lm: str | None, dev_fraction: float,
          seed: int, bos_id: int | None, plot_path: Path | None, html_path: Path | None,
          jsonl: bool) -> None:
    """Evaluate the ∞-gram on held-out texts; with --lm, interpolate with a neural LM.

    Prints a JSON summary: next-token agreement (overall, sparse/dense, by suffix length),
    the suffix-length histogram, coverage; with --lm, the weights fitted on a dev split and
    the perplexity of the LM alone and mixed on both splits.

    \b
    Example:
      anygram eval --index idx/ --texts held_out.jsonl --plot eval.png --html eval.html
      anygram eval --index idx/ --texts held_out.jsonl --lm path/to/gpt2-dir
      anygram eval --index idx/ --texts held_out.jsonl --jsonl > tokens.jsonl
    """
    from ..query.tables import rows
    from ..tools import evaluation, render

    _check_jsonl(jsonl, pretty=pretty)
    with _engine(index, tokenizer, token_dtype) as engine:
        docs = evaluation.read_texts(texts, text_field)
        result = evaluation.evaluate(engine, docs, lm=lm, dev_fraction=dev_fraction,
                                     seed=seed, bos_id=bos_id)
        if plot_path is not None:
            render.plot(result, plot_path)
        if html_path is not None:
            html_path.write_text(render.eval_html(engine, result), encoding="utf-8")
    if jsonl:
        _emit_rows(rows(result.columns("tokens")))
    else:
        _emit(result.to_dict(), pretty)


@main.command("color")
@_index_options(pretty=False)
@_query_options("TEXT")
@click.option("--color/--no-color", "force", default=None,
              help="Force colours on or off (default: on for a terminal).")
def color(index: tuple[Path, ...], tokenizer: str | None, token_dtype: str | None,
          text: str | None, ids: str | None, force: bool | None) -> None:
    """Print TEXT with each token coloured by its ∞-gram suffix length (ANSI colours).

    \b
    Example:
      anygram color --index idx/ "the United States of America"
    """
    from ..tools import render

    with _engine(index, tokenizer, token_dtype) as engine:
        tokens = _query(engine, text, ids, "text")
        r = engine.infgram_text(tokens)
        pieces = render.token_pieces(engine, tokens) if engine.tokenizer is not None \
            else [f"[{i}]" for i in tokens]
        click.echo(render.ansi(pieces, r.suffix_len.tolist()), color=force)
