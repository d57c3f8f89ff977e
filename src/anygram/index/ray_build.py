""":class:`RayBuild`: a build's tokenizing, writing and sorting on a Ray cluster.

The driver (the process running ``build_index(..., ray_address=...)``) reads the corpus and
cuts the shards as a local build does, so the shards are cut at the same documents; the
tokenizing of batches of documents and the suffix sort of each shard run as tasks on the
cluster's nodes. A sort task reserves one CPU and the memory its sort peaks at (Ray's
``memory`` resource: two sorts never share a node's RAM beyond it) and is re-run if its
worker dies (``max_retries``); it writes the same files again. The index is the same, file
for file, as a local build with the same ``shard_tokens``.

Two placements:

- ``shared``: the output directory is at the same path on every node (a shared
  filesystem), and so is the tokenizer file; the driver writes the shards' token files.
- ``label``: every node labelled ``anygram-node=<name>`` keeps some shards on its own disk,
  in a directory at the output's path there. Shard ``k`` goes to the ``k``-th node in name
  order, round robin: a :class:`ShardStore` actor on that node writes its files from the
  documents the driver sends it, and its sort runs there. The manifest names each shard's
  node; every node's directory gets the manifest and the tokenizer, and holds only its own
  shards (the driver's holds none, unless it is one of the nodes). A node that is lost
  mid-build fails the build: ``--resume`` keeps the shards that finished.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from .._ray import NODE_LABEL, connect, labelled_nodes, node_local
from ..errors import BuildError
from ..tokenization import Tokenizer
from . import staging
from .corpus import Document
from .format import PLACEMENTS, Manifest, Placement, ShardInfo
from .writing import (
    ClosedShard,
    ShardSink,
    ShardWriter,
    Sidecars,
    encode_batch,
    finish_shard,
    metadata_line,
)

#: Retries of a task whose worker died.
RETRIES = 3
#: Tokenizing batches in flight per CPU of the cluster.
BATCHES_PER_CPU = 4
#: Bytes of documents the driver sends a node's store at once, and sends in flight.
SEND_BYTES, SENDS_IN_FLIGHT = 8 << 20, 2


class RayBuild:
    """A :class:`~anygram.index.build.BuildRunner` on the Ray cluster at ``address`` (None:
    ``RAY_ADDRESS``, else the cluster started on this machine)."""

    def __init__(self, address: str | None, placement: Placement = "shared") -> None:
        if placement not in PLACEMENTS:
            raise BuildError(f"placement must be one of {', '.join(PLACEMENTS)}, not "
                             f"{placement!r}")
        self._ray = ray = connect(address)
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < 1:
            raise BuildError("the Ray cluster has no CPU to run build tasks on: start its "
                             "nodes with --num-cpus")
        #: Shards sorting at once: one per CPU of the cluster.
        self.sorts_in_flight = cpus
        self._window = BATCHES_PER_CPU * cpus
        self._memory = max((n.get("Resources", {}).get("memory", 0) for n in ray.nodes()
                            if n.get("Alive")), default=0)
        self.params: dict[str, Any] = {} if placement == "shared" else {"placement": placement}
        #: Label placement: the nodes, their stores, and each shard's node.
        self._nodes = labelled_nodes(ray) if placement == "label" else []
        if placement == "label" and not self._nodes:
            raise BuildError(f"--placement label keeps shards on nodes labelled {NODE_LABEL}"
                             f"=<name> (`ray start --labels {NODE_LABEL}=<name>`): the "
                             "cluster has none alive")
        self._stores: dict[str, Any] = {}
        self._node_of: dict[str, str] = {}

    def prepare(self, partial: Path, out: Path, done: list[ShardInfo], *, overwrite: bool,
                resume: bool) -> None:
        if not self._nodes:
            return
        # A node that sees this directory (a shared filesystem) finds this id in it: the
        # driver prepares and publishes it, not the node.
        build_id = uuid.uuid4().hex
        (partial / staging.BUILD_ID_NAME).write_text(build_id, encoding="utf-8")
        store = self._ray.remote(ShardStore)
        self._stores = {node: store.options(label_selector={NODE_LABEL: node}, num_cpus=0)
                        .remote(str(out), build_id) for node in self._nodes}
        self._node_of = {s.name: s.node for s in done if s.node is not None}
        self._get([st.prepare.remote([f for s in done if s.node == node for f in s.files],
                                     overwrite, resume)
                   for node, st in self._stores.items()])

    def writer(self, partial: Path, name: str, width: int, metadata: bool,
               sidecars: Sidecars) -> ShardSink:
        if not self._nodes:
            return ShardWriter(partial, name, width, metadata, sidecars)
        node = self._node_of[name] = self._nodes[int(name) % len(self._nodes)]
        return NodeShardWriter(self._ray, self._stores[node], name, width, metadata, sidecars)

    def publish(self, out: Path, manifest: Manifest, files: dict[str, bytes]) -> None:
        if not self._nodes:
            return
        self._get([st.publish.remote(manifest, files) for st in self._stores.values()])

    def close(self) -> None:
        for st in self._stores.values():
            self._ray.kill(st)
        self._stores = {}

    def _get(self, refs: list[Any]) -> list[Any]:
        """The answers of the stores, their errors raised as themselves (BuildError: a
        node's output exists, ...)."""
        try:
            return list(self._ray.get(refs))
        except self._ray.exceptions.RayTaskError as exc:
            raise exc.as_instanceof_cause() from None
        except self._ray.exceptions.RayActorError as exc:
            raise BuildError(f"a node was lost during the build ({str(exc).splitlines()[0]}):"
                             " run the build again with --resume") from None

    def encode(self, tokenizer: Tokenizer, dtype: str, batches: Iterator[list[str]]
               ) -> Iterator[list[bytes]]:
        ray = self._ray
        task = ray.remote(encode_batch).options(num_cpus=1, max_retries=RETRIES)
        tok = ray.put(tokenizer)  # (pickled as its file path and hash: every node reads it)
        window: deque[Any] = deque()
        for texts in batches:
            window.append(task.remote(tok, dtype, texts))
            if len(window) >= self._window:
                yield ray.get(window.popleft())
        while window:
            yield ray.get(window.popleft())

    def finish(self, shard: ClosedShard) -> Future[ShardInfo]:
        need = shard.sort_memory
        if self._memory and need > self._memory:
            raise BuildError(f"shard {shard.name} needs {need / 2**30:.1f} GiB to sort, more "
                             f"than any node of the cluster has ({self._memory / 2**30:.1f} "
                             "GiB): build with a smaller --shard-tokens")
        options: dict[str, Any] = dict(num_cpus=1, memory=max(need, 1), max_retries=RETRIES)
        node = self._node_of.get(shard.name)  # (none with shared placement)
        if node is not None:
            options["label_selector"] = {NODE_LABEL: node}
        task = self._ray.remote(finish_shard_on).options(**options)
        future: Future[ShardInfo] = task.remote(shard, node).future()
        return future


def finish_shard_on(shard: ClosedShard, node: str | None) -> ShardInfo:
    """:func:`finish_shard`, the shard's node recorded (a task's body)."""
    return dataclasses.replace(finish_shard(shard), node=node)


class NodeShardWriter:
    """A :class:`~anygram.index.writing.ShardSink` whose files a node's :class:`ShardStore`
    writes: the driver sends it the documents in batches of about :data:`SEND_BYTES`."""

    def __init__(self, ray: Any, store: Any, name: str, width: int, metadata: bool,
                 sidecars: Sidecars) -> None:
        self._ray, self._store = ray, store
        self.name, self.num_docs = name, 0
        self._width, self._metadata = width, metadata
        self._ds_bytes = 0
        self._batch: list[tuple[bytes | None, bytes]] = []
        self._batch_bytes = 0
        self._sent: deque[Any] = deque()
        self._sent.append(store.begin.remote(name, width, metadata, sidecars))

    @property
    def positions(self) -> int:
        return self._ds_bytes // self._width

    def add(self, doc: Document | None, token_bytes: bytes) -> None:
        line = metadata_line(doc) if doc is not None and self._metadata else None
        self._batch.append((line, token_bytes))
        self._batch_bytes += len(token_bytes) + len(line or b"")
        self._ds_bytes += self._width + len(token_bytes)
        self.num_docs += 1
        if self._batch_bytes >= SEND_BYTES:
            self._send()

    def _send(self) -> None:
        self._sent.append(self._store.add.remote(self.name, self._batch))
        self._batch, self._batch_bytes = [], 0
        while len(self._sent) > SENDS_IN_FLIGHT:
            self._ray.get(self._sent.popleft())  # (a store's error surfaces here)

    def close(self) -> ClosedShard:
        self._send()
        self._ray.get(list(self._sent))
        closed: ClosedShard = self._ray.get(self._store.close.remote(self.name))
        return closed


class ShardStore:
    """A node's side of a build with label placement (an actor on the node): its directory
    (``out``'s path, :func:`anygram._ray.node_local`) prepared and published as the
    driver's is (:mod:`anygram.index.staging`), and its shards' files written."""

    def __init__(self, out: str, build_id: str) -> None:
        self.out = node_local(out)
        self.partial = staging.partial_of(self.out)
        marker = self.partial / staging.BUILD_ID_NAME
        #: Whether this is the driver's directory (a shared filesystem): the driver's to
        #: prepare and publish.
        self.shared = marker.is_file() and marker.read_text(encoding="utf-8") == build_id
        self._writers: dict[str, ShardWriter] = {}

    def prepare(self, keep: list[str], overwrite: bool, resume: bool) -> None:
        if not self.shared:
            staging.prepare(self.out, overwrite=overwrite, resume=resume)
            staging.remove_leftovers(self.partial, keep)

    def begin(self, name: str, width: int, metadata: bool, sidecars: Sidecars) -> None:
        self._writers[name] = ShardWriter(self.partial, name, width, metadata, sidecars)

    def add(self, name: str, docs: list[tuple[bytes | None, bytes]]) -> None:
        writer = self._writers[name]
        for line, token_bytes in docs:
            writer.add_line(line, token_bytes)

    def close(self, name: str) -> ClosedShard:
        return self._writers.pop(name).close()

    def publish(self, manifest: Manifest, files: dict[str, bytes]) -> None:
        if not self.shared:
            staging.write_files(self.partial, files)
            staging.publish(self.partial, self.out, manifest)
