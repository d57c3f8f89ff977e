"""``anygram verify``: check every byte of an index."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import _emit, main


@main.command()
@click.argument("index", nargs=-1, required=True, metavar="DIR...",
                type=click.Path(path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--pretty", is_flag=True, help="Indent the JSON output.")
def verify(index: tuple[Path, ...], quiet: bool, pretty: bool) -> None:
    """Check every byte of one or more indexes: checksums, offsets, suffix order, takedown.

    Opening an index only samples its files (a damaged value it misses is refused when a
    query meets it); verify reads them whole, so a sound index is known to give right
    answers. Prints a JSON report per index; exits with status 1 when one has a problem
    (each listed in "problems", and the first on stderr).

    \b
    Example:
      anygram verify idx/
      anygram verify downloaded/v4_pileval_llama --pretty
    """
    from ..index.verify import verify_index

    reports = [verify_index(d, progress=not quiet) for d in index]
    payload = [r.to_dict() for r in reports]
    _emit(payload[0] if len(payload) == 1 else payload, pretty)
    bad = [r for r in reports if not r.ok]
    if bad:
        first = bad[0].problems or (bad[0].takedown.problems if bad[0].takedown else [])
        click.echo(f"error: {bad[0].index} failed verification: {first[0] if first else ''}",
                   err=True)
        raise SystemExit(1)
