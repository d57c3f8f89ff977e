"""Text queries with operators: ``"A AND B OR C"`` -> a CNF of token ids.

Syntax (infini-gram's): the query is split on ``AND`` first, then each part on ``OR``, so
**OR binds tighter**: ``"a AND b OR c"`` is ``a ∧ (b ∨ c)``. An operator is the upper-case
word surrounded by whitespace (``" AND "``; several spaces, tabs or newlines work too);
anything else is text: ``"rock and roll"``, ``"ANDROID"`` and ``"A AND"`` (no space after)
are plain terms. Whitespace around each term is dropped; an empty term (``"a AND  AND b"``,
``"a OR "``) is an error. A query without operators is one clause of one phrase. There are
no parentheses or escapes: to search for the literal text ``" AND "`` pass a nested list,
``[["rock AND roll"]]``.

Leading spaces. In a subword vocabulary a word in the middle of a text carries its leading
space (GPT-2/tiktoken ``"Ġnatural"``, SentencePiece ``"▁natural"``), so ``"natural"``
tokenized on its own is not how it appears mid-document. Each term is therefore encoded in
its *mid-text form* by default; see :func:`term_encoder`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ..errors import InvalidQueryError

_AND = re.compile(r"\s+AND\s+")
_OR = re.compile(r"\s+OR\s+")
# Context put before a term to see how the tokenizer encodes it after a space, mid-text. A
# one-letter word: every supported pre-tokenizer splits it from the following " term".
_PROBE = "a"


@runtime_checkable
class _Encoder(Protocol):
    """What a :class:`anygram.tokenization.Tokenizer` offers here."""

    @property
    def kind(self) -> str: ...

    def encode(self, text: str) -> list[int]: ...


def has_operators(text: str) -> bool:
    """Whether ``text`` contains an ``AND`` or ``OR`` operator (whitespace on both sides)."""
    return bool(_AND.search(text) or _OR.search(text))


def split_query(text: str) -> list[list[str]]:
    """The syntax alone: clauses (AND) of terms (OR), each term stripped.

    >>> split_query("natural language AND model OR models")
    [['natural language'], ['model', 'models']]

    Raises:
        InvalidQueryError: ``text`` is not a str, or a term is empty.
    """
    if not isinstance(text, str):
        raise InvalidQueryError(f"a text query must be a str, not {type(text).__name__}")
    clauses = []
    for i, part in enumerate(_AND.split(text)):
        terms = [t.strip() for t in _OR.split(part)]
        for j, t in enumerate(terms):
            if not t:
                raise InvalidQueryError(
                    f"empty term (clause {i + 1}, term {j + 1}) in the query {text!r}: every "
                    "AND/OR needs text on both sides")
        clauses.append(terms)
    return clauses


def term_encoder(tokenizer: _Encoder | Callable[[str], list[int]],
                 leading_space: bool | None = None) -> Callable[[str], list[int]]:
    """A function that encodes one (already stripped) term.

    Args:
        tokenizer: an :class:`anygram.tokenization.Tokenizer` (its ``kind`` picks the
            default), or any ``str -> list[int]`` function (then the default is "as is").
        leading_space: ``False``: encode the term as is. ``True``: encode ``" " + term``.
            ``None`` (default): by tokenizer kind:

            - ``bytes``: as is. Byte queries match inside words anyway, so ``"natural"``
              finds every occurrence, mid-text ones included.
            - ``hf``, ``tiktoken``, ``sentencepiece``: the *mid-text form*, i.e. the tokens
              the term gets after a space in running text: ``encode("a " + term)`` minus the
              tokens of ``encode("a")``. For GPT-2-style byte-level BPE and tiktoken this
              equals ``encode(" " + term)``; for SentencePiece (and HF ``Metaspace`` /
              Llama-style ``tokenizer.json``), which add the ``"▁"`` themselves, it equals
              ``encode(term)``, where prepending a space would add a stray ``"▁"`` token.
              If the context's tokens are not a prefix of the result (a tokenizer that
              merges across the space), it falls back to ``encode(" " + term)`` for
              hf/tiktoken and ``encode(term)`` for sentencepiece.

            A term in mid-text form does not match at the very start of a document (no space
            before it there), as in infini-gram.
    """
    encode: Callable[[str], list[int]]
    kind: str | None
    if isinstance(tokenizer, _Encoder):
        encode, kind = tokenizer.encode, tokenizer.kind
    elif callable(tokenizer):
        encode, kind = tokenizer, None
    else:
        raise InvalidQueryError(f"tokenizer must be a Tokenizer or a function, not "
                                f"{type(tokenizer).__name__}")
    if leading_space is not None and not isinstance(leading_space, bool):
        raise InvalidQueryError(f"leading_space must be True, False or None, not "
                                f"{leading_space!r}")
    if leading_space is True:
        return lambda term: encode(" " + term)
    if leading_space is False or kind in (None, "bytes"):
        return encode
    context = encode(_PROBE)
    fallback_space = kind != "sentencepiece"

    def mid_text(term: str) -> list[int]:
        ids = encode(_PROBE + " " + term)
        if ids[:len(context)] == context and len(ids) > len(context):
            return ids[len(context):]
        return encode(" " + term if fallback_space else term)

    return mid_text


def parse_query(text: str, tokenizer: _Encoder | Callable[[str], list[int]], *,
                leading_space: bool | None = None) -> list[list[list[int]]]:
    """Parse ``"A AND B OR C"`` into a CNF of token ids: clauses of phrases of ids.

    Each term is encoded with :func:`term_encoder` (``leading_space`` as there).

    >>> parse_query("ab AND c OR d", lambda s: [ord(ch) for ch in s])
    [[[97, 98]], [[99], [100]]]

    Raises:
        InvalidQueryError: an empty term, or a term that encodes to no tokens.
    """
    encode = term_encoder(tokenizer, leading_space)
    out = []
    for terms in split_query(text):
        clause = []
        for t in terms:
            ids = list(encode(t))
            if not ids:
                raise InvalidQueryError(f"the term {t!r} of the query {text!r} encodes to no "
                                        "tokens")
            clause.append(ids)
        out.append(clause)
    return out
