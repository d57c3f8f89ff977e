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

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import TokenizerError
from .base import SUPPORTED_TOKENIZERS_HINT, Tokenizer, token_width_for
from .base import _FileTokenizer as _FileTokenizer
from .base import _rebuild as _rebuild
from .byte_level import ByteTokenizer
from .hf import HFTokenizer
from .sentencepiece_model import SentencePieceTokenizer
from .tiktoken_file import TiktokenTokenizer

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
