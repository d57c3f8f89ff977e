""":class:`RayGroups`: opens an index's shard groups on a Ray cluster.

Placement: one host actor (:class:`~anygram.cluster.host.ShardHost`) per node, not per
shard, so that a query costs one call per node. A node started with the label
``anygram-node=<name>`` (``ray start --labels anygram-node=<name>``) holds a contiguous run
of shards, and its host is pinned there by that label: when the node is replaced under the
same label, the host comes back on it. Without labels, the hosts are spread over the nodes
alive (one per node, up to one per shard) and placed wherever Ray finds room after a loss.
The first host also holds the takedown group (the documents taken down: a small index).

Hosts are named, detached actors (``max_restarts=-1``, ``max_task_retries=-1``): a killed
host's process is restarted (its constructor maps the shards again) and the calls in flight
are answered; another driver opening the same index with the same options finds them by
name instead of starting new ones. :func:`stop` kills them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._ray import NAMESPACE, NODE_LABEL, labelled_nodes, ray_module
from ..errors import ClusterError
from ..index.format import LoadMethod
from ..index.reader import OpenedIndex
from ..shards import ShardGroup
from .host import SHARDS, TAKEDOWN, GroupFacts, HostSpec, ShardHost
from .remote import Call, HostsUnavailable, RemoteShards

#: Calls one host runs at once (its threads wait on page faults more than they compute).
HOST_CONCURRENCY = 16
#: Seconds a call waits for a host before its shards are reported unavailable.
DEFAULT_TIMEOUT = 60.0
#: Seconds an open or a reload waits for the hosts at least (they map and check shards).
OPEN_TIMEOUT = 120.0


class RayTransport:
    """Calls hosts (Ray actor handles); a host that has not answered within ``timeout``
    seconds, or whose actor died for good, raises :class:`HostsUnavailable`."""

    def __init__(self, actors: Sequence[Any], places: Sequence[str], timeout: float) -> None:
        self.actors = list(actors)
        self.places = list(places)
        self.timeout = timeout

    def call_all(self, calls: Sequence[Call]) -> list[Any]:
        ray = ray_module()
        refs = [self.actors[h].call.remote(g, m, a) for h, g, m, a in calls]
        try:  # the common case in one call
            return list(ray.get(refs, timeout=self.timeout))
        except ray.exceptions.RayTaskError as exc:
            raise exc.as_instanceof_cause() from None  # the host's own error (bad input)
        except (ray.exceptions.GetTimeoutError, ray.exceptions.RayActorError):
            return self._failed(ray, calls, refs)

    def _failed(self, ray: Any, calls: Sequence[Call], refs: list[Any]) -> list[Any]:
        """After a failed ``get``: the answers if every host gave one after all, else
        :class:`HostsUnavailable` naming the hosts that gave none in time or are down."""
        _, pending = ray.wait(refs, num_returns=len(refs), timeout=0)
        late = [h for (h, _, _, _), r in zip(calls, refs) if r in set(pending)]
        for r in pending:
            ray.cancel(r)
        if late:
            raise HostsUnavailable(late, f"host(s) on {self._where(late)} gave no answer "
                                         f"within {self.timeout:g} s")
        out, down = [], []
        for (h, _, _, _), ref in zip(calls, refs):
            try:
                out.append(ray.get(ref))
            except ray.exceptions.RayActorError:
                down.append(h)
            except ray.exceptions.RayTaskError as exc:
                raise exc.as_instanceof_cause() from None
        if down:
            raise HostsUnavailable(down, f"host(s) on {self._where(down)} are down")
        return out

    def _where(self, hosts: Sequence[int]) -> str:
        return ", ".join(sorted({self.places[h] for h in hosts}))


class RayGroups:
    """A :class:`~anygram.shards.GroupOpener` whose shards are served by host actors on the
    Ray cluster this process is connected to (:func:`connect`). See the module docstring
    for placement; ``timeout``: seconds a query waits for a host."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self.actors: list[Any] = []
        #: Per host, the index's shards it holds.
        self.members: list[list[int]] = []

    def __call__(self, index: OpenedIndex, vocab_size: int, *, load: LoadMethod,
                 takedown: bool, search_sample: bool, ntd_table: bool,
                 reuse: ShardGroup | None = None) -> tuple[ShardGroup, ShardGroup | None]:
        ray = ray_module()
        if isinstance(reuse, RemoteShards) and self.actors:  # takedowns changed: reload
            facts = self._gather(ray, [a.reload.remote() for a in self.actors], "reload")
            return self._groups(reuse.members, facts)
        places, members = _placement(ray, index)
        self.members = members
        # Absolute: the hosts do not run in this directory. The shards' identities: hosts of
        # an index rebuilt at the same path must not be found by name.
        directories = tuple(str(Path(d).resolve()) for d in index.directories)
        identities = tuple(s.identity.hex() for s in index.shards)
        kept_on_nodes = index.shards[0].node is not None
        key = _key(directories, index.token_width, vocab_size, load, takedown, search_sample,
                   ntd_table, places, identities)
        actor_class = ray.remote(ShardHost)
        self.actors, labels = [], []
        for h, (place, shards) in enumerate(zip(places, members)):
            spec = HostSpec(directories, f"u{index.token_width * 8}", vocab_size,
                            tuple(shards), identities, h == 0, load, takedown, search_sample,
                            ntd_table, node_local=kept_on_nodes)
            options: dict[str, Any] = dict(
                name=f"{key}/{h}", namespace=NAMESPACE, lifetime="detached",
                get_if_exists=True, max_restarts=-1, max_task_retries=-1, num_cpus=0,
                max_concurrency=HOST_CONCURRENCY)
            if place.startswith(NODE_LABEL + "="):
                options["label_selector"] = {NODE_LABEL: place.split("=", 1)[1]}
            else:
                options["scheduling_strategy"] = "SPREAD"
            self.actors.append(actor_class.options(**options).remote(spec))
            labels.append(place)
        self._places = labels
        facts = self._gather(ray, [a.current.remote() for a in self.actors], "open")
        return self._groups(members, facts)

    def _gather(self, ray: Any, refs: list[Any], what: str) -> list[Any]:
        """The hosts' answers to an open or a reload (which may map many shards: a longer
        wait than a query's), or ClusterError saying why not."""
        try:
            return list(ray.get(refs, timeout=max(self.timeout, OPEN_TIMEOUT)))
        except ray.exceptions.GetTimeoutError:
            raise ClusterError(f"the index's hosts did not {what} it within "
                               f"{max(self.timeout, OPEN_TIMEOUT):g} s") from None
        except ray.exceptions.RayError as exc:
            raise ClusterError(f"the index's hosts could not {what} it: "
                               f"{str(exc).strip().splitlines()[-1][:500]}") from None

    def _groups(self, members: list[list[int]], facts: list[dict[str, GroupFacts | None]]
                ) -> tuple[ShardGroup, ShardGroup | None]:
        transport = RayTransport(self.actors, self._places, self.timeout)
        main = RemoteShards(transport, SHARDS, members, [f[SHARDS] for f in facts])
        held = facts[0][TAKEDOWN]
        if held is None:
            return main, None
        minus = [list(range(len(held.sizes)))] + [[] for _ in members[1:]]
        return main, RemoteShards(transport, TAKEDOWN, minus,
                                  [held] + [None] * (len(members) - 1))

    def fresh(self) -> RayGroups:
        """A new opener with the same options (an opener serves one engine)."""
        return RayGroups(self.timeout)

    def where(self) -> list[tuple[int, str]]:
        """Each host's process id and Ray node id."""
        ray = ray_module()
        return list(ray.get([a.where.remote() for a in self.actors], timeout=self.timeout))

    def stop(self) -> None:
        """Kill the host actors (other drivers using them lose them too)."""
        ray = ray_module()
        for a in self.actors:
            ray.kill(a, no_restart=True)
        self.actors = []


