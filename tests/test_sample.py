"""The search sample (``anygram.index.sample``, ``anygram.kernels.sample``): searches through
it give exactly the plain binary search's ranges, and its sidecar is never trusted blindly
(missing, stale, corrupt or unwritable: rebuilt or kept in memory, the answers unchanged)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import reference as ref
from hypothesis import given
from hypothesis import strategies as st
from internals import read_only_for_sidecars

from anygram import Engine
from anygram.index import sample as sidecar
from anygram.index import sidecar as sidecars
from anygram.index.build import build_index_from_ids
from anygram.kernels.sample import find_range_sampled, longest_suffix_sampled
from anygram.kernels.search import find_range, longest_suffix


def _arrays(data: bytes, width: int) -> tuple[np.ndarray, np.ndarray, int]:
    ptrs = ref.naive_suffix_array(data, width)
    k = max(1, -(-(max(len(data), 1) - 1).bit_length() // 8))
    sa = np.frombuffer(b"".join(p.to_bytes(k, "little") for p in ptrs), dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8), sa, k


@st.composite
def shards(draw):
    """A token stream (separators included) over a tiny alphabet: dense ties."""
    width = draw(st.sampled_from([1, 2, 4]))
    letters = draw(st.sampled_from([[0, 1], [1, 2, 255], [0, 0x100, 0xFF]]))
    letters = [t for t in letters if t < (1 << (8 * width)) - 1]
    docs = draw(st.lists(st.lists(st.sampled_from(letters), max_size=15), max_size=6))
    sep = (1 << (8 * width)) - 1
    ids = [t for d in docs for t in [sep, *d]]
    data = np.array(ids, dtype=f"<u{width}").tobytes()
    return width, letters, data


@given(shards(), st.integers(1, 7), st.integers(1, 6), st.data())
def test_sampled_search_equals_plain_search(shard, stride, key_bytes, data):
    width, letters, raw = shard
    ds, sa, k = _arrays(raw, width)
    smp = sidecar.build(ds, sa, width, k, stride=stride, key_bytes=key_bytes)
    total = sa.shape[0] // k
    for _ in range(6):
        q = data.draw(st.lists(st.sampled_from(letters + [(1 << (8 * width)) - 1]),
                               max_size=6))
        qb = np.array(q, dtype=f"<u{width}").view(np.uint8)
        want = find_range(ds, sa, k, qb, 0, total)
        got = find_range_sampled(ds, sa, k, qb, smp.keys, smp.lens, smp.ptrs, smp.stride,
                                 smp.faults)
        assert tuple(got) == tuple(want), (q, stride, key_bytes)
        assert tuple(longest_suffix_sampled(ds, sa, k, qb, width, smp.keys, smp.lens,
                                            smp.ptrs, smp.stride, smp.faults)) == \
            tuple(longest_suffix(ds, sa, k, qb, width))
        assert smp.faults[0] == 0  # a sound sample never misleads


def test_sample_keeps_every_strideth_suffix():
    raw = bytes([255, 3, 1, 2, 255, 1, 2, 3, 3])
    ds, sa, k = _arrays(raw, 1)
    smp = sidecar.build(ds, sa, 1, k, stride=3, key_bytes=2)
    ptrs = ref.naive_suffix_array(raw, 1)
    assert smp.ptrs.tolist() == ptrs[::3]
    for j, p in enumerate(ptrs[::3]):
        length = min(2, len(raw) - p)
        assert smp.lens[j] == length
        assert smp.keys[j, :length].tobytes() == raw[p:p + length]


def _index(tmp_path: Path, **kw) -> Path:
    rng = np.random.default_rng(3)
    docs = [rng.integers(0, 5, size=rng.integers(1, 40)).tolist() for _ in range(60)]
    build_index_from_ids(docs, tmp_path / "idx", vocab_size=7, shard_tokens=700, **kw)
    return tmp_path / "idx"


def _answers(idx: Path, **kw) -> list[object]:
    with Engine.open(idx, **kw) as eng:
        qs = [[1], [1, 2], [3, 3, 3], [4, 0, 1, 2], [6], []]
        return [(eng.count(q), eng.ntd(q), eng.infgram_prob(q, 2)) for q in qs]


def test_build_writes_it_and_the_manifest_records_it(tmp_path):
    idx = _index(tmp_path, sample_stride=4)
    m = Engine.open(idx)
    for info in m.shards:
        path = idx / f"sample.{info.name}"
        assert path.exists()
    manifest = (idx / "manifest.json").read_text()
    assert '"sample.0"' in manifest
    plain = _answers(idx, search_sample=False)
    assert _answers(idx) == plain


def test_no_sample_index(tmp_path):
    idx = _index(tmp_path, sample_stride=0)
    assert not list(idx.glob("sample*"))
    plain = _answers(idx, search_sample=False)
    assert not list(idx.glob("sample*"))
    assert _answers(idx) == plain  # built on first use ...
    assert list(idx.glob("sample.*"))  # ... and kept for the next time


@pytest.mark.parametrize("damage", ["truncate", "swap", "garbage"])
def test_a_stale_sample_is_rebuilt(tmp_path, damage, monkeypatch):
    """What a sidecar's header and spot checks can tell (truncated, another shard's, not a
    sample) is rebuilt when the index is opened."""
    idx = _index(tmp_path, sample_stride=3)
    said: list[str] = []
    monkeypatch.setattr(sidecar.log, "warning", lambda msg, *args: said.append(msg % args))
    plain = _answers(idx, search_sample=False)
    path = idx / "sample.0"
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(raw[:len(raw) // 2])
    elif damage == "swap":  # another shard's sample: stale
        path.write_bytes((idx / "sample.1").read_bytes())
    else:
        path.write_bytes(b"x" * 10)
    assert _answers(idx) == plain
    assert any("ignoring the search sample" in line for line in said)
    assert sidecar.read(path, *_shard_args(idx)) is not None  # rewritten, intact


@pytest.mark.parametrize("damage", ["keys", "ptrs", "lens"])
def test_a_damaged_sample_never_gives_a_wrong_answer(tmp_path, damage, monkeypatch):
    """Damage its checks on open do not see (its entries): every search checks the bracket
    the sample gives against the suffix array, falls back to the plain search when it does
    not hold, and the sample is dropped (and rebuilt on the next open)."""
    from anygram.shards import shard as shard_module

    idx = _index(tmp_path, sample_stride=2)
    plain = _answers(idx, search_sample=False)
    path = idx / "sample.0"
    s = sidecar.read(path, *_shard_args(idx))
    assert s is not None
    n, m = s.keys.shape
    raw = bytearray(path.read_bytes())
    at = 64 + {"keys": 0, "lens": n * m, "ptrs": n * (m + 1) + (-n * (m + 1) % 8)}[damage]
    size = {"keys": n * m, "lens": n, "ptrs": 8 * n}[damage]
    raw[at + 8:at + size - 8] = bytes([0xFF, 0x01]) * ((size - 16) // 2) + bytes(
        (size - 16) % 2)
    path.write_bytes(raw)
    said: list[str] = []
    monkeypatch.setattr(shard_module.log, "warning", lambda msg, *args: said.append(msg % args))
    with Engine.open(idx) as eng:
        qs = [[1], [1, 2], [3, 3, 3], [4, 0, 1, 2], [6], [0, 0], [2, 3, 4, 1]]
        for q in qs * 3:
            assert eng.count(q) == Engine.open(idx, search_sample=False).count(q)
            assert eng.infgram_prob(q, 2) == Engine.open(idx,
                                                         search_sample=False).infgram_prob(q, 2)
        assert eng.count_many(qs) == [eng.count(q) for q in qs]
    assert _answers(idx) == plain
    if said:  # misled at least once: dropped, and its file removed to be rebuilt
        assert "does not match its suffix array" in said[0]
        assert sidecar.read(path, *_shard_args(idx)) is not None


def _shard_args(idx: Path) -> tuple[np.ndarray, np.ndarray, int, int]:
    s = Engine.open(idx, search_sample=False).shards[0]
    return s.ds, s.sa, s.token_width, s.ptr_width


def test_an_index_rebuilt_to_the_same_sizes_gets_a_new_sample(tmp_path):
    """The fingerprint (sizes) agrees, the spot checks do not: the old sample is not used."""
    docs = [[1, 2, 3, 4]] * 30 + [[4, 3, 2, 1]] * 30
    build_index_from_ids(docs, tmp_path / "a", vocab_size=7, sample_stride=2)
    build_index_from_ids(docs[::-1], tmp_path / "b", vocab_size=7, sample_stride=2)
    (tmp_path / "b" / "sample.0").write_bytes((tmp_path / "a" / "sample.0").read_bytes())
    plain = _answers(tmp_path / "b", search_sample=False)
    assert _answers(tmp_path / "b") == plain


def test_a_read_only_index_keeps_its_sample_in_the_cache(tmp_path, monkeypatch):
    idx = _index(tmp_path, sample_stride=0)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    plain = _answers(idx, search_sample=False)
    read_only_for_sidecars(monkeypatch, sidecar, idx)
    assert _answers(idx) == plain
    assert not list(idx.glob("sample*"))
    cached = list((tmp_path / "cache").rglob("sample.*"))
    assert cached and all(c.parent == sidecars.cache_path(idx, "x").parent for c in cached)
    assert _answers(idx) == plain  # read back from the cache


def test_an_unwritable_place_keeps_the_sample_in_memory(tmp_path, monkeypatch):
    idx = _index(tmp_path, sample_stride=0)
    plain = _answers(idx, search_sample=False)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError("read-only file system")

    monkeypatch.setattr(sidecar, "write", refuse)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert _answers(idx) == plain
    assert not list(idx.glob("sample*")) and not list((tmp_path / "cache").rglob("sample.*"))


@given(shards(), st.integers(1, 5), st.integers(1, 4), st.data())
def test_a_damaged_sample_still_gives_the_plain_answers(shard, stride, key_bytes, data):
    """Whatever its entries hold (a damaged or hostile file), a search through the sample
    equals the plain binary search: the bracket is checked against the suffix array."""
    width, letters, raw = shard
    ds, sa, k = _arrays(raw, width)
    smp = sidecar.build(ds, sa, width, k, stride=stride, key_bytes=key_bytes)
    n = smp.ptrs.shape[0]
    keys, lens, ptrs = smp.keys.copy(), smp.lens.copy(), smp.ptrs.copy()
    for _ in range(data.draw(st.integers(1, 4))):
        j = data.draw(st.integers(0, max(n - 1, 0))) if n else 0
        if not n:
            break
        what = data.draw(st.sampled_from(["key", "len", "ptr"]))
        if what == "key":
            keys[j] = data.draw(st.lists(st.integers(0, 255), min_size=key_bytes,
                                         max_size=key_bytes))
        elif what == "len":
            lens[j] = data.draw(st.integers(0, 255))
        else:
            ptrs[j] = data.draw(st.integers(-2**40, 2**40))
    faults = np.zeros(1, dtype=np.int64)
    total = sa.shape[0] // k
    for _ in range(5):
        q = data.draw(st.lists(st.sampled_from(letters + [(1 << (8 * width)) - 1]),
                               max_size=6))
        qb = np.array(q, dtype=f"<u{width}").view(np.uint8)
        assert tuple(find_range_sampled(ds, sa, k, qb, keys, lens, ptrs, stride, faults)) == \
            tuple(find_range(ds, sa, k, qb, 0, total))
