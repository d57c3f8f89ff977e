"""Textbook interpolated Kneser-Ney by brute-force counting (the twin of anygram.lm.kneser_ney).

A corpus is a list of documents (lists of token ids); shards do not matter here. A document
``t1 .. tm`` is the event sequence ``<s> t1 .. tm </s>``; ``END`` stands for ``</s>``.
"""

from __future__ import annotations

from collections import Counter

BOS = "<s>"
END = -1


def events(docs: list[list[int]]) -> list[list[object]]:
    return [[BOS, *d, END] for d in docs]


def ngrams(docs: list[list[int]], k: int) -> list[tuple[object, ...]]:
    """Every k-gram of the event sequences (with repeats)."""
    return [tuple(e[i:i + k]) for e in events(docs) for i in range(len(e) - k + 1)]


def raw_count(docs, h: tuple, w) -> int:
    """c(h w): occurrences of h followed by w (w = END: h at a document end)."""
    return sum(1 for g in ngrams(docs, len(h) + 1) if g == (*h, w))


def context_count(docs, h: tuple) -> int:
    """c(h) over document tokens (h never holds <s> or END)."""
    return sum(1 for g in ngrams(docs, len(h) + 1) if g[:-1] == h)


def followers(docs, h: tuple) -> set:
    return {g[-1] for g in ngrams(docs, len(h) + 1) if g[:-1] == h}


def cont_count(docs, h: tuple, w) -> int:
    """N1+(• h w): distinct x (<s> included) with x h w."""
    return len({g[0] for g in ngrams(docs, len(h) + 2) if g[1:] == (*h, w)})


def cont_total(docs, h: tuple) -> int:
    """N1+(• h •): distinct (x, w) around h."""
    return len({(g[0], g[-1]) for g in ngrams(docs, len(h) + 2) if g[1:-1] == h})


def kn_prob(docs: list[list[int]], prompt: list[int], w, n: int, d) -> float:
    """Interpolated Kneser-Ney P(w | prompt) of order n with one discount d for every order
    (or d[j] for order j: a dict of orders 2..n)."""
    ctx = tuple(prompt[max(0, len(prompt) - (n - 1)):])
    m = len(ctx)
    ds = d

    def p(k: int) -> float:
        d = ds.get(k + 1, 0.0) if isinstance(ds, dict) else ds  # k = 0: not discounted
        if k == 0:
            bigrams = set(ngrams(docs, 2))
            return len({x for x, y in bigrams if y == w}) / len(bigrams)
        h = ctx[m - k:]
        if k == m:  # the top order: raw counts
            total = context_count(docs, h)
            if total == 0:
                return p(k - 1)
            return (max(raw_count(docs, h, w) - d, 0) / total
                    + d * len(followers(docs, h)) / total * p(k - 1))
        total = cont_total(docs, h)
        if total == 0:
            return p(k - 1)
        return (max(cont_count(docs, h, w) - d, 0) / total
                + d * len(followers(docs, h)) / total * p(k - 1))

    return p(m)


def kgram_counts(docs: list[list[int]], k: int, continuation: bool = False) -> Counter:
    """The k-grams of the model (k - 1 document tokens, then a token or END) with their raw
    counts, or with their continuation counts N1+(• g) (distinct x, <s> included)."""
    grams = [g for g in ngrams(docs, k) if g[0] != BOS]
    if not continuation:
        return Counter(grams)
    preds: dict[tuple, set] = {}
    for g in ngrams(docs, k + 1):
        if g[1] != BOS:
            preds.setdefault(g[1:], set()).add(g[0])
    assert set(preds) == set(grams)
    return Counter({g: len(x) for g, x in preds.items()})


def count_of_counts(docs: list[list[int]], k: int, maxc: int, continuation: bool = False
                    ) -> list[int]:
    """[0, #types with count 1, .., #types with count maxc]."""
    by = Counter(kgram_counts(docs, k, continuation).values())
    return [0] + [by[c] for c in range(1, maxc + 1)]


def estimate_discounts(docs: list[list[int]], n: int) -> dict[int, float]:
    """D = n1 / (n1 + 2 n2) per order 2..n: raw counts at n, continuation counts below."""
    out = {}
    for k in range(2, n + 1):
        _, n1, n2 = count_of_counts(docs, k, 2, continuation=k < n)
        out[k] = n1 / (n1 + 2 * n2) if n1 + 2 * n2 else 0.75
    return out


def predecessors(docs: list[list[int]], k: int) -> dict[tuple, set]:
    """The model's k-grams with their sets of predecessors (<s> included)."""
    preds: dict[tuple, set] = {}
    for g in ngrams(docs, k + 1):
        if g[1] != BOS:
            preds.setdefault(g[1:], set()).add(g[0])
    return preds


def key_bytes(g: tuple, width: int) -> bytes:
    """A k-gram's key as the index stores it: little-endian tokens, END as a separator."""
    sep = (1 << (8 * width)) - 1
    return b"".join((sep if t == END else t).to_bytes(width, "little") for t in g)


def stream_bytes(docs: list[list[int]], width: int) -> bytes:
    """A shard's token bytes: every document preceded by a separator."""
    sep = ((1 << (8 * width)) - 1).to_bytes(width, "little")
    return b"".join(sep + b"".join(t.to_bytes(width, "little") for t in d) for d in docs)


def sampled_count_of_counts(shards: list[list[list[int]]], removed: list[set[int]], k: int,
                            maxc: int, continuation: bool, windows: list, width: int
                            ) -> list[int]:
    """The count-of-counts of the types whose position falls in a window (twin of
    ``anygram.kernels.lm.count_of_counts`` with ``windows``).

    ``shards``: each shard's documents (taken-down ones included; ``removed[s]`` holds their
    indexes in the shard). A type's count is over the kept documents of every shard; its
    position is the rank of its key among the suffixes of the first shard whose kept documents
    hold it (where its run starts, or would be inserted; past the end: the last rank);
    ``windows[s]``: None (every rank) or ``[(a, b), ..]``.
    """
    from bisect import bisect_left

    kept = [[d for i, d in enumerate(docs) if i not in rm] for docs, rm in zip(shards, removed)]
    every = [d for docs in kept for d in docs]
    counts = kgram_counts(every, k, continuation)
    local = [set(kgram_counts(docs, k)) for docs in kept]
    suffixes = []
    for docs in shards:
        data = stream_bytes(docs, width)
        suffixes.append([data[p:] for p in range(0, len(data), width)])
        suffixes[-1].sort()
    by: Counter = Counter()
    for g, c in counts.items():
        owner = next(s for s in range(len(shards)) if g in local[s])
        rank = min(bisect_left(suffixes[owner], key_bytes(g, width)), len(suffixes[owner]) - 1)
        ws = windows[owner]
        if ws is None or any(a <= rank < b for a, b in ws):
            by[c] += 1
    return [0] + [by[c] for c in range(1, maxc + 1)]