def _placement(ray: Any, index: OpenedIndex) -> tuple[list[str], list[list[int]]]:
    """Where the hosts go and, per host, the shards it holds: for an index built with node-
    local placement, one host per node its manifest names, holding that node's shards;
    else :func:`_places`, with contiguous runs of shards."""
    nodes = [s.node for s in index.shards]
    if all(node is None for node in nodes):
        places = _places(ray, len(nodes))
        return places, _split_evenly(len(nodes), len(places))
    if any(node is None for node in nodes):
        raise ClusterError("the index keeps some shards on named nodes and some not (several "
                           "directories, or shards added after a node-local build): serve "
                           "them as separate indexes")
    names = sorted({str(node) for node in nodes})
    return ([f"{NODE_LABEL}={name}" for name in names],
            [[i for i, node in enumerate(nodes) if node == name] for name in names])


def _places(ray: Any, shards: int) -> list[str]:
    """Where the hosts go: ``anygram-node=<name>`` per labelled node alive (sorted by name),
    else ``node <i>`` per node alive; at most one per shard, at least one."""
    named = labelled_nodes(ray)
    places = ([f"{NODE_LABEL}={name}" for name in named] if named else
              [f"node {i}" for i in range(sum(1 for n in ray.nodes() if n.get("Alive")))])
    return places[:max(1, shards)] or ["node 0"]


def _split_evenly(n: int, parts: int) -> list[list[int]]:
    """``0..n-1`` cut into ``parts`` contiguous runs of near-equal length."""
    bounds = [n * i // parts for i in range(parts + 1)]
    return [list(range(a, b)) for a, b in zip(bounds, bounds[1:])]


def _key(*parts: Any) -> str:
    """A name for the hosts of one index opened with one set of options."""
    text = json.dumps([list(p) if isinstance(p, (list, tuple)) else p for p in parts],
                      default=str)
    return "index-" + hashlib.sha256(text.encode()).hexdigest()[:16]
