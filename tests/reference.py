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
    streams = [stream(shard) for shard in corpus]
    for s, i in hits:
        toks = streams[s]
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


# ---------------------------------------------------------------- CNF queries (docs/cnf.md)
# ``removed`` is a set of (shard, local document index) pairs: taken-down documents.


def doc_index(shard: list[list[int]]) -> list[int]:
    """For each position of the shard's stream, the local index of its document (a
    separator belongs to the document it opens)."""
    out: list[int] = []
    for i, doc in enumerate(shard):
        out.extend([i] * (len(doc) + 1))
    return out


def clause_occurrences(corpus: Corpus, clause: list[list[int]],
                       removed: frozenset[tuple[int, int]] = frozenset()) -> set[tuple[int, int]]:
    """Distinct (shard, position) where some phrase of the clause starts, outside removed docs."""
    docs = [doc_index(shard) for shard in corpus]
    return {(s, i) for p in clause for s, i in occurrences(corpus, p)
            if (s, docs[s][i]) not in removed}


def default_anchor(corpus: Corpus, cnf: list[list[list[int]]]) -> int:
    """The clause a CNF is anchored on by default: the one with the fewest distinct occurrence
    positions in the whole corpus (taken-down documents included), the first of equals."""
    counts = [len(clause_occurrences(corpus, c)) for c in cnf]
    return counts.index(min(counts))


def naive_cnf_matches(corpus: Corpus, cnf: list[list[list[int]]], d: int,
                      removed: frozenset[tuple[int, int]] = frozenset(),
                      anchor: int | None = None) -> list[tuple[int, int]]:
    """The occurrences of the anchor clause (``anchor``, by default :func:`default_anchor`)
    such that every other clause occurs in the same document with its start within ``d``
    tokens of the anchor's start."""
    a = default_anchor(corpus, cnf) if anchor is None else anchor
    cnf = [cnf[a], *cnf[:a], *cnf[a + 1:]]
    others = [clause_occurrences(corpus, c, removed) for c in cnf[1:]]
    docs = [doc_index(shard) for shard in corpus]
    out = []
    for s, a in sorted(clause_occurrences(corpus, cnf[0], removed)):
        if all(any(s2 == s and docs[s][c] == docs[s][a] and abs(c - a) <= d for s2, c in occ)
               for occ in others):
            out.append((s, a))
    return out


def infini_gram_anchor(shard: list[list[int]], cnf: list[list[list[int]]]) -> int:
    """The clause infini-gram anchors an AND on in one shard: the one whose phrases occur the
    fewest times in it (their counts summed), the first of equals."""
    counts = [sum(naive_count([shard], p) for p in clause) for clause in cnf]
    return counts.index(min(counts))


def compat_find_cnf(corpus: Corpus, cnf: list[list[list[int]]], d: int,
                    width: int) -> tuple[int, list[list[int]]]:
    """``anygram.compat``'s exact ``find_cnf``: ``(count, pointers per shard)``.

    In each shard the matches are :func:`naive_cnf_matches` anchored on
    :func:`infini_gram_anchor`, listed in suffix-array order of the anchor's phrases (phrase
    by phrase, a shared position once), each as the byte offset of the nearest occurrence of
    each other clause before it (within ``d``, in its document) or of itself, whichever is
    first. No pointers (``[]``) when a clause never occurs.
    """
    if any(not clause_occurrences(corpus, c) for c in cnf):
        return 0, []
    count, pointers = 0, []
    for shard in corpus:
        a = infini_gram_anchor(shard, cnf)
        partners = cnf[:a] + cnf[a + 1:]
        matches = {p for _, p in naive_cnf_matches([shard], [cnf[a], *partners], d,
                                                   anchor=0)}
        data, docs = stream_bytes(shard, width), doc_index(shard)
        listed: list[int] = []
        for phrase in cnf[a]:
            for _, p in sorted(occurrences([shard], phrase), key=lambda h: data[h[1] * width:]):
                if p in matches and p not in listed:
                    listed.append(p)
        ptrs = []
        partner_occurrences = [clause_occurrences([shard], clause) for clause in partners]
        for p in listed:
            left = p
            for occ in partner_occurrences:
                before = [c for _, c in occ if p - d <= c < p and docs[c] == docs[p]]
                if before:
                    left = min(left, max(before))
            ptrs.append(left * width)
        count += len(listed)
        pointers.append(ptrs)
    return count, pointers


def contains(doc: list[int], phrase: list[int]) -> bool:
    return any(doc[i:i + len(phrase)] == phrase for i in range(len(doc)))


def naive_docs_with_all(corpus: Corpus, cnf: list[list[list[int]]],
                        removed: frozenset[tuple[int, int]] = frozenset()) -> list[int]:
    """Global ids of the documents in which every clause has some phrase."""
    out, g = [], 0
    for s, shard in enumerate(corpus):
        for i, doc in enumerate(shard):
            if (s, i) not in removed and all(any(contains(doc, p) for p in c) for c in cnf):
                out.append(g)
            g += 1
    return out


def naive_phrase_hits(data: bytes, w: int, windows: list[tuple[int, int]],
                      phrases: list[tuple[bytes, int]]) -> list[tuple[int, int]]:
    """Twin of kernels.phrase_hits: (position, OR of clause bits) for each token position in
    the union of the windows where some phrase (bytes, bit) starts."""
    starts = sorted({t for lo, hi in windows for t in range(lo, hi)})
    out = []
    for t in starts:
        mask = 0
        for q, bit in phrases:
            if data[t * w:t * w + len(q)] == q:
                mask |= bit
        if mask:
            out.append((t, mask))
    return out


