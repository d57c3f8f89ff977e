"""Ray, the optional engine of multi-machine work (``pip install 'anygram[ray]'``): importing
it with a clear error, and connecting this process to a cluster."""

from __future__ import annotations

import os
from typing import Any

from ._extras import require
from .errors import ClusterError

#: The Ray namespace of anygram's actors.
NAMESPACE = "anygram"


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
