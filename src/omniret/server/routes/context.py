"""``POST /context`` (evidence for a generator, with citations) and ``POST /ask`` (the generated answer).

Thumbnails in citations point at this server's ``/thumbs/{id}``. ``/ask`` sends the context to the
OpenAI-compatible endpoint in ``$OMNIRET_LLM_URL`` (model ``$OMNIRET_LLM_MODEL``); without one it is a 400.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from omniret.server.models import ContextRequest
from omniret.server.routes.common import json_model, service

router = APIRouter(tags=["rag"])
THUMBS = "/thumbs/{id}"
_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": ContextRequest.model_json_schema()}}}}


@router.post("/context", openapi_extra=_BODY, responses={400: {}, 422: {}})
async def context(request: Request) -> dict[str, Any]:
    """Routed, de-duplicated, diversified evidence within a token budget, each piece with its citation."""
    req = await json_model(request, ContextRequest)
    idx = service(request).index
    ctx = await run_in_threadpool(lambda: idx.context(req.question, thumbnail_url=THUMBS, **req.options()))
    return dict(ctx.to_dict())


@router.post("/ask", openapi_extra=_BODY, responses={400: {}, 422: {}, 502: {}})
async def ask(request: Request) -> dict[str, Any]:
    """The context sent to the configured generator; its answer, the source numbers it cites and the context."""
    req = await json_model(request, ContextRequest)
    idx = service(request).index
    answer = await run_in_threadpool(lambda: idx.ask(req.question, thumbnail_url=THUMBS, **req.options()))
    return dict(answer.to_dict())
