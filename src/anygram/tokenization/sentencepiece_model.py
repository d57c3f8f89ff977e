"""Adapter for sentencepiece ``.model`` files (``kind="sentencepiece"``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from .._extras import require
from .base import _FileTokenizer, piece_starts_word


class SentencePieceTokenizer(_FileTokenizer):
    """A sentencepiece model loaded from a ``.model`` file."""

    kind: ClassVar[str] = "sentencepiece"

    def __init__(self, path: Path, *, expected_sha256: str | None = None) -> None:
        super().__init__(path, expected_sha256=expected_sha256)
        sentencepiece = require("sentencepiece", "sentencepiece",
                                f"the tokenizer {self.path.name}")

        try:
            self._sp = sentencepiece.SentencePieceProcessor(model_file=str(self.path))
        except Exception as exc:  # OSError / RuntimeError from the C++ parser
            raise self._load_failed(exc, "a sentencepiece model") from exc
        self.max_id = int(self._sp.GetPieceSize()) - 1
        eos = int(self._sp.eos_id())
        self.eos_id = eos if eos >= 0 else None

    def _encode(self, text: str) -> list[int]:
        """Token ids without BOS/EOS (explicitly off, whatever the model's defaults)."""
        return list(self._sp.encode(text, out_type=int, add_bos=False, add_eos=False))

    def _encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Encode a list in one call (sentencepiece parallelizes lists internally)."""
        return [
            list(ids) for ids in self._sp.encode(texts, out_type=int, add_bos=False, add_eos=False)
        ]

    def _piece(self, token_id: int) -> str:
        return str(self._sp.IdToPiece(token_id))

    def _starts_word(self, token_id: int) -> bool:
        """From the piece: the meta space ``▁`` or a whitespace byte-fallback piece."""
        return piece_starts_word(self._piece(token_id))

    def _decode_list(self, ids: list[int]) -> str:
        """Decode; byte-fallback pieces cut inside a character become U+FFFD in the library."""
        return str(self._sp.DecodeIds(ids))
