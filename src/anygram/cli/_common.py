"""What every ``anygram`` command shares: the click group, error handling, JSON output,
option decorators and the parsing of queries and token ids.

The CLI imports numpy, numba, the tokenizers and the web server only inside the commands that
use them, so ``--help`` and usage errors answer at once.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar

import click

from .._version import __version__
from ..errors import AnygramError, InvalidQueryError
from ..query.text import has_operators

if TYPE_CHECKING:
    from ..engine import Engine

F = TypeVar("F", bound=Callable[..., Any])


# ----------------------------------------------------------------------------- plumbing


def _one_line(exc: BaseException) -> str:
    message = re.sub(r"\s*\n\s*", " ", str(exc)).strip()
    # Other characters that end a line for str.splitlines() (a path given with a control
    # character in it, say) are shown escaped: the error stays one line.
    message = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in message)
    return message or type(exc).__name__


def _as_typed(message: str, command: click.Command | None) -> str:
    """``message`` with the Python names of ``command``'s options (``text_field``, as the
    library's errors name them) written as the user typed them (``--text-field``)."""
    for param in command.params if command is not None else ():
        if isinstance(param, click.Option) and param.name and "_" in param.name:
            flag = max(param.opts, key=len)
            message = re.sub(rf"(?<![\w-]){re.escape(param.name)}(?!\w)", flag, message)
    return message


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
            name = ctx.invoked_subcommand
            command = self.get_command(ctx, name) if name else None
            click.echo(f"error: {_as_typed(_one_line(exc), command)}", err=True)
            ctx.exit(1)


class _Notices(logging.Handler):
    """Prints what the library logs at INFO and up (``compiling query kernels ...``) on stderr,
    looked up at each line (click's test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(record.getMessage(), err=True)


def _show_notices() -> None:
    log = logging.getLogger("anygram")
    if not any(isinstance(h, _Notices) for h in log.handlers):
        log.addHandler(_Notices())
    log.setLevel(logging.INFO)


def _print_json(payload: Any, pretty: bool = False) -> None:
    """Print ``payload`` as JSON on stdout (one line, or indented with ``--pretty``)."""
    indent = 2 if pretty else None
    text = json.dumps(payload, ensure_ascii=False, indent=indent)
    try:
        click.echo(text)
    except UnicodeEncodeError:  # a stdout that cannot encode the text: escape non-ASCII
        click.echo(json.dumps(payload, ensure_ascii=True, indent=indent))


#: How every command prints its result: the one place to replace the output (the tests make
#: it raise BrokenPipeError). Looked up at each call.
output: Callable[[Any, bool], None] = _print_json


def _emit(payload: Any, pretty: bool = False) -> None:
    """Print a command's result with :data:`output`."""
    output(payload, pretty)


def _emit_rows(rows: Iterable[Any]) -> None:
    """Print each row as one line of JSON (``--jsonl``), through :data:`output`."""
    for row in rows:
        output(row, False)


def _check_jsonl(jsonl: bool, as_json: bool = False, pretty: bool = False) -> None:
    """``--jsonl`` is an output of its own: refuse it with ``--json`` or ``--pretty``."""
    if jsonl and (as_json or pretty):
        raise click.UsageError(f"--jsonl prints one JSON object per line: not with "
                               f"{'--json' if as_json else '--pretty'}")


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
    from ..engine import Engine

    path: Path | list[Path] = index[0] if len(index) == 1 else list(index)
    ctx = click.get_current_context(silent=True)
    force = bool(ctx is not None and ctx.meta.get(_FORCE_TOKENIZER))
    with Engine.open(path, token_dtype=token_dtype, tokenizer=tokenizer,
                     force_tokenizer=force) as engine:
        yield engine


#: ``--force-tokenizer``, kept in the click context (every query command has it).
_FORCE_TOKENIZER = "anygram.force_tokenizer"


def _remember_force(ctx: click.Context, _: click.Parameter, value: bool) -> bool:
    ctx.meta[_FORCE_TOKENIZER] = value
    return value


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


QUERY_TOKENIZER = ("Tokenizer for TEXT queries (default: the one the index was built "
                   "with).")


def _index_options(*, tokenizer: str | None = QUERY_TOKENIZER, pretty: bool = True
                   ) -> Callable[[F], F]:
    """``--index``, ``--token-dtype``, ``--tokenizer`` (help: what it is for in the command;
    None: no such option) and ``--pretty`` (for commands that print JSON)."""
    def decorate(f: F) -> F:
        if pretty:
            f = click.option("--pretty", is_flag=True, help="Indent the JSON output.")(f)
        f = click.option("--token-dtype", type=click.Choice(["u8", "u16", "u32"]), default=None,
                         help="Token width of an infini-gram index without a manifest, if it "
                              "cannot be inferred.")(f)
        if tokenizer is not None:
            f = click.option("--force-tokenizer", is_flag=True, expose_value=False,
                             callback=_remember_force,
                             help="Use --tokenizer even though the index was built with "
                                  "another one.")(f)
            f = click.option("--tokenizer", "tokenizer", default=None, metavar="bytes|PATH",
                             help=tokenizer)(f)
        f = click.option("--index", "index", multiple=True, required=True, metavar="DIR",
                         type=click.Path(path_type=Path),
                         help="Index directory (repeat to query several as one corpus).")(f)
        return f
    return decorate


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
    f = click.option("--max-support", type=click.IntRange(min=1), default=None, metavar="N",
                     help="Estimate from N evenly spaced occurrences when the prompt occurs "
                          "more often (approx: true).")(f)
    return f


def _jsonl_option(rows: str) -> Callable[[F], F]:
    """``--jsonl``: the command's ``rows`` (e.g. "hit"), one JSON object per line."""
    return click.option("--jsonl", is_flag=True,
                        help=f"Print one JSON object per {rows}, a line each (JSON Lines: "
                             "for jq, pandas.read_json(..., lines=True), ...).")


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


def _is_cnf(text: str | None) -> TypeGuard[str]:
    """Whether ``text`` is a CNF query (a str with AND / OR)."""
    return text is not None and has_operators(text)


# ----------------------------------------------------------------------------- the group


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="anygram")
def main() -> None:
    """Exact n-gram and ∞-gram counts, probabilities and search over suffix-array indexes.

    Build an index over JSONL / text / Parquet corpora, then query it with text (tokenized
    with the index's tokenizer) or token ids. Query results are printed as JSON (search and
    get-doc: as text, unless --json). Errors: "error: ..." on stderr and exit status 1;
    usage errors: exit status 2.

    \b
    Example:
      anygram fetch wiki-en --out data/
      anygram build data/wiki_en.jsonl --out idx/
      anygram count --index idx/ "natural language"
      anygram ntd --index idx/ "natural languag" --top 5 --pretty
    """
    _show_notices()
