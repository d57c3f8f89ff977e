"""Summing token tallies: the next-token counts of one prompt from several shards, one after
the other, as one tally. Its naive twin (a dict, one pair at a time) is in
``tests/test_tallies.py``."""

from __future__ import annotations

import numpy as np

from ._jit import kernel


@kernel
def sum_tallies(ids: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(distinct ids, their summed counts)`` of the pairs ``(ids[i], counts[i])`` (ids >= 0),
    the ids in the order of their first appearance: what adding the pairs one by one into a
    dict gives. O(n) with an open-addressing hash table."""
    n = ids.shape[0]
    bits = 4
    while (1 << bits) < 2 * n:
        bits += 1
    cap = 1 << bits
    mask = cap - 1
    shift = np.uint64(64 - bits)
    slot_id = np.full(cap, -1, dtype=np.int64)
    slot_at = np.empty(cap, dtype=np.int64)  # where the id is in the output
    out_ids = np.empty(n, dtype=np.int64)
    out_counts = np.empty(n, dtype=np.int64)
    m = 0
    for i in range(n):
        t = ids[i]
        # Fibonacci hashing: the top bits of the product
        s = np.int64((np.uint64(t) * np.uint64(0x9E3779B97F4A7C15)) >> shift)
        while slot_id[s] != -1 and slot_id[s] != t:
            s = (s + 1) & mask
        if slot_id[s] == -1:
            slot_id[s] = t
            slot_at[s] = m
            out_ids[m] = t
            out_counts[m] = counts[i]
            m += 1
        else:
            out_counts[slot_at[s]] += counts[i]
    return out_ids[:m], out_counts[:m]
