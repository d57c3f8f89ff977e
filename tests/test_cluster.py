"""Runs the Ray cluster suite (tests/cluster/) in a loopback-only network namespace.

Ray's servers listen on every interface, so a test cluster must not run in the machine's own
network namespace: this test starts pytest on tests/cluster/ under ``unshare -n`` (with
``lo`` up, tests/netns.py) and passes when that run does. Where Ray is not installed or
``unshare`` is not permitted, it skips and says why.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def _unshare() -> list[str]:
    """The ``unshare`` command that gives a new network namespace here, or skip."""
    if shutil.which("unshare") is None:
        pytest.skip("the cluster tests need unshare (util-linux) for a loopback-only network")
    for cmd in (["unshare", "-n"], ["unshare", "-rn"]):  # as root; as a user, if allowed
        if subprocess.run([*cmd, "true"], capture_output=True).returncode == 0:
            return cmd
    pytest.skip("the cluster tests need a loopback-only network namespace, and unshare -n "
                "is not permitted here (needs root or unprivileged user namespaces)")


def test_the_cluster_suite_passes_in_a_loopback_only_namespace():
    if importlib.util.find_spec("ray") is None:
        pytest.skip("the cluster tests need Ray: pip install -e '.[dev]' (the ray extra)")
    cmd = [*_unshare(), sys.executable, str(HERE / "netns.py"), sys.executable, "-m",
           "pytest", "-q", "-p", "no:cacheprovider", "-x", str(HERE / "cluster")]
    env = {**os.environ, "ANYGRAM_CLUSTER_NETNS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    report = run.stdout[-6000:] + run.stderr[-3000:]
    assert run.returncode == 0, report
    assert " passed" in run.stdout and "skipped" not in run.stdout, report
