"""The ``anygram`` command line: a thin layer over the Python API that prints JSON.

Every query command opens the index with :meth:`anygram.Engine.open`, turns TEXT (tokenized
with the index's tokenizer) or ``--ids`` into token ids, calls the matching engine method and
prints ``result.to_dict()`` with the query's ``token_ids`` added (``search`` and ``get-doc``
print text unless ``--json``; ``color`` prints ANSI text). Errors a user can cause (bad ids,
missing paths, damaged indexes, ...) print one line ``error: <message>`` on stderr, naming
options as typed (``--text-field``), and exit with status 1; click's own usage errors exit
with status 2. Heavy packages are imported inside the commands, so ``--help`` is quick.

The commands live in one module per concern (``build``, ``queries``, ``fetch``, ``documents``,
``serve``, ``takedown``, ``verify``, ``evaluate``, ``contamination``, ``dedup``) and register
themselves on :func:`main` when imported: the imports below, in this order, are the order of
``main.commands``.
"""

from __future__ import annotations

from ._common import main

# isort: off
from . import build  # noqa: F401
from . import queries  # noqa: F401
from . import fetch  # noqa: F401
from . import documents  # noqa: F401
from . import serve  # noqa: F401
from . import takedown  # noqa: F401
from . import verify  # noqa: F401
from . import evaluate  # noqa: F401
from . import contamination  # noqa: F401
from . import dedup  # noqa: F401
# isort: on

__all__ = ["main"]
