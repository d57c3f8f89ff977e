"""Ray, the optional engine of multi-machine work (``pip install 'anygram[ray]'``): importing
it with a clear error, and connecting this process to a cluster."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ._extras import require
from .errors import ClusterError

#: The Ray namespace of anygram's actors.
NAMESPACE = "anygram"
#: The node label that names a node for placement (``ray start --labels anygram-node=a``).
NODE_LABEL = "anygram-node"
#: On a node, the directory under which it keeps node-local index directories, when set
#: (several nodes on one machine, as the tests start them); else at their own path.
NODE_ROOT_ENV = "ANYGRAM_NODE_ROOT"


def ray_module() -> Any:
    """The ``ray`` package, or MissingDependencyError naming the extra."""
    return require("ray", "ray", "running on a Ray cluster")


def connect(address: str | None) -> Any:
    """Connect this process to the Ray cluster at ``address`` (None: ``RAY_ADDRESS``, else
    ``auto``: the cluster started on this machine) unless it is connected; returns ``ray``.

    Raises ClusterError when there is no cluster there.
    """
    ray = ray_module()
    if not ray.is_initialized():
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        target = address or os.environ.get("RAY_ADDRESS") or "auto"
        try:
            ray.init(address=target, namespace=NAMESPACE, log_to_driver=False,
                     logging_level="warning")
        except ConnectionError as exc:
            raise ClusterError(f"no Ray cluster at {target!r} ({exc}): start one with "
                               "`ray start --head`, or give its address") from None
    return ray


def node_local(path: str | Path) -> Path:
    """Where this node keeps the node-local directory ``path`` (:data:`NODE_ROOT_ENV`)."""
    root = os.environ.get(NODE_ROOT_ENV)
    p = Path(path)
    return Path(root) / p.relative_to(p.anchor) if root else p


def labelled_nodes(ray: Any) -> list[str]:
    """The names (:data:`NODE_LABEL`) of the labelled nodes alive, sorted."""
    return sorted({str(label) for n in ray.nodes() if n.get("Alive")
                   if (label := (n.get("Labels") or {}).get(NODE_LABEL)) is not None})
