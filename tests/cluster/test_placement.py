"""Node-local placement on a real Ray cluster (tests/cluster/conftest.py): a build that keeps
each shard on its node's disk, and the engine that serves it from there.

Node ``a`` keeps its directories under a root of its own, as another machine would; node
``b`` sees the driver's (a driver that is also a node)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from cluster_support import battery, index_files, kill_first, same, write_corpus

from anygram import AnygramError, BuildError, ClusterError, Engine, ShardUnavailableError, cluster
from anygram.cli import main
from anygram.index.build import build_index
from anygram.index.grow import add_documents
from anygram.server.indexes import ServedIndex


def _on(ray_cluster, node: str, path: Path) -> Path:
    """Where node ``node`` keeps the node-local directory ``path``."""
    root = ray_cluster.roots[node]
    return root / path.relative_to(path.anchor)


@pytest.fixture(scope="module")
def placed(ray_cluster, tmp_path_factory):
    """A corpus built locally and with label placement: (local dir, placed dir, manifest)."""
    tmp = tmp_path_factory.mktemp("placed")
    corpus = write_corpus(tmp / "c.jsonl", 120, seed=8)
    build_index(corpus, tmp / "local", shard_tokens=500, workers=1, progress=False)
    manifest = build_index(corpus, tmp / "idx", shard_tokens=500, progress=False,
                           ray_address=ray_cluster.address, placement="label")
    return tmp / "local", tmp / "idx", manifest


def test_each_shard_is_kept_on_its_node_byte_for_byte_as_a_local_build(ray_cluster, placed):
    local_dir, out, manifest = placed
    local = json.loads((local_dir / "manifest.json").read_text())
    assert len(manifest.shards) >= 4
    assert [s.node for s in manifest.shards] == ["ab"[i % 2] for i in range(len(manifest.shards))]
    assert [{k: v for k, v in dataclasses.asdict(s).items() if k != "node"}
            for s in manifest.shards] == local["shards"]
    want = index_files(local_dir)
    for node in "ab":
        got = index_files(_on(ray_cluster, node, out))
        own = {f for s in manifest.shards if s.node == node for f in s.files}
        assert set(got) == own | {"manifest.json"}, node
        assert all(got[f] == want[f] for f in own), node
        assert json.loads(got["manifest.json"])["shards"] == \
            json.loads(index_files(out)["manifest.json"])["shards"]
    assert not (_on(ray_cluster, "a", out).parent / (out.name + ".partial")).exists()


def test_a_killed_sort_task_is_run_again_on_its_node(ray_cluster, tmp_path):
    corpus = write_corpus(tmp_path / "c.jsonl", 3000, seed=3)
    build_index(corpus, tmp_path / "local", shard_tokens=20_000, workers=1, progress=False)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=kill_first, args=("ray::finish_shard", stop, killed))
    killer.start()
    try:
        manifest = build_index(corpus, tmp_path / "idx", shard_tokens=20_000, progress=False,
                               ray_address=ray_cluster.address, placement="label")
    finally:
        stop.set()
        killer.join()
    assert killed, "no sort task was seen running"
    want = index_files(tmp_path / "local")
    for node in "ab":
        got = index_files(_on(ray_cluster, node, tmp_path / "idx"))
        assert all(got[f] == want[f] for s in manifest.shards if s.node == node
                   for f in s.files)


def test_this_machine_alone_refuses_the_shards_it_does_not_hold(placed):
    _, out, manifest = placed
    away = [s.name for s in manifest.shards if s.node == "a"]
    with pytest.raises(ShardUnavailableError, match="kept on node") as refused:
        Engine.open(out)
    assert f"shard(s) {', '.join(away)} " in str(refused.value)
    described = CliRunner().invoke(main, ["info", "--index", str(out)])
    assert described.exit_code == 0, described.output
    info = json.loads(described.output)
    assert [s["node"] for s in info["shards"]] == [s.node for s in manifest.shards]
    assert info["num_tokens"] == manifest.num_tokens


def test_the_cluster_serves_it_from_the_nodes_with_the_local_answers(ray_cluster, placed):
    import ray
    local_dir, out, manifest = placed
    local = Engine.open(local_dir)
    remote = cluster.open(out, address=ray_cluster.address)
    try:
        labels = {n["NodeID"]: (n.get("Labels") or {}).get("anygram-node")
                  for n in ray.nodes()}
        assert sorted(labels[node] for _, node in remote.groups.where()) == ["a", "b"]
        assert remote.groups.members == [
            [i for i, s in enumerate(manifest.shards) if s.node == node] for node in "ab"]
        assert (remote.num_docs, remote.num_tokens) == (local.num_docs, local.num_tokens)
        want, got = battery(local, 12, 300), battery(remote, 12, 300)
        bad = [(n, w, g) for (n, w), (_, g) in zip(want, got) if not same(w, g)]
        assert not bad, bad[:2]
        # infini-gram's API (POST /) too, its document pointers included
        ours, theirs = (ServedIndex("idx", e).compat() for e in (remote, local))
        cnf = [[[116, 104]], [[97], [111, 110]]]
        assert ours.find_cnf(cnf=cnf) == theirs.find_cnf(cnf=cnf)
        assert ours.count(input_ids=[104, 101]) == theirs.count(input_ids=[104, 101])
    finally:
        cluster.stop(remote)


def test_a_node_that_lost_its_shards_says_so(ray_cluster, placed, tmp_path):
    _, out, manifest = placed
    copy = tmp_path / "idx"
    shutil.copytree(out, copy)
    node_copy = _on(ray_cluster, "a", copy)
    node_copy.parent.mkdir(parents=True)
    shutil.copytree(_on(ray_cluster, "a", out), node_copy)
    lost = next(s for s in manifest.shards if s.node == "a")
    for name in lost.files:
        (node_copy / name).unlink()
    with pytest.raises(ClusterError, match=f"shard\\(s\\) {lost.name} of the index should be"):
        cluster.open(copy, address=ray_cluster.address)


def test_label_placement_needs_a_cluster(tmp_path):
    corpus = write_corpus(tmp_path / "c.jsonl", 5, seed=1)
    with pytest.raises(BuildError, match="give its address"):
        build_index(corpus, tmp_path / "idx", placement="label", progress=False)


def test_an_interrupted_node_local_build_resumes_after_its_finished_shards(ray_cluster,
                                                                          tmp_path):
    corpus = write_corpus(tmp_path / "c.jsonl", 600, seed=9)
    whole = corpus.read_text()
    build_index(corpus, tmp_path / "local", shard_tokens=1500, workers=1, progress=False)
    corpus.write_text(whole + "{not json\n")  # the build stops here, after some shards
    with pytest.raises(AnygramError):
        build_index(corpus, tmp_path / "idx", shard_tokens=1500, progress=False,
                    ray_address=ray_cluster.address, placement="label")
    progress = json.loads((tmp_path / "idx.partial" / "progress.json").read_text())
    kept = progress["shards"]
    assert len(kept) >= 2 and {s["node"] for s in kept} == {"a", "b"}
    corpus.write_text(whole)
    manifest = build_index(corpus, tmp_path / "idx", shard_tokens=1500, progress=False,
                           ray_address=ray_cluster.address, placement="label", resume=True)
    want = index_files(tmp_path / "local")
    for node in "ab":
        got = index_files(_on(ray_cluster, node, tmp_path / "idx"))
        own = {f for s in manifest.shards if s.node == node for f in s.files}
        assert set(got) == own | {"manifest.json"} and all(got[f] == want[f] for f in own)
    with pytest.raises(BuildError, match="keeps its shards on the nodes"):
        add_documents(tmp_path / "idx", corpus, progress=False)
