"""Test access to the engine's internals: the shard group behind an :class:`anygram.Engine`.

Tests use these to reach states the public API reaches only through files (documents taken
down without a takedown index) and to run kernels on exactly the engine's arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

import numpy as np

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
