"""The built-in byte-level tokenizer (``kind="bytes"``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from .base import Tokenizer


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes as token ids 0..254.

    ``max_id`` is 254 because byte 0xFF is the document separator of a one-byte index; valid UTF-8
    never contains 0xFF, so no text is lost.
    """

    kind: ClassVar[str] = "bytes"

    def __init__(self) -> None:
        self.max_id = 0xFF - 1
        self.eos_id = None

    def _encode(self, text: str) -> list[int]:
        """The UTF-8 bytes of ``text``."""
        return list(text.encode("utf-8"))

    def _starts_word(self, token_id: int) -> bool:
        """ASCII whitespace bytes."""
        return bytes([token_id]).isspace()

    def _piece(self, token_id: int) -> str:
        """The character whose code point is the byte (infini-gram's byte-level pieces)."""
        return chr(token_id)

    def _decode_list(self, ids: list[int]) -> str:
        """Decode the bytes as UTF-8, replacing invalid sequences with U+FFFD."""
        return bytes(ids).decode("utf-8", errors="replace")

    def spec(self) -> dict[str, Any]:
        """``{"kind": "bytes", "file": None, "sha256": None}``."""
        return {"kind": self.kind, "file": None, "sha256": None}

    def files(self) -> list[Path]:
        """No files: the byte tokenizer is built in."""
        return []

    def __reduce__(self) -> tuple[Any, ...]:
        return (ByteTokenizer, ())
