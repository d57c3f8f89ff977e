"""The tokenizer interface shared by all adapters, and the file handling of file-backed ones.

See the package docstring of :mod:`anygram.tokenization` for the contract every adapter follows.
"""

from __future__ import annotations

import operator
import reprlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import numpy as np

from ..errors import InvalidQueryError, TokenizerError, TokenOutOfRangeError
from ..fileio import sha256_file

#: Appended to "cannot load" messages so the user knows what is accepted.
SUPPORTED_TOKENIZERS_HINT = (
    'supported tokenizers are "bytes", a Hugging Face tokenizer.json (*.json), '
    "a tiktoken rank file (*.tiktoken) and a sentencepiece model (*.model)"
)

#: Largest id representable by each token width; the all-ones value of a width is kept free
#: because the index uses it as the document separator.
_WIDTH_LIMITS: tuple[tuple[int, int], ...] = ((1, 0xFF - 1), (2, 0xFFFF - 1), (4, 0xFFFFFFFF - 1))


def token_width_for(max_id: int) -> int:
    """Return the number of bytes (1, 2 or 4) needed to store ids ``0..max_id`` in an index.

    The all-ones value of the chosen width (0xFF, 0xFFFF, 0xFFFFFFFF) is the document separator,
    so it must stay unused: 254 still fits one byte, 255 needs two.

    Raises:
        TokenizerError: ``max_id`` is negative or larger than ``2**32 - 2``.
    """
    if isinstance(max_id, bool) or not isinstance(max_id, int) or max_id < 0:
        raise TokenizerError(
            f"max_id must be a non-negative integer, got {max_id!r}; "
            "pass the largest token id the tokenizer can produce"
        )
    for width, limit in _WIDTH_LIMITS:
        if max_id <= limit:
            return width
    raise TokenizerError(
        f"token id {max_id} does not fit in 4 bytes (the largest usable id is {2**32 - 2}); "
        "use a tokenizer with a smaller vocabulary"
    )


#: Piece strings' markers of a leading space, newline, tab or carriage return: byte-level BPE's
#: remapped bytes (GPT-2 "Ġ", "Ċ", "ĉ", "č") and sentencepiece's meta space "▁".
_WHITESPACE_MARKERS = frozenset("ĠĊĉč▁")
#: sentencepiece / Llama byte-fallback pieces of whitespace bytes.
_WHITESPACE_BYTE_PIECES = frozenset({"<0x20>", "<0x0A>", "<0x09>", "<0x0D>", "<0x0B>", "<0x0C>"})


def piece_starts_word(piece: str | None) -> bool:
    """Whether a vocabulary piece string begins with whitespace (None: an unused id)."""
    if not piece:
        return False
    return piece[0] in _WHITESPACE_MARKERS or piece[0].isspace() or \
        piece in _WHITESPACE_BYTE_PIECES


def _checked_text(text: str) -> str:
    """``text``, refused (TokenizerError) unless it is a str with a UTF-8 form."""
    if not isinstance(text, str):
        raise TokenizerError(f"text to tokenize must be a str, not {type(text).__name__}")
    if not text.isascii():  # O(1) for an ASCII str: only other texts are encoded to check
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise TokenizerError(
                f"text cannot be encoded as UTF-8 ({exc.reason} at position {exc.start}); "
                "remove lone surrogate characters from the text"
            ) from exc
    return text


def _rebuild(
    cls: type[_FileTokenizer], path: str, options: dict[str, Any], sha256: str
) -> Tokenizer:
    """Unpickling hook: re-load an adapter from its file, insisting on the pickled hash."""
    return cls(Path(path), expected_sha256=sha256, **options)


