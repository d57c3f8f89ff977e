"""Brute-force twins of the whole-text analyses (``docs/analyses.md``), built on
``reference.py``: a corpus is a list of shards, a shard a list of documents (token-id lists).
"""

from __future__ import annotations

import math

import reference as ref


def naive_match_len(corpus: ref.Corpus, text: list[int], i: int) -> int:
    """The largest ``L`` such that ``text[i:i+L]`` occurs (occurrence is monotone in ``L``)."""
    length = 0
    while i + length < len(text) and ref.naive_count(corpus, text[i:i + length + 1]) > 0:
        length += 1
    return length


def naive_creativity(corpus: ref.Corpus, text: list[int]) -> list[int]:
    return [naive_match_len(corpus, text, i) for i in range(len(text))]


def naive_infgram_text(corpus: ref.Corpus, text: list[int]
                       ) -> list[tuple[int, int, float | None, int]]:
    """``(prompt_count, cont_count, prob, suffix_len)`` of every token given the ones before."""
    return [ref.naive_infgram_prob(corpus, text[:j], text[j]) for j in range(len(text))]


def naive_suffix_walk(shard: list[list[int]], text: list[int], cuts: list[int] | None = None
                      ) -> tuple[list[int], list[int]]:
    """Twin of ``kernels.analysis.suffix_walk`` for one shard: for each cut ``c`` (default:
    every end ``0..n``), the first cut ``i <= c`` such that ``text[i:c]`` occurs in the shard
    (the empty suffix always does), and its count."""
    cuts = list(range(len(text) + 1)) if cuts is None else cuts
    starts, counts = [], []
    for c in cuts:
        i = next(i for i in cuts if i == c or ref.naive_count([shard], text[i:c]) > 0)
        starts.append(i)
        counts.append(ref.naive_count([shard], text[i:c]))
    return starts, counts


def visible_len(corpus: ref.Corpus, hidden: ref.Corpus, text: list[int], start: int,
                length: int) -> int:
    """infini-gram's takedown engine: ``length`` shortened until ``text[start:start+length]``
    occurs more often in ``corpus`` than in the ``hidden`` documents (its diff index)."""
    while length > 0 and (ref.naive_count(corpus, text[start:start + length])
                          <= ref.naive_count(hidden, text[start:start + length])):
        length -= 1
    return length


def naive_candidates(corpus: ref.Corpus, text: list[int], delim_ids: list[int] = (),
                     min_len: int = 1, max_cnt: int = 10, enforce_bow: bool = False,
                     bow_ids: list[int] = (), hidden: ref.Corpus | None = None
                     ) -> list[tuple[int, int, int]]:
    """The attribution candidates, one start at a time: ``(l, r, count)`` (with ``hidden``:
    each match shortened by :func:`visible_len` after its cuts)."""
    candidates = []
    for start in range(len(text)):
        if enforce_bow and text[start] not in bow_ids:
            continue
        length = naive_match_len(corpus, text, start)
        for pos in range(length - 1):  # cut after the first delimiter inside the match
            if text[start + pos] in delim_ids:
                length = pos + 1
                break
        if enforce_bow:  # shrink until the next token begins a word or the text ends
            while length > 0 and not (start + length == len(text)
                                      or text[start + length] in bow_ids):
                length -= 1
        if hidden is not None:
            length = visible_len(corpus, hidden, text, start, length)
        if length < min_len:
            continue
        count = ref.naive_count(corpus, text[start:start + length])
        if count <= max_cnt:
            candidates.append((start, start + length, count))
    return candidates


def naive_attribute(corpus: ref.Corpus, text: list[int], delim_ids: list[int] = (),
                    min_len: int = 1, max_cnt: int = 10, enforce_bow: bool = False,
                    bow_ids: list[int] = (), hidden: ref.Corpus | None = None
                    ) -> list[tuple[int, int, int, float, list[tuple[int, int, int]]]]:
    """The written rules: ``(l, r, count, unigram_logprob_sum, [(shard, pos, doc_id)] in
    corpus order)`` per kept span (``hidden``: as :func:`naive_candidates`)."""
    total = ref.naive_count(corpus, [])
    kept, last_r = [], 0
    for start, end, count in naive_candidates(corpus, text, delim_ids, min_len, max_cnt,
                                              enforce_bow, bow_ids, hidden):
        if end > last_r:  # kept when it ends beyond every span kept before it
            last_r = end
            logp = sum(math.log(ref.naive_count(corpus, [t])) - math.log(total)
                       for t in text[start:end])
            docs = []
            for s, p in ref.occurrences(corpus, text[start:end]):
                base = sum(len(sh) for sh in corpus[:s])
                docs.append((s, p, base + ref.doc_index(corpus[s])[p]))
            kept.append((start, end, count, logp, docs))
    return kept
