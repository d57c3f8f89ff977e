"""What the server checks and adds around every request: the ``Host`` header (DNS
rebinding), the body size, and the security headers of every answer.

Each refusal answers the one error shape (:func:`anygram.server.errors.error_body`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_body

#: The ``Host`` names a server bound to this machine only answers by default: a web page
#: the user visits cannot make its own name resolve to them (RFC 6761 keeps ``localhost``
#: and its subdomains on this machine), so it cannot read the answers (DNS rebinding).
LOOPBACK_HOSTS = ("localhost", "*.localhost", "127.0.0.1", "[::1]")


def is_loopback(host: str) -> bool:
    """Whether a ``--host`` to listen on is this machine only (``127.0.0.1``, ``::1``,
    ``localhost``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class HostCheckMiddleware:
    """Answers only requests whose ``Host`` is one of ``allowed_hosts`` (Starlette's
    :class:`TrustedHostMiddleware` decides; ``"*"`` allows any, ``"*.example.com"`` a
    domain's subdomains); others get ``400 InvalidHostError``."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.allow_any = "*" in allowed_hosts
        self._check = TrustedHostMiddleware(self._allowed, allowed_hosts=list(allowed_hosts),
                                            www_redirect=False)

    async def _allowed(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["anygram.host_ok"] = True  # TrustedHostMiddleware let it through

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allow_any or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused: list[Message] = []

        async def hold(message: Message) -> None:  # the check's own refusal: not sent
            refused.append(message)

        await self._check(scope, receive, hold)
        if scope.get("anygram.host_ok"):
            await self.app(scope, receive, send)
            return
        host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
        message = (f"this server does not answer for the host name {host!r} (it answers for "
                   "its loopback names; see anygram serve --allow-host)")
        await JSONResponse(error_body(400, message, "InvalidHostError"),
                           status_code=400)(scope, receive, send)


#: The page and its files come from this server only; nothing may frame any answer.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")
#: The JSON answers load nothing.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
#: FastAPI's interactive docs (``/docs``, ``/redoc``) load their scripts from a CDN.
DOCS_CSP = "frame-ancestors 'none'"
_DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeadersMiddleware:
    """Adds the usual security headers to every answer: a Content-Security-Policy (the
    page's scripts, styles and requests from this server only; no framing, against
    clickjacking), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and
    ``X-Frame-Options: DENY`` (older browsers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        csp = (DOCS_CSP if path.startswith(_DOCS_PATHS) else
               PAGE_CSP if path == "/" or path.startswith("/static/") else API_CSP)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", csp)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over this server's limit of {limit} bytes")


class BodyLimitMiddleware:
    """Refuses a request body over ``max_bytes`` (413): by its Content-Length, or as it streams."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    too_large = int(value) > self.max_bytes
                except ValueError:
                    too_large = False
                if too_large:
                    exc = _BodyTooLarge(self.max_bytes)
                    await JSONResponse(error_body(413, exc.detail, "BodyTooLargeError"),
                                       status_code=413)(scope, receive, send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)
