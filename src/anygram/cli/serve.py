"""``anygram serve``: the HTTP server."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._extras import require
from ._common import main

if TYPE_CHECKING:
    import socket

_INDEX_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening (port 0: a free one), so the URL printed
    has the real port, and a request sent while the server starts waits instead of failing."""
    import socket

    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (choose another "
                      "--port, or --port 0 for a free one)") from None
    sock.listen(2048)
    return sock


def _served_indexes(dirs: tuple[Path, ...], names: tuple[str, ...]) -> dict[str, Path]:
    """Index name -> directory: each DIR under its directory name, plus NAME=DIR pairs."""
    served: dict[str, Path] = {}
    pairs = [(Path(d).resolve().name, Path(d)) for d in dirs]
    for item in names:
        name, sep, where = item.partition("=")
        if not sep or not where:
            raise click.BadParameter(f"{item!r} is not NAME=DIR", param_hint="--name")
        pairs.append((name, Path(where)))
    for name, path in pairs:
        if not _INDEX_NAME.match(name):
            raise click.BadParameter(f"index name {name!r}: use letters, digits, '.', '_' and "
                                     "'-' (give it one with --name NAME=DIR)",
                                     param_hint="--name")
        if name in served:
            raise click.BadParameter(f"two indexes are named {name!r}: name them with "
                                     "--name NAME=DIR", param_hint="--name")
        served[name] = path
    if not served:
        raise click.UsageError("give at least one index directory (or --name NAME=DIR)")
    return served


def allowed_hosts(host: str, extra: tuple[str, ...]) -> list[str]:
    """The Host names answered: the loopback names and ``extra`` when the server listens on
    this machine only or names are given, else (``--host 0.0.0.0``, an address) any."""
    from ..server.middleware import LOOPBACK_HOSTS, is_loopback

    if extra or is_loopback(host):
        return [*LOOPBACK_HOSTS, *extra]
    return ["*"]


@main.command()
@click.argument("dirs", nargs=-1, type=click.Path(path_type=Path), metavar="[DIR]...")
@click.option("--name", "names", multiple=True, metavar="NAME=DIR",
              help="Serve DIR as NAME (repeatable; by default an index is named after its "
                   "directory).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on. The default answers only this machine; "
                   "0.0.0.0 serves the indexes to the whole network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port (0: a free one).")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Also answer requests for this Host name (repeatable; '*.example.org' "
                   "for its subdomains). By default a server on a loopback --host answers "
                   "only its loopback names (against DNS rebinding), one on a wider --host "
                   "any name.")
@click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="Threads running the light queries, the n-gram statistics (default: the "
                   "cores, 2 to 8).")
@click.option("--max-pending", type=click.IntRange(min=1), default=None, metavar="N",
              help="Light requests in flight before the server answers 503 (default 64).")
@click.option("--heavy-workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="Threads running the heavy queries: search, documents, CNF, whole-text "
                   "analyses (default: half the cores, 1 to 4).")
@click.option("--max-heavy-pending", type=click.IntRange(min=1), default=None, metavar="N",
              help="Heavy requests in flight before the server answers 503 (default 16).")
@click.option("--max-batch", type=click.IntRange(min=1), default=None, metavar="N",
              help="Queries of one /batch request (default 1000).")
@click.option("--max-body-bytes", type=click.IntRange(min=1), default=None, metavar="B",
              help="Request body size, a batch's included (default 65536).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS", help="Time budget of one request (default 10).")
@click.option("--ray", "ray_address", default=None, metavar="ADDRESS",
              help="Serve the shards from Ray actors on the cluster at ADDRESS, one per node "
                   "('auto': the cluster started on this machine; pip install "
                   "'anygram[ray]'). The index must be at the same path on every node. See "
                   "docs/cluster.md.")
@click.option("--get", "get_path", default=None, metavar="PATH",
              help="Answer one GET request in-process (e.g. '/v1/idx/count?query=a'), print "
                   "the JSON and exit: status 1 if it is an error. No socket is opened.")
def serve(dirs: tuple[Path, ...], names: tuple[str, ...], host: str, port: int,
          allow_hosts: tuple[str, ...], workers: int | None, max_pending: int | None,
          heavy_workers: int | None, max_heavy_pending: int | None, max_batch: int | None,
          max_body_bytes: int | None, timeout: float | None, ray_address: str | None,
          get_path: str | None) -> None:
    """Serve indexes over HTTP: a JSON API (/v1/...), infini-gram's API (POST /), a web page (/).

    Read-only. Routes: /v1/indexes, /v1/{index}/count, /prob, /ntd, /infgram-prob,
    /infgram-ntd, /find, /search, /docs/{doc_id}, /cnf/count, /cnf/search (GET with a
    query string or POST with JSON), /batch (POST: many queries). The OpenAPI
    documentation is at /docs; see docs/http-api.md.

    \b
    Example:
      anygram serve idx-wiki/ --port 8000
      anygram serve --name wiki=idx-wiki/ --name code=idx-code/ --port 0
      anygram serve idx/ --get '/v1/idx/count?query=natural%20language'
      anygram serve /shared/idx/ --ray auto --host 0.0.0.0
    """
    require("fastapi", "server", "anygram serve")
    uvicorn = require("uvicorn", "server", "anygram serve")
    from ..engine import Engine
    from ..server import ServerLimits, create_app
    from ..server.app import get_in_process

    served = _served_indexes(dirs, names)
    given = (("workers", workers), ("max_pending", max_pending),
             ("heavy_workers", heavy_workers), ("max_heavy_pending", max_heavy_pending),
             ("max_batch", max_batch), ("max_body_bytes", max_body_bytes), ("timeout_s", timeout))
    overrides: dict[str, Any] = {k: v for k, v in given if v is not None}
    limits = ServerLimits(**overrides)
    if ray_address is not None:
        from .. import cluster
        # A node that does not answer is reported (503, naming its shards) within the
        # request's time budget, not after it (504).
        wait = 0.8 * limits.timeout_s
        engines = {name: cluster.open(path, address=ray_address, timeout=wait)
                   for name, path in served.items()}
    else:
        engines = {name: Engine.open(path) for name, path in served.items()}
    app = create_app(engines, limits,
                     allowed_hosts=allowed_hosts(host, allow_hosts))
    if get_path is not None:
        status, body = get_in_process(app, get_path)
        click.echo(body.decode("utf-8"))
        if status >= 400:
            sys.exit(1)
        return
    sock = _listen(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    click.echo(f"serving {', '.join(served)} on http://{shown}:{bound_port}/ (Ctrl-C to stop)",
               err=True)
    config = uvicorn.Config(app, host=host, port=bound_port, log_level="info")
    uvicorn.Server(config).run(sockets=[sock])
