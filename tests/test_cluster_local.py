"""The distributed engine's split and merge, without a cluster: hosts in this process (their
answers pickled as over the wire) give the same answers as :meth:`Engine.open`.

The Ray cluster itself is tested in tests/cluster/ (run by test_cluster.py in a
loopback-only network namespace).
"""

from __future__ import annotations

import numpy as np
import pytest
from cluster_support import InProcessGroups, battery, build_corpus_index, same
from hypothesis import given
from hypothesis import strategies as st

from anygram import Engine, IndexFormatError, InvalidQueryError, ShardUnavailableError
from anygram.cluster.host import GroupFacts, ShardHost
from anygram.cluster.remote import HostsUnavailable, InProcessTransport, RemoteShards
from anygram.shards import ShardSize
from anygram.tools import takedown


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return build_corpus_index(tmp_path_factory.mktemp("cluster-local"), docs=70, seed=3,
                              shard_tokens=400)


@pytest.mark.parametrize("hosts", [1, 2, 3, 8])
def test_every_kind_of_query_equals_the_local_engine(index, hosts):
    local, split = Engine.open(index), Engine.open(index, groups=InProcessGroups(hosts))
    assert local.num_shards >= 4
    want, got = battery(local, hosts, 300), battery(split, hosts, 300)
    assert [n for n, _ in got] == [n for n, _ in want]
    bad = [(n, w, g) for (n, w), (_, g) in zip(want, got) if not same(w, g)]
    assert not bad, bad[:2]


def test_takedowns_are_honoured_after_a_refresh(tmp_path):
    index = build_corpus_index(tmp_path, docs=50, seed=4, shard_tokens=300)
    local, split = Engine.open(index), Engine.open(index, groups=InProcessGroups(3))
    takedown.take_down(index, [0, 7, 31, 49])
    assert local.refresh() and split.refresh()
    assert split.get_doc(7).removed
    want, got = battery(local, 5, 200), battery(split, 5, 200)
    assert all(same(w, g) for (_, w), (_, g) in zip(want, got))


@given(st.lists(st.lists(st.integers(0, 3), max_size=10), max_size=12), st.integers(2, 40),
       st.integers(1, 5), st.data())
def test_counts_of_random_corpora_equal_the_local_engine(tmp_path_factory, docs, budget,
                                                         hosts, data):
    from anygram.index.build import build_index_from_ids
    out = tmp_path_factory.mktemp("corpus") / "idx"
    build_index_from_ids(docs, out, vocab_size=4, shard_tokens=budget)
    local, split = Engine.open(out), Engine.open(out, groups=InProcessGroups(hosts))
    for _ in range(10):
        q = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=4))
        assert split.count(q) == local.count(q)
        assert split.infgram_ntd(q) == local.infgram_ntd(q)
        assert same(split.search_docs(q, max_docs=3), local.search_docs(q, max_docs=3))


class _DeadTransport:
    def call_all(self, calls):
        raise HostsUnavailable([1], "host(s) on anygram-node=b gave no answer within 1 s")


def test_a_missing_host_names_its_shards_and_never_undercounts():
    sizes = [ShardSize(f"s{i}", 10, 1, 5) for i in range(4)]
    group = RemoteShards(_DeadTransport(), "shards", [[0, 1], [2, 3]],
                         [GroupFacts(1, tuple(sizes[:2])), GroupFacts(1, tuple(sizes[2:]))])
    with pytest.raises(ShardUnavailableError, match=r"s2, s3 .*anygram-node=b"):
        group.find(np.zeros(1, dtype=np.uint8))


def test_every_shard_must_be_held_once(index):
    host = ShardHost.__new__(ShardHost)  # never opened: the check comes first
    with pytest.raises(ValueError, match="exactly one host"):
        RemoteShards(InProcessTransport([host]), "shards", [[0, 0]],
                     [GroupFacts(1, (ShardSize("a", 1, 1, 5),) * 2)])


def test_a_host_refuses_an_index_that_changed_since_it_was_opened(tmp_path):
    from anygram.cluster.host import HostSpec
    from anygram.index import grow
    from anygram.index.reader import open_index
    index = build_corpus_index(tmp_path, docs=20, seed=6, shard_tokens=200)
    opened = open_index(index)
    ids = tuple(s.identity.hex() for s in opened.shards)
    spec = HostSpec((str(index),), "u8", 255, (0,), ids, True, "mmap", True, True, True)
    ShardHost(spec)  # the index as opened: served
    grow.compact(index, shard_tokens=10_000)
    with pytest.raises(IndexFormatError, match="changed since it was opened"):
        ShardHost(spec)  # restarted after the compaction: refuses


def test_a_cluster_maps_its_shards(tmp_path):
    from anygram import cluster
    with pytest.raises(InvalidQueryError, match="load='ram'"):
        cluster.open(tmp_path, load="ram")
