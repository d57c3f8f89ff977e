"""The one place that decides how kernels are compiled.

``cache=True``: compiled code is kept on disk, so a new process loads instead of compiling.
``nogil=True``: kernels release the GIL, so a thread pool can run queries in parallel.
No ``fastmath``: the kernels are integer code.

A kernel is compiled the first time it is called (each command compiles only the kernels it
calls), once per machine: later processes load it from the cache. The first compile of a
process is announced on the ``anygram`` logger (the CLI prints it on stderr), since it takes
seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from numba import njit, types
from numba.core import event

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("anygram")

COMPILING = "compiling query kernels (first run only: later runs load them from the cache)"


def _plain_argument_types(dispatcher: Any) -> Any:
    """Make a kernel called from another kernel compile for its arguments' plain types.

    numba types a constant argument as a literal: ``find_range(ds, sa, k, q, 0, n)`` would
    compile a version of ``find_range`` for ``lo == 0`` beside the one for an int64 ``lo``,
    each a fraction of a second of a cold start, for no speed-up in these integer loops.
    """
    typed = dispatcher.get_call_template

    def get_call_template(args: tuple[Any, ...], kws: dict[str, Any]) -> Any:
        return typed(tuple(types.unliteral(a) for a in args),
                     {k: types.unliteral(v) for k, v in kws.items()})

    dispatcher.get_call_template = get_call_template
    return dispatcher


def kernel(fn: F) -> F:
    """Decorator for a kernel."""
    return _plain_argument_types(njit(cache=True, nogil=True)(fn))


inline_kernel = njit(cache=True, nogil=True, inline="always")
"""Decorator for a small helper that numba inlines into the kernels calling it."""


class _FirstCompile(event.Listener):
    """Logs :data:`COMPILING` when the process first compiles a kernel: a cache miss (loading
    from the cache fires no ``numba:compile`` event)."""

    announced = False

    def on_start(self, ev: Any) -> None:
        dispatcher = (ev.data or {}).get("dispatcher")
        module = getattr(getattr(dispatcher, "py_func", None), "__module__", None) or ""
        if not self.announced and module.startswith(__name__.rpartition(".")[0]):
            self.announced = True
            log.info(COMPILING)

    def on_end(self, ev: Any) -> None:
        pass


event.register("numba:compile", _FirstCompile())
