"""Brute-force twins of the engine's queries: a few lines each, obviously correct.

A corpus here is a list of shards; a shard is a list of documents; a document is a list of
token ids. The token stream of a shard is what infini-gram stores: every document preceded by
a separator. Counting follows infini-gram: the empty query matches every position of every
stream, separators included.
"""

from __future__ import annotations

from collections import Counter

SEP = None  # the separator in a token stream; never equal to a token id

Corpus = list[list[list[int]]]


def stream(shard: list[list[int]]) -> list[int | None]:
    """The shard's token stream: ``[SEP] + doc`` for each document, concatenated."""
    out: list[int | None] = []
    for doc in shard:
        out.append(SEP)
        out.extend(doc)
    return out


def naive_suffix_array(data: bytes, width: int) -> list[int]:
    """Token-aligned byte offsets sorted by the bytes of their suffixes (infini-gram order)."""
    return sorted(range(0, len(data), width), key=lambda p: data[p:])


def occurrences(corpus: Corpus, query: list[int]) -> list[tuple[int, int]]:
    """Every (shard, position) where the stream continues with ``query``.

    Positions are token positions of the stream (one per suffix-array entry), so the empty
    query matches each of them once.
    """
    hits = []
    for s, shard in enumerate(corpus):
        toks = stream(shard)
        for i in range(len(toks)):
            if toks[i:i + len(query)] == query:
                hits.append((s, i))
    return hits


def naive_count(corpus: Corpus, query: list[int]) -> int:
    return len(occurrences(corpus, query))


def naive_ntd(corpus: Corpus, prompt: list[int]) -> tuple[int, Counter[int], int]:
    """(prompt_count, Counter of next tokens, end_count): an end is a separator or stream end."""
    nxt: Counter[int] = Counter()
    end = 0
    hits = occurrences(corpus, prompt)
    for s, i in hits:
        toks = stream(corpus[s])
        j = i + len(prompt)
        if j == len(toks) or toks[j] is SEP:
            end += 1
        else:
            nxt[toks[j]] += 1  # type: ignore[index]
    return len(hits), nxt, end


def naive_prob(corpus: Corpus, prompt: list[int], cont: int) -> tuple[int, int, float | None]:
    pc = naive_count(corpus, prompt)
    cc = naive_count(corpus, prompt + [cont])
    return pc, cc, (cc / pc if pc else None)


def naive_suffix_len(corpus: Corpus, prompt: list[int]) -> int:
    """Length of the longest suffix of ``prompt`` that occurs (0 = the empty suffix)."""
    for n in range(len(prompt), 0, -1):
        if naive_count(corpus, prompt[len(prompt) - n:]) > 0:
            return n
    return 0


def naive_infgram_prob(corpus: Corpus, prompt: list[int], cont: int
                       ) -> tuple[int, int, float | None, int]:
    n = naive_suffix_len(corpus, prompt)
    pc, cc, p = naive_prob(corpus, prompt[len(prompt) - n:], cont)
    return pc, cc, p, n


def naive_infgram_ntd(corpus: Corpus, prompt: list[int]) -> tuple[int, Counter[int], int, int]:
    n = naive_suffix_len(corpus, prompt)
    pc, nxt, end = naive_ntd(corpus, prompt[len(prompt) - n:])
    return pc, nxt, end, n
