"""anygram on a Ray cluster (``pip install 'anygram[ray]'``): one index served by many
machines, with the same answers as :meth:`anygram.Engine.open` on one.

- :func:`open`: an :class:`~anygram.Engine` whose shards are held by host actors on the
  cluster's nodes (:mod:`~anygram.cluster.groups`); every query method is the local
  engine's, over a :class:`~anygram.cluster.remote.RemoteShards` group;
- :func:`stop`: kill an engine's host actors.

See docs/cluster.md for setting up a cluster, placement, security and failures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._ray import connect
from ..engine import Engine
from ..errors import InvalidQueryError
from .groups import DEFAULT_TIMEOUT, NODE_LABEL, RayGroups
from .remote import RemoteShards

__all__ = ["DEFAULT_TIMEOUT", "NODE_LABEL", "RayGroups", "RemoteShards", "open", "stop"]


def open(path: str | Path | Sequence[str | Path], *, address: str | None = None,  # noqa: A001
         timeout: float = DEFAULT_TIMEOUT, **options: Any) -> Engine:
    """Open an index on the Ray cluster at ``address``: its shards are served by one host
    actor per node, and this process's engine sends each query to them and merges the
    answers (identical to :meth:`Engine.open`'s).

    Args:
        path: the index directory (or directories), at the same path on every node (a
            shared filesystem) and on this machine.
        address: the cluster (``ray start --head`` prints it); None: ``RAY_ADDRESS``, else
            the cluster started on this machine.
        timeout: seconds a query waits for a node; after that it raises
            :class:`~anygram.errors.ShardUnavailableError` naming the shards that did not
            answer (never a count without them).
        options: :meth:`Engine.open`'s (``tokenizer``, ``takedown``, ``search_sample``, ...).

    Raises:
        MissingDependencyError: Ray is not installed; ClusterError: no cluster at
        ``address``; and :meth:`Engine.open`'s errors.
    """
    if "groups" in options:
        raise InvalidQueryError("anygram.cluster.open places the shards itself: "
                                "leave out groups=")
    if options.get("load", "mmap") != "mmap":
        raise InvalidQueryError("a cluster maps its shards (load='mmap'): with load='ram' "
                                "every host and this process would read the whole index")
    connect(address)
    return Engine.open(path, groups=RayGroups(timeout), **options)


def stop(engine: Engine) -> None:
    """Close ``engine`` and kill its host actors (a cluster engine's; other drivers using
    the same hosts lose them too)."""
    groups = engine.groups
    engine.close()
    if isinstance(groups, RayGroups):
        groups.stop()
