"""Tokenizer adapters: one interface over bytes, HF ``tokenizers``, tiktoken and sentencepiece.

An index stores token ids; to turn query text into ids the engine must tokenize exactly as the
corpus was tokenized at build time. Every adapter therefore

* encodes *without* adding BOS/EOS/special tokens (the index adds its own document separators),
* decodes leniently (ids cut inside a multi-byte character give U+FFFD, never an error),
* describes itself with :meth:`Tokenizer.spec`, a JSON-safe dict that the index manifest stores and
  :func:`load_tokenizer` reads back, including the SHA-256 of the tokenizer file so that a changed
  file is detected instead of silently producing different ids,
* pickles by re-loading from its file, so it can be sent to multiprocessing workers.

Supported tokenizers (the ``kind`` of each adapter):

``"bytes"``
    UTF-8 bytes as ids 0..254 (0xFF is reserved as the document separator of a u8 index).
``"hf"``
    a Hugging Face ``tokenizer.json`` (any file ending in ``.json``).
``"tiktoken"``
    a ``.tiktoken`` BPE rank file (e.g. ``cl100k_base.tiktoken``), loaded offline.
``"sentencepiece"``
    a sentencepiece ``.model`` file.
"""

from __future__ import annotations

import base64
import binascii
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from .errors import TokenizerError, TokenOutOfRangeError
from .format import sha256_file

__all__ = [
    "Tokenizer",
    "ByteTokenizer",
    "HFTokenizer",
    "TiktokenTokenizer",
    "SentencePieceTokenizer",
    "load_tokenizer",
    "token_width_for",
    "SUPPORTED_TOKENIZERS_HINT",
]

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

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; no BOS/EOS or other special tokens are added."""

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """``[self.encode(t) for t in texts]``; adapters override this with a faster batch call."""
        return [self.encode(text) for text in texts]

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``; bytes that are not valid UTF-8 become U+FFFD instead of raising.

        Raises:
            TokenOutOfRangeError: an id is negative or larger than :attr:`max_id`.
        """

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
        # numpy arrays (index slices) convert much faster through tolist() than element by element.
        tolist = getattr(ids, "tolist", None)
        id_list = [int(i) for i in (tolist() if callable(tolist) else ids)]
        if id_list:
            lo, hi = min(id_list), max(id_list)
            if lo < 0 or hi > self.max_id:
                bad = lo if lo < 0 else hi
                raise TokenOutOfRangeError(
                    f"token id {bad} is outside this {self.kind} tokenizer's range "
                    f"0..{self.max_id}; "
                    "check that the ids come from the same tokenizer"
                )
        return id_list

    def __repr__(self) -> str:
        spec = self.spec()
        return (
            f"<{type(self).__name__} file={spec['file']!r} "
            f"max_id={self.max_id} eos_id={self.eos_id}>"
        )


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes as token ids 0..254.

    ``max_id`` is 254 because byte 0xFF is the document separator of a one-byte index; valid UTF-8
    never contains 0xFF, so no text is lost.
    """

    kind: ClassVar[str] = "bytes"

    def __init__(self) -> None:
        self.max_id = 0xFF - 1
        self.eos_id = None

    def encode(self, text: str) -> list[int]:
        """The UTF-8 bytes of ``text``.

        Raises:
            TokenizerError: ``text`` contains lone surrogates, which have no UTF-8 encoding.
        """
        try:
            return list(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise TokenizerError(
                f"text cannot be encoded as UTF-8 ({exc.reason} at position {exc.start}); "
                "remove lone surrogate characters from the text"
            ) from exc

    def decode(self, ids: Sequence[int]) -> str:
        """Decode the bytes as UTF-8, replacing invalid sequences with U+FFFD."""
        return bytes(self._check_ids(ids)).decode("utf-8", errors="replace")

    def spec(self) -> dict[str, Any]:
        """``{"kind": "bytes", "file": None, "sha256": None}``."""
        return {"kind": self.kind, "file": None, "sha256": None}

    def files(self) -> list[Path]:
        """No files: the byte tokenizer is built in."""
        return []

    def __reduce__(self) -> tuple[Any, ...]:
        return (ByteTokenizer, ())


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

    def encode(self, text: str) -> list[int]:
        """Token ids without the post-processor's special tokens."""
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Encode with the library's multithreaded batch encoder."""
        return [list(enc.ids) for enc in self._tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        """Decode keeping special tokens; the HF decoders already replace invalid UTF-8 with U+FFFD.

        Ids inside ``0..max_id`` that the vocabulary does not define (gaps) are skipped by
        the library.
        """
        return str(self._tok.decode(self._check_ids(ids), skip_special_tokens=False))


# Split patterns and special tokens of OpenAI's encodings, copied from tiktoken_ext.openai_public:
# the constructor functions there download the rank files, so they cannot be called offline.
_R50K_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
)
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|"""
    r"""\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_ENDOFTEXT = "<|endoftext|>"
