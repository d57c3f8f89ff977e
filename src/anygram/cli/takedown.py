"""``anygram takedown``: remove documents from every answer, or restore them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..errors import InvalidQueryError
from ._common import _emit, _parse_ids, main


@main.command()
@click.option("--index", "index", required=True, type=click.Path(path_type=Path),
              metavar="DIR", help="The index directory.")
@click.option("--docs", "doc_ids", default=None, metavar="ID,ID,...",
              help="Global document ids (as `anygram search` and `get-doc` show them).")
@click.option("--where", "where", default=None, metavar="FIELD=VALUE",
              help="Documents whose metadata FIELD equals VALUE (VALUE read as JSON if it "
                   "parses, else as a string).")
@click.option("--texts", "texts", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, metavar="FILE",
              help="Documents whose whole text equals one in FILE (JSONL with a text field, "
                   "or one document per line of a .txt file).")
@click.option("--undo", is_flag=True,
              help="Restore the selected documents (all of them if none is selected).")
@click.option("--list", "list_only", is_flag=True, help="Only list the removed documents.")
@click.option("--pretty", is_flag=True, help="Indent the JSON output.")
def takedown(index: Path, doc_ids: str | None, where: str | None, texts: Path | None,
             undo: bool, list_only: bool, pretty: bool) -> None:
    """Remove documents from every answer the index gives, or restore them (--undo).

    Removed documents stop counting in every query (counts, probabilities, next tokens,
    the ∞-gram, search, retrieval) without a rebuild; the change is atomic and reversible.
    Prints the ids now removed as JSON.

    \b
    Example:
      anygram takedown --index idx/ --docs 17,942
      anygram takedown --index idx/ --where url=https://example.com/page
      anygram takedown --index idx/ --texts removal-requests.jsonl
      anygram takedown --index idx/ --docs 942 --undo
      anygram takedown --index idx/ --list
    """
    from ..engine import Engine
    from ..tools import takedown as takedown_mod

    selectors = [x for x in (doc_ids, where, texts) if x is not None]
    if len(selectors) > 1:
        raise InvalidQueryError("select documents with one of --docs, --where, --texts")
    if list_only or (not selectors and not undo):
        if not list_only:
            raise InvalidQueryError("select documents with --docs, --where or --texts "
                                    "(or pass --list, or --undo to restore everything)")
        ids = takedown_mod.removed_ids(index)
        _emit({"index": str(index), "removed": ids, "count": len(ids)}, pretty)
        return
    selected: list[int] | None = None
    if doc_ids is not None:
        selected = _parse_ids(doc_ids, "--docs")
    elif where is not None:
        field, sep, raw = where.partition("=")
        if not sep or not field:
            raise InvalidQueryError(f"--where must be FIELD=VALUE, not {where!r}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        with Engine.open(index, takedown=False) as engine:
            selected = takedown_mod.docs_where(engine, field, value)
    elif texts is not None:
        from ..index.corpus import iter_documents

        with Engine.open(index, takedown=False) as engine:
            docs = (d.text for d in iter_documents(texts, txt_mode="line"))
            selected = takedown_mod.docs_with_text(engine, docs)
    if undo:
        ids = takedown_mod.undo(index, selected)
    else:
        assert selected is not None
        ids = takedown_mod.take_down(index, selected)
    _emit({"index": str(index), "selected": selected, "removed": ids, "count": len(ids)},
          pretty)
