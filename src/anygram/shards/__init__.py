"""The shard layer: :class:`ShardGroup` ("these shards"), answering per-shard partials of
validated queries, and the merges that turn them into whole-index answers.

- :mod:`~anygram.shards.base`: the interface and the partial types;
- :mod:`~anygram.shards.local`: :class:`LocalShards`, the group of this process;
- :mod:`~anygram.shards.shard`, :mod:`~anygram.shards.cnf`,
  :mod:`~anygram.shards.cnf_costs`: one shard's arithmetic, CNF plans and their cost model;
- :mod:`~anygram.shards.merge`: partials to answers.
"""

from .base import (
    CnfShardPlan,
    GroupOpener,
    NextTokens,
    Occurrences,
    Range,
    ShardGroup,
    ShardSize,
    SpanOccurrences,
    TokenBatch,
    Walk,
    Windows,
)
from .local import LocalShards, open_groups

__all__ = [
    "CnfShardPlan",
    "GroupOpener",
    "LocalShards",
    "NextTokens",
    "Occurrences",
    "Range",
    "ShardGroup",
    "ShardSize",
    "SpanOccurrences",
    "TokenBatch",
    "Walk",
    "Windows",
    "open_groups",
]
