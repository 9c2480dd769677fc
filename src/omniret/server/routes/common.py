"""Helpers shared by the routers: the service, body parsing by content type, form → model."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile

from omniret.server.errors import HTTPProblem
from omniret.server.service import Service

M = TypeVar("M", bound=BaseModel)
MAX_FORM_FIELDS = 64


def service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


def body_kind(request: Request) -> str:
    """``json`` or ``multipart``; 415 for anything else."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("application/json", ""):
        return "json"
    if ctype == "multipart/form-data":
        return "multipart"
    raise HTTPProblem(415, f"unsupported content type {ctype[:60]!r}; send application/json or multipart/form-data")


async def json_model(request: Request, model: type[M]) -> M:
    return validate(model, parse_json(await request.body() or b"null", "request body"))


def parse_json(data: str | bytes, what: str) -> Any:
    """``json.loads`` with a 400 naming ``what`` for bad JSON, including nesting too deep to parse."""
    try:
        return json.loads(data)
    except RecursionError:
        raise HTTPProblem(400, f"{what} is nested too deeply to be parsed; a search request needs at most a few "
                               "levels of JSON") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise HTTPProblem(400, f"{what} is not valid JSON ({type(e).__name__})") from None


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise RequestValidationError(e.errors(include_url=False, include_context=False)) from None


async def read_form(request: Request, max_files: int) -> FormData:
    try:
        return await request.form(max_files=max_files, max_fields=MAX_FORM_FIELDS)
    except HTTPProblem:
        raise
    except Exception as e:  # malformed multipart: the parser's own message, no paths in it
        detail = getattr(e, "detail", None) or type(e).__name__
        raise HTTPProblem(400, f"malformed multipart body: {detail}") from None


def form_fields(form: FormData, list_fields: tuple[str, ...], json_fields: tuple[str, ...]) -> dict[str, Any]:
    """Text form fields as a dict for a model: repeatable ``list_fields``, JSON-encoded ``json_fields``."""
    out: dict[str, Any] = {}
    for key in set(form.keys()):
        values = [v for v in form.getlist(key) if not isinstance(v, UploadFile)]
        values = [v for v in values if v != ""]
        if not values:
            continue
        if key in list_fields:
            out[key] = [s for v in values for s in v.split(",") if s] if key == "modality" else values
        elif key in json_fields:
            out[key] = parse_json(values[-1], f"form field {key!r} (JSON, e.g. {{\"k\": \"v\"}})")
        else:
            out[key] = values[-1]
    return out


def uploads(form: FormData, field: str = "file") -> list[UploadFile]:
    return [v for v in form.getlist(field) if isinstance(v, UploadFile)]
