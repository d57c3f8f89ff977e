"""The indexes a server answers for: :class:`ServedIndex`, one named engine (and its
infini-gram compat engine, made on first use)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from ..cluster import RayGroups
from ..compat import InfiniGramEngine
from ..engine import Engine
from ..errors import AnygramError


class ServedIndex:
    """One named index: its engine and, made on first use, an infini-gram compat engine."""

    def __init__(self, name: str, engine: Engine) -> None:
        self.name = name
        self.engine = engine
        self._compat: InfiniGramEngine | None = None
        self._compat_lock = threading.Lock()

    @property
    def has_tokenizer(self) -> bool:
        return self.engine.tokenizer is not None

    def token_text(self, token_id: int) -> str | None:
        """One token decoded (None without a tokenizer)."""
        if self.engine.tokenizer is None:
            return None
        try:
            return self.engine.decode([token_id])
        except AnygramError:
            return None

    def token_texts(self, ids: Sequence[int]) -> list[str] | None:
        """Each token decoded on its own (None without a tokenizer)."""
        if self.engine.tokenizer is None:
            return None
        return [self.token_text(t) or "" for t in ids]

    def text(self, ids: Sequence[int]) -> str | None:
        if self.engine.tokenizer is None:
            return None
        try:
            return self.engine.decode(list(ids))
        except AnygramError:
            return None

    def info(self, operations: Sequence[str]) -> dict[str, Any]:
        e = self.engine
        tok = e.tokenizer
        return {"name": self.name, "token_dtype": e.token_dtype, "vocab_size": e.vocab_size,
                "eos_id": e.eos_id, "tokenizer": tok.spec() if tok is not None else None,
                "num_shards": e.num_shards, "num_docs": e.num_docs, "num_tokens": e.num_tokens,
                "operations": list(operations)}

    def refresh(self) -> None:
        """Pick up the takedowns made since the last request (:meth:`Engine.refresh
        <anygram.Engine.refresh>`), in this engine and in the compat engine if it was made.
        Costs a ``stat`` of each index directory's takedown record when none changed; called
        before every request, in its worker thread."""
        self.engine.refresh()
        compat = self._compat
        if compat is not None:
            compat.native.refresh()

    def compat(self) -> InfiniGramEngine:
        """infini-gram's engine API over the same index directories (opened once, lazily)."""
        with self._compat_lock:
            if self._compat is None:
                e = self.engine
                dirs = list(dict.fromkeys(str(s.directory) for s in e.shards))
                id_max = (1 << (8 * e.token_width)) - 1
                eos = e.eos_id if e.eos_id is not None else 0
                # (on a cluster: its own hosts, as the compat engine's vocabulary differs)
                groups = e.groups.fresh() if isinstance(e.groups, RayGroups) else None
                self._compat = InfiniGramEngine(
                    index_dir=dirs, eos_token_id=eos, token_dtype=e.token_dtype,
                    vocab_size=min(max(e.vocab_size, eos + 1), id_max),
                    bow_ids=None if e.tokenizer is None else e.tokenizer.word_start_ids(),
                    groups=groups)
            return self._compat
