"""The omniret tools on the official MCP SDK (``mcp.server.mcpserver.MCPServer``).

Each tool answers with a JSON text block (also as structured content) and, when ``thumbnails`` is on,
one JPEG image block per hit that has a picture, preceded by a text block naming the hit id. Clients
that do not show images pass ``thumbnails=false``. A refusal (bad argument, unknown id, writes
disabled) is a tool error whose text says what to change.

Transports: stdio (:func:`run_stdio`) and streamable HTTP (:func:`http_app`, served by uvicorn), where
a bearer token (``--token``) guards every request and the Host header must be a loopback name unless
``--allow-host`` says otherwise (the HTTP server's allow-list middleware).
"""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Sequence
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations

from omniret.mcp.tools import ToolFailure, ToolResult, Tools

Compose = Literal["sum", "weimo", "pdv"]
Hybrid = Literal["none", "rrf", "minmax", "zscore"]
Granularity = Literal["item", "parent", "root"]

INSTRUCTIONS = (
    "omniret searches a local index of images, text, PDFs, audio and video by meaning. Use `search` with "
    "a text query, a picture (image_base64), or both (a composed query: the picture changed as the text "
    "says); filter by modality or metadata (where). Hits carry pointers: page (PDF pages), timestamp "
    "(audio/video seconds), bbox (a block on a page). `open_item` returns an item's full text or picture. "
    "`info` says what the index holds."
)


def _result(r: ToolResult) -> CallToolResult:
    content: list[Any] = [TextContent(type="text", text=json.dumps(r.data, ensure_ascii=False, default=str))]
    for label, jpeg in r.images:
        content.append(TextContent(type="text", text=f"thumbnail of {label}"))
        content.append(ImageContent(type="image", data=base64.b64encode(jpeg).decode(), mime_type="image/jpeg"))
    return CallToolResult(content=content, structured_content=json.loads(json.dumps(r.data, default=str)))


def build_server(tools: Tools, *, name: str = "omniret") -> MCPServer:
    """An ``MCPServer`` with the omniret tools (search, get_item, open_item, add, classify, info)."""
    server = MCPServer(name, instructions=INSTRUCTIONS, version=_version(), log_level="WARNING")

    def run(tool: str, **kwargs: Any) -> CallToolResult:
        try:
            return _result(tools.call(tool, **kwargs))
        except ToolFailure as e:
            raise ToolError(str(e)) from e

    read = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(annotations=read, structured_output=False)
    def search(query: str | None = None, image_base64: str | None = None, like: list[str] | None = None,
               compose: Compose = "sum", k: int = 10, modality: list[str] | None = None,
               where: dict[str, Any] | None = None, path_glob: str | None = None,
               granularity: Granularity | None = None, hybrid: Hybrid = "none",
               thumbnails: bool = True) -> CallToolResult:
        """Search the index by meaning. query: text; image_base64: a picture (PNG/JPEG bytes, base64) to
        search by example, or with query a composed query ("this, but red"; compose picks the method);
        like: item ids as positive examples. modality: only text, image, audio, video or document items;
        where: metadata equality ({"class": "cat"}); path_glob: only files matching a glob; granularity:
        item (default), parent (files, pages) or root (whole documents); hybrid: fuse keyword (BM25) and
        meaning. Returns hits best first with id, score, uri, text, metadata and pointers (page,
        timestamp, bbox, label), plus a thumbnail per picture unless thumbnails is false."""
        return run("search", query=query, image_base64=image_base64, like=like, compose=compose, k=k,
                   modality=modality, where=where, path_glob=path_glob, granularity=granularity, hybrid=hybrid,
                   thumbnails=thumbnails)

    @server.tool(annotations=read, structured_output=False)
    def get_item(id: str, thumbnail: bool = True) -> CallToolResult:  # noqa: A002 - the agent's name for it
        """One item by id (from search hits): its uri, text, metadata, pointers, number of children
        (a file's chunks or pages) and a thumbnail."""
        return run("get_item", id=id, thumbnail=thumbnail)

    @server.tool(annotations=read, structured_output=False)
    def open_item(id: str, max_chars: int = 20_000) -> CallToolResult:  # noqa: A002
        """The content of an item: its full text (for a file, its chunks in order, up to max_chars) and
        its picture at up to 1024 px (an image, a PDF page, a video segment)."""
        return run("open_item", id=id, max_chars=max_chars)

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False),
                 structured_output=False)
    def add(paths: list[str], prune: bool = False) -> CallToolResult:
        """Index files or folders (only under the server's --root folders; relative paths are taken from
        the first root). Unchanged files are skipped; prune drops files that are gone. Returns counts and
        the files that failed, with reasons."""
        return run("add", paths=paths, prune=prune)

    @server.tool(annotations=read, structured_output=False)
    def classify(labels: list[str], k: int = 1, modality: list[str] | None = None,
                 where: dict[str, Any] | None = None, threshold: float | None = None,
                 write: bool = False) -> CallToolResult:
        """Zero-shot labels for the indexed items from your label set (e.g. ["cat", "dog", "car"]): the k
        most likely per item, or those above threshold. write stores them in item metadata (needs --root)."""
        return run("classify", labels=labels, k=k, modality=modality, where=where, threshold=threshold,
                   write=write)

    @server.tool(annotations=read, structured_output=False)
    def info() -> CallToolResult:
        """What the index holds: model, counts per modality and space, vector spaces, recent ingest errors,
        and whether adding is allowed."""
        return run("info")

    return server


def _version() -> str:
    from omniret.index import omniret_version

    return omniret_version()


class BearerTokenMiddleware:
    """Answer 401 to any HTTP request without ``Authorization: Bearer <token>`` (constant-time compare)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or ()).get(b"authorization", b"")
            scheme, _, value = given.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(value.strip(), self.token):
                body = json.dumps({"error": "this MCP server needs 'Authorization: Bearer TOKEN' "
                                            "with its --token"}).encode()
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def http_app(server: Any, *, host: str, token: str | None, allowed_hosts: Sequence[str], path: str = "/mcp") -> Any:
    """The streamable HTTP app (Starlette) of ``server``, behind the Host allow-list and the token check."""
    from omniret.server.security import HostAllowListMiddleware

    app = server.streamable_http_app(streamable_http_path=path, host=host)
    wrapped: Any = BearerTokenMiddleware(app, token) if token else app
    return HostAllowListMiddleware(wrapped, tuple(allowed_hosts)) if allowed_hosts else wrapped