_O200K_SPECIALS: dict[str, int] = {_ENDOFTEXT: 199999, "<|endofprompt|>": 200018}
_TIKTOKEN_PRESETS: dict[str, tuple[str, dict[str, int]]] = {
    "gpt2": (_R50K_PATTERN, {_ENDOFTEXT: 50256}),
    "r50k_base": (_R50K_PATTERN, {_ENDOFTEXT: 50256}),
    "p50k_base": (_R50K_PATTERN, {_ENDOFTEXT: 50256}),
    "p50k_edit": (
        _R50K_PATTERN,
        {
            _ENDOFTEXT: 50256,
            "<|fim_prefix|>": 50281,
            "<|fim_middle|>": 50282,
            "<|fim_suffix|>": 50283,
        },
    ),
    "cl100k_base": (
        _CL100K_PATTERN,
        {
            _ENDOFTEXT: 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
    "o200k_base": (_O200K_PATTERN, _O200K_SPECIALS),
    "o200k_harmony": (
        _O200K_PATTERN,
        {
            **_O200K_SPECIALS,
            "<|startoftext|>": 199998,
            "<|reserved_200000|>": 200000,
            "<|reserved_200001|>": 200001,
            "<|return|>": 200002,
            "<|constrain|>": 200003,
            "<|reserved_200004|>": 200004,
            "<|channel|>": 200005,
            "<|start|>": 200006,
            "<|end|>": 200007,
            "<|message|>": 200008,
            "<|reserved_200009|>": 200009,
            "<|reserved_200010|>": 200010,
            "<|reserved_200011|>": 200011,
            "<|call|>": 200012,
            **{f"<|reserved_{i}|>": i for i in range(200013, 201088)},
        },
    ),
}


def _read_tiktoken_ranks(path: Path) -> dict[bytes, int]:
    """Parse a ``.tiktoken`` rank file (``<base64 token> <rank>`` per line).

    Same format as ``tiktoken.load.load_tiktoken_bpe``, parsed here because that function caches
    local files in a temp directory keyed by *path*: after the file changes it would keep returning
    the old ranks, defeating the sha256 check.
    """
    ranks: dict[bytes, int] = {}
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                token_b64, rank = line.split()
                ranks[base64.b64decode(token_b64, validate=True)] = int(rank)
            except (ValueError, binascii.Error) as exc:
                raise TokenizerError(
                    f"line {lineno} of {str(path)!r} is not '<base64 token> <rank>' ({exc}); "
                    "a .tiktoken file must be a tiktoken BPE rank file"
                ) from exc
    return ranks


class TiktokenTokenizer(_FileTokenizer):
    """A tiktoken BPE built offline from a local ``.tiktoken`` rank file.

    The split pattern and special tokens come from the OpenAI encoding named by ``encoding``
    (default: the file stem, e.g. ``cl100k_base.tiktoken``). For other names the cl100k pattern and
    no special tokens are used; ``pattern`` and ``special_tokens`` override either.
    """

    kind: ClassVar[str] = "tiktoken"
    #: Default of ``encoding``: pick the preset from the file stem. ``None`` means "no preset".
    FROM_STEM: ClassVar[str] = "<from file stem>"

    def __init__(
        self,
        path: Path,
        *,
        expected_sha256: str | None = None,
        encoding: str | None = FROM_STEM,
        pattern: str | None = None,
        special_tokens: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(path, expected_sha256=expected_sha256)
        import tiktoken

        if encoding == TiktokenTokenizer.FROM_STEM:
            encoding = self.path.stem if self.path.stem in _TIKTOKEN_PRESETS else None
        if encoding is not None and encoding not in _TIKTOKEN_PRESETS:
            raise TokenizerError(
                f"unknown tiktoken encoding {encoding!r}; use one of {sorted(_TIKTOKEN_PRESETS)} "
                'or give "pattern" and "special_tokens" explicitly'
            )
        if pattern is not None and not isinstance(pattern, str):
            raise TokenizerError(
                f'"pattern" of a tiktoken spec must be a regex string, got {pattern!r}'
            )
        if special_tokens is not None and not (
            isinstance(special_tokens, Mapping)
            and all(
                isinstance(k, str) and isinstance(v, int) and v >= 0
                for k, v in special_tokens.items()
            )
        ):
            raise TokenizerError(
                '"special_tokens" of a tiktoken spec must map token strings to non-negative '
                f"ids, got {special_tokens!r}"
            )
        preset_pattern, preset_specials = _TIKTOKEN_PRESETS.get(
            encoding or "", (_CL100K_PATTERN, {})
        )
        self._encoding_name = encoding
        self._pattern_override = pattern
        self._specials_override = dict(special_tokens) if special_tokens is not None else None
        pat_str = pattern if pattern is not None else preset_pattern
        specials = (
            self._specials_override
            if self._specials_override is not None
            else dict(preset_specials)
        )

        ranks = _read_tiktoken_ranks(self.path)
        # The BPE needs every single byte as a token or encoding arbitrary text panics in Rust
        # (a BaseException that callers would not expect); reject such files up front.
        missing = [b for b in range(256) if bytes([b]) not in ranks]
        if missing:
            raise TokenizerError(
                f"{str(self.path)!r} lacks {len(missing)} of the 256 single-byte tokens "
                f"(e.g. byte {missing[0]}); a .tiktoken file must be a complete tiktoken "
                "BPE rank file"
            )
        clash = set(ranks.values()) & set(specials.values())
        if clash:
            raise TokenizerError(
                f"special token ids {sorted(clash)[:5]} of {str(self.path)!r} collide "
                "with BPE ranks; "
                'pass the right "encoding" or "special_tokens" for this file'
            )
        try:
            self._enc = tiktoken.Encoding(
                f"anygram:{self.path.name}",
                pat_str=pat_str,
                mergeable_ranks=ranks,
                special_tokens=specials,
            )
        except Exception as exc:  # a bad regex or inconsistent ranks
            raise self._load_failed(exc, "a tiktoken BPE rank file") from exc
        self.max_id = int(self._enc.max_token_value)
        self.eos_id = specials.get(_ENDOFTEXT)

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"encoding": self._encoding_name}
        # Without a preset the default pattern is stored explicitly so the manifest does not
        # depend on this module's default.
        if self._pattern_override is not None or self._encoding_name is None:
            options["pattern"] = self._enc._pat_str
        if self._specials_override is not None:
            options["special_tokens"] = dict(self._specials_override)
        return options

    def encode(self, text: str) -> list[int]:
        """Token ids; special-token text is encoded as ordinary text (``disallowed_special=()``)."""
        return list(self._enc.encode_ordinary(text))

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Encode with tiktoken's threaded batch encoder."""
        return [list(ids) for ids in self._enc.encode_ordinary_batch(texts)]

    def decode(self, ids: Sequence[int]) -> str:
        """Decode to bytes, then UTF-8 with U+FFFD for sequences cut inside a character."""
        id_list = self._check_ids(ids)
        try:
            data = self._enc.decode_bytes(id_list)
        except KeyError as exc:
            # Ids in the gaps between BPE ranks and special tokens (e.g. 100261..100275 in cl100k).
            raise TokenOutOfRangeError(
                f"{exc.args[0] if exc.args else exc}; this tiktoken vocabulary has no such id, "
                "check that the ids come from the same tokenizer"
            ) from exc
        return data.decode("utf-8", errors="replace")


class SentencePieceTokenizer(_FileTokenizer):
    """A sentencepiece model loaded from a ``.model`` file."""

    kind: ClassVar[str] = "sentencepiece"

    def __init__(self, path: Path, *, expected_sha256: str | None = None) -> None:
        super().__init__(path, expected_sha256=expected_sha256)
        import sentencepiece

        try:
            self._sp = sentencepiece.SentencePieceProcessor(model_file=str(self.path))
        except Exception as exc:  # OSError / RuntimeError from the C++ parser
            raise self._load_failed(exc, "a sentencepiece model") from exc
        self.max_id = int(self._sp.GetPieceSize()) - 1
        eos = int(self._sp.eos_id())
        self.eos_id = eos if eos >= 0 else None

    def encode(self, text: str) -> list[int]:
        """Token ids without BOS/EOS (explicitly off, whatever the model's defaults)."""
        return list(self._sp.encode(text, out_type=int, add_bos=False, add_eos=False))

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Encode a list in one call (sentencepiece parallelizes lists internally)."""
        return [
            list(ids) for ids in self._sp.encode(texts, out_type=int, add_bos=False, add_eos=False)
        ]

    def decode(self, ids: Sequence[int]) -> str:
        """Decode; byte-fallback pieces cut inside a character become U+FFFD in the library."""
        return str(self._sp.DecodeIds(self._check_ids(ids)))


#: tokenizer kind -> (adapter class, option keys a spec dict may carry besides kind/file/sha256)
_KINDS: dict[str, tuple[type[_FileTokenizer], frozenset[str]]] = {
    "hf": (HFTokenizer, frozenset()),
    "tiktoken": (TiktokenTokenizer, frozenset({"encoding", "pattern", "special_tokens"})),
    "sentencepiece": (SentencePieceTokenizer, frozenset()),
}


def _kind_for_path(path: Path) -> str:
    """Tokenizer kind from a file extension."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "hf"
    if suffix == ".tiktoken":
        return "tiktoken"
    if suffix == ".model":
        return "sentencepiece"
    if not path.exists():
        raise TokenizerError(
            f"tokenizer file {str(path)!r} does not exist; check the path "
            f"({SUPPORTED_TOKENIZERS_HINT})"
        )
    if path.is_dir():
        found = sorted(
            p.name
            for p in path.iterdir()
            if p.suffix.lower() in (".json", ".tiktoken", ".model") and p.is_file()
        )
        hint = f" (it contains {', '.join(found)})" if found else ""
        raise TokenizerError(
            f"{str(path)!r} is a directory; pass the tokenizer file inside it{hint}"
        )
    raise TokenizerError(
        f"cannot tell the tokenizer kind of {str(path)!r} from its extension; "
        f"{SUPPORTED_TOKENIZERS_HINT}"
    )


def _load_from_spec(spec: Mapping[str, Any], base_dir: Path | None) -> Tokenizer:
    """Build an adapter from a manifest dict as written by :meth:`Tokenizer.spec`."""
    kind = spec.get("kind")
    if kind == "bytes":
        return ByteTokenizer()
    if kind not in _KINDS:
        raise TokenizerError(
            f"unknown tokenizer kind {kind!r} in spec; use one of {['bytes', *_KINDS]} "
            f"({SUPPORTED_TOKENIZERS_HINT})"
        )
    cls, option_keys = _KINDS[kind]
    unknown = set(spec) - {"kind", "file", "sha256"} - option_keys
    if unknown:
        raise TokenizerError(
            f"unknown option(s) {sorted(unknown)} in {kind} tokenizer spec; "
            f"allowed options are {sorted(option_keys) or 'none'}"
        )
    file = spec.get("file")
    if not isinstance(file, str) or not file:
        raise TokenizerError(
            f'a {kind} tokenizer spec needs a "file" entry naming the tokenizer file; got {file!r}'
        )
    path = Path(file).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    sha256 = spec.get("sha256")
    if sha256 is not None and not isinstance(sha256, str):
        raise TokenizerError(f'"sha256" in a tokenizer spec must be a hex string, got {sha256!r}')
    options = {key: spec[key] for key in option_keys if key in spec}
    return cls(path, expected_sha256=sha256, **options)


def load_tokenizer(
    spec: str | Path | Mapping[str, Any], *, base_dir: str | Path | None = None
) -> Tokenizer:
    """Load a tokenizer adapter.

    Args:
        spec: ``"bytes"``; a path to ``tokenizer.json`` (HF), ``*.tiktoken`` or a sentencepiece
            ``*.model``; or a dict as returned by :meth:`Tokenizer.spec` (e.g. read from an index
            manifest).
        base_dir: directory that relative paths (including a spec dict's ``"file"``) are resolved
            against; default is the current directory.

    Raises:
        TokenizerError: the file is missing, has an unsupported extension, cannot be parsed, or
            its SHA-256 differs from the one recorded in a spec dict.
    """
    base = Path(base_dir).expanduser() if base_dir is not None else None
    if isinstance(spec, Mapping):
        return _load_from_spec(spec, base)
    if isinstance(spec, str) and spec == "bytes":
        return ByteTokenizer()
    if not isinstance(spec, (str, os.PathLike)):
        raise TokenizerError(
            f"cannot load a tokenizer from a {type(spec).__name__}; "
            'pass a path, "bytes" or a spec dict '
            f"({SUPPORTED_TOKENIZERS_HINT})"
        )
    path = Path(spec).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    kind = _kind_for_path(path)
    return _KINDS[kind][0](path)
