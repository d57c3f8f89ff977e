"""Adapter for Hugging Face ``tokenizers`` ``tokenizer.json`` files (``kind="hf"``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ..errors import TokenizerError
from .base import _FileTokenizer, piece_starts_word

#: Token strings treated as end-of-text in HF vocabularies, in order of preference.
_HF_EOS_CANDIDATES: tuple[str, ...] = ("</s>", "<|endoftext|>", "<eos>", "<|end_of_text|>")


class HFTokenizer(_FileTokenizer):
    """A Hugging Face ``tokenizers`` tokenizer loaded from a ``tokenizer.json`` file."""

    kind: ClassVar[str] = "hf"

    def __init__(self, path: Path, *, expected_sha256: str | None = None) -> None:
        super().__init__(path, expected_sha256=expected_sha256)
        import tokenizers

        try:
            tok = tokenizers.Tokenizer.from_file(str(self.path))
        except Exception as exc:  # the Rust side raises plain Exception subclasses
            raise self._load_failed(exc, "a Hugging Face tokenizer.json") from exc
        # A tokenizer.json may carry truncation/padding settings meant for model inputs; applied
        # here they would silently cut or pad corpus documents.
        tok.no_truncation()
        tok.no_padding()
        self._tok = tok
        vocab = tok.get_vocab(with_added_tokens=True)
        if not vocab:
            raise TokenizerError(
                f"tokenizer {str(self.path)!r} has an empty vocabulary; use a trained tokenizer"
            )
        # Ids can be sparse (added tokens placed past the base vocabulary), so the vocabulary
        # size minus one is not necessarily the largest id.
        self.max_id = max(vocab.values())
        self.eos_id = next((vocab[t] for t in _HF_EOS_CANDIDATES if t in vocab), None)

    def _encode(self, text: str) -> list[int]:
        """Token ids without the post-processor's special tokens."""
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def _encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Encode with the library's multithreaded batch encoder."""
        return [list(enc.ids) for enc in self._tok.encode_batch(texts, add_special_tokens=False)]

    def _piece(self, token_id: int) -> str | None:
        return self._tok.id_to_token(token_id)  # type: ignore[no-any-return]

    def _starts_word(self, token_id: int) -> bool:
        """From the vocabulary piece (``Ġthe``, ``▁the``, ``<0x0A>``, or plain ``" the"``)."""
        return piece_starts_word(self._piece(token_id))

    def _decode_list(self, ids: list[int]) -> str:
        """Decode keeping special tokens; the HF decoders already replace invalid UTF-8 with U+FFFD.

        Ids inside ``0..max_id`` that the vocabulary does not define (gaps) are skipped by
        the library.
        """
        return str(self._tok.decode(ids, skip_special_tokens=False))
