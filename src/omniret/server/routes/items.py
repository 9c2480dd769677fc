"""``GET /items/{id}``, ``POST /items`` (upload, or server-side paths under the roots), ``DELETE /items/{id}``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from omniret.server.errors import HTTPProblem
from omniret.server.models import AddPathsRequest, AddResponse, DeleteResponse, ItemOut
from omniret.server.routes.common import body_kind, json_model, read_form, service, uploads
from omniret.server.security import Credentials, check_token, client_filename, resolve_under_roots

router = APIRouter(tags=["items"])
MAX_UPLOAD_FILES = 32

_ADD_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": AddPathsRequest.model_json_schema()},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
}}}


@router.get("/items/{item_id}", response_model=ItemOut, responses={404: {}})
def get_item(item_id: str, request: Request) -> ItemOut:
    """One indexed item by id."""
    svc = service(request)
    it = svc.get(item_id)
    return ItemOut.of(it, 0.0, uri=svc.public_uri(it.uri)).model_copy(update={"content_hash": it.content_hash, "mtime": it.mtime})


@router.post("/items", response_model=AddResponse, status_code=201, openapi_extra=_ADD_BODY,
             responses={400: {}, 401: {}, 403: {}, 404: {}, 413: {}, 415: {}})
async def add_items(request: Request, credentials: Credentials) -> Any:
    """Add uploaded files (multipart ``file``, repeatable) or server-side paths (JSON, under ``--root``)."""
    svc = service(request)
    check_token(svc.settings, credentials)  # before a byte of the body is read
    ids: list[str] = []
    if body_kind(request) == "json":
        body = await json_model(request, AddPathsRequest)
        paths = [resolve_under_roots(p, svc.settings.roots) for p in body.paths]
        report = await run_in_threadpool(svc.add, paths, prune=body.prune)
    else:
        files = uploads(await read_form(request, max_files=MAX_UPLOAD_FILES))
        if not files:
            raise HTTPProblem(400, "no file uploaded; send multipart/form-data with one or more 'file' fields")
        received = []
        try:
            for f in files:
                received.append(await run_in_threadpool(svc.receive_upload, f.file, client_filename(f.filename)))
            report, ids = await run_in_threadpool(svc.add_uploads, received)
        finally:
            for r in received:  # placed ones are gone from their temporary name already
                svc.uploads.discard(r)
    out = report.to_dict()
    scrub = request.app.state.scrub
    failed = [{"uri": scrub(f["uri"]), "reason": scrub(f["reason"])} for f in out["failed"] + out["skipped"]]
    return AddResponse(**{k: out[k] for k in ("new", "changed", "unchanged", "removed", "items", "seconds")},
                       failed=failed, ids=ids)


@router.delete("/items/{item_id}", response_model=DeleteResponse, responses={401: {}, 403: {}, 404: {}})
def delete_item(item_id: str, request: Request,
                credentials: Credentials) -> DeleteResponse:
    """Remove an item (a whole file with all its parts, or one part)."""
    svc = service(request)
    check_token(svc.settings, credentials)
    return DeleteResponse(removed=svc.remove(item_id))
