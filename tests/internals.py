"""Test access to the engine's internals: the shard group behind an :class:`anygram.Engine`.

Tests use these to reach states the public API reaches only through files (documents taken
down without a takedown index) and to run kernels on exactly the engine's arrays.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from anygram import Engine
from anygram.shards import LocalShards


def set_removed(eng: Engine, removed: Sequence[np.ndarray]) -> None:
    """Mark documents taken down in the engine's shard group only (per shard, sorted local
    ids): what search, retrieval, CNF and the language models skip. No takedown index is
    built, so counts still include them."""
    core = eng._core
    core.shards = LocalShards(eng.shards, core.vocab_size, removed)


def kernel_arrays(eng: Engine) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
    """``(ds, sa, ptr_width, num_positions)`` of each shard, as the search kernels take them."""
    return [(s.ds, s.sa, s.ptr_width, s.num_positions) for s in eng.shards]


def query_bytes(eng: Engine, ids: list[int]) -> np.ndarray:
    """Token ids as the little-endian bytes the kernels compare."""
    return eng._core.bytes(ids)


def holding_walk_caches(eng: Engine) -> AbstractContextManager[object]:
    """Hold the suffix walk's caches, as a concurrent call would."""
    shards = eng._core.shards
    assert isinstance(shards, LocalShards)
    return shards._walk_caches()


@contextmanager
def interrupted_at_shard(n: int) -> Iterator[None]:
    """Inside: the builder is interrupted (``KeyboardInterrupt``, as by Ctrl-C) when it
    finishes its ``n``-th shard (1-based), after the shards before it are recorded."""
    import pytest

    import anygram.index.build as build_mod

    real_finish = build_mod.finish_shard
    calls = {"n": 0}

    def finish(writer: object, *args: object) -> object:
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt("simulated Ctrl-C")
        return real_finish(writer, *args)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(build_mod, "finish_shard", finish)
        yield


def read_only_for_sidecars(monkeypatch: pytest.MonkeyPatch, module: ModuleType,
                           idx: Path) -> None:
    """Have a sidecar module's ``write`` refuse the index directory ``idx`` (as a read-only
    index would) and write anywhere else."""
    write = module.write

    def read_only_index(path: Path, *args: Any) -> None:
        if path.parent == idx:
            raise PermissionError(f"{idx} is read-only")
        write(path, *args)

    monkeypatch.setattr(module, "write", read_only_index)
