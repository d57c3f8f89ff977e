"""Shared fixtures and hypothesis settings.

``ANYGRAM_MAX_EXAMPLES`` sets how many random cases each property test tries (default 150).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=int(os.environ.get("ANYGRAM_MAX_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("default")

#: Set inside the loopback-only network namespace that test_cluster.py starts: only there
#: are the Ray cluster tests (tests/cluster/) collected.
IN_CLUSTER_NAMESPACE = os.environ.get("ANYGRAM_CLUSTER_NETNS") == "1"
collect_ignore = [] if IN_CLUSTER_NAMESPACE else ["cluster"]
