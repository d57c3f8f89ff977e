"""The ASGI app: ``create_app(engines, limits)``, routes, error handlers and the web page.

The app is thin: each route validates the request with its model, runs the matching
handler of :mod:`anygram.server.operations` (``/v1`` routes, one module per feature) or
:mod:`anygram.server.infini_gram_api` (``POST /``) in the
:class:`~anygram.server.pool.WorkPool` of its lane, and answers its dict. All errors go through
:func:`_error_response` (one shape, real status).
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route signatures made in
# the loops below, whose annotations name local variables.

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import Body, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Scope

from .._version import __version__
from ..engine import Engine
from . import models as m
from . import openapi
from .common import Operation
from .errors import (
    UnknownIndexError,
    body_of,
    error_body,
    validation_message,
)
from .indexes import ServedIndex
from .infini_gram_api import compat_lane, run_compat
from .limits import ServerLimits
from .middleware import (
    LOOPBACK_HOSTS,
    BodyLimitMiddleware,
    HostCheckMiddleware,
    SecurityHeadersMiddleware,
)
from .operations import OPERATIONS, op_get_doc
from .pool import Lane, WorkPool
from .warmup import warm_up

STATIC_DIR = Path(__file__).parent / "static"

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": m.ErrorBody, "description": text} for code, text in (
    (400, "Bad input (invalid query, token id out of range, text without a tokenizer)."),
    (404, "Unknown index (or document)."),
    (413, "Request body too large."),
    (422, "Request over a server limit, or not matching the schema."),
    (503, "Too many requests in flight: retry later."),
    (504, "The request ran out of its time budget."),
)}

_HTTP_TYPES = {404: "NotFoundError", 405: "MethodNotAllowedError", 413: "BodyTooLargeError"}


def _json(payload: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(payload, status_code=status)


def _error_response(exc: BaseException) -> JSONResponse:
    body = body_of(exc)
    return _json(body, body["status"])


def create_app(engines: Mapping[str, Engine], limits: ServerLimits | None = None, *,
               allowed_hosts: Sequence[str] = LOOPBACK_HOSTS) -> FastAPI:
    """The HTTP API and web page over named, opened engines (read-only).

    Args:
        engines: index name -> :class:`~anygram.Engine`. Names appear in the URLs
            (``/v1/{name}/count``).
        limits: per-request bounds, the time budget and the concurrency (defaults:
            :class:`ServerLimits`).
        allowed_hosts: the ``Host`` names answered (others: ``400 InvalidHostError``):
            by default this machine's loopback names only, against DNS rebinding; ``"*"``
            answers any, ``"*.example.com"`` a domain's subdomains.
    """
    limits = limits if limits is not None else ServerLimits()
    if not engines:
        raise ValueError("create_app needs at least one index")
    pools: dict[Lane, WorkPool] = {
        "light": WorkPool(limits.workers, limits.max_pending, limits.timeout_s,
                          "anygram-light"),
        "heavy": WorkPool(limits.heavy_workers, limits.max_heavy_pending, limits.timeout_s,
                          "anygram-heavy")}
    api = _Api({name: ServedIndex(name, engine) for name, engine in engines.items()},
               pools, limits)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Load the compiled kernels before the first request, not during it.
        await asyncio.get_running_loop().run_in_executor(None, warm_up,
                                                         list(api.served.values()))
        yield
        for pool in pools.values():
            pool.shutdown()

    app = FastAPI(
        title="anygram",
        version=__version__,
        description=(
            "Exact n-gram and ∞-gram queries over suffix-array indexes. Every route answers "
            "JSON; errors are `{\"ok\": false, \"error\", \"type\", \"status\"}` with a real "
            "HTTP status. `POST /` takes infini-gram's API payload. See docs/http-api.md."),
        lifespan=lifespan,
    )
    app.state.pools = pools
    app.state.limits = limits
    app.state.indexes = api.served
    openapi.install(app, limits, list(api.served.values()))
    # (The last added runs first: every answer, refusals included, gets the headers.)
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes)
    app.add_middleware(HostCheckMiddleware, allowed_hosts=allowed_hosts)
    app.add_middleware(SecurityHeadersMiddleware)
    _add_error_handlers(app)
    _add_meta_routes(app, api)
    for op in OPERATIONS.values():
        _add_operation(app, api, op)
    _add_document_route(app, api)
    _add_infini_gram_route(app, api)
    _add_page(app, api)
    return app


class _Api:
    """What the routes share: the served indexes, the work pools (one per lane), the limits."""

    def __init__(self, served: dict[str, ServedIndex], pools: dict[Lane, WorkPool],
                 limits: ServerLimits) -> None:
        self.served = served
        self.pools = pools
        self.limits = limits
        self.index_param = Annotated[str, PathParam(
            description="Index name (see /v1/indexes).", examples=sorted(served)[:1])]

    def index_of(self, name: str) -> ServedIndex:
        try:
            return self.served[name]
        except KeyError:
            raise UnknownIndexError(f"no index named {name!r}; this server has: "
                                    f"{', '.join(sorted(self.served))}") from None

    async def run(self, lane: Lane, fn: Callable[..., dict[str, Any]], name: str, *args: Any,
                  latency_key: str = "latency_ms") -> JSONResponse:
        """``fn(index, *args, limits)`` in the pool of ``lane``, as JSON; any error in the
        one shape."""
        try:
            ix = self.index_of(name)
            return await self.pools[lane].run(_answer, fn, ix, (*args, self.limits),
                                              latency_key)
        except Exception as exc:  # noqa: BLE001 - every error becomes the one shape
            return _error_response(exc)


def _answer(fn: Callable[..., dict[str, Any]], ix: ServedIndex, args: tuple[Any, ...],
            latency_key: str) -> JSONResponse:
    """``fn(ix, *args)`` with its wall time (ms) under ``latency_key``, as a JSON response,
    in a worker thread: once ``ix`` has picked up the takedowns made so far (an answer
    produced after ``anygram takedown`` returned never shows a removed document), and
    serialized here rather than on the event loop (an answer can be megabytes)."""
    started = time.perf_counter()
    ix.refresh()
    out = fn(ix, *args)
    out[latency_key] = round((time.perf_counter() - started) * 1000, 3)
    return _json(out)


def _add_error_handlers(app: FastAPI) -> None:
    """Every error answers the one error shape, with its real status."""

    @app.exception_handler(RequestValidationError)
    async def _on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        status, message, type_ = validation_message(list(exc.errors()))
        return _json(error_body(status, message, type_), status)

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if status == 404 and message == "Not Found":
            message = "no such route: see /docs for the routes of this server"
        type_ = _HTTP_TYPES.get(status, "HTTPError" if status < 500 else "ServerError")
        headers = dict(getattr(exc, "headers", None) or {})
        if status == 405:
            # GET and POST of a path are two routes: Allow lists the methods of both.
            allowed = set()
            for route in app.router.routes:
                match, _ = route.matches(request.scope)
                if match != Match.NONE:
                    allowed |= set(getattr(route, "methods", None) or ())
            if allowed:
                headers["Allow"] = ", ".join(sorted(allowed))
            message = f"{request.method} is not allowed here; allowed: {headers.get('Allow')}"
        return JSONResponse(error_body(status, message, type_), status_code=status,
                            headers=headers or None)

    @app.exception_handler(Exception)
    async def _on_exception(_: Request, exc: Exception) -> JSONResponse:
        return _error_response(exc)


def _add_meta_routes(app: FastAPI, api: _Api) -> None:
    operations = [*OPERATIONS, "docs"]

    @app.get("/v1/indexes", response_model=m.IndexesAnswer, tags=["meta"],
             summary="The indexes this server answers for")
    async def indexes() -> JSONResponse:
        return _json({"ok": True,
                      "indexes": [ix.info(operations) for ix in api.served.values()]})

    @app.get("/v1/limits", tags=["meta"], summary="This server's limits (ServerLimits)")
    async def get_limits() -> JSONResponse:
        return _json({"ok": True, "limits": api.limits.to_dict()})


def _add_operation(app: FastAPI, api: _Api, op: Operation) -> None:
    """``GET`` (query string) and ``POST`` (JSON body) of ``/v1/{index}/<op.path>`` (those
    of ``op.methods``)."""
    model, query_model = op.request, m.from_query_string(op.request)
    index_param = api.index_param
    responses: dict[int | str, Any] = {200: {"model": op.answer}, **_ERRORS}

    async def get_route(index: index_param,  # type: ignore[valid-type]
                        params: Annotated[query_model, Query()]  # type: ignore[valid-type]
                        ) -> JSONResponse:
        return await api.run(op.lane, op.handler, index, params)

    async def post_route(index: index_param,  # type: ignore[valid-type]
                         body: Annotated[model, Body()]  # type: ignore[valid-type]
                         ) -> JSONResponse:
        return await api.run(op.lane, op.handler, index, body)

    for method, fn in (("GET", get_route), ("POST", post_route)):
        if method not in op.methods:
            continue
        app.add_api_route(f"/v1/{{index}}/{op.path}", fn, methods=[method],
                          summary=op.summary, description=op.description,
                          responses=responses, tags=["queries"],
                          operation_id=f"{method.lower()}_"
                                       f"{op.path.replace('-', '_').replace('/', '_')}",
                          response_class=JSONResponse)


def _add_document_route(app: FastAPI, api: _Api) -> None:
    index_param = api.index_param

    @app.get("/v1/{index}/docs/{doc_id}", tags=["queries"], summary="Get a document",
             responses={200: {"model": m.DocAnswer}, **_ERRORS},
             operation_id="get_doc", response_class=JSONResponse)
    async def get_doc(index: index_param,  # type: ignore[valid-type]
                      doc_id: Annotated[int, PathParam(description="Global document id "
                                                                   "(0..num_docs-1).")],
                      params: Annotated[m.DocRequest, Query()]) -> JSONResponse:
        """A document's tokens (its first `max_tokens`), text and metadata.

        A taken-down document answers `removed: true` with no content.
        """
        return await api.run("heavy", op_get_doc, index, doc_id, params)


def _add_infini_gram_route(app: FastAPI, api: _Api) -> None:
    @app.post("/", tags=["infini-gram API"], summary="infini-gram's API payload",
              responses={200: {"description": "infini-gram's response for the query type, "
                                              "plus `latency` (ms), `token_ids`, `tokens`."},
                         **_ERRORS})
    async def infini_gram_api(payload: m.InfiniGramRequest) -> JSONResponse:
        """Takes ``{"index" (or "corpus"), "query_type", "query" | "query_ids", ...}``.

        Answers as api.infini-gram.io does, so infini-gram API clients can point here;
        errors have the one error shape (which has infini-gram's ``error`` key).
        """
        name = payload.index if payload.index is not None else payload.corpus
        if name is None:
            return _error_response(UnknownIndexError(
                "give the index name as index (or corpus); this server has: "
                f"{', '.join(sorted(api.served))}"))
        return await api.run(compat_lane(payload), run_compat, name, payload,
                             latency_key="latency")


def _add_page(app: FastAPI, api: _Api) -> None:
    @app.get("/", tags=["infini-gram API"], summary="The web page, or the index names",
             responses={200: {"description": "The web page when the request accepts "
                                             "text/html (a browser); otherwise infini-gram's "
                                             "JSON list of index names.",
                              "content": {"application/json": {"schema": {
                                  "type": "array", "items": {"type": "string"}}},
                                  "text/html": {"schema": {"type": "string"}}}}})
    async def home(request: Request) -> Response:
        """The web page for a browser; infini-gram's list of index names for a program."""
        if "text/html" in request.headers.get("accept", ""):
            return FileResponse(STATIC_DIR / "index.html", media_type="text/html")
        return _json(sorted(api.served))

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


async def _asgi_get(app: ASGIApp, target: str) -> tuple[int, bytes]:
    path, _, query = target.partition("?")
    scope: Scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": unquote(path), "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 80),
        "headers": [(b"host", b"localhost"), (b"accept", b"application/json")],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(msg["status"] for msg in sent if msg["type"] == "http.response.start")
    body = b"".join(msg.get("body", b"") for msg in sent if msg["type"] == "http.response.body")
    return status, body


def get_in_process(app: ASGIApp, target: str) -> tuple[int, bytes]:
    """Answer one ``GET target`` (path and query string) without a socket: ``(status, body)``."""
    return asyncio.run(_asgi_get(app, target))


__all__ = ["create_app", "get_in_process", "BodyLimitMiddleware"]