class Tokenizer(ABC):
    """What the engine needs from a tokenizer; see the module docstring for the contract.

    Attributes:
        kind: ``"bytes"``, ``"hf"``, ``"tiktoken"`` or ``"sentencepiece"``.
        max_id: the largest id the tokenizer can ever produce, special tokens included.
        eos_id: the tokenizer's end-of-text id, or ``None`` if it has none.
    """

    kind: ClassVar[str]
    max_id: int
    eos_id: int | None

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; no BOS/EOS or other special tokens are added.

        Raises:
            TokenizerError: ``text`` is not a str, or holds lone surrogates (which have no
                UTF-8 form: every tokenizer refuses them alike).
        """
        return self._encode(_checked_text(text))

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """``[self.encode(t) for t in texts]``, with the adapter's faster batch call."""
        return self._encode_batch([_checked_text(text) for text in texts])

    @abstractmethod
    def _encode(self, text: str) -> list[int]:
        """:meth:`encode` of a text known to be valid Unicode."""

    def _encode_batch(self, texts: list[str]) -> list[list[int]]:
        """:meth:`encode_batch` of valid texts; adapters override it with a batch call."""
        return [self._encode(text) for text in texts]

    def decode(self, ids: Sequence[int], *, checked: bool = True) -> str:
        """Text of ``ids``; bytes that are not valid UTF-8 become U+FFFD instead of raising.

        ``checked=False`` skips the range check: for a ``list`` of ``int`` the caller has
        already checked (e.g. windows of a page checked at once with :meth:`check_range`).

        Raises:
            TokenOutOfRangeError: an id is negative or larger than :attr:`max_id`.
        """
        return self._decode_list(self._check_ids(ids) if checked else ids)  # type: ignore[arg-type]

    @abstractmethod
    def _decode_list(self, ids: list[int]) -> str:
        """:meth:`decode` of a list of ints known to lie in ``0..max_id``."""

    def pieces(self, ids: Sequence[int]) -> list[str]:
        """Each id's piece as the vocabulary spells it: ``"Ġnatural"`` (GPT-2-style byte-level
        BPE and tiktoken, bytes shown as GPT-2 shows them), ``"▁natural"`` (SentencePiece and
        Llama-style ``tokenizer.json``), the byte's character (``chr(id)``) for ``bytes``; ``""``
        for an id the vocabulary does not define. These are the token strings infini-gram's
        API answers (``tokenizer.convert_ids_to_tokens``).

        Raises:
            TokenOutOfRangeError: an id is negative or larger than :attr:`max_id`.
        """
        return [self._piece(i) or "" for i in self._check_ids(ids)]

    @abstractmethod
    def _piece(self, token_id: int) -> str | None:
        """The piece of one id in ``0..max_id`` (None: not in the vocabulary)."""

    def word_start_ids(self) -> np.ndarray:
        """The ids whose token begins with whitespace (a space, tab or newline), ascending.

        These are the tokens that start a word, as ``Engine.attribute(enforce_bow=True)``
        aligns spans to (infini-gram's "bow ids"; GPT-2's ``Ġ`` tokens, Llama's ``▁`` ones).
        Computed once per tokenizer, from each token's own bytes or piece string.
        """
        cached: np.ndarray | None = getattr(self, "_word_starts", None)
        if cached is None:
            cached = np.array([i for i in range(self.max_id + 1) if self._starts_word(i)],
                              dtype=np.int64)
            self._word_starts = cached
        return cached

    @abstractmethod
    def _starts_word(self, token_id: int) -> bool:
        """Whether the token ``token_id`` begins with whitespace (False for an unused id)."""

    def check_range(self, ids: np.ndarray) -> None:
        """Raise TokenOutOfRangeError unless every id of the integer array is in ``0..max_id``."""
        if ids.shape[0]:
            lo, hi = int(ids.min()), int(ids.max())
            if lo < 0 or hi > self.max_id:
                self._out_of_range(lo if lo < 0 else hi)

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """JSON-safe description for an index manifest; :func:`load_tokenizer` accepts it back.

        Always has ``"kind"``, ``"file"`` (basename, or ``None``) and ``"sha256"`` (hex, or
        ``None``), plus any adapter options.
        """

    @abstractmethod
    def files(self) -> list[Path]:
        """Files to copy into an index directory so the index is self-contained."""

    def _check_ids(self, ids: Sequence[int]) -> list[int]:
        """Return ``ids`` as a list of ints, raising if any lies outside ``0..max_id``.

        Checked here because the libraries disagree: some raise their own errors, some silently
        skip unknown ids, and bytes() would raise a bare ValueError.
        """
        if isinstance(ids, np.ndarray) and ids.dtype.kind in "iu" and ids.ndim == 1:
            # Index slices: the range check is vectorised, and tolist() gives Python ints.
            self.check_range(ids)
            return ids.tolist()  # type: ignore[no-any-return]
        if type(ids) is list and all(type(i) is int for i in ids):
            id_list = ids
        else:
            try:  # ints only (numpy's too): not floats, strings or nested lists
                id_list = [operator.index(i) for i in
                           (ids.tolist() if isinstance(ids, np.ndarray) else ids)]
            except TypeError:
                raise InvalidQueryError(f"token ids must be a sequence of ints, not "
                                        f"{reprlib.repr(ids)}") from None
        if id_list:
            lo, hi = min(id_list), max(id_list)
            if lo < 0 or hi > self.max_id:
                self._out_of_range(lo if lo < 0 else hi)
        return id_list

    def _out_of_range(self, bad: int) -> NoReturn:
        """Raise TokenOutOfRangeError for id ``bad``."""
        raise TokenOutOfRangeError(
            f"token id {bad} is outside this {self.kind} tokenizer's range 0..{self.max_id}; "
            "check that the ids come from the same tokenizer"
        )

    def __repr__(self) -> str:
        spec = self.spec()
        return (
            f"<{type(self).__name__} file={spec['file']!r} "
            f"max_id={self.max_id} eos_id={self.eos_id}>"
        )


