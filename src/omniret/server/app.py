"""The FastAPI app factory: :func:`create_app` (an index folder or an open :class:`Index`).

Layers: the library (:class:`omniret.Index`) ← :class:`~omniret.server.service.Service` (locks,
uploads) ← routers of a few lines each. Middleware, outermost first: the Host allow-list (when
configured), metrics, body-size limit, security headers, CORS (only when origins are configured).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from omniret.index import Index, ensure_index_exists
from omniret.server.errors import install_error_handlers
from omniret.server.metrics import Metrics, MetricsMiddleware
from omniret.server.security import (
    BodyLimitMiddleware,
    HostAllowListMiddleware,
    SecurityHeadersMiddleware,
    scrub,
)
from omniret.server.service import Service
from omniret.server.settings import ServerSettings


def static_dir() -> str:
    return str(files("omniret.server").joinpath("static"))


def create_app(index: str | os.PathLike[str] | Index, settings: ServerSettings | None = None) -> FastAPI:
    """An ASGI app serving ``index``. A path is opened here (and closed at shutdown); an open
    :class:`Index` is used as is and left open for its owner to close."""
    settings = settings or ServerSettings()
    if isinstance(index, Index):
        svc = Service(index, settings, owns_index=False)
    else:
        path = os.fspath(index)
        if settings.model is None:
            ensure_index_exists(path)
        svc = Service(Index.open(path, model=settings.model or "auto"), settings, owns_index=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        svc.close()

    app = FastAPI(title="omniret", version=_version(), lifespan=lifespan,
                  description="Zero-shot multimodal retrieval over an omniret index. Write routes need "
                              "'Authorization: Bearer TOKEN'.")
    app.state.service = svc
    app.state.settings = settings
    app.state.scrub = partial(scrub, known=svc.known_paths())
    app.state.metrics = Metrics(lambda: svc.index.store.count())
    install_error_handlers(app)
    _routes(app)
    _middleware(app, settings)
    return app


def _routes(app: FastAPI) -> None:
    from omniret.server.routes import context, items, search, system
    from omniret.server.routes import files as files_routes

    for r in (search.router, context.router, items.router, files_routes.router, system.router):
        app.include_router(r)
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(os.path.join(static_dir(), "index.html"), media_type="text/html")


def _middleware(app: FastAPI, settings: ServerSettings) -> None:
    # added innermost first: Starlette wraps each new middleware around the previous ones
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_credentials=False,
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization", "Content-Type"])

    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    if settings.allowed_hosts:  # outermost: a request for another host name gets no further
        app.add_middleware(HostAllowListMiddleware, allowed=settings.allowed_hosts)


def _version() -> str:
    from omniret.index import omniret_version

    return omniret_version()
