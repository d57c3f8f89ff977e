"""One Ray cluster for the whole cluster suite: a head without CPUs and two worker nodes of
one CPU each, labelled ``anygram-node=a`` and ``=b``; and an index of several shards.

Node-local directories (an index built with ``--placement label``): node ``a`` keeps its
own under a directory of its own (``ANYGRAM_NODE_ROOT``), as another machine would; node
``b`` sees this process's (as a driver that is also a node does).

Only collected inside a loopback-only network namespace (tests/test_cluster.py starts it):
Ray's servers listen on every interface.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cluster_support import build_corpus_index
from netns import only_loopback

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    assert only_loopback(), "the cluster tests run only in a loopback-only namespace"
    import ray
    from ray.cluster_utils import Cluster

    # Small object stores: answers are small, and a CI machine's /dev/shm may be too.
    store = 128 << 20
    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 0, "include_dashboard": False,
                                      "object_store_memory": store})
    roots = {"a": tmp_path_factory.mktemp("node-a"), "b": Path("/")}
    node_args = {name: dict(num_cpus=1, labels={"anygram-node": name},
                            object_store_memory=store,
                            env_vars={"ANYGRAM_NODE_ROOT": str(root)})
                 for name, root in roots.items()}
    nodes = {name: cluster.add_node(**args) for name, args in node_args.items()}
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace="anygram", log_to_driver=False)
    cluster.labelled = nodes
    cluster.node_args = node_args  # (to add a node again under its label)
    cluster.roots = roots
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="session")
def index(tmp_path_factory):
    return build_corpus_index(tmp_path_factory.mktemp("cluster"), docs=80, seed=11,
                              shard_tokens=450)
