"""Summing the shards' next-token tallies (kernels.tallies, shards.merge.add_next_tokens)
against the obvious loop: every pair added into a dict, one by one."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from anygram.kernels.tallies import sum_tallies
from anygram.shards.base import NextTokens
from anygram.shards.merge import add_next_tokens


def naive_add(counts: dict[int, int], parts: list[NextTokens], sign: int) -> int:
    end = 0
    for part in parts:
        end += part.end
        for t, c in zip(part.ids.tolist(), part.counts.tolist()):
            counts[t] = counts.get(t, 0) + sign * c
    return sign * end


ids_ = st.lists(st.integers(0, 70_000), max_size=40, unique=True)  # a shard's ids: distinct
part_ = ids_.flatmap(lambda ids: st.tuples(
    st.just(ids), st.lists(st.integers(1, 10**9), min_size=len(ids), max_size=len(ids)),
    st.integers(0, 50)))
parts_ = st.lists(part_, max_size=6)


def as_parts(raw: list[tuple[list[int], list[int], int]]) -> list[NextTokens]:
    return [NextTokens(np.array(i, dtype=np.int64), np.array(c, dtype=np.int64), e)
            for i, c, e in raw]


@settings(max_examples=300, deadline=None)
@given(parts_, st.sampled_from([1, -1]),
       st.dictionaries(st.integers(0, 70_000), st.integers(1, 100), max_size=5))
def test_merge_equals_adding_one_by_one(raw: list, sign: int, before: dict[int, int]) -> None:
    parts = as_parts(raw)
    want, got = dict(before), dict(before)
    assert add_next_tokens(got, parts, sign) == naive_add(want, parts, sign)
    assert list(got.items()) == list(want.items())  # the same order too


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**40), st.integers(0, 10**6)), max_size=200))
def test_sum_tallies_is_a_dict_of_sums_in_first_appearance_order(pairs: list) -> None:
    ids = np.array([i for i, _ in pairs], dtype=np.int64)
    counts = np.array([c for _, c in pairs], dtype=np.int64)
    want: dict[int, int] = {}
    for i, c in pairs:
        want[i] = want.get(i, 0) + c
    got_ids, got_counts = sum_tallies(ids, counts)
    assert list(zip(got_ids.tolist(), got_counts.tolist())) == list(want.items())
