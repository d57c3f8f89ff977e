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
"""

from __future__ import annotations

import numpy as np

from ._jit import inline_kernel, kernel


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
        while True:
            m, lo = _scan(ds, w, lo, hi, i, pbytes, poff, pbits, first, pos, bits, win, m)
            if lo == hi:
                break
            cap *= 2  # full: grow, then resume at the hit that did not fit
            pos2 = np.empty(cap, dtype=np.int64)
            bits2 = np.empty(cap, dtype=np.int64)
            win2 = np.empty(cap, dtype=np.int64)
            pos2[:m] = pos[:m]
            bits2[:m] = bits[:m]
            win2[:m] = win[:m]
            pos, bits, win = pos2, bits2, win2
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
    while (np.int64(1) << bits) <= top:
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
    doc = 0  # invariant: offsets[doc] <= the current byte offset (offsets[0] is 0)
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
        docs[i] = doc
        lo[i] = np.int64(offsets[doc]) // w + 1
        hi[i] = np.int64(offsets[doc + 1]) // w if doc + 1 < n_doc else n_positions
    return docs, lo, hi
