"""Numba kernels for CNF (AND of ORs) queries: phrase starts in windows of the token text, and
the proximity check of anchor occurrences. Arrays in, arrays out.

Positions are token positions of one shard (byte offset / ``w``), as everywhere in the engine.
A *window* ``[lo, hi)`` is a run of candidate start positions inside one document; a phrase
may start anywhere in it and run past ``hi`` (it cannot run past the document: no phrase
contains the separator, and the shard's end is checked).

Phrases are passed flattened: ``pbytes`` holds their little-endian token bytes back to back,
phrase ``k`` is ``pbytes[poff[k]:poff[k + 1]]``, and ``pbits[k]`` is the bit of the clause it
belongs to (clause ``j`` is bit ``1 << j``). Lists of occurrences per clause are passed
CSR-style: one array of positions and the start of each clause's run in it. Each kernel has a
naive twin in ``tests/reference.py``.

*Marks* are bitmaps of a shard's token positions, one row per clause (uint64 words, position
``p`` is bit ``p & 63`` of word ``p >> 6``): a clause's occurrences marked straight from its
suffix-array ranges are its positions in ascending order without a sort, and a window of
positions is tested a word at a time.
"""

from __future__ import annotations

import numpy as np

from ..errors import IndexFormatError
from ._jit import inline_kernel, kernel
from .search import CORRUPT, _checked_position, _grown, _log2


@kernel
def _first_bytes(pbytes: np.ndarray, poff: np.ndarray) -> np.ndarray:
    """For each byte value, the bit set of the phrases whose first byte it is (<= 64)."""
    first = np.zeros(256, dtype=np.uint64)  # unsigned: bit 63 is a phrase too
    for k in range(poff.shape[0] - 1):
        first[pbytes[poff[k]]] |= np.uint64(1) << np.uint64(k)
    return first


@inline_kernel
def _bits_at(ds, w, t, pbytes, poff, pbits, first):
    """OR of the clause bits of the phrases starting at token position ``t`` (0: none).

    The first-byte table rejects almost every position with one load and one lookup; a
    candidate phrase is then compared in full (it may not run past the shard's end).
    """
    b = t * w
    cand = first[ds[b]]
    mask = np.int64(0)
    k = 0
    while cand != 0:
        if cand & np.uint64(1):
            s = poff[k]
            length = poff[k + 1] - s
            if b + length <= ds.shape[0]:
                j = 1
                while j < length and ds[b + j] == pbytes[s + j]:
                    j += 1
                if j == length:
                    mask |= pbits[k]
        cand >>= np.uint64(1)
        k += 1
    return mask


@inline_kernel
def _check_window(ds, w, lo, hi):
    """Raise IndexFormatError unless start positions ``[lo, hi)`` (``lo < hi``) lie in the
    shard: windows come from positions and document offsets read from the index."""
    if lo < 0 or hi * w > ds.shape[0]:
        raise IndexFormatError(CORRUPT)


@kernel
def _scan(ds, w, lo, hi, i, pbytes, poff, pbits, first, pos, bits, win, m):
    """Scan start positions ``[lo, hi)`` of window ``i``, storing hits from index ``m`` on.

    Returns ``(m, t)``: the new hit count, and ``hi`` when the window is done or else the
    position whose hit did not fit (the buffers are full). A separate function with no
    reallocation inside: LLVM keeps this loop tight.
    """
    for t in range(lo, hi):
        mask = _bits_at(ds, w, t, pbytes, poff, pbits, first)
        if mask != 0:
            if m == pos.shape[0]:
                return m, t
            pos[m] = t
            bits[m] = mask
            win[m] = i
            m += 1
    return m, hi


