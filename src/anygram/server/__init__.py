"""The HTTP API and web page (``anygram serve``): FastAPI over :class:`anygram.Engine`.

>>> from anygram.server import create_app, ServerLimits        # doctest: +SKIP
>>> app = create_app({"wiki": Engine.open("idx/")}, ServerLimits(timeout_s=5))  # doctest: +SKIP
"""

from .app import create_app as create_app
from .limits import ServerLimits as ServerLimits

__all__ = ["create_app", "ServerLimits"]
