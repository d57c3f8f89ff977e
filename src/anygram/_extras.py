"""Optional packages: each comes with an extra of anygram (``pyproject.toml``), and a feature
that needs a missing one says which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError


def require(module: str, extra: str, needed_for: str) -> ModuleType:
    """Import ``module`` for ``needed_for`` (e.g. "reading Parquet files"), or raise
    :class:`~anygram.errors.MissingDependencyError` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name or ""
        if missing and (module == missing or module.startswith(missing + ".")):
            raise MissingDependencyError(
                f"{needed_for} needs {module.split('.')[0]}, which is not installed: "
                f"pip install 'anygram[{extra}]'") from None
        # Installed but broken (one of its own imports fails): say that, not "missing".
        raise MissingDependencyError(
            f"{needed_for} needs {module}, which cannot be imported ({exc}): reinstall it "
            f"with pip install --force-reinstall 'anygram[{extra}]'") from exc
