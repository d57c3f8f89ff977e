"""Optional packages some tests need, imported or skipped with a reason that says how to get them.

``pip install -e '.[dev]'`` (README's test command) has all but two: the ``infini-gram``
reference, which has wheels only for CPython 3.11-3.13 on Linux x86_64 and macOS arm64, and
torch + transformers (the ``lm`` extra, several GB on Linux), which ``.ci/run`` adds.
"""

from __future__ import annotations

from types import ModuleType

import pytest


def infini_gram_engine() -> ModuleType:
    """``infini_gram.engine``, or skip: the reference package is not installed here."""
    return pytest.importorskip(
        "infini_gram.engine",
        reason="needs the infini-gram reference package (infini-gram==2.6.0, in the dev extra "
               "where it has wheels: CPython 3.11-3.13 on Linux x86_64 and macOS arm64)")


def torch_and_transformers() -> tuple[ModuleType, ModuleType]:
    """``(torch, transformers)``, or skip: the ``lm`` extra is not installed."""
    reason = ("needs torch and transformers: pip install -e '.[dev,lm]' (with torch==2.13.0 "
              "for the CPU build, as .ci/run does)")
    return (pytest.importorskip("torch", reason=reason),
            pytest.importorskip("transformers", reason=reason))


def pandas() -> ModuleType:
    """``pandas``, or skip: the ``pandas`` extra is not installed."""
    return pytest.importorskip("pandas", reason="needs pandas: pip install -e '.[dev]' (the "
                                                "pandas extra)")
