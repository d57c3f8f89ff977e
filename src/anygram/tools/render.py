"""Pictures of an evaluation (``docs/evaluation.md``): a text coloured per token by its ∞-gram
suffix length, for the terminal (ANSI, through click) and as HTML, and a matplotlib figure of
agreement vs suffix length and the suffix-length histogram (the ``plots`` extra); and the HTML
report and histogram of ``anygram contamination``."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np

from .._extras import require

if TYPE_CHECKING:
    from ..engine import Engine
    from .contamination import ExampleContamination
    from .evaluation import EvalResult

#: Suffix-length bins ``[lo, hi)`` and their colours: (label, lo, hi, hex, xterm-256 index).
BINS: tuple[tuple[str, int, int, str, int], ...] = (
    ("0", 0, 1, "#f2f2f2", 255),
    ("1", 1, 2, "#fde0c5", 223),
    ("2-3", 2, 4, "#facba6", 216),
    ("4-7", 4, 8, "#f8b58b", 209),
    ("8-15", 8, 16, "#c0e0a0", 150),
    ("16-31", 16, 32, "#7fc97f", 113),
    ("32+", 32, 1 << 62, "#3a9a5a", 71),
)


def bin_of(suffix_len: int) -> int:
    """Index in :data:`BINS` of a suffix length."""
    for i, (_, lo, hi, _, _) in enumerate(BINS):
        if lo <= suffix_len < hi:
            return i
    return len(BINS) - 1


def token_pieces(engine: Engine, ids: Sequence[int]) -> list[str]:
    """The text of each token, so that the pieces join to ``decode(ids)`` where the
    tokenizer allows: piece ``j`` is what decoding token ``j`` adds after the tokens before
    it (a token that ends inside a character gets its text once the character is complete).

    Each step decodes only the pending tokens plus a few tokens of context (decoders such as
    SentencePiece's treat the first token of a text differently), so a text costs O(n).
    """
    ids = list(ids)
    pieces: list[str] = []
    done = 0  # tokens [0, done) have their text in `pieces`
    for j in range(len(ids)):
        lo = max(0, done - _CONTEXT_TOKENS)
        before = engine.decode(ids[lo:done])
        cur = engine.decode(ids[lo:j + 1])
        if cur.startswith(before) and not cur.endswith("\ufffd"):
            pieces.append(cur[len(before):])
            done = j + 1
        else:
            pieces.append("")
    if done < len(ids):  # a text cut inside a character: the tail's text goes last
        lo = max(0, done - _CONTEXT_TOKENS)
        pieces[-1] += engine.decode(ids[lo:])[len(engine.decode(ids[lo:done])):]
    return pieces


_CONTEXT_TOKENS = 4


def ansi(pieces: Sequence[str], suffix_len: Sequence[int]) -> str:
    """The pieces with a background colour per suffix-length bin (xterm 256 colours), and a
    legend line."""
    body = "".join(click.style(p, bg=BINS[bin_of(int(L))][4], fg=16)
                   for p, L in zip(pieces, suffix_len))
    legend = " ".join(click.style(f" {b[0]} ", bg=b[4], fg=16) for b in BINS)
    return f"{body}\nsuffix length: {legend}"


def html_page(pieces: Sequence[str], suffix_len: Sequence[int],
              title: str = "anygram: tokens by ∞-gram suffix length") -> str:
    """A standalone HTML page: each token a ``<span>`` coloured by suffix-length bin, with
    its suffix length as a tooltip."""
    spans = "".join(
        f'<span class="b{bin_of(int(L))}" title="suffix_len={int(L)}">{html.escape(p)}</span>'
        for p, L in zip(pieces, suffix_len))
    css = "".join(f".b{i}{{background:{b[3]}}}" for i, b in enumerate(BINS))
    legend = " ".join(f'<span class="b{i}">&nbsp;{b[0]}&nbsp;</span>'
                      for i, b in enumerate(BINS))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>body{{font-family:sans-serif}}pre{{white-space:pre-wrap;"
            f"font-family:monospace;line-height:1.6}}{css}</style></head><body>"
            f"<p>suffix length: {legend}</p><pre>{spans}</pre></body></html>\n")


def eval_html(engine: Engine, result: EvalResult) -> str:
    """All texts of an evaluation as one HTML page (a rule between texts)."""
    parts = []
    for t in result.texts:
        pieces = token_pieces(engine, t.token_ids.tolist()) if engine.tokenizer is not None \
            else [f"[{i}]" for i in t.token_ids.tolist()]
        page = html_page(pieces, t.suffix_len.tolist())
        parts.append(page[page.index("<pre>"):page.index("</pre>") + 6])
    page = html_page([], [])
    head, tail = page.split("<pre></pre>")
    return head + "<hr>".join(parts) + tail


def plot(result: EvalResult, path: str | Path) -> None:
    """Write a figure: agreement vs suffix length (left) and the suffix-length histogram
    (right). Needs matplotlib (``pip install 'anygram[plots]'``)."""
    matplotlib = require("matplotlib", "plots", "--plot")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "plots", "--plot")
    s = result.to_dict()["infgram"]
    by = s["by_suffix_len"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot([r["suffix_len"] for r in by], [r["agreement"] for r in by], marker="o", ms=3)
    a.set_xlabel("suffix length (tokens)")
    a.set_ylabel("∞-gram next-token agreement")
    a.set_ylim(0, 1)
    a.set_title(f"agreement {s['agreement']:.3f} over {s['tokens']} tokens"
                if s["tokens"] else "no tokens")
    hist = s["suffix_len_hist"]
    b.bar(range(len(hist)), hist, width=1.0)
    b.set_xlabel("suffix length (tokens)")
    b.set_ylabel("tokens")
    b.set_title("suffix-length histogram")
    fig.tight_layout()
    fig.savefig(str(path))
    plt.close(fig)


def contamination_html(engine: Engine, benchmarks: Sequence[tuple[dict[str, Any], Sequence[
        tuple[Sequence[int], ExampleContamination]]]], web: str | None = None) -> str:
    """A standalone HTML report of ``anygram contamination``: per benchmark its summary and
    each example with its covered tokens highlighted; with ``web`` (the address of this
    index's web page, e.g. ``http://host:8000/?index=idx``), each longest match links to
    its search there."""
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>anygram: contamination"
           "</title><style>body{font-family:sans-serif}pre{white-space:pre-wrap;"
           "font-family:monospace;line-height:1.5;margin:.2em 0 1em}mark{background:#f9b}"
           "td,th{padding:0 .6em;text-align:right}</style></head><body>"]
    for summary, examples in benchmarks:
        out.append(f"<h2>{html.escape(str(summary['benchmark']))}</h2><table>"
                   + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(_short(v))}"
                             f"</td></tr>" for k, v in summary.items() if k != "benchmark")
                   + "</table>")
        for ids, r in examples:
            pieces = token_pieces(engine, ids) if engine.tokenizer is not None \
                else [f"[{i}] " for i in ids]
            marked = np.zeros(len(ids), dtype=bool)
            for a, b in r.covered:
                marked[a:b] = True
            body = "".join(f"<mark>{html.escape(p)}</mark>" if marked[j] else html.escape(p)
                           for j, p in enumerate(pieces))
            head = (f"example {r.example}: coverage {r.coverage:.3f}, longest match "
                    f"{r.longest_match} tokens ({r.count} occurrences; documents "
                    f"{', '.join(map(str, r.docs)) or 'none'})")
            if web is not None and r.longest_match:
                match = ",".join(map(str, ids[r.longest_at:r.longest_at + r.longest_match]))
                sep = "&" if "?" in web else "?"
                head = (f"{html.escape(head)} <a href=\"{html.escape(web + sep + 'ids=' + match)}"
                        "\">search it</a>")
            else:
                head = html.escape(head)
            out.append(f"<p>{head}</p><pre>{body}</pre>")
    out.append("</body></html>\n")
    return "".join(out)


def _short(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def contamination_plot(summaries: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Write the coverage histogram of each benchmark (one bar group per coverage bin).
    Needs matplotlib (``pip install 'anygram[plots]'``)."""
    matplotlib = require("matplotlib", "plots", "--plot")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "plots", "--plot")
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(len(summaries), 1)
    for k, s in enumerate(summaries):
        h = s["coverage_histogram"]
        counts = h["counts"]
        share = [c / s["examples"] if s["examples"] else 0 for c in counts]
        ax.bar([i + k * width for i in range(len(counts))], share, width=width,
               label=f"{s['benchmark']} ({s['examples']} examples)")
    bins = s["coverage_histogram"]["bins"] if summaries else []
    ax.set_xticks(range(len(bins) - 1))
    ax.set_xticklabels([f"{a:.1f}–{b:.1f}" for a, b in zip(bins, bins[1:])], fontsize=7)
    ax.set_xlabel(f"coverage by {summaries[0]['n'] if summaries else ''}-grams found in the "
                  "index")
    ax.set_ylabel("share of examples")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path))
    plt.close(fig)
