"""The server's errors and the one place where exceptions become HTTP answers.

Every error answer has the same body, whatever the route::

    {"ok": false, "error": "<message: what went wrong and what to do>",
     "type": "<exception class name>", "status": <HTTP status>}

Status codes (:func:`status_of`):

==========  =======================================================================
400         bad input: ``InvalidQueryError`` (and ``TokenOutOfRangeError``), a text query
            on an index without a tokenizer (``TokenizerError``), malformed JSON
404         unknown index (``UnknownIndexError``), document (``DocumentNotFoundError``)
            or route (``NotFoundError``)
405         a route exists but not for this method (``MethodNotAllowedError``)
413         request body over ``max_body_bytes`` (``BodyTooLargeError``)
422         a request over a :class:`ServerLimits` bound (``LimitExceededError``), or a
            request that does not match the route's schema (``ValidationError``)
501         an infini-gram ``query_type`` this server does not implement
503         too many requests in flight (``OverloadedError``): retry later; or some shards
            of a cluster-served index did not answer (``ShardUnavailableError``)
504         the request's time budget ran out (``TimeBudgetExceededError``)
500         a fault of the server or of the index files, never of the input
==========  =======================================================================
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import AnygramError, InvalidQueryError, ShardUnavailableError, TokenizerError

log = logging.getLogger("anygram.server")


class ServerError(Exception):
    """An error of the HTTP layer, with its status code."""

    status: int = 500


class UnknownIndexError(ServerError):
    status = 404


class DocumentNotFoundError(ServerError):
    status = 404


class NotFoundError(ServerError):
    status = 404


class MethodNotAllowedError(ServerError):
    status = 405


class BodyTooLargeError(ServerError):
    status = 413


class LimitExceededError(ServerError):
    status = 422


class ValidationError(ServerError):
    status = 422


class BadRequestError(ServerError):
    status = 400


class QueryTypeNotImplementedError(ServerError):
    status = 501


class OverloadedError(ServerError):
    status = 503


class TimeBudgetExceededError(ServerError):
    status = 504


def status_of(exc: BaseException) -> int:
    """The HTTP status of an exception (see the module docstring)."""
    if isinstance(exc, ServerError):
        return exc.status
    if isinstance(exc, (InvalidQueryError, TokenizerError)):
        return 400
    if isinstance(exc, ShardUnavailableError):
        return 503
    return 500


def error_body(status: int, message: str, type_: str) -> dict[str, Any]:
    """The one error shape: ``{"ok": false, "error", "type", "status"}``."""
    return {"ok": False, "error": message, "type": type_, "status": status}


def body_of(exc: BaseException) -> dict[str, Any]:
    """Error body of an exception; an unexpected one is logged and its details withheld."""
    status = status_of(exc)
    if status == 500 and not isinstance(exc, AnygramError):
        log.exception("internal error", exc_info=exc)
        return error_body(500, "internal server error (logged on the server)",
                          "InternalServerError")
    if status == 500:
        log.error("index error: %s", exc)
    return error_body(status, str(exc) or type(exc).__name__, type(exc).__name__)


def validation_message(errors: list[Any]) -> tuple[int, str, str]:
    """``(status, message, type)`` of pydantic/FastAPI validation errors.

    Malformed JSON is bad input (400); a well-formed request that does not match the schema
    is a validation error (422).
    """
    parts = []
    for e in errors:
        if not isinstance(e, dict):
            parts.append(str(e))
            continue
        if e.get("type") == "json_invalid":
            return 400, f"the body is not valid JSON: {e.get('ctx', {}).get('error', '')}".rstrip(
                ": "), "BadRequestError"
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path"))
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return 422, "; ".join(parts) or "invalid request", "ValidationError"
