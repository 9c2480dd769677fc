"""Error responses: one JSON shape, ``{"error": message, "status": code}``, never a traceback.

Library errors (:class:`omniret.errors.OmniretError`) become 4xx with their own message, scrubbed of
server paths; anything else is logged server-side with its traceback and answered with a 500 that
carries only an error id to find it in the log.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from omniret.errors import MediaError, ModelError, OmniretError, QueryError, StoreError

log = logging.getLogger("omniret.server")


class HTTPProblem(HTTPException):
    """An HTTP error with a message meant for the client (already free of server paths)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=message, headers=dict(headers) if headers else None)


def status_for(err: OmniretError) -> int:
    """The HTTP status of a library error."""
    from omniret.server.thumbs import NoThumbnail
    from omniret.tasks.generate import GeneratorError

    if isinstance(err, NoThumbnail):
        return 404
    if isinstance(err, GeneratorError):  # the upstream generator failed
        return 502
    if isinstance(err, StoreError):
        return 503
    if isinstance(err, QueryError | MediaError | ModelError):
        return 400
    return 400


def _body(status: int, message: str) -> dict[str, Any]:
    return {"error": message, "status": status}


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app`` (scrubbing with ``app.state.scrub``)."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return JSONResponse(_body(exc.status_code, message), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors()[:20]:
            where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body",)) or "request"
            problems.append(f"{where}: {e.get('msg', 'invalid')}")
        message = "invalid request: " + "; ".join(problems)
        return JSONResponse(_body(422, request.app.state.scrub(message)), status_code=422)

    @app.exception_handler(OmniretError)
    async def library_error(request: Request, exc: OmniretError) -> JSONResponse:
        status = status_for(exc)
        return JSONResponse(_body(status, request.app.state.scrub(str(exc))), status_code=status)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        return internal_response(request, exc)


def internal_response(request: Request, exc: BaseException) -> JSONResponse:
    """Log ``exc`` with its traceback under a fresh id; answer 500 with the id only."""
    error_id = uuid.uuid4().hex[:12]
    log.error("internal error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc)
    return JSONResponse(_body(500, f"internal server error (id {error_id}; the details are in the server log)"),
                        status_code=500)