class _FileTokenizer(Tokenizer):
    """Shared file handling of the adapters backed by a tokenizer file."""

    def __init__(self, path: Path, *, expected_sha256: str | None = None) -> None:
        self.path = path.resolve()
        if not self.path.is_file():
            raise TokenizerError(
                f"tokenizer file {str(path)!r} does not exist or is not a file; "
                f"check the path ({SUPPORTED_TOKENIZERS_HINT})"
            )
        try:
            self.sha256 = sha256_file(self.path)
        except OSError as exc:
            raise TokenizerError(
                f"cannot read tokenizer file {str(path)!r}: {exc}; check its permissions"
            ) from exc
        if expected_sha256 is not None and expected_sha256 != self.sha256:
            raise TokenizerError(
                f"tokenizer file {str(self.path)!r} changed since the index was built "
                f"(sha256 {self.sha256[:12]}..., expected {expected_sha256[:12]}...), so queries "
                "would tokenize differently from the corpus; restore the original file "
                "or rebuild the index"
            )

    def _options(self) -> dict[str, Any]:
        """Constructor keyword options (besides the path) that spec() and pickling must keep."""
        return {}

    def spec(self) -> dict[str, Any]:
        """Kind, file basename, file hash and the adapter's options."""
        return {"kind": self.kind, "file": self.path.name, "sha256": self.sha256, **self._options()}

    def files(self) -> list[Path]:
        """The tokenizer file itself."""
        return [self.path]

    def __reduce__(self) -> tuple[Any, ...]:
        # The wrapped library objects (Rust/C++) do not all pickle, so a worker re-loads the file;
        # passing the hash makes the worker refuse a file that changed after the parent loaded it.
        return (_rebuild, (type(self), str(self.path), self._options(), self.sha256))

    def _load_failed(self, exc: BaseException, what: str) -> TokenizerError:
        """The error raised when the library rejects the file."""
        return TokenizerError(
            f"cannot load {str(self.path)!r} as {what}: {exc}; check that the file is not "
            f"truncated or of another kind ({SUPPORTED_TOKENIZERS_HINT})"
        )
