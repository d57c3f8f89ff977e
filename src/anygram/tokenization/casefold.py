"""Unicode simple case folding, for indexes that match regardless of case (``--fold-case``),
and the record that gives each folded text back its original characters.

Simple folding maps one character to one character (the Unicode CaseFolding statuses C and
S): ``c.casefold()`` where that is one character, else ``c.lower()`` where that is one,
else ``c``. So ``ẞ`` folds to ``ß``, ``ß`` stays ``ß`` (full folding would give ``ss``),
``K`` (Kelvin sign) and ``K`` fold to ``k``, ``ς`` and ``Σ`` to ``σ``, and ``İ`` stays ``İ``
(its lower case is two characters). A folded text has as many characters as the original,
not always as many UTF-8 bytes (``K``, 3 bytes, folds to ``k``, 1).

An index of folded text returns folded text; :class:`CaseRecord` holds what it takes to show
the original: the folded-byte offsets of the characters that folding changed, and for the
few whose original is not the folded character's usual upper case, that original. With
:func:`restore`, a window of folded bytes becomes the original bytes and a map from folded
to original offsets (to highlight a match on the right characters).
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

import numpy as np

#: The Unicode version of this Python's folding (an index records the one it was built with).
UNICODE_VERSION = unicodedata.unidata_version

#: Characters folding may change lie below this code point (the cased scripts: checked by
#: the tests over every code point).
_CASED_BELOW = 0x20000


def simple_fold(c: str) -> str:
    """The simple case folding of one character (module docstring)."""
    folded = c.casefold()
    if len(folded) == 1:
        return folded
    lowered = c.lower()
    return lowered if len(lowered) == 1 else c


@functools.cache
def fold_table() -> dict[int, str]:
    """``{code point: folded character}`` of every character folding changes
    (:meth:`str.translate`'s table)."""
    table = {}
    for cp in range(_CASED_BELOW):
        c = chr(cp)
        f = simple_fold(c)
        if f != c:
            table[cp] = f
    return table


@functools.cache
def _usual_originals() -> dict[str, str]:
    """``{folded character: its usual original}``: its upper case, when that is one
    character that folds back to it (``k`` → ``K``, not the Kelvin sign)."""
    out = {}
    for f in set(fold_table().values()):
        up = f.upper()
        if len(up) == 1 and up != f and simple_fold(up) == f:
            out[f] = up
    return out


_ASCII_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")


def fold(text: str) -> str:
    """``text`` with every character simply folded."""
    return text.translate(fold_table())


def fold_utf8(data: bytes) -> bytes:
    """The UTF-8 of :func:`fold` of UTF-8 ``data`` (ASCII at C speed)."""
    if data.isascii():
        return data.translate(_ASCII_LOWER)
    return fold(data.decode("utf-8")).encode("utf-8")


@dataclass(frozen=True)
class CaseRecord:
    """What a folded text needs to be shown as written (module docstring), for a text of
    folded bytes: ``usual`` the folded-byte offsets (sorted) of the characters whose original
    is their usual upper case; ``other`` those of the other changed characters, whose
    originals are ``other_chars`` (one character each)."""

    usual: np.ndarray  # int64
    other: np.ndarray  # int64
    other_chars: tuple[str, ...]


def record(text: str) -> tuple[bytes, CaseRecord]:
    """The UTF-8 of ``fold(text)`` and the record that restores ``text`` from it."""
    folded = fold(text)
    data = folded.encode("utf-8")
    if folded == text:
        return data, CaseRecord(np.zeros(0, np.int64), np.zeros(0, np.int64), ())
    usual_of = _usual_originals()
    usual: list[int] = []
    other: list[int] = []
    other_chars: list[str] = []
    at = 0
    for o, f in zip(text, folded):
        if o != f:
            if usual_of.get(f) == o:
                usual.append(at)
            else:
                other.append(at)
                other_chars.append(o)
        at += len(f.encode("utf-8"))
    return data, CaseRecord(np.array(usual, np.int64), np.array(other, np.int64),
                            tuple(other_chars))


def restore(folded: bytes, start: int, rec: CaseRecord) -> tuple[bytes, np.ndarray]:
    """The original bytes of the folded bytes ``folded``, which begin at offset ``start`` of
    the text ``rec`` describes (a character boundary), and ``where``: ``where[i]`` is the
    original offset (in the returned bytes) of folded byte ``i``, ``where[len(folded)]``
    the returned length. A character cut by the window's end is kept as it is."""
    end = start + len(folded)
    changed: dict[int, str | None] = {}
    lo, hi = np.searchsorted(rec.usual, [start, end])
    changed.update((int(p) - start, None) for p in rec.usual[lo:hi])
    lo, hi = np.searchsorted(rec.other, [start, end])
    changed.update((p - start, c) for p, c in zip(rec.other[lo:hi].tolist(),
                                                   rec.other_chars[lo:hi]))
    where = np.empty(len(folded) + 1, dtype=np.int64)
    out = bytearray()
    i = 0
    for p in sorted(changed):
        where[i:p] = len(out) + np.arange(p - i)  # unchanged bytes
        out += folded[i:p]
        char = folded[p:p + _char_width(folded[p])]
        if len(char) < _char_width(folded[p]):  # cut by the window's end: as it is
            i = p
            break
        original = changed[p] or _usual_originals()[char.decode("utf-8")]
        where[p:p + len(char)] = len(out)
        out += original.encode("utf-8")
        i = p + len(char)
    where[i:len(folded)] = len(out) + np.arange(len(folded) - i)
    out += folded[i:]
    where[len(folded)] = len(out)
    return bytes(out), where


def _char_width(lead: int) -> int:
    """The UTF-8 length of the character whose first byte is ``lead``."""
    return 1 if lead < 0xC0 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
