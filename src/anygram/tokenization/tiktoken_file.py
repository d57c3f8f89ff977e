"""Adapter for tiktoken ``.tiktoken`` BPE rank files, loaded offline (``kind="tiktoken"``).

Named ``tiktoken_file`` so that it does not shadow the ``tiktoken`` library.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from .._extras import require
from ..errors import TokenizerError, TokenOutOfRangeError
from .base import _FileTokenizer

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


def _byte_chars() -> list[str]:
    """GPT-2's printable stand-in of each byte in byte-level pieces: printable Latin-1 bytes
    stand for themselves, the others (space, control bytes, ...) for ``chr(256 + n)`` in byte
    order, so a space is ``"Ġ"`` and a newline ``"Ċ"``."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


_BYTE_CHARS = _byte_chars()


_RANK_FILE = re.compile(rb"(?:[A-Za-z0-9+/]*={0,2} [0-9]+[ \t\r]*\n|[ \t\r]*\n)*"
                        rb"(?:[A-Za-z0-9+/]*={0,2} [0-9]+[ \t\r]*)?")


def _read_tiktoken_ranks(path: Path) -> dict[bytes, int]:
    """Parse a ``.tiktoken`` rank file (``<base64 token> <rank>`` per line).

    Same format as ``tiktoken.load.load_tiktoken_bpe``, parsed here because that function caches
    local files in a temp directory keyed by *path*: after the file changes it would keep returning
    the old ranks, defeating the sha256 check. A well-formed file is parsed in one pass (a
    fraction of the time of line by line, on every query command); otherwise line by line, to
    name the first bad line.
    """
    data = path.read_bytes()
    if _RANK_FILE.fullmatch(data):
        try:
            fields = data.split()
            return dict(zip(map(binascii.a2b_base64, fields[0::2]), map(int, fields[1::2]),
                            strict=True))
        except (ValueError, binascii.Error):
            pass  # e.g. bad base64 padding: the line by line parse below says where
    ranks: dict[bytes, int] = {}
    for lineno, line in enumerate(data.splitlines(), start=1):
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
        tiktoken = require("tiktoken", "tiktoken", f"the tokenizer {self.path.name}")

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

    def _encode(self, text: str) -> list[int]:
        """Token ids; special-token text is encoded as ordinary text (``disallowed_special=()``)."""
        return list(self._enc.encode_ordinary(text))

    def _encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Encode with tiktoken's threaded batch encoder."""
        return [list(ids) for ids in self._enc.encode_ordinary_batch(texts)]

    def _piece(self, token_id: int) -> str | None:
        """The token's bytes as GPT-2's byte-level pieces show them (``b" the"``: ``"Ġthe"``)."""
        try:
            data = self._enc.decode_single_token_bytes(token_id)
        except KeyError:
            return None
        return "".join(_BYTE_CHARS[b] for b in data)

    def _starts_word(self, token_id: int) -> bool:
        """From the token's bytes (ids in the gaps of the vocabulary are not words)."""
        try:
            return self._enc.decode_single_token_bytes(token_id)[:1].isspace()
        except KeyError:
            return False

    def _decode_list(self, ids: list[int]) -> str:
        """Decode to bytes, then UTF-8 with U+FFFD for sequences cut inside a character."""
        try:
            data = self._enc.decode_bytes(ids)
        except KeyError as exc:
            # Ids in the gaps between BPE ranks and special tokens (e.g. 100261..100275 in cl100k).
            raise TokenOutOfRangeError(
                f"{exc.args[0] if exc.args else exc}; this tiktoken vocabulary has no such id, "
                "check that the ids come from the same tokenizer"
            ) from exc
        return data.decode("utf-8", errors="replace")
