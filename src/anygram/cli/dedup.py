"""``anygram dedup``: exact-substring dedup of an index's corpus, or its decontamination
against another index. Logic: ``anygram.tools.dedup``."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import _emit, _engine, main


@main.command("dedup")
@click.argument("index", type=click.Path(path_type=Path))
@click.option("--min-tokens", "min_tokens", type=click.IntRange(min=1), required=True,
              metavar="K", help="Window length: a window of K tokens that already occurred "
                                "earlier in the corpus is removed (the first occurrence "
                                "stays).")
@click.option("--against", type=click.Path(path_type=Path), default=None, metavar="IDX2",
              help="Instead: remove every window of K tokens that occurs in this other index "
                   "(e.g. of benchmarks), built with the same tokenizer.")
@click.option("--spans-out", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="Write the removed ranges as JSON lines {doc_id, start, end} (token "
                   "offsets inside the document, merged, sorted).")
@click.option("--corpus-out", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="Write the corpus without them as JSONL (its fields kept; taken-down "
                   "documents left out).")
@click.option("--text-field", default="text", show_default=True,
              help="The text's field in --corpus-out.")
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True,
              help="Most repeated windows listed in the report.")
@click.option("--pretty", is_flag=True, help="Indent the JSON output.")
def dedup(index: Path, min_tokens: int, against: Path | None, spans_out: Path | None,
          corpus_out: Path | None, text_field: str, top: int, pretty: bool) -> None:
    """Find every repeated span of at least K tokens in the index's corpus (Lee et al.'s
    exact-substring dedup), and print a report: spans, tokens and documents removed, and the
    most repeated windows with their counts and documents.

    What is removed: every window of K tokens whose same tokens already occurred earlier in
    corpus order (document order, then position), so the first occurrence of each repeated
    span is kept; documents never merge. Files are written atomically.

    \b
    Example:
      anygram dedup idx/ --min-tokens 50 --spans-out dups.jsonl --corpus-out clean.jsonl
      anygram dedup idx/ --min-tokens 13 --against bench-idx/ --corpus-out decontaminated.jsonl
    """
    from ..tools import dedup as td

    with _engine((index,), None, None) as engine:
        if against is None:
            dup = td.find_duplicates(engine, min_tokens)
        else:
            with _engine((against,), None, None) as other:
                dup = td.find_in(engine, other, min_tokens)
        if spans_out is not None:
            td.write_spans(dup, spans_out)
        if corpus_out is not None:
            td.write_corpus(dup, corpus_out, text_field)
        report = dup.report(top)
    _emit(report, pretty)
