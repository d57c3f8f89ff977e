"""The next-token table (``anygram.index.ntd_table``, ``anygram.kernels.ntd_table``): it holds
exactly the reference's counts of every frequent 1- and 2-token prompt, the engine answers the
same with it and without it, and its sidecar is never trusted blindly (missing, stale,
damaged or unwritable: rebuilt, not used, or kept in memory; the answers unchanged)."""

from __future__ import annotations

import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import reference as ref
from hypothesis import given
from hypothesis import strategies as st
from internals import read_only_for_sidecars

from anygram import Engine
from anygram import takedown as td
from anygram.index import ntd_table as sidecar
from anygram.index import sidecar as sidecars
from anygram.index.build import build_index_from_ids
from anygram.index.verify import verify_index
from anygram.kernels import ntd_table as kernels
from anygram.kernels.search import find_range, next_token_counts

# ----------------------------------------------------------------------------- the kernels


def _arrays(data: bytes, width: int) -> tuple[np.ndarray, np.ndarray, int]:
    ptrs = ref.naive_suffix_array(data, width)
    k = max(1, -(-(max(len(data), 1) - 1).bit_length() // 8))
    sa = np.frombuffer(b"".join(p.to_bytes(k, "little") for p in ptrs), dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8), sa, k


@st.composite
def shards(draw):
    """A shard over a tiny alphabet (dense ties) with byte-order traps: ids whose bytes hold
    0xff, the largest id, ids that differ in their high byte only; sometimes one token only."""
    width = draw(st.sampled_from([1, 2, 4]))
    sep = (1 << (8 * width)) - 1
    letters = draw(st.sampled_from([[0, 1], [1, 2, 0xFE], [0, 0x100, 0xFF, 0x1FF], [7],
                                    [sep - 1, 0]]))
    letters = sorted({t for t in letters if t < sep})
    docs = draw(st.lists(st.lists(st.sampled_from(letters), max_size=15), max_size=6))
    return width, letters, docs


def _decoded(table: tuple[np.ndarray, ...], width: int
             ) -> dict[tuple[int, ...], tuple[Counter[int], int]]:
    """The table's rows as the reference gives them: prompt -> (next-token counts, ends)."""
    keys1, keys2, counts, ids = table
    out = {}
    for n, keys in ((1, keys1), (2, keys2)):
        for row in keys.tolist():
            first, m = row[kernels.FIRST], row[kernels.GROUPS]
            toks = [int.from_bytes(bytes(ids[g * width:(g + 1) * width]), "little")
                    for g in range(first, first + m)]
            prompt = (row[kernels.TOKEN1], row[kernels.TOKEN2])[:n]
            assert prompt not in out
            out[prompt] = (Counter(dict(zip(toks, counts[first:first + m].tolist()))),
                           row[kernels.END])
    return out


@given(shards(), st.integers(1, 4))
def test_the_table_holds_the_reference_counts(shard, threshold):
    width, letters, docs = shard
    ds, sa, k = _arrays(ref.stream_bytes(docs, width), width)
    table = kernels.build_ntd_table(ds, sa, k, width, threshold)
    assert _decoded(table, width) == ref.naive_ntd_table(docs, threshold)
    for keys in table[:2]:  # by rank, each row checked
        assert np.all(np.diff(keys[:, kernels.LO]) > 0)


@given(shards(), st.integers(1, 3))
def test_a_lookup_answers_as_the_suffix_array_does(shard, threshold):
    """Every prompt of 1 and 2 tokens: found when it occurs ``threshold`` times or more, with
    exactly the next-token kernel's answer (ids in the same order); missing otherwise."""
    width, letters, docs = shard
    ds, sa, k = _arrays(ref.stream_bytes(docs, width), width)
    table = kernels.build_ntd_table(ds, sa, k, width, threshold)
    total = sa.shape[0] // k
    for q in [[a] for a in letters] + [[a, b] for a in letters for b in letters]:
        qb = np.array(q, dtype=f"<u{width}").view(np.uint8)
        lo, hi = find_range(ds, sa, k, qb, 0, total)
        status, got_ids, got_counts, end = kernels.table_next_tokens(
            ds, sa, k, width, qb.shape[0], lo, hi, *table)
        if hi - lo < max(threshold, 1):
            assert status == kernels.MISSING
            continue
        want = next_token_counts(ds, sa, k, qb.shape[0], width, lo, hi)
        assert status == kernels.FOUND
        assert (got_ids.tolist(), got_counts.tolist(), end) == (
            want[0].tolist(), want[1].tolist(), want[2])


@given(shards(), st.data())
def test_a_damaged_table_never_gives_a_wrong_answer(shard, data):
    """Whatever is changed in the table (its check values left as they were), a lookup
    answers what the suffix array does, or says the prompt is missing or the row wrong."""
    width, letters, docs = shard
    ds, sa, k = _arrays(ref.stream_bytes(docs, width), width)
    keys1, keys2, counts, ids = (a.copy() for a in kernels.build_ntd_table(ds, sa, k, width, 1))
    arrays = [keys1, keys2, counts, ids]
    for _ in range(data.draw(st.integers(1, 3))):
        a = data.draw(st.sampled_from([a for a in arrays if a.size]) if any(
            a.size for a in arrays) else st.none())
        if a is None:
            break
        flat = a.reshape(-1)
        i = data.draw(st.integers(0, flat.shape[0] - 1))
        info = np.iinfo(flat.dtype)
        flat[i] = data.draw(st.integers(max(info.min, -(1 << 40)), min(info.max, 1 << 40)))
    total = sa.shape[0] // k
    for q in [[a] for a in letters] + [[a, b] for a in letters for b in letters]:
        qb = np.array(q, dtype=f"<u{width}").view(np.uint8)
        lo, hi = find_range(ds, sa, k, qb, 0, total)
        status, got_ids, got_counts, end = kernels.table_next_tokens(
            ds, sa, k, width, qb.shape[0], lo, hi, *arrays)
        if status == kernels.FOUND:
            want = next_token_counts(ds, sa, k, qb.shape[0], width, lo, hi)
            assert (got_ids.tolist(), got_counts.tolist(), end) == (
                want[0].tolist(), want[1].tolist(), want[2])


# ----------------------------------------------------------------------------- the engine


@st.composite
def corpora(draw):
    """Documents over a tiny alphabet of one width's ids (with the largest id), over 1..4
    shards, and a low threshold so that most prompts are in the table."""
    vocab, alphabet = draw(st.sampled_from([(3, [0, 1, 2]), (255, [0, 0xFE, 0x7F]),
                                            (65535, [0xFFFE, 0xFF, 0x100]),
                                            (2**32 - 1, [2**32 - 2, 0xFF00FF, 5])]))
    letters = alphabet[:draw(st.integers(1, len(alphabet)))]
    docs = draw(st.lists(st.lists(st.sampled_from(letters), max_size=12), max_size=7))
    return vocab, letters, docs, draw(st.integers(2, 60)), draw(st.integers(1, 3))


def _prompts(letters: list[int]) -> list[list[int]]:
    return [[a] for a in letters] + [[a, b] for a in letters for b in letters]


@given(corpora(), st.data())
def test_engine_with_the_table_equals_the_reference(case, data):
    vocab, letters, docs, budget, threshold = case
    import shutil
    import tempfile
    tmp = Path(tempfile.mkdtemp(prefix="anygram-ntd-"))
    try:
        m = build_index_from_ids(docs, tmp / "idx", vocab_size=vocab, shard_tokens=budget,
                                 ntd_threshold=threshold)
        corpus, i = [], 0
        for s in m.shards:
            corpus.append(docs[i:i + s.num_docs])
            i += s.num_docs
        eng, plain = Engine.open(tmp / "idx"), Engine.open(tmp / "idx", ntd_table=False)
        qs = _prompts(letters)
        for q in qs:
            pc, nxt, end = ref.naive_ntd(corpus, q)
            got = eng.ntd(q)
            assert (got.prompt_count, got.counts, got.end_count, got.approx) == (
                pc, dict(nxt), end, False)
            assert list(got.counts) == list(plain.ntd(q).counts)  # the same order too
            longer = [data.draw(st.sampled_from(letters)) for _ in range(3)] + q
            assert eng.infgram_ntd(longer) == plain.infgram_ntd(longer)
        cap = data.draw(st.sampled_from([None, 1, 2, 5]))
        got = eng.ntd_many(qs, max_support=cap)
        assert got == [eng.ntd(q, max_support=cap) for q in qs]
        assert plain.ntd_many(qs, max_support=cap) == [plain.ntd(q, max_support=cap) for q in qs]
        for q, d in zip(qs, got):  # a prompt every table holds is answered exactly, not sampled
            assert d == (plain.ntd(q) if not d.approx else plain.ntd(q, max_support=cap))
        assert all(s.ntd_table is not None for s in eng._core.shards._members)
    finally:
        shutil.rmtree(tmp)


def test_a_prompt_the_table_holds_is_answered_exactly_not_sampled(tmp_path):
    """max_support below the count: a prompt every shard's table holds gets its exact
    distribution (cheaper than a sample); without the table it is sampled as before."""
    rng = np.random.default_rng(5)
    docs = [rng.integers(0, 4, size=rng.integers(1, 50)).tolist() for _ in range(80)]
    build_index_from_ids(docs, tmp_path / "idx", vocab_size=4, ntd_threshold=1)
    eng, plain = Engine.open(tmp_path / "idx"), Engine.open(tmp_path / "idx", ntd_table=False)
    for q in _prompts([0, 1, 2, 3]):
        exact = plain.ntd(q)
        for cap in (1, 7, 50, 10**6):
            assert eng.ntd(q, max_support=cap) == exact
            sampled = plain.ntd(q, max_support=cap)
            assert sampled.approx == (exact.prompt_count > cap)
    # a 3-token prompt is never in the table: sampled with it or without it
    q = [0, 1, 2]
    assert plain.ntd(q).prompt_count > 7
    assert eng.ntd(q, max_support=7) == plain.ntd(q, max_support=7)
    assert eng.ntd(q, max_support=7).approx


def test_takedowns_subtract_from_the_table_answers(tmp_path):
    """Counts are raw and the takedown index's are subtracted: a takedown changes nothing in
    the index's own table, and the answers are those of the documents that remain."""
    rng = np.random.default_rng(6)
    docs = [rng.integers(0, 3, size=rng.integers(0, 20)).tolist() for _ in range(40)]
    m = build_index_from_ids(docs, tmp_path / "idx", vocab_size=3, shard_tokens=150,
                             ntd_threshold=1)
    before = {p.name: p.read_bytes() for p in (tmp_path / "idx").glob("ntd.*")}
    removed = {1, 5, 6, 30}
    td.take_down(tmp_path / "idx", removed)
    corpus, i = [], 0
    for s in m.shards:
        corpus.append([d for j, d in enumerate(docs[i:i + s.num_docs]) if i + j not in removed])
        i += s.num_docs
    eng = Engine.open(tmp_path / "idx")
    for q in _prompts([0, 1, 2]):
        pc, nxt, end = ref.naive_ntd(corpus, q)
        got = eng.ntd(q)
        assert (got.prompt_count, got.counts, got.end_count) == (pc, dict(nxt), end)
    assert eng.ntd_many(_prompts([0, 1, 2])) == [eng.ntd(q) for q in _prompts([0, 1, 2])]
    assert {p.name: p.read_bytes() for p in (tmp_path / "idx").glob("ntd.*")} == before


# ----------------------------------------------------------------------------- the sidecar


def _index(tmp_path: Path, **kw) -> Path:
    rng = np.random.default_rng(3)
    docs = [rng.integers(0, 5, size=rng.integers(1, 40)).tolist() for _ in range(60)]
    build_index_from_ids(docs, tmp_path / "idx", vocab_size=7, shard_tokens=700, **kw)
    return tmp_path / "idx"


QUERIES = [[1], [1, 2], [3], [3, 3], [4, 0], [6], [0, 6], [2, 2, 2]]


def _answers(idx: Path, **kw) -> list[object]:
    with Engine.open(idx, **kw) as eng:
        return [(eng.ntd(q), eng.infgram_ntd([5, *q])) for q in QUERIES] + [eng.ntd_many(QUERIES)]


def _shard_args(idx: Path, shard: int = 0) -> tuple[np.ndarray, np.ndarray, int, int, bytes]:
    s = Engine.open(idx, ntd_table=False).shards[shard]
    return s.ds, s.sa, s.token_width, s.ptr_width, s.identity


def _warnings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from anygram.shards import shard as shard_module

    said: list[str] = []
    for module in (sidecar, shard_module):
        monkeypatch.setattr(module.log, "warning", lambda msg, *a: said.append(msg % a))
    return said


def test_build_writes_it_and_the_manifest_records_it(tmp_path):
    idx = _index(tmp_path, ntd_threshold=3)
    manifest = (idx / "manifest.json").read_text()
    for name in ("ntd.0", "ntd.1"):
        assert (idx / name).exists() and f'"{name}"' in manifest
        table = sidecar.read(idx / name, *_shard_args(idx, int(name[-1])))
        assert table is not None and table.threshold == 3 and table.keys2.shape[0]
        assert sidecar.crc32_of(idx / name) == zlib.crc32((idx / name).read_bytes()[128:])
    assert _answers(idx) == _answers(idx, ntd_table=False)
    assert verify_index(idx, progress=False).ok


def test_no_table_at_build_is_made_on_first_use(tmp_path):
    idx = _index(tmp_path, ntd_threshold=0)
    assert not list(idx.glob("ntd*"))
    plain = _answers(idx, ntd_table=False)
    assert not list(idx.glob("ntd*"))
    assert _answers(idx) == plain  # built on first use ...
    assert sorted(p.name for p in idx.glob("ntd.*")) == ["ntd.0", "ntd.1"]  # ... and kept
    assert _answers(idx) == plain


@pytest.mark.parametrize("damage", ["truncate", "swap", "garbage", "fifo"])
def test_a_stale_table_is_rebuilt(tmp_path, damage, monkeypatch):
    """What a sidecar's header and spot checks can tell (truncated, another shard's, not a
    table, not a file) is not used, and rebuilt when the index is opened."""
    import os
    idx = _index(tmp_path, ntd_threshold=2)
    plain = _answers(idx, ntd_table=False)
    path = idx / "ntd.0"
    raw = path.read_bytes()
    path.unlink()
    if damage == "truncate":
        path.write_bytes(raw[:len(raw) // 2])
    elif damage == "swap":  # another shard's table: made for other data
        path.write_bytes((idx / "ntd.1").read_bytes())
    elif damage == "garbage":
        path.write_bytes(b"x" * 10)
    else:
        os.mkfifo(path)
    said = _warnings(monkeypatch)
    assert _answers(idx) == plain
    assert any("ignoring the next-token table" in line for line in said), said
    if damage != "fifo":  # rebuilt beside the index, intact
        assert sidecar.read(path, *_shard_args(idx)) is not None


def test_an_index_rebuilt_from_other_data_gets_a_new_table(tmp_path):
    """The sizes agree, so does every row the open spot-checks: the shard's identity (its
    files' checksums in the manifest) does not, so the old table is not used."""
    docs = [[1, 2, 3, 4]] * 30 + [[4, 3, 2, 1]] * 30
    other = [[1, 2, 3, 4]] * 29 + [[1, 3, 2, 4]] + [[4, 3, 2, 1]] * 30
    build_index_from_ids(docs, tmp_path / "a", vocab_size=7, ntd_threshold=1)
    build_index_from_ids(other, tmp_path / "b", vocab_size=7, ntd_threshold=1)
    assert (tmp_path / "a" / "ntd.0").read_bytes() != (tmp_path / "b" / "ntd.0").read_bytes()
    (tmp_path / "b" / "ntd.0").write_bytes((tmp_path / "a" / "ntd.0").read_bytes())
    assert sidecar.read(tmp_path / "b" / "ntd.0", *_shard_args(tmp_path / "b")) is None
    assert _answers(tmp_path / "b") == _answers(tmp_path / "b", ntd_table=False)


def test_an_infini_gram_index_rebuilt_in_place_gets_a_new_table(tmp_path):
    """Without a manifest the identity is the files' sizes and modification times: new token
    and table files (infini-gram's indexer run again) make the table stale."""
    import os
    import shutil
    # Built on first use at the default threshold: frequent enough to be in the table.
    docs = [[1, 2, 3, 4]] * 300 + [[4, 3, 2, 1]] * 300
    other = [[1, 2, 3, 4]] * 299 + [[1, 3, 2, 4]] + [[4, 3, 2, 1]] * 300
    build_index_from_ids(docs, tmp_path / "a", vocab_size=7, ntd_threshold=0)
    build_index_from_ids(other, tmp_path / "b", vocab_size=7, ntd_threshold=0)
    ig = tmp_path / "ig"
    ig.mkdir()
    for name in ("tokenized.0", "table.0", "offset.0"):
        shutil.copyfile(tmp_path / "a" / name, ig / name)
    first = _answers(ig)
    assert (ig / "ntd.0").exists() and first == _answers(ig, ntd_table=False)
    assert sidecar.read(ig / "ntd.0", *_shard_args(ig)).keys2.shape[0]  # type: ignore[union-attr]
    for name in ("tokenized.0", "table.0", "offset.0"):
        shutil.copyfile(tmp_path / "b" / name, ig / name)
        os.utime(ig / name, ns=(1, 1))  # another time whatever the clock's resolution
    assert _answers(ig) == _answers(ig, ntd_table=False) != first


def _rewrite(path: Path, edit, width: int = 1) -> None:
    """Rewrite a table file with ``edit(keys1, keys2, counts, ids)`` applied, its header's
    CRC recomputed (so only the rows' own checks can tell)."""
    raw = bytearray(path.read_bytes())
    header = sidecar._HEADER.unpack_from(raw)
    n1, n2, g = header[8:11]
    at = 128
    keys1 = np.frombuffer(raw, "<i8", n1 * 7, at).reshape(n1, 7).copy()
    keys2 = np.frombuffer(raw, "<i8", n2 * 7, at + keys1.nbytes).reshape(n2, 7).copy()
    counts = np.frombuffer(raw, "<u4", g, at + keys1.nbytes + keys2.nbytes).copy()
    ids = np.frombuffer(raw, np.uint8, g * width, at + keys1.nbytes + keys2.nbytes
                        + counts.nbytes).copy()
    edit(keys1, keys2, counts, ids)
    body = keys1.tobytes() + keys2.tobytes() + counts.tobytes() + ids.tobytes()
    body += b"\0" * (-len(body) % 8)
    path.write_bytes(sidecar._HEADER.pack(*header[:2], zlib.crc32(body), *header[3:])
                     .ljust(128, b"\0") + body)


def _swap_counts(keys1, keys2, counts, ids):
    """Two groups of a 1-token prompt that is not spot-checked on open swap their counts (the
    sum stays)."""
    j = 1 if keys1.shape[0] > 2 else 0
    first = keys1[j, kernels.FIRST]
    counts[first], counts[first + 1] = counts[first + 1], counts[first] + 0


@pytest.mark.parametrize("what", ["counts", "ids", "token", "end", "level 2"])
def test_a_damaged_table_is_found_out_and_dropped(tmp_path, what, monkeypatch):
    """Damage the open does not look at (rows other than the first, middle and last): the
    row's check value tells, the lookup is not used, and the table is dropped (deleted,
    rebuilt on the next open). The answers never change."""
    idx = _index(tmp_path, ntd_threshold=1)
    plain = _answers(idx, ntd_table=False)

    def damage(keys1, keys2, counts, ids):
        j = 1  # the prompt [1]: not spot-checked (the levels have 5 and ~25 rows)
        first = keys1[j, kernels.FIRST]
        if what == "counts":
            _swap_counts(keys1, keys2, counts, ids)
        elif what == "ids":
            ids[first] ^= 1
        elif what == "token":
            keys1[j, kernels.TOKEN1] = 2
        elif what == "end":
            keys1[j, kernels.END] += 1
        else:  # the prompt [1, 2]
            (row,) = np.flatnonzero((keys2[:, kernels.TOKEN1] == 1)
                                    & (keys2[:, kernels.TOKEN2] == 2))
            counts[keys2[row, kernels.FIRST]] += 1

    _rewrite(idx / "ntd.0", damage)
    said = _warnings(monkeypatch)
    assert _answers(idx) == plain
    assert any("does not match its suffix array" in line for line in said), said
    assert not (idx / "ntd.0").exists()  # dropped, deleted ...
    assert _answers(idx) == plain
    assert sidecar.read(idx / "ntd.0", *_shard_args(idx)) is not None  # ... and rebuilt


def test_a_moved_row_is_missed_not_used(tmp_path):
    """A row whose rank no longer is its prompt's is never looked up: the prompt is counted
    in the suffix array."""
    idx = _index(tmp_path, ntd_threshold=1)
    plain = _answers(idx, ntd_table=False)
    _rewrite(idx / "ntd.0", lambda keys1, keys2, counts, ids: keys1.__setitem__(
        (1, kernels.LO), keys1[1, kernels.LO] + 1))
    assert _answers(idx) == plain


def test_a_forged_table_is_found_by_verify(tmp_path):
    """A row changed with its check value recomputed passes the lookups' checks when its
    ends still agree with the suffix array: `anygram verify` rebuilds the table and finds it
    (as it finds a changed token or table file)."""
    idx = _index(tmp_path, ntd_threshold=1)

    def forge(keys1, keys2, counts, ids):
        _swap_counts(keys1, keys2, counts, ids)
        for keys in (keys1, keys2):
            for j in range(keys.shape[0]):
                keys[j, kernels.CHECK] = kernels._entry_check(keys[j], counts, ids, 1)

    _rewrite(idx / "ntd.0", forge)
    report = verify_index(idx, progress=False)
    assert not report.ok and any("ntd.0 does not match" in p for p in report.problems)


def test_a_read_only_index_keeps_its_table_in_the_cache(tmp_path, monkeypatch):
    idx = _index(tmp_path, ntd_threshold=0)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    plain = _answers(idx, ntd_table=False)
    read_only_for_sidecars(monkeypatch, sidecar, idx)
    assert _answers(idx) == plain
    assert not list(idx.glob("ntd*"))
    cached = list((tmp_path / "cache").rglob("ntd.*"))
    assert len(cached) == 2 and all(
        c.parent == sidecars.cache_path(idx, "x").parent for c in cached)
    assert _answers(idx) == plain  # read back from the cache


def test_an_unwritable_place_keeps_the_table_in_memory(tmp_path, monkeypatch):
    idx = _index(tmp_path, ntd_threshold=0)
    plain = _answers(idx, ntd_table=False)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError("read-only file system")

    monkeypatch.setattr(sidecar, "write", refuse)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert _answers(idx) == plain
    assert not list(idx.glob("ntd*")) and not list((tmp_path / "cache").rglob("ntd.*"))


def test_a_suffix_array_too_damaged_to_build_from_gives_no_table(tmp_path, monkeypatch):
    """Building on first use reads every pointer: one outside the shard means no table (a
    warning); the queries answer as without one (here: the kernel's own typed error)."""
    import json

    from anygram.errors import IndexFormatError
    from anygram.index import checks
    idx = _index(tmp_path, ntd_threshold=0)
    m = json.loads((idx / "manifest.json").read_text())
    k = m["shards"][0]["ptr_width"]
    raw = bytearray((idx / "table.0").read_bytes())
    n = len(raw) // k
    sampled = {r for a, b, step in checks._spread(n - 1, checks.OPEN_SAMPLES)
               for r in range(a, b, step)}
    # a rank the open's sample of the table does not look at
    r = next(r for r in range(n // 2, n) if not {r - 1, r, r + 1} & sampled)
    raw[r * k:(r + 1) * k] = (len(raw) * 4).to_bytes(k, "little")[:k]
    (idx / "table.0").write_bytes(bytes(raw))
    said = _warnings(monkeypatch)
    with Engine.open(idx) as eng:
        for q in QUERIES:
            try:
                eng.ntd(q)
            except IndexFormatError:
                pass
    assert any("no next-token table" in line for line in said), said
    assert not (idx / "ntd.0").exists()
