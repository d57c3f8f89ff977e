"""Simple case folding and the record that restores the original text
(anygram.tokenization.casefold), against the rule written out character by character."""

from __future__ import annotations

import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from anygram.tokenization import casefold as cf


def reference_fold(text: str) -> str:
    """The issue's rule, one character at a time."""
    out = []
    for c in text:
        if len(c.casefold()) == 1:
            out.append(c.casefold())
        elif len(c.lower()) == 1:
            out.append(c.lower())
        else:
            out.append(c)
    return "".join(out)


def test_named_characters() -> None:
    assert cf.fold("ẞ ß Straße") == "ß ß straße"  # simple, not full, folding
    assert cf.fold("\u212a K k") == "k k k"  # the Kelvin sign
    assert cf.fold("ΣΑΣ ς") == "σασ σ"
    assert cf.fold("İstanbul") == "İstanbul"  # İ lowers to two characters: kept
    assert cf.fold("ǅ Ǆ ǆ") == "ǆ ǆ ǆ"  # title case
    assert cf.fold("ＡＢＣ") == "ａｂｃ"
    assert cf.fold_utf8(b"HeLLo") == b"hello"
    assert cf.fold_utf8("\u212a".encode()) == b"k"  # 3 bytes fold to 1


def test_the_table_covers_every_character_folding_changes() -> None:
    changed = {cp for cp in range(sys.maxunicode + 1) if reference_fold(chr(cp)) != chr(cp)}
    assert changed == set(cf.fold_table())
    assert all(cf.fold_table()[cp] == reference_fold(chr(cp)) for cp in changed)


cased = st.text(alphabet=st.one_of(
    st.sampled_from(list("aAbBkK\u212asSßẞσςΣİıIiǅǄǆ ,.\x00\U0001e900\U0001e922ＡａΩω")),
    st.characters(max_codepoint=0x24FF, exclude_categories=("Cs",))), max_size=40)


@settings(max_examples=300, deadline=None)
@given(cased)
def test_fold_is_the_rule(text: str) -> None:
    assert cf.fold(text) == reference_fold(text)
    assert cf.fold_utf8(text.encode()) == reference_fold(text).encode()


@settings(max_examples=300, deadline=None)
@given(cased, st.data())
def test_any_window_of_folded_text_is_restored_with_its_offsets(text: str, data) -> None:
    folded, rec = cf.record(text)
    assert folded == reference_fold(text).encode()
    assert cf.restore(folded, 0, rec)[0] == text.encode()
    # A window of whole characters [i, j): the original characters, each folded byte mapped
    # to the start of its original character.
    i = data.draw(st.integers(0, len(text)))
    j = data.draw(st.integers(i, len(text)))
    start = len(reference_fold(text[:i]).encode())
    window = reference_fold(text[i:j]).encode()
    original, where = cf.restore(window, start, rec)
    assert original == text[i:j].encode()
    at = 0
    for k, (o, f) in enumerate(zip(text[i:j], reference_fold(text[i:j]))):
        width, there = len(f.encode()), len(text[i:i + k].encode())
        # a changed character's bytes: its original's start; an unchanged one's, byte for byte
        assert where[at:at + width].tolist() == (
            [there] * width if o != f else list(range(there, there + width)))
        at += width
    assert where[len(window)] == len(original)


def test_a_character_cut_by_the_window_is_kept_as_it_is() -> None:
    folded, rec = cf.record("a\u212ab")  # the Kelvin sign: not k's usual original
    assert folded == b"akb" and rec.other.tolist() == [1]
    original, where = cf.restore(folded[:2], 0, rec)
    assert original == "a\u212a".encode() and where.tolist() == [0, 1, 4]
    text = "Aé"
    folded, rec = cf.record(text)
    assert cf.restore(folded[:2], 0, rec)[0] == b"A\xc3"  # é cut: its first byte as it is