@kernel
def phrase_hits(ds: np.ndarray, w: int, win_lo: np.ndarray, win_hi: np.ndarray,
                pbytes: np.ndarray, poff: np.ndarray, pbits: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every start position inside the windows where at least one phrase occurs.

    ``win_lo``/``win_hi`` (int64, token positions) must be sorted by ``win_lo``; windows may
    overlap (each position is read once: a window resumes where the previous ones ended).
    At most 64 phrases. Returns ``(pos, bits, win)``: the ascending positions holding a
    phrase start, the OR of the clause bits of the phrases starting there, and the index of
    the (first) window the position was found in.

    O(scanned positions + hits), with a full compare only where a phrase's first byte
    matches: a 256-entry table maps a byte to the phrases starting with it, so a position
    without a candidate costs one load and one lookup whatever the number of phrases.
    """
    first = _first_bytes(pbytes, poff)
    cap = 1024
    pos = np.empty(cap, dtype=np.int64)
    bits = np.empty(cap, dtype=np.int64)
    win = np.empty(cap, dtype=np.int64)
    m = 0
    done = 0  # every position below `done` has been scanned
    for i in range(win_lo.shape[0]):
        lo = max(win_lo[i], done)
        hi = win_hi[i]
        if lo >= hi:
            continue
        _check_window(ds, w, lo, hi)
        while True:
            m, lo = _scan(ds, w, lo, hi, i, pbytes, poff, pbits, first, pos, bits, win, m)
            if lo == hi:
                break
            cap *= 2  # full: grow, then resume at the hit that did not fit
            pos, bits, win = _grown(pos, m, cap), _grown(bits, m, cap), _grown(win, m, cap)
        done = hi
    return pos[:m], bits[:m], win[:m]


@kernel
def count_phrase_starts(ds: np.ndarray, w: int, win_lo: np.ndarray, win_hi: np.ndarray,
                        pbytes: np.ndarray, poff: np.ndarray, pbits: np.ndarray) -> int:
    """``len(phrase_hits(...)[0])`` without storing anything: the number of positions in the
    union of the windows (sorted by ``win_lo``) where some phrase starts. O(scanned
    positions), ~1 ns each."""
    first = _first_bytes(pbytes, poff)
    count = 0
    done = 0
    for i in range(win_lo.shape[0]):
        lo = max(win_lo[i], done)
        hi = win_hi[i]
        if lo < hi:
            _check_window(ds, w, lo, hi)
        for t in range(lo, hi):
            if _bits_at(ds, w, t, pbytes, poff, pbits, first) != 0:
                count += 1
        if hi > done:
            done = hi
    return count


@kernel
def verify_anchors(anchors: np.ndarray, doc_lo: np.ndarray, doc_hi: np.ndarray,
                   occ: np.ndarray, occ_start: np.ndarray, d: int) -> np.ndarray:
    """Whether each anchor has, for every partner clause, an occurrence in its proximity
    window ``[max(a - d, doc_lo), min(a + d, doc_hi - 1)]``.

    ``anchors`` ascending, with the token range ``[doc_lo, doc_hi)`` of each one's document.
    The occurrences of partner clause ``k`` are ``occ[occ_start[k]:occ_start[k + 1]]``,
    ascending, and must be complete over every window that matters (they may include
    occurrences elsewhere, e.g. in other documents). Because the anchors and their window
    starts both ascend, one forward pointer per clause suffices: O(anchors x clauses + occ).
    """
    n_a = anchors.shape[0]
    n_c = occ_start.shape[0] - 1
    ok = np.zeros(n_a, dtype=np.bool_)
    ptr = occ_start[:n_c].copy()
    for i in range(n_a):
        a = anchors[i]
        lo = max(a - d, doc_lo[i])
        hi = min(a + d, doc_hi[i] - 1)
        good = True
        for k in range(n_c):
            p = ptr[k]
            end = occ_start[k + 1]
            while p < end and occ[p] < lo:
                p += 1
            ptr[k] = p
            if p == end or occ[p] > hi:
                good = False
                break
        ok[i] = good
    return ok


@kernel
def _radix(a: np.ndarray, bits: int) -> np.ndarray:
    """LSD radix sort of non-negative ``a`` (values below ``2**bits``), digits <= 12 bits.
    Reorders ``a``'s storage; returns the sorted array (``a`` or its twin buffer)."""
    n = a.shape[0]
    passes = (bits + 11) // 12
    digit = (bits + passes - 1) // passes
    mask = (np.int64(1) << digit) - 1
    b = np.empty_like(a)
    cnt = np.empty((np.int64(1) << digit) + 1, dtype=np.int64)
    for p in range(passes):
        shift = digit * p
        cnt[:] = 0
        for i in range(n):
            cnt[((np.int64(a[i]) >> shift) & mask) + 1] += 1
        for j in range(1, cnt.shape[0]):
            cnt[j] += cnt[j - 1]
        for i in range(n):
            v = (np.int64(a[i]) >> shift) & mask
            b[cnt[v]] = a[i]
            cnt[v] += 1
        a, b = b, a
    return a


@kernel
def sort_positions(x: np.ndarray) -> np.ndarray:
    """``x`` (non-negative int64, e.g. positions read from a suffix-array range) sorted, as a
    new array.

    LSD radix sort, ceil(bits / 12) passes; on 32-bit copies when the values fit (half the
    memory traffic: ~4-8 ns an element instead of ~15 for a million positions, 2-4x faster
    than ``np.sort``). Small inputs use ``np.sort``.
    """
    n = x.shape[0]
    if n < 512:
        return np.sort(x)
    top = x.max()
    bits = 1
    while bits < 63 and (np.int64(1) << bits) <= top:
        bits += 1
    if bits <= 32:
        return _radix(x.astype(np.uint32), bits).astype(np.int64)
    return _radix(x.copy(), bits)


@kernel
def probe_anchors(ds: np.ndarray, w: int, anchors: np.ndarray, doc_lo: np.ndarray,
                  doc_hi: np.ndarray, d: int, pbytes: np.ndarray, poff: np.ndarray,
                  pbits: np.ndarray, need: int) -> np.ndarray:
    """Whether each anchor has, for every clause bit in ``need``, a phrase of that clause
    starting in ``[max(a - d, doc_lo), min(a + d, doc_hi - 1)]``: the text is read outward
    from the anchor (a, a - 1, a + 1, a - 2, ...) and the walk stops as soon as every clause
    has been seen.

    Unlike :func:`phrase_hits` nothing is stored, and an anchor whose partners are frequent
    costs a few positions instead of ``2d + 1``: O(anchors x distance to the farthest
    nearest partner), at most O(anchors x d). Anchors need not be sorted.
    """
    first = _first_bytes(pbytes, poff)
    n_a = anchors.shape[0]
    ok = np.zeros(n_a, dtype=np.bool_)
    for i in range(n_a):
        a = anchors[i]
        lo = max(a - d, doc_lo[i])
        hi = min(a + d, doc_hi[i] - 1)
        _check_window(ds, w, lo, max(a, hi) + 1)  # the positions read: [lo, max(a, hi)]
        found = np.int64(0)
        for k in range(d + 1):
            if a - k < lo and a + k > hi:
                break
            if a - k >= lo:
                found |= _bits_at(ds, w, a - k, pbytes, poff, pbits, first)
            if k > 0 and a + k <= hi:
                found |= _bits_at(ds, w, a + k, pbytes, poff, pbits, first)
            if found & need == need:
                break
        ok[i] = found & need == need
    return ok


@kernel
def docs_of_sorted(pos: np.ndarray, offsets: np.ndarray, w: int, n_positions: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ascending token positions: each one's local document index (what
    :meth:`anygram.Engine.docs_at` returns) and that document's token range ``[lo, hi)``
    (:meth:`anygram.Engine.doc_span`), in one forward walk over the separators' byte
    ``offsets`` instead of a binary search per position. Galloping keeps few positions among
    many documents cheap: O(len(pos) x (1 + log(documents / len(pos)))).
    """
    n_doc = offsets.shape[0]
    docs = np.empty(pos.shape[0], dtype=np.int64)
    lo = np.empty(pos.shape[0], dtype=np.int64)
    hi = np.empty(pos.shape[0], dtype=np.int64)
    shift = _log2(w)
    doc = 0  # invariant: offsets[doc] <= the current byte offset (offsets[0] is 0)
    d_lo = np.int64(-1)  # the current document's range, recomputed when it changes
    d_hi = np.int64(-1)
    for i in range(pos.shape[0]):
        b = np.uint64(pos[i] * w)
        if doc + 1 < n_doc and offsets[doc + 1] <= b:
            step = 1  # gallop to a bracket (doc + step // 2, doc + step], then bisect
            while doc + step < n_doc and offsets[doc + step] <= b:
                step *= 2
            a = doc + step // 2
            c = min(doc + step, n_doc)
            while c - a > 1:
                mid = (a + c) // 2
                if offsets[mid] <= b:
                    a = mid
                else:
                    c = mid
            doc = a
        if d_lo < 0 or docs[i - 1] != doc:
            d_lo = (np.int64(offsets[doc]) >> shift) + 1
            d_hi = (np.int64(offsets[doc + 1]) >> shift if doc + 1 < n_doc
                    else np.int64(n_positions))
        docs[i] = doc
        lo[i] = d_lo
        hi[i] = d_hi
    return docs, lo, hi


# ---------------------------------------------------------------- marks (position bitmaps)


@kernel
def mark_ranks(sa: np.ndarray, k: int, w: int, starts: np.ndarray, ends: np.ndarray,
               rows: np.ndarray, n_rows: int, n_positions: int) -> np.ndarray:
    """Marks of the positions stored at suffix-array ranks ``[starts[j], ends[j])``, each
    range in row ``rows[j]``: a ``(n_rows, ceil(n_positions / 64))`` uint64 bitmap.

    The ranks are read in order (sequential reads), the bits set at random: ~3 ns an
    occurrence on a 20M-token shard (its rows fit in the CPU cache), against ~10 to read and
    radix-sort positions. ``w`` (the token width) must be a power of two. Raises
    IndexFormatError for a pointer outside the shard.
    """
    marks = np.zeros((n_rows, (n_positions + 63) >> 6), dtype=np.uint64)
    shift = _log2(w)
    n_pos = min(n_positions, sa.shape[0] // k)
    for j in range(starts.shape[0]):
        row = rows[j]
        for r in range(starts[j], ends[j]):
            # Checked: a damaged pointer must raise, not set a bit outside the bitmap.
            p = _checked_position(sa, k, shift, r, n_pos)
            marks[row, p >> 6] |= np.uint64(1) << np.uint64(p & 63)
    return marks


# de Bruijn's table: the lowest set bit ``b`` of a word, isolated and multiplied by the
# sequence, leaves a distinct 6-bit pattern in the top bits; the table maps it back to ``b``.
_DEBRUIJN_SEQ = 0x03F79D71B4CB0A89
_DEBRUIJN = np.zeros(64, dtype=np.int64)
for _b in range(64):
    _DEBRUIJN[(((1 << _b) * _DEBRUIJN_SEQ) & (2**64 - 1)) >> 58] = _b


@inline_kernel
def _lowest(x):
    """Index of the lowest set bit of a non-zero uint64."""
    return _DEBRUIJN[((x & (~x + np.uint64(1))) * np.uint64(_DEBRUIJN_SEQ)) >> np.uint64(58)]


@inline_kernel
def _highest(x):
    """Index of the highest set bit of a non-zero uint64 (a binary search on the shifts)."""
    b = np.int64(0)
    for step in (32, 16, 8, 4, 2, 1):
        if x >> np.uint64(step):
            x >>= np.uint64(step)
            b += step
    return b


@inline_kernel
def _low(n):
    """The word with bits ``0 .. n - 1`` set (none when ``n <= 0``, all when ``n >= 64``)."""
    if n <= 0:
        return np.uint64(0)
    if n >= 64:
        return ~np.uint64(0)
    return (np.uint64(1) << np.uint64(n)) - np.uint64(1)


@inline_kernel
def _dilate(x, d):
    """Bits of a word within ``d`` of a set bit of ``x`` (inside the word). Radius ``r`` grows
    to ``r + s`` with shifts by ``s <= r + 1`` (the shifted copies overlap: no gap), so
    ``d`` takes ~log2(d) steps."""
    if x == 0 or d >= 63:
        return x if x == 0 else ~np.uint64(0)
    r = 0
    while r < d:
        s = min(r + 1, d - r)
        x |= (x << np.uint64(s)) | (x >> np.uint64(s))
        r += s
    return x


@inline_kernel
def _popcount(x):
    """Set bits of a uint64 (SWAR)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@inline_kernel
def _next_mark(marks, row, x):
    """The first marked position ``>= x`` of a row, or ``2**62`` when there is none."""
    i = max(x, 0) >> 6  # x < 0: a window start computed from damaged document offsets
    nw = marks.shape[1]
    if i >= nw:
        return np.int64(1) << 62
    word = marks[row, i] & ~_low(max(x, 0) & 63)
    while word == 0:
        i += 1
        if i >= nw:
            return np.int64(1) << 62
        word = marks[row, i]
    return (i << 6) + _lowest(word)


@kernel
def sweep_marks(marks: np.ndarray, offsets: np.ndarray, w: int, n_positions: int,
                removed: np.ndarray, d: int, store: bool) -> tuple[int, np.ndarray]:
    """The anchors (row 0 of ``marks``) that have, for every partner clause (rows 1, 2, ...),
    a marked position in their window ``[max(a - d, doc_lo), min(a + d, doc_hi - 1)]``
    (their document's token range; documents from the separators' byte ``offsets``), outside
    the ``removed`` documents (ascending local ids). Returns their number and, when
    ``store``, their positions (ascending; else an empty array).

    One pass over the words, 64 anchors at a time: in each run of a word inside one document,
    a partner clause covers the positions within ``d`` of its marks in the run (shifted
    within the word), of its last mark before the word and of its first mark after it (if in
    the document). Those two are kept by forward pointers, so the cost is O(words x rows +
    documents + matches stored), whatever ``d``.
    """
    n_rows = marks.shape[0]
    nw = marks.shape[1]
    n_doc = offsets.shape[0]
    shift = _log2(w)
    last = np.full(n_rows, -1, dtype=np.int64)  # a row's last non-zero word in [0, seen)
    seen = np.zeros(n_rows, dtype=np.int64)
    after = np.full(n_rows, -1, dtype=np.int64)  # a row's first mark from some x on
    doc = 0
    lo = (np.int64(offsets[0]) >> shift) + 1 if n_doc else n_positions
    hi = np.int64(offsets[1]) >> shift if n_doc > 1 else n_positions
    rm = 0
    while rm < removed.shape[0] and removed[rm] < doc:
        rm += 1
    gone = rm < removed.shape[0] and removed[rm] == doc
    # Room for every anchor, sized up front: an array reassigned inside the loop would cost
    # reference counting on every word.
    n_anchors = 0
    if store:
        for i in range(nw):
            n_anchors += _popcount(marks[0, i])
    out = np.empty(n_anchors, dtype=np.int64)
    count = 0
    for i in range(nw):
        if marks[0, i] == 0:
            continue
        base = i << 6
        end = base + 64
        start = base
        while True:  # the runs of the word inside one document
            while hi <= start and doc + 1 < n_doc:
                doc += 1
                lo = (np.int64(offsets[doc]) >> shift) + 1
                hi = np.int64(offsets[doc + 1]) >> shift if doc + 1 < n_doc else n_positions
                while rm < removed.shape[0] and removed[rm] < doc:
                    rm += 1
                gone = rm < removed.shape[0] and removed[rm] == doc
            s = max(start, lo)
            e = min(end, hi)
            run = _low(e - base) & ~_low(s - base) if s < e else np.uint64(0)
            hit = marks[0, i] & run
            if gone:
                hit = np.uint64(0)
            for c in range(1, n_rows):
                if hit == 0:
                    break
                # Cheapest first: a frequent partner usually has a mark in the run itself,
                # which covers every position of the word when d >= 63.
                cover = _dilate(marks[c, i] & run, d)
                if hit & ~cover != 0:  # the last mark before the word, if in the document
                    while seen[c] < i:
                        if marks[c, seen[c]] != 0:
                            last[c] = seen[c]
                        seen[c] += 1
                    if last[c] >= 0:
                        mark = (last[c] << 6) + _highest(marks[c, last[c]])
                        if mark >= lo:
                            cover |= _low(mark + d - base + 1)
                if hit & ~cover != 0:  # the first mark after the word, if in the document
                    if after[c] < end:
                        after[c] = _next_mark(marks, c, end)
                    if after[c] < hi:
                        cover |= ~_low(after[c] - d - base)
                hit &= cover
            if hit != 0:
                n_hit = _popcount(hit)
                if store:
                    while hit != 0:
                        out[count] = base + _lowest(hit)
                        count += 1
                        hit &= hit - np.uint64(1)
                else:
                    count += n_hit
            if hi >= end or doc + 1 >= n_doc:
                break
            start = hi
    return count, out[:count]


@kernel
def verify_marks(anchors: np.ndarray, doc_lo: np.ndarray, doc_hi: np.ndarray,
                 marks: np.ndarray, d: int) -> np.ndarray:
    """:func:`verify_anchors` with the partner clauses given as marks (one row each, every
    row a partner): whether each anchor has a mark of every row in its window
    ``[max(a - d, doc_lo), min(a + d, doc_hi - 1)]``.

    ``anchors`` ascending. The windows' starts ascend with them, so the first mark at or
    after the start, kept per row, moves only forward: O(anchors x rows + words x rows).
    """
    n_rows = marks.shape[0]
    ok = np.zeros(anchors.shape[0], dtype=np.bool_)
    after = np.full(n_rows, -1, dtype=np.int64)  # a row's first mark from some x on
    for i in range(anchors.shape[0]):
        a = anchors[i]
        lo = max(a - d, doc_lo[i])
        hi = min(a + d, doc_hi[i] - 1)
        good = True
        for c in range(n_rows):
            if after[c] < lo:
                after[c] = _next_mark(marks, c, lo)
            if after[c] > hi:
                good = False
                break
        ok[i] = good
    return ok


@kernel
def docs_with_marks(marks: np.ndarray, offsets: np.ndarray, w: int, n_positions: int,
                    removed: np.ndarray) -> np.ndarray:
    """The local ids (ascending) of the documents, outside the ``removed`` ones (ascending
    local ids), in which every row of ``marks`` has a mark: a document-level AND of the
    clauses marked by :func:`mark_ranks` (documents from the separators' byte ``offsets``).

    One forward pointer per row (its first mark at or after the document's start), so the
    cost is O(documents x rows + words x rows); rows are tested in order and the first one
    without a mark in the document stops the test: pass the rarest first.
    """
    n_rows = marks.shape[0]
    n_doc = offsets.shape[0]
    shift = _log2(w)
    after = np.full(n_rows, -1, dtype=np.int64)  # a row's first mark from some x on
    out = np.empty(n_doc, dtype=np.int64)
    count = 0
    rm = 0
    for doc in range(n_doc):
        lo = (np.int64(offsets[doc]) >> shift) + 1
        hi = np.int64(offsets[doc + 1]) >> shift if doc + 1 < n_doc else n_positions
        good = True
        for c in range(n_rows):
            if after[c] < lo:
                after[c] = _next_mark(marks, c, lo)
            if after[c] >= hi:
                good = False
                break
        if good:
            while rm < removed.shape[0] and removed[rm] < doc:
                rm += 1
            if not (rm < removed.shape[0] and removed[rm] == doc):
                out[count] = doc
                count += 1
    return out[:count].copy()
