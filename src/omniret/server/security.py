"""Security at the HTTP edge: bearer tokens, body-size limits, path roots, scrubbed messages."""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omniret.server.errors import HTTPProblem
from omniret.server.settings import TOKEN_ENV, ServerSettings

bearer = HTTPBearer(auto_error=False, description="the server's token (--token or $OMNIRET_TOKEN)")


def check_token(settings: ServerSettings, credentials: HTTPAuthorizationCredentials | None) -> None:
    """Raise 403 when writes are disabled, 401 when the bearer token is missing or wrong.

    The comparison is constant-time (:func:`hmac.compare_digest`).
    """
    if settings.token is None:
        raise HTTPProblem(403, f"write routes are disabled on this server; start it with --token TOKEN "
                               f"(or set ${TOKEN_ENV}) and send 'Authorization: Bearer TOKEN'")
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPProblem(401, "this route needs 'Authorization: Bearer TOKEN' with the server's token",
                          headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(credentials.credentials.encode(), settings.token.encode()):
        raise HTTPProblem(401, "wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def settings_of(request: Request) -> ServerSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def resolve_under_roots(path: str, roots: Sequence[str]) -> str:
    """The real path of ``path`` if it lies under one of ``roots`` (after resolving ``..`` and links).

    Raises 403 when no roots are configured or the path escapes them, 404 when it does not exist.
    """
    if not roots:
        raise HTTPProblem(403, "adding server-side paths is disabled; start the server with --root DIR "
                               "(repeatable) to allow paths under DIR, or upload the file instead")
    if not isinstance(path, str) or not path or "\x00" in path:
        raise HTTPProblem(400, "path must be a non-empty string")
    real = os.path.realpath(path if os.path.isabs(path) else os.path.join(roots[0], path))
    if not any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots):
        raise HTTPProblem(403, f"path {os.path.basename(path)!r} is outside the server's allowed roots")
    if not os.path.exists(real):
        raise HTTPProblem(404, f"no file or folder {os.path.basename(path)!r} under the allowed roots")
    return real


_ABS_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s'\"/:,;()<>]+/)+([^\s'\"/:,;()<>]*)")


def scrub(message: str, known: dict[str, str] | None = None) -> str:
    """Remove server paths from a message: known prefixes become their labels, other absolute paths
    become ``…/basename`` (the file name stays, the folders are hidden)."""
    for prefix, label in sorted((known or {}).items(), key=lambda kv: -len(kv[0])):
        if prefix and len(prefix) > 1:
            message = message.replace(prefix, label)
    return _ABS_PATH.sub(lambda m: f"…/{m.group(1)}", message)


class BodyLimitMiddleware:
    """Reject request bodies over ``max_bytes`` with 413, before reading them.

    A declared ``Content-Length`` over the limit is refused at once; a chunked body is counted as
    it streams in and cut off when it passes the limit, so no request holds more than
    ``max_bytes`` (plus one chunk) in memory or on disk.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _send_413(send, self.max_bytes)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_413(send, self.max_bytes)


class _TooLarge(HTTPProblem):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _too_large_message(max_bytes))


def _too_large_message(max_bytes: int) -> str:
    return (f"request body too large: the limit is {max_bytes / 1048576:.1f} MiB "
            f"(start the server with a larger --max-upload-mb to accept more)")


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_413(send: Send, max_bytes: int) -> None:
    await _send_json(send, 413, _too_large_message(max_bytes))


async def _send_json(send: Send, status: int, message: str) -> None:
    """An error response in the server's one shape, sent from middleware (the connection is closed)."""
    import json

    body = json.dumps({"error": message, "status": status}).encode()
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json"),
                                          (b"content-length", str(len(body)).encode()),
                                          (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class HostAllowListMiddleware:
    """Answer only requests whose ``Host`` header is on the allow-list (DNS-rebinding protection).

    A page on ``evil.example`` that re-resolves its name to 127.0.0.1 can make the browser send
    requests here, but with ``Host: evil.example``; those get 400 before any route runs. Entries
    are exact names or addresses, or ``*.domain`` for the domain's subdomains.
    """

    def __init__(self, app: ASGIApp, allowed: Sequence[str]) -> None:
        self.app = app
        self.exact = frozenset(h for h in allowed if not h.startswith("*."))
        self.suffixes = tuple(h[1:] for h in allowed if h.startswith("*."))

    def allows(self, host: str) -> bool:
        return host in self.exact or (bool(host) and host.endswith(self.suffixes) and bool(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope.get("headers", []) if k == b"host"), b"").decode("latin-1")
        host = host_of(raw)
        if self.allows(host):
            await self.app(scope, receive, send)
            return
        shown = host[:80] or "(none)"
        message = (f"Host header {shown!r} is not allowed on this server (DNS-rebinding protection); "
                   f"if clients reach it by that name, start omniret serve with --allow-host {shown}")
        await _send_json(send, 400, message)


def host_of(header: str) -> str:
    """The host name of a ``Host`` header value, normalised: ``[::1]:8000`` → ``::1``, ``Localhost.:80`` →
    ``localhost``."""
    from omniret.server.settings import normalise_host

    header = header.strip()
    if header.startswith("["):
        end = header.find("]")
        return normalise_host(header[: end + 1]) if end > 0 else ""
    return normalise_host(header.rsplit(":", 1)[0] if header.count(":") == 1 else header)


PAGE_CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; "
            "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


class SecurityHeadersMiddleware:
    """``nosniff`` and ``no-referrer`` on every response; a strict CSP on the page and its files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        page = path == "/" or path.startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                if page:
                    extra.append((b"content-security-policy", PAGE_CSP.encode()))
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


MAX_NAME = 120


def client_filename(name: Any) -> str:
    """A safe base name for an uploaded file: no folders, no control or shell-special characters, at
    most :data:`MAX_NAME` characters — a long name is cut in its stem, so it keeps its extension (which
    decides how the file is read)."""
    base = os.path.basename(str(name or "upload").replace("\\", "/")) or "upload"
    safe = re.sub(r"[^\w.\- ]", "_", base).strip(" .") or "upload"
    if len(safe) <= MAX_NAME:
        return safe
    stem, ext = os.path.splitext(safe)
    ext = ext if len(ext) <= 16 else ""
    return (stem[: MAX_NAME - len(ext)].rstrip(" .") or "upload") + ext


#: the bearer credentials of a request (``None`` when absent), for write routes
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
