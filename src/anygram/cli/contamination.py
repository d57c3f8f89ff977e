"""``anygram contamination``: how much of each benchmark example occurs verbatim in an index.
Logic: ``anygram.tools.contamination`` (and ``anygram.tools.render`` for the pictures)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import click

from ._common import _emit, _emit_rows, _engine, _index_options, main

_CSV_COLUMNS = ("benchmark", "example", "tokens", "longest_match", "longest_at", "coverage",
                "count", "docs")


@main.command("contamination")
@_index_options(tokenizer="Tokenizer of the benchmarks (default: the one the index was "
                          "built with).")
@click.argument("benchmarks", nargs=-1, required=True, metavar="BENCH...",
                type=click.Path(exists=True, path_type=Path))
@click.option("--text-field", "text_fields", multiple=True, metavar="FIELD",
              help="Field of an example's text (repeat it: the fields are joined by a newline, "
                   "e.g. --text-field question --text-field answer). Default: text.")
@click.option("-n", "n", type=click.IntRange(min=1), default=13, show_default=True,
              help="Window length: a token is covered when some N-token window of its "
                   "example holding it occurs in the index.")
@click.option("--max-docs", type=click.IntRange(min=0), default=5, show_default=True,
              help="Documents named per example (those holding its longest match).")
@click.option("--json", "--jsonl", "as_rows", is_flag=True,
              help="Print one JSON object per example, in input order (benchmark, example, "
                   "tokens, longest_match, longest_at, coverage, covered, count, docs) "
                   "instead of the summary.")
@click.option("--csv", "as_csv", is_flag=True,
              help="Print one CSV row per example instead of the summary.")
@click.option("--html", "html_path", type=click.Path(path_type=Path), default=None,
              metavar="HTML", help="Write a report: each example with its covered tokens "
                                   "marked.")
@click.option("--web", default=None, metavar="URL",
              help="With --html: this index's web page (e.g. "
                   "'http://localhost:8000/?index=idx'), linked from each longest match.")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), default=None,
              metavar="PNG", help="Write the coverage histograms (needs the 'plots' extra).")
def contamination(index: tuple[Path, ...], tokenizer: str | None, token_dtype: str | None,
                  pretty: bool, benchmarks: tuple[Path, ...], text_fields: tuple[str, ...],
                  n: int, max_docs: int, as_rows: bool, as_csv: bool, html_path: Path | None,
                  web: str | None, plot_path: Path | None) -> None:
    """Measure how much of each example of BENCH... occurs verbatim in the index.

    BENCH: JSONL, .txt (one example a line), Parquet/Arrow files or Hugging Face datasets
    folders. Per example: its longest run of tokens found in the index, the share of its
    tokens covered by N-grams found there (13 by default, as the GPT-3 paper), and the
    documents holding the longest match. Prints a JSON summary per benchmark (share of
    examples at or above coverage thresholds, histogram), or one line per example with
    --json or --csv. One whole-text walk per example: O(its tokens) searches.

    \b
    Example:
      anygram contamination --index idx/ mmlu_test.jsonl --text-field question
      anygram contamination --index idx/ bench.jsonl --json > per_example.jsonl
      anygram contamination --index idx/ bench.jsonl --html report.html --plot hist.png
    """
    from tqdm import tqdm

    from ..tools import contamination as tc
    from ..tools import render

    if as_rows and (as_csv or pretty):
        raise click.UsageError("--json prints one JSON object per example: not with "
                               f"{'--csv' if as_csv else '--pretty'}")
    if as_csv and pretty:
        raise click.UsageError("--csv prints CSV rows: not with --pretty")
    if web is not None and html_path is None:
        raise click.UsageError("--web links the --html report's matches: give --html too")
    fields = text_fields or ("text",)
    summaries, kept = [], []
    writer = csv.writer(sys.stdout) if as_csv else None
    if writer is not None:
        writer.writerow(_CSV_COLUMNS)
    with _engine(index, tokenizer, token_dtype) as engine:
        # Every benchmark read and tokenized first: a bad one stops the command before it
        # prints anything.
        tokenized = [[engine.tokenize(t) for t in tc.read_examples(bench, fields)]
                     for bench in benchmarks]
        for bench, bench_ids in zip(benchmarks, tokenized):
            summary = tc.BenchmarkContamination(str(bench), n)
            examples = []
            todo = tqdm(bench_ids, desc=bench.name, unit=" examples",
                        disable=not sys.stderr.isatty(), leave=False)
            for i, ids in enumerate(todo):
                r = tc.example_contamination(engine, ids, example=i, n=n, max_docs=max_docs)
                summary.add(r)
                if as_rows:
                    _emit_rows([{"benchmark": str(bench), **r.to_dict()}])
                elif writer is not None:
                    writer.writerow([str(bench), r.example, r.tokens, r.longest_match,
                                     r.longest_at, f"{r.coverage:.6f}", r.count,
                                     " ".join(map(str, r.docs))])
                if html_path is not None:
                    examples.append((ids, r))
            summaries.append(summary.to_dict())
            kept.append((summaries[-1], examples))
        if html_path is not None:
            html_path.write_text(render.contamination_html(engine, kept, web), encoding="utf-8")
    if plot_path is not None:
        render.contamination_plot(summaries, plot_path)
    if not as_rows and not as_csv:
        _emit({"n": n, "benchmarks": summaries}, pretty)
