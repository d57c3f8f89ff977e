"""The serving actor's body: :class:`ShardHost`, one process holding some shards of an index.

A host opens its shards as this process's :class:`~anygram.shards.LocalShards` would (its
own thread pool over them) and answers the :class:`~anygram.shards.ShardGroup` methods by
name, for the coordinator's :class:`~anygram.cluster.remote.RemoteShards`. It holds no state
but what its constructor opens, so Ray can restart it after its process dies. One host may
also hold the index's takedown group (the documents taken down, whose counts are
subtracted).

This module does not import Ray: :mod:`anygram.cluster.groups` makes the class an actor.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._ray import node_local
from ..errors import IndexFormatError
from ..index import takedown
from ..index.format import LoadMethod
from ..index.reader import ShardElsewhere, open_index
from ..shards import ShardGroup, ShardSize, Windows, open_groups

#: The group names a host answers for.
SHARDS, TAKEDOWN = "shards", "takedown"


@dataclass(frozen=True)
class HostSpec:
    """What a host opens: shards ``shards`` (global indexes, in order) of the index in
    ``directories``, with the engine's options; ``holds_takedown``: the takedown group too."""

    directories: tuple[str, ...]
    token_dtype: str
    vocab_size: int
    shards: tuple[int, ...]
    identities: tuple[str, ...]  # every shard's (hex): the index the coordinator opened
    holds_takedown: bool
    load: LoadMethod
    takedown: bool
    search_sample: bool
    ntd_table: bool
    #: The directories are node-local (:func:`anygram._ray.node_local`): each node keeps
    #: its own shards there (an index built with ``--placement label``).
    node_local: bool = False

    @property
    def paths(self) -> list[Path]:
        """The directories, where this node keeps them."""
        return [node_local(d) if self.node_local else Path(d) for d in self.directories]


@dataclass(frozen=True)
class GroupFacts:
    """A group's sizes and token width, as the coordinator needs them."""

    token_width: int
    sizes: tuple[ShardSize, ...]


class ShardHost:
    """Holds some shards of an index and answers :class:`~anygram.shards.ShardGroup` calls."""

    def __init__(self, spec: HostSpec) -> None:
        self._spec = spec
        self._lock = threading.Lock()  # reload against reload
        self._seen = self._signature()
        # The index as the coordinator opened it, or none: a host (re)started after the
        # index changed on disk (an add, a compaction, a rebuild) refuses to serve another.
        self._index = open_index(spec.paths, token_dtype=spec.token_dtype,
                                 load=spec.load, sample_checks=set(spec.shards))
        where = ", ".join(str(p) for p in spec.paths)
        found = tuple(sh.identity.hex() for sh in self._index.shards)
        if found != spec.identities:
            raise IndexFormatError(f"the index at {where} changed since it was opened "
                                   "(shards added, compacted or rebuilt): open it again")
        away = [self._index.shards[i].name for i in spec.shards
                if isinstance(self._index.shards[i], ShardElsewhere)]
        if away:
            raise IndexFormatError(f"shard(s) {', '.join(away)} of the index should be in "
                                   f"{where} on this node, and are not: build the index "
                                   "again, or copy them back")
        self._groups: dict[str, ShardGroup | None] = self._open(None)

    def _signature(self) -> tuple[object, ...]:
        """What the takedown records are now (the engine's ``refresh`` compares the same)."""
        return tuple(takedown.record_signature(takedown.record_path(d))
                     for d in self._spec.paths)

    def _open(self, reuse: ShardGroup | None) -> dict[str, ShardGroup | None]:
        """The groups of the index opened at start, with the takedowns recorded now."""
        s = self._spec
        main, minus = open_groups(self._index, s.vocab_size, load=s.load, takedown=s.takedown,
                                  search_sample=s.search_sample, ntd_table=s.ntd_table,
                                  reuse=reuse, only=s.shards, with_takedown=s.holds_takedown)
        return {SHARDS: main, TAKEDOWN: minus}

    def facts(self) -> dict[str, GroupFacts | None]:
        """Each group's facts (None: the host holds no such group)."""
        return {name: None if g is None else GroupFacts(g.token_width, g.sizes)
                for name, g in self._groups.items()}

    def reload(self) -> dict[str, GroupFacts | None]:
        """Open the shards again (takedowns changed), sharing the caches; the new facts."""
        with self._lock:
            # (the old groups are not closed: queries in flight finish on them)
            self._seen = self._signature()
            self._groups = self._open(self._groups[SHARDS])
        return self.facts()

    def current(self) -> dict[str, GroupFacts | None]:
        """The facts, after a reload if takedowns changed since the host opened: a host
        found by name may have been opened long before this engine."""
        if self._signature() != self._seen:
            return self.reload()
        return self.facts()

    def call(self, group: str, method: str, args: tuple[Any, ...]) -> Any:
        """``method(*args)`` of one of the host's groups, its answer made picklable."""
        target = self._groups[group]
        if target is None:
            raise LookupError(f"this host holds no {group} group")
        out = getattr(target, method)(*args)
        if method == "windows":
            return [(s, sel, _portable_windows(w)) for s, sel, w in out]
        return _portable(out)

    def where(self) -> tuple[int, str]:
        """The host's process id and Ray node id (run as an actor only)."""
        import ray  # an actor's process has it

        return os.getpid(), ray.get_runtime_context().get_node_id()


def _portable(x: Any) -> Any:
    """``x`` with its memory maps copied out: a map pickles as the file's whole array."""
    if isinstance(x, np.memmap):
        return np.array(x)
    if isinstance(x, tuple) and not hasattr(x, "_fields"):
        return tuple(_portable(v) for v in x)
    if isinstance(x, list):
        return [_portable(v) for v in x]
    return x


#: Columns of a window's metadata byte range (kernels.WINDOW_COLUMNS).
_META_LO, _META_HI = 6, 7


def _portable_windows(w: Windows) -> tuple[np.ndarray, np.ndarray, np.ndarray, bytes | None]:
    """The windows' fields, with only their documents' metadata lines (not the shard's whole
    metadata file, and as bytes: a memoryview does not pickle), the table's byte ranges
    moved to index into them."""
    if w.metadata is None:
        return w.table, np.asarray(w.tokens), w.hidden, None
    table = w.table.copy()
    lo, hi = table[:, _META_LO], table[:, _META_HI]
    has = lo >= 0
    sizes = np.where(has, hi - lo, 0)
    starts = np.cumsum(sizes) - sizes
    md = w.metadata
    lines = b"".join(bytes(md[a:b]) for a, b in zip(lo[has].tolist(), hi[has].tolist()))
    table[has, _META_LO] = starts[has]
    table[has, _META_HI] = starts[has] + sizes[has]
    return table, np.asarray(w.tokens), w.hidden, lines
