""":class:`RayBuild`: a build's tokenizing and sorting as Ray tasks on a cluster.

The driver (the process running ``build_index(..., ray_address=...)``) reads the corpus and
writes each shard's token files, as a local build does, so the shards are cut at the same
documents; the tokenizing of batches of documents and the suffix sort of each written shard
run as tasks on the cluster's nodes. A sort task reserves one CPU and the memory its sort
peaks at (Ray's ``memory`` resource: two sorts never share a node's RAM beyond it) and is
re-run if its worker dies (``max_retries``); it writes the same files again. The output
directory must be at the same path on every node (a shared filesystem), and so must the
tokenizer file. The index is the same, file for file, as a local build with the same
``shard_tokens``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

from .._ray import connect
from ..errors import BuildError
from ..tokenization import Tokenizer
from .format import ShardInfo
from .writing import ClosedShard, encode_batch, finish_shard

#: Retries of a task whose worker died.
RETRIES = 3
#: Tokenizing batches in flight per CPU of the cluster.
BATCHES_PER_CPU = 4


class RayBuild:
    """A :class:`~anygram.index.build.BuildRunner` on the Ray cluster at ``address`` (None:
    ``RAY_ADDRESS``, else the cluster started on this machine)."""

    def __init__(self, address: str | None) -> None:
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
        task = self._ray.remote(finish_shard).options(
            num_cpus=1, memory=max(need, 1), max_retries=RETRIES)
        future: Future[ShardInfo] = task.remote(shard).future()
        return future
