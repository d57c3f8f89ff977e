"""The OpenAPI schema of one server, with its limits written in.

The request models (:mod:`anygram.server.models`) serve every server, so they state only
types and signs; the bounds of :class:`~anygram.server.ServerLimits` and the served indexes'
token ids are checked by the handlers. :func:`state_limits` writes those bounds into the
generated schema (``maximum``, ``maxLength``, ``maxItems``, ...), so a client, or a fuzzer
generating requests from the schema, knows what the server accepts.

What a schema cannot say is left to the handlers: a text's length in tokens once tokenized,
exactly one of ``query`` / ``query_ids`` in a query string, a ``cont`` of exactly one token,
an ``anchor`` below the query's number of clauses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .indexes import ServedIndex
from .limits import ServerLimits

Bounds = dict[str, Any]


def _ints(low: int, high: int) -> Bounds:
    return {"minimum": low, "maximum": high}


def _bounds(limits: ServerLimits, indexes: Sequence[ServedIndex]
            ) -> tuple[dict[str, Bounds], dict[str, Bounds], Bounds]:
    """Field name -> JSON schema keywords: for the ``/v1`` routes, for ``POST /``
    (infini-gram's payload, whose handlers refuse 0 where the ``/v1`` routes take it), and
    the ``query_ids`` of the ``/v1`` CNF routes."""
    max_id = max(ix.engine.vocab_size for ix in indexes) - 1
    token_id = {"type": "integer", **_ints(0, max_id)}
    ids = {"type": "array", "maxItems": limits.max_query_tokens, "items": token_id}
    cnf = {"type": "array", "minItems": 1, "maxItems": limits.max_cnf_clauses,
           "items": {"type": "array", "minItems": 1, "maxItems": limits.max_cnf_terms,
                     "items": {**ids, "minItems": 1}}}
    text = {"type": "string", "maxLength": limits.max_query_chars}
    v1: dict[str, Bounds] = {
        "query": text, "cont": text, "query_ids": ids, "delim_ids": ids, "cont_id": token_id,
        "top": _ints(0, limits.max_top), "max_support": _ints(1, limits.max_support),
        "max_docs": _ints(0, limits.max_docs), "offset": _ints(0, limits.max_offset),
        "max_disp_len": _ints(1, limits.max_disp_len),
        "max_ctx_len": _ints(0, limits.max_ctx_len),
        "max_tokens": _ints(0, limits.max_disp_len),
        "max_clause_freq": _ints(1, limits.max_clause_freq),
        "max_diff_tokens": _ints(0, limits.max_diff_tokens),
        "max_cnt": _ints(1, limits.max_attribute_cnt),
        "max_ids": _ints(0, limits.max_docs * 100),
        "anchor": _ints(0, limits.max_cnf_clauses - 1),
        "queries": {"type": "array", "maxItems": limits.max_batch},
        # (pydantic writes this bound as a float, which rounds it up past what it accepts)
        "seed": _ints(0, 2**63 - 1),
    }
    compat: dict[str, Bounds] = {
        **v1, "query_ids": {"anyOf": [ids, cnf]}, "maxnum": _ints(1, limits.max_docs),
        "max_diff_tokens": _ints(1, limits.max_diff_tokens),
        "s": _ints(0, max(ix.engine.num_shards for ix in indexes) - 1),
        "rank": {"minimum": 0}, "ptr": {"minimum": 0}, "min_len": {"minimum": 0},
    }
    return v1, compat, {"anyOf": [cnf]}


def _apply(schema: dict[str, Any], bounds: Bounds) -> None:
    """Write ``bounds`` into a field's schema: into the branch of its type (an optional
    field is ``anyOf: [{type}, {type: null}]``); a CNF's nested lists replace the branch."""
    branches = schema.get("anyOf", [schema])
    if "anyOf" in bounds:  # several shapes (ids or a CNF): replace the array branches
        kept = [b for b in branches if b.get("type") != "array"]
        schema["anyOf"] = [*bounds["anyOf"], *kept]
        return
    for branch in branches:
        if branch.get("type", "integer") != "null" and (
                "type" not in bounds or branch.get("type") == bounds["type"]):
            branch.update({k: v for k, v in bounds.items() if k != "type"})


def state_limits(schema: dict[str, Any], limits: ServerLimits,
                 indexes: Sequence[ServedIndex]) -> dict[str, Any]:
    """``schema`` (FastAPI's) with the bounds of ``limits`` and of ``indexes`` written into
    every request field and query parameter they apply to (edited in place, and returned)."""
    v1, compat, cnf = _bounds(limits, indexes)
    cnf_models = ("CnfRequest", "CnfSearchRequest", "DocsWithAllRequest")
    for name, model in schema.get("components", {}).get("schemas", {}).items():
        if not name.endswith("Request"):
            continue  # answers are not bounded
        table = compat if name == "InfiniGramRequest" else v1
        for field, field_schema in model.get("properties", {}).items():
            bounds = table.get(field)
            if field == "query_ids" and name in cnf_models:
                bounds = cnf
            if bounds is not None:
                _apply(field_schema, bounds)
    for path, methods in schema.get("paths", {}).items():
        is_cnf = "/cnf/" in path
        for operation in methods.values():
            for param in operation.get("parameters", []):
                if param.get("in") != "query":
                    continue
                if param["name"] == "query_ids" and is_cnf:
                    # JSON text in the query string (``query_ids=[[[1,2]],[[3]]]``): OpenAPI's
                    # way to say so is a parameter with content, not a schema.
                    param.pop("schema")
                    param["content"] = {"application/json": {"schema": cnf["anyOf"][0]}}
                elif param["name"] in v1:
                    _apply(param["schema"], v1[param["name"]])
    return schema


def install(app: Any, limits: ServerLimits, indexes: Sequence[ServedIndex]) -> None:
    """Make ``app.openapi()`` (FastAPI's, cached) state the server's limits."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            state_limits(build(), limits, indexes)  # build() caches the schema it returns
        return app.openapi_schema  # type: ignore[no-any-return]

    app.openapi = openapi
