"""``POST /search`` (JSON, or multipart with an image or sound) and ``POST /classify``."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from omniret.server.models import ClassifyRequest, ClassifyResponse, HitOut, SearchRequest, SearchResponse
from omniret.server.routes.common import (
    body_kind,
    form_fields,
    json_model,
    read_form,
    service,
    uploads,
    validate,
)
from omniret.server.security import Credentials, check_token, client_filename

router = APIRouter(tags=["search"])

_MULTIPART = {"type": "object", "properties": {
    "file": {"type": "string", "format": "binary", "description": "query image or sound"},
    **{k: {"type": "string"} for k in ("text", "path_glob", "hubness", "gap", "compose", "hybrid")},
    "k": {"type": "integer", "minimum": 1, "maximum": 1000},
    "modality": {"type": "array", "items": {"type": "string", "enum": ["text", "image", "audio", "video", "document"]}},
    "alpha": {"type": "number"}, "beta": {"type": "number"}, "rollup": {"type": "boolean"},
    "granularity": {"type": "string", "enum": ["item", "parent", "root"]},
    "like": {"type": "array", "items": {"type": "string"}}, "negative": {"type": "array", "items": {"type": "string"}},
}}
_SEARCH_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": SearchRequest.model_json_schema()},
    "multipart/form-data": {"schema": _MULTIPART},
}}}


@router.post("/search", response_model=SearchResponse, openapi_extra=_SEARCH_BODY,
             responses={400: {}, 413: {}, 415: {}, 422: {}})
async def search(request: Request) -> SearchResponse:
    """Search by text, an uploaded image or sound, both (a composed query), or ``like`` item ids."""
    svc, t0 = service(request), time.perf_counter()
    if body_kind(request) == "json":
        req, upload = await json_model(request, SearchRequest), None
        hits = await run_in_threadpool(svc.search, req.text, req.k, req.options())
    else:
        form = await read_form(request, max_files=1)
        req = validate(SearchRequest, form_fields(form, ("modality", "like", "negative"), ("where",)))
        files = uploads(form)
        name = client_filename(files[0].filename) if files else "upload"
        upload, kind = (await run_in_threadpool(svc.save_query_upload, files[0].file, name)) if files else (None, "image")
        try:
            hits = await run_in_threadpool(svc.search, req.text, req.k, req.options(), upload, kind, name)
        finally:
            if upload is not None:
                upload.unlink(missing_ok=True)
    return SearchResponse(hits=[HitOut.of(h, uri=svc.public_uri(h.uri)) for h in hits],
                          took_ms=(time.perf_counter() - t0) * 1000)


@router.post("/classify", response_model=ClassifyResponse, responses={400: {}, 401: {}, 403: {}, 422: {}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": ClassifyRequest.model_json_schema()}}}})
async def classify(request: Request, credentials: Credentials) -> Any:
    """Zero-shot labels for indexed items; ``write: true`` stores them (needs the token)."""
    svc = service(request)
    body = await json_model(request, ClassifyRequest)
    if body.write:
        check_token(svc.settings, credentials)
    return ClassifyResponse(results=await run_in_threadpool(svc.classify, body.labels, body.options()))
