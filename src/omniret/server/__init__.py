"""omniret's HTTP server: a FastAPI app over :class:`omniret.Index` and a static web page.

Build one with :func:`omniret.server.app.create_app`; run it with ``omniret serve``.
Importing this package imports nothing heavy (FastAPI loads with :mod:`omniret.server.app`).
A client of the library: may import ``omniret.index`` and everything below it; never ``cli``.
"""

from __future__ import annotations

from typing import Any


def create_app(*args: Any, **kwargs: Any) -> Any:
    """See :func:`omniret.server.app.create_app`."""
    from omniret.server.app import create_app as _create

    return _create(*args, **kwargs)


__all__ = ["create_app"]
