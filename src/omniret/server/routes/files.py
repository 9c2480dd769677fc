"""``GET /media/{id}`` (the original file, with range requests) and ``GET /thumbs/{id}`` (cached JPEG)."""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from omniret.server.routes.common import service

router = APIRouter(tags=["files"])

#: media are served sandboxed: an HTML or SVG file runs no script in this origin
MEDIA_CSP = "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'"
_TEXTUAL = ("text/", "application/xhtml", "image/svg", "application/javascript", "application/xml")


@router.get("/media/{item_id}", response_class=FileResponse, responses={404: {}, 416: {}})
def media(item_id: str, request: Request) -> FileResponse:
    """The original file of an indexed item (``Range`` requests supported, for audio and video seeking)."""
    path = service(request).media_path(item_id)
    mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
    if mime.startswith(_TEXTUAL):
        mime = "text/plain; charset=utf-8"
    return FileResponse(path, media_type=mime, content_disposition_type="inline",
                        headers={"Content-Security-Policy": MEDIA_CSP, "X-Content-Type-Options": "nosniff",
                                 "Cache-Control": "private, max-age=60"})


@router.get("/thumbs/{item_id}", response_class=FileResponse, responses={404: {}})
def thumb(item_id: str, request: Request) -> FileResponse:
    """A JPEG thumbnail of an image, a document page or a video frame (made once, then cached)."""
    path = service(request).thumbnail(item_id)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})
