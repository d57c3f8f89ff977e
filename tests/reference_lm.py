"""Textbook interpolated Kneser-Ney by brute-force counting (the twin of anygram.generation).

A corpus is a list of documents (lists of token ids); shards do not matter here. A document
``t1 .. tm`` is the event sequence ``<s> t1 .. tm </s>``; ``END`` stands for ``</s>``.
"""

from __future__ import annotations

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


def kn_prob(docs: list[list[int]], prompt: list[int], w, n: int, d: float) -> float:
    """Interpolated Kneser-Ney P(w | prompt) of order n with one discount d for every order."""
    ctx = tuple(prompt[max(0, len(prompt) - (n - 1)):])
    m = len(ctx)

    def p(k: int) -> float:
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
