"""The checks an open samples (anygram.index.checks) refuse damage whatever the pages they
read were fetched with: requested together first (checks.prefetch, a memory-mapped index),
or already in memory (load="ram")."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from anygram import Engine
from anygram.errors import IndexFormatError
from anygram.index import checks
from anygram.index.build import build_index_from_ids
from anygram.index.reader import open_index


@pytest.fixture(scope="module")
def sound(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(11)
    docs = [[rng.randrange(1, 40) for _ in range(rng.randrange(1, 60))] for _ in range(400)]
    out = tmp_path_factory.mktemp("open_checks") / "idx"
    build_index_from_ids(docs, out, vocab_size=40, shard_tokens=3000)
    assert len(open_index(out).shards) >= 3
    return out


def _zero_tokens(d: Path) -> None:
    (d / "tokenized.1").write_bytes(bytes((d / "tokenized.1").stat().st_size))


def _zero_table(d: Path) -> None:
    (d / "table.2").write_bytes(bytes((d / "table.2").stat().st_size))


def _shuffle_table(d: Path) -> None:
    k = open_index(d).shards[0].ptr_width
    rows = np.fromfile(d / "table.0", dtype=np.uint8).reshape(-1, k)
    np.random.default_rng(0).shuffle(rows)
    rows.tofile(d / "table.0")


def _swap_a_sampled_pair(d: Path) -> None:
    """Swap the entries of a rank the open samples and the next one (all else in order)."""
    shard = open_index(d).shards[0]
    k = shard.ptr_width
    _, stop, step = checks._spread(shard.num_positions - 1, checks.OPEN_SAMPLES)[0]
    r = step * (stop // step // 2)
    rows = np.fromfile(d / "table.0", dtype=np.uint8).reshape(-1, k)
    rows[[r, r + 1]] = rows[[r + 1, r]]
    rows.tofile(d / "table.0")


def _swap_offsets(d: Path) -> None:
    offsets = np.fromfile(d / "offset.1", dtype="<u8")
    offsets[[0, -1]] = offsets[[-1, 0]]
    offsets.tofile(d / "offset.1")


@pytest.mark.parametrize("load", ["mmap", "ram"])
@pytest.mark.parametrize(("damage", "says"), [
    (_zero_tokens, "tokenized.1 does not start with a document separator"),
    (_zero_table, r"(table|offset)\.2 is damaged"),
    (_shuffle_table, r"(table|offset)\.0 is damaged"),
    (_swap_a_sampled_pair, "table.0 is damaged: the entries at ranks"),
    (_swap_offsets, "offset.1 is damaged"),
], ids=["tokens zeroed", "table zeroed", "table shuffled", "a sampled pair swapped",
         "offsets out of order"])
def test_damage_the_sample_reads_is_refused_on_open(sound, tmp_path, load, damage, says):
    d = tmp_path / "idx"
    shutil.copytree(sound, d)
    damage(d)
    with pytest.raises(IndexFormatError, match=says):
        Engine.open(d, load=load)


def test_prefetch_asks_for_the_mapped_files_only(sound, monkeypatch):
    """Every array the checks read of a memory-mapped shard is found to be a file's map (so
    its pages are requested), none of a shard read into RAM; the requests cover the pages
    the checks then read."""
    mapped = open_index(sound).shards
    for s in mapped:
        assert all(checks._requester(a) is not checks._ignore for a in (s.ds, s.sa, s.offsets))
    for s in open_index(sound, load="ram").shards:
        assert all(checks._requester(a) is checks._ignore for a in (s.ds, s.sa, s.offsets))

    asked: dict[int, set[int]] = {}
    real = checks._requester

    def recording(arr):
        ask = real(arr)
        if arr is None or ask is checks._ignore:
            return ask

        def record(start: int, length: int) -> None:
            asked.setdefault(id(arr), set()).update(
                range(max(start, 0) // 4096, (start + length - 1) // 4096 + 1))
            ask(start, length)
        return record

    monkeypatch.setattr(checks, "_requester", recording)
    checks.prefetch(mapped, checks.OPEN_SAMPLES)
    for s in mapped:
        n, k = s.num_positions, s.ptr_width
        assert {0, (n - 1) * k // 4096} <= asked[id(s.sa)]
        assert 0 in asked[id(s.ds)] and 0 in asked[id(s.offsets)]
