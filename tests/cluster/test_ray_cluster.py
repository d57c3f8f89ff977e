"""The distributed engine on a real Ray cluster (tests/cluster/conftest.py): the same answers
as Engine.open, hosts on the labelled nodes, restarts, a lost node, and serving over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from cluster_support import battery, same

from anygram import Engine, ShardUnavailableError, cluster
from anygram.tools import takedown


@pytest.fixture(scope="module")
def engines(ray_cluster, index):
    local, remote = Engine.open(index), cluster.open(index, address=ray_cluster.address)
    yield local, remote
    cluster.stop(remote)


def test_one_host_per_labelled_node_and_500_queries_equal(ray_cluster, engines):
    import ray
    local, remote = engines
    assert local.num_shards >= 4
    labels = {n["NodeID"]: (n.get("Labels") or {}).get("anygram-node") for n in ray.nodes()}
    assert sorted(labels[node] for _, node in remote.groups.where()) == ["a", "b"]
    want, got = battery(local, 7, 500), battery(remote, 7, 500)
    bad = [(n, w, g) for (n, w), (_, g) in zip(want, got) if not same(w, g)]
    assert not bad, bad[:2]
    assert len({n for n, _ in got}) >= 20  # every kind of query was asked


def test_a_killed_host_is_restarted_and_queries_in_flight_are_answered(engines):
    local, remote = engines
    queries = [[ord(c) for c in w] for w in ("the", " cat", "a", "n", " sat o", "zz")]
    want = [local.count(q).count for q in queries]
    before = remote.groups.where()
    errors, answers = [], []

    def ask():
        try:
            for _ in range(60):
                answers.append([remote.count(q).count for q in queries])
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    asker = threading.Thread(target=ask)
    asker.start()
    time.sleep(0.2)
    os.kill(before[1][0], signal.SIGKILL)
    asker.join(120)
    assert not errors and len(answers) == 60
    assert all(a == want for a in answers)
    after = remote.groups.where()
    assert after[1][0] != before[1][0] and after[0] == before[0]


def test_a_lost_node_names_its_shards_then_answers_again_when_it_rejoins(ray_cluster, index):
    local = Engine.open(index)
    remote = cluster.open(index, address=ray_cluster.address, timeout=3)
    q = [ord(c) for c in " the"]
    assert remote.count(q) == local.count(q)
    held_by_b = remote.groups.members[1]
    ray_cluster.remove_node(ray_cluster.labelled["b"])
    with pytest.raises(ShardUnavailableError) as lost:
        remote.count(q)
    names = [remote.shards[s].name for s in held_by_b]
    assert all(n in str(lost.value) for n in names) and "anygram-node=b" in str(lost.value)
    ray_cluster.labelled["b"] = ray_cluster.add_node(**ray_cluster.node_args["b"])
    deadline = time.monotonic() + 90
    while True:
        try:
            assert remote.count(q) == local.count(q)
            break
        except ShardUnavailableError:
            assert time.monotonic() < deadline, "the node rejoined but its shards never came back"
    assert same(battery(remote, 3, 60), battery(local, 3, 60))
    remote.close()  # (its hosts are the module's engine's: same index, same options)


def test_takedowns_reach_the_hosts_on_refresh(ray_cluster, tmp_path):
    from cluster_support import build_corpus_index
    index = build_corpus_index(tmp_path, docs=40, seed=5, shard_tokens=300)
    local, remote = Engine.open(index), cluster.open(index, address=ray_cluster.address)
    takedown.take_down(index, [2, 9, 30])
    assert local.refresh() and remote.refresh()
    assert remote.get_doc(9).removed
    assert same(battery(remote, 4, 80), battery(local, 4, 80))
    cluster.stop(remote)


def test_the_infini_gram_api_is_served_by_the_cluster_too(engines):
    from anygram.server.indexes import ServedIndex
    local, remote = engines
    compat = ServedIndex("idx", remote).compat()
    assert isinstance(compat.native.groups, cluster.RayGroups)
    assert compat.native.groups is not remote.groups
    assert compat.count(input_ids=[104, 101])["count"] == local.count([104, 101]).count


def test_serve_ray_answers_over_http(ray_cluster, index):
    local = Engine.open(index)
    server = subprocess.Popen(
        [sys.executable, "-m", "anygram", "serve", str(index), "--port", "0",
         "--ray", ray_cluster.address],
        stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        while "serving" not in line:
            line = server.stderr.readline()
            assert line or server.poll() is None, "the server exited"
        url = line.split(" on ")[1].split()[0]
        with urllib.request.urlopen(url + "v1/idx/count?query=the", timeout=60) as r:
            assert json.load(r)["count"] == local.count("the").count
        body = json.dumps({"index": "idx", "query_type": "count", "query": "the"}).encode()
        request = urllib.request.Request(url, data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as r:
            assert json.load(r)["count"] == local.count("the").count
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
