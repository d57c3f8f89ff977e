"""What the request handlers share: the limit checks, a request's query as token ids, the
answer's common fields, a window cut into labelled spans, and :class:`Operation`, one
``/v1/{index}/<path>`` route.

Handlers are plain functions ``(index, request, limits) -> dict`` that run in a worker thread;
they raise, and :mod:`anygram.server.errors` turns what they raise into an answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from . import models as m
from .errors import LimitExceededError
from .indexes import ServedIndex
from .limits import ServerLimits
from .pool import Lane


def check_text(text: str, limits: ServerLimits, what: str = "query") -> None:
    if len(text) > limits.max_query_chars:
        raise LimitExceededError(f"{what} is {len(text)} characters; this server takes at most "
                                 f"{limits.max_query_chars}")


def check_tokens(n: int, limits: ServerLimits, what: str = "query") -> None:
    if n > limits.max_query_tokens:
        raise LimitExceededError(f"{what} is {n} tokens; this server takes at most "
                                 f"{limits.max_query_tokens}")


def check_max(name: str, value: int | None, most: int) -> None:
    if value is not None and value > most:
        raise LimitExceededError(f"{name}={value} is over this server's limit of {most}")


def query_ids(ix: ServedIndex, req: m.QueryRequest, limits: ServerLimits) -> list[int]:
    """The request's query as token ids, within the size limits."""
    if req.query is not None:
        check_text(req.query, limits)
        ids = ix.engine.tokenize(req.query)
    else:
        ids = list(req.query_ids or [])
    check_tokens(len(ids), limits)
    return ids


def answer(ix: ServedIndex, ids: list[int], result: dict[str, Any]) -> dict[str, Any]:
    """A route's answer: ``result`` with the query's ids (and tokens), ok and index."""
    return {"ok": True, "index": ix.name, **with_query(ix, ids, result)}


def with_query(ix: ServedIndex, ids: list[int], result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with the query's ``token_ids`` and, given a tokenizer, ``tokens``."""
    out: dict[str, Any] = {**result, "token_ids": ids}
    tokens = ix.token_texts(ids)
    if tokens is not None:
        out["tokens"] = tokens
    return out


def check_window(req: Any, limits: ServerLimits) -> None:
    check_max("max_disp_len", req.max_disp_len, limits.max_disp_len)
    check_max("max_ctx_len", req.max_ctx_len, limits.max_ctx_len)


def page_size(req: Any, limits: ServerLimits) -> int:
    max_docs = limits.default_docs if req.max_docs is None else req.max_docs
    check_max("max_docs", max_docs, limits.max_docs)
    check_max("offset", req.offset, limits.max_offset)
    return max_docs


def spans(ix: ServedIndex, ids: list[int], clauses: Sequence[Sequence[Sequence[int]]],
          marked: tuple[int, int] | None = None) -> list[dict[str, Any]] | None:
    """``ids`` cut into decoded spans, each labelled with the clause it matches (or None).

    ``marked`` (offset, length) is a search hit's own match (maybe clipped by the window):
    labelled clause 0 with ``hit: true``. Then every other occurrence of a phrase is
    labelled, longest phrase first. None without a tokenizer.
    """
    if not ix.has_tokenizer:
        return None
    labels: list[tuple[int, bool] | None] = [None] * len(ids)
    if marked is not None:
        start, length = marked
        labels[start:start + length] = [(0, True)] * length
    phrases = sorted(((list(p), c) for c, clause in enumerate(clauses) for p in clause if p),
                     key=lambda pc: -len(pc[0]))
    i = 0
    while i < len(ids):
        for p, c in phrases:
            if ids[i] == p[0] and ids[i:i + len(p)] == p:
                for j in range(i, i + len(p)):
                    if labels[j] is None:
                        labels[j] = (c, False)
                i += len(p)
                break
        else:
            i += 1
    out: list[dict[str, Any]] = []
    start = 0
    for k in range(1, len(ids) + 1):
        if k == len(ids) or labels[k] != labels[start]:
            label = labels[start]
            span: dict[str, Any] = {"text": ix.text(ids[start:k]) or "",
                                    "clause": None if label is None else label[0]}
            if label is not None and label[1]:
                span["hit"] = True
            out.append(span)
            start = k
    return out


@dataclass(frozen=True)
class Operation:
    """One ``/v1/{index}/<path>`` route (GET and POST, or ``methods``), and the lane it
    runs in."""

    path: str
    request: type[BaseModel]
    handler: Callable[[ServedIndex, Any, ServerLimits], dict[str, Any]]
    answer: type[BaseModel]
    summary: str
    description: str
    lane: Lane = "light"
    methods: tuple[str, ...] = ("GET", "POST")