def naive_verify_anchors(anchors: list[tuple[int, int, int]], occ: list[list[int]],
                         d: int) -> list[bool]:
    """Twin of kernels.verify_anchors: anchors are (a, doc_lo, doc_hi); occ holds the
    occurrence positions of each partner clause."""
    return [all(any(max(a - d, lo) <= p <= min(a + d, hi - 1) for p in ps) for ps in occ)
            for a, lo, hi in anchors]


# ---------------------------------------------------------------- documents and search_docs
# Positions are token positions of a shard's stream (``stream(shard)``); a document's tokens
# follow its separator. ``removed`` is a set of global document ids.


def doc_table(corpus: Corpus) -> list[tuple[int, int, int, int]]:
    """``(shard, local, start, end)`` of every document in global-id order: the stream
    positions ``[start, end)`` of its tokens."""
    out = []
    for s, shard in enumerate(corpus):
        p = 0
        for i, doc in enumerate(shard):
            out.append((s, i, p + 1, p + 1 + len(doc)))
            p += 1 + len(doc)
    return out


def doc_at(corpus: Corpus, shard: int, pos: int) -> int | None:
    """Global id of the document whose tokens include stream position ``pos``; None for a
    separator."""
    for g, (s, _, a, b) in enumerate(doc_table(corpus)):
        if s == shard and a <= pos < b:
            return g
    return None


def naive_window(doc_len: int, offset: int | None, query_len: int = 0,
                 max_disp_len: int | None = None, max_ctx_len: int | None = None,
                 max_tokens: int | None = None) -> tuple[int, int, int]:
    """``(lo, hi, match_len)`` in document coordinates, by the written rules.

    ``offset`` is where the match starts in the document (None: the document itself, cut to
    ``max_tokens``). ``max_disp_len=d``: ``d // 2`` tokens before the match start and
    ``ceil(d / 2)`` from it; otherwise ``max_ctx_len=c`` (default 100) tokens on each side of
    the match. The match is clipped to the document and to the window.
    """
    if offset is None:
        return 0, doc_len if max_tokens is None else min(doc_len, max_tokens), 0
    match = min(query_len, doc_len - offset)
    if max_disp_len is not None:
        lo = max(0, offset - max_disp_len // 2)
        hi = min(doc_len, offset + (max_disp_len + 1) // 2)
    else:
        c = 100 if max_ctx_len is None else max_ctx_len
        lo, hi = max(0, offset - c), min(doc_len, offset + match + c)
    return lo, hi, min(match, hi - offset)


def visible_occurrences(corpus: Corpus, query: list[int],
                        removed: frozenset[int] = frozenset()) -> list[tuple[int, int]]:
    """``(shard, pos)`` of the query's occurrences outside removed documents, corpus order."""
    return [(s, p) for s, p in occurrences(corpus, query) if doc_at(corpus, s, p) not in removed]


def stream_bytes(shard: list[list[int]], width: int) -> bytes:
    """The shard's token stream as index bytes: separators all 0xff, ids little-endian."""
    return b"".join(b"\xff" * width if t is SEP else t.to_bytes(width, "little")
                    for t in stream(shard))


def rank_order(corpus: Corpus, hits: list[tuple[int, int]], width: int
               ) -> list[tuple[int, int]]:
    """``hits`` in suffix-array order: by shard, then by the bytes of the suffix."""
    data = [stream_bytes(shard, width) for shard in corpus]
    return sorted(hits, key=lambda h: (h[0], data[h[0]][h[1] * width:]))


_M64 = (1 << 64) - 1


def _mix64(x: int) -> int:
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def naive_permute(n: int, seed: int, rounds: int = 8) -> list[int]:
    """Twin of kernels.permute: the whole permutation of ``[0, n)``, with Python ints."""
    if n <= 1:
        return [0] * n
    h = ((n - 1).bit_length() + 1) // 2
    mask = (1 << h) - 1
    keys, k = [], seed & _M64
    for _ in range(rounds):
        k = (k + 0x9E3779B97F4A7C15) & _M64
        keys.append(_mix64(k))

    def once(x: int) -> int:
        left, right = x >> h, x & mask
        for key in keys:
            left, right = right, left ^ (_mix64(right ^ key) & mask)
        return (left << h) | right

    out = []
    for i in range(n):
        x = once(i)
        while x >= n:
            x = once(x)
        out.append(x)
    return out


def naive_ntd_table(shard: list[list[int]], threshold: int
                    ) -> dict[tuple[int, ...], tuple[Counter[int], int]]:
    """Twin of kernels.ntd_table.build_ntd_table: every prompt of 1 and 2 tokens occurring at
    least ``threshold`` times in the shard, with its next-token Counter and end count."""
    toks = stream(shard)
    prompts = {tuple(toks[i:i + n]) for n in (1, 2) for i in range(len(toks) - n + 1)
               if SEP not in toks[i:i + n]}
    out = {}
    for p in prompts:
        count, nxt, end = naive_ntd([shard], list(p))
        if count >= threshold:
            out[p] = (nxt, end)
    return out
