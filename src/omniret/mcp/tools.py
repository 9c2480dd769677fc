"""What the MCP tools do, without the protocol: plain methods over the HTTP server's
:class:`~omniret.server.service.Service`, so an agent gets the same confinement as a web client — adds
only under ``--root`` folders (real paths, symlinks out skipped), files served only while their recorded
path still resolves to itself, uris relative to a root or the sources' folder, messages scrubbed of
server paths.

Each method returns JSON-able data and, where the item has a picture, JPEG thumbnails (bytes) for the
protocol layer (:mod:`omniret.mcp.server`) to send as image content. Errors are :class:`ToolFailure`
with a message meant for the agent.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote, urlparse

from omniret.errors import OmniretError
from omniret.items import Hit, Item, Modality, is_record_uri
from omniret.server.errors import HTTPProblem
from omniret.server.security import resolve_under_roots, scrub
from omniret.server.service import Service

#: modalities whose items have a picture (a thumbnail)
PICTURED = frozenset({Modality.IMAGE, Modality.DOCUMENT, Modality.VIDEO})
MAX_TEXT = 1000  # characters of an item's text in a hit


class ToolFailure(Exception):
    """A tool call the agent should correct (bad argument, unknown id, writes disabled...)."""


@dataclass
class ToolResult:
    """A tool's answer: JSON data plus ``(label, JPEG bytes)`` pictures."""

    data: dict[str, Any]
    images: list[tuple[str, bytes]] = field(default_factory=list)


def _pointers(hit: Hit | Item) -> dict[str, Any]:
    """Where inside its file a hit is: ``page`` (documents), ``timestamp`` (audio/video, seconds),
    ``bbox`` (a layout block on its page as fractions of the page, x0 y0 x1 y1: the block itself, or a
    page hit's best matched block), ``label`` (``talk.mp4 @ 01:23–01:33``)."""
    meta = hit.metadata if isinstance(hit.metadata, dict) else {}
    out: dict[str, Any] = {}
    if meta.get("page") is not None:
        out["page"] = meta["page"]
    if hit.span is not None and hit.modality in (Modality.AUDIO, Modality.VIDEO):
        out["timestamp"] = {"start": hit.span[0], "end": hit.span[1]}
    matched = meta.get("matched") if isinstance(meta.get("matched"), list) else []
    bbox = meta.get("bbox") or next((m.get("bbox") for m in matched if isinstance(m, dict) and m.get("bbox")), None)
    if bbox is not None:
        out["bbox"] = bbox
    if isinstance(meta.get("label"), str):
        out["label"] = meta["label"]
    return out


class Tools:
    """The tools of ``omniret mcp`` over one :class:`Service` (writes need ``--root`` folders)."""

    def __init__(self, service: Service) -> None:
        self.svc = service

    # -- helpers ------------------------------------------------------------------------------
    def _msg(self, e: BaseException) -> str:
        text = e.detail if isinstance(e, HTTPProblem) else str(e)
        return scrub(str(text), self.svc.known_paths())

    def call(self, name: str, /, **kwargs: Any) -> ToolResult:
        """Run tool ``name``; library and HTTP-layer refusals become :class:`ToolFailure`."""
        try:
            return getattr(self, name)(**kwargs)  # type: ignore[no-any-return]
        except (OmniretError, HTTPProblem) as e:
            raise ToolFailure(self._msg(e)) from e

    def public_uri(self, uri: str) -> str:
        if uri.startswith("file://"):
            return self.svc.public_uri(unquote(urlparse(uri).path))
        return uri if is_record_uri(uri) else self.svc.public_uri(uri)

    def describe(self, hit: Hit | Item, score: float | None = None) -> dict[str, Any]:
        text = hit.text or ""
        out = {"id": hit.id, "modality": hit.modality.value, "uri": self.public_uri(hit.uri),
               "parent_id": hit.parent_id, "text": text[:MAX_TEXT] + ("…" if len(text) > MAX_TEXT else ""),
               "metadata": hit.metadata, **_pointers(hit)}
        return {"score": round(float(score), 6), **out} if score is not None else out

    def thumbnail(self, item: Item, size: int | None = None) -> bytes | None:
        """A JPEG of the item's picture, or ``None`` (no picture, file gone or moved behind a link)."""
        from omniret.server.thumbs import thumbnail

        if item.modality not in PICTURED:
            return None
        try:
            if item.uri.startswith("file://"):  # a record's local picture: the same checks as a file's
                path = unquote(urlparse(item.uri).path)
                if not os.path.isfile(path) or os.path.realpath(path) != os.path.normpath(path):
                    return None
                out = thumbnail(replace(item, uri=path), self.svc.thumb_dir, size=size or self.svc.settings.thumb_size)
            elif is_record_uri(item.uri):
                return None  # a URL or bytes: nothing on this machine to show
            elif size is None:
                out = self.svc.thumbnail(item.id)
            else:
                self.svc._check_served(item)
                out = thumbnail(item, self.svc.thumb_dir, size=size)
            return out.read_bytes()
        except (OmniretError, HTTPProblem, OSError):
            return None

    def _query_image(self, image_base64: str) -> tuple[Any, str]:
        try:
            data = base64.b64decode(image_base64, validate=True)
        except (binascii.Error, ValueError) as e:
            raise ToolFailure(f"image_base64 is not base64 ({e})") from e
        if len(data) > self.svc.settings.max_upload_bytes:
            raise ToolFailure(f"the query image is {len(data):,} bytes; the limit is "
                              f"{self.svc.settings.max_upload_bytes:,}")
        path, kind = self.svc.save_query_upload(io.BytesIO(data), "query")
        return path, kind

    # -- tools --------------------------------------------------------------------------------
    def search(self, query: str | None = None, image_base64: str | None = None, like: Sequence[str] | None = None,
               compose: str = "sum", k: int = 10, modality: Sequence[str] | None = None,
               where: dict[str, Any] | None = None, path_glob: str | None = None, granularity: str | None = None,
               hybrid: str = "none", thumbnails: bool = True) -> ToolResult:
        if not (query or image_base64 or like):
            raise ToolFailure("give a query: text (query), a picture (image_base64) or item ids (like)")
        if not 1 <= k <= self.svc.settings.max_k:
            raise ToolFailure(f"k must be between 1 and {self.svc.settings.max_k}, got {k}")
        options: dict[str, Any] = {"compose": compose, "modality": list(modality) if modality else None,
                                   "where": where or None, "path_glob": path_glob, "granularity": granularity,
                                   "hybrid": hybrid, "like": list(like) if like else None}
        upload, kind = self._query_image(image_base64) if image_base64 else (None, "image")
        try:
            hits = self.svc.search(query, k, {key: v for key, v in options.items() if v is not None},
                                   upload=upload, upload_kind=kind, upload_name="image_base64")
        finally:
            if upload is not None:
                upload.unlink(missing_ok=True)
        result = ToolResult({"hits": [self.describe(h, h.score) for h in hits]})
        if thumbnails:
            for h in hits:
                item = self.svc.index.get(h.id) if h.modality in PICTURED else None
                pic = self.thumbnail(item) if item is not None else None
                if pic is not None:
                    result.images.append((h.id, pic))
        return result

    def get_item(self, id: str, thumbnail: bool = True) -> ToolResult:  # noqa: A002 - the protocol's name
        item = self.svc.get(id)
        children = self.svc.index.store.count(_children(item.id))
        data = {**self.describe(item), "children": children}
        pic = self.thumbnail(item) if thumbnail else None
        return ToolResult(data, [(item.id, pic)] if pic else [])

    def open_item(self, id: str, max_chars: int = 20_000) -> ToolResult:  # noqa: A002
        """The content of an item: its text (a file's text: its chunks in order), its picture at up to
        1024 px (an image, a PDF page, a video segment's first frame), a sound's place and length."""
        item = self.svc.get(id)
        text = item.text or ""
        if not text and item.modality in (Modality.TEXT, Modality.DOCUMENT):
            parts = sorted(self.svc.index.store.iter_items(_children(item.id)),
                           key=lambda c: (c.span or (0.0, 0.0))[0])
            text = _joined(parts)
        data = {**self.describe(item), "text": text[:max_chars], "truncated": len(text) > max_chars}
        pic = self.thumbnail(item, size=1024)
        return ToolResult(data, [(item.id, pic)] if pic else [])

    def add(self, paths: Sequence[str], prune: bool = False) -> ToolResult:
        roots = self.svc.settings.roots
        if not roots:
            raise ToolFailure("adding is disabled: start `omniret mcp` with --root DIR (repeatable) to allow "
                              "adding files under DIR")
        if not paths:
            raise ToolFailure("give paths: files or folders under the allowed roots")
        real = [resolve_under_roots(p, roots) for p in paths]
        report = self.svc.add(real, prune=prune)
        out = report.to_dict()
        for key in ("failed", "skipped"):
            out[key] = [{"uri": self.public_uri(f["uri"]), "reason": self._msg(Exception(f["reason"]))}
                        for f in out[key]]
        return ToolResult(out)

    def classify(self, labels: Sequence[str], k: int = 1, modality: Sequence[str] | None = None,
                 where: dict[str, Any] | None = None, threshold: float | None = None,
                 write: bool = False) -> ToolResult:
        if write and not self.svc.settings.roots:
            raise ToolFailure("writing labels is disabled: start `omniret mcp` with --root DIR to allow writes")
        if not labels:
            raise ToolFailure("give labels, e.g. ['cat', 'dog']")
        options: dict[str, Any] = {"k": k, "modality": list(modality) if modality else None, "where": where or None,
                                   "threshold": threshold, "write": write}
        return ToolResult({"results": self.svc.classify(list(labels), {key: v for key, v in options.items()
                                                                         if v is not None})})

    def info(self) -> ToolResult:
        info = self.svc.index.info()
        keep = {k: v for k, v in info.items() if k not in ("path", "manifest", "last_errors")}
        keep["spaces"] = {s: {"dim": e.get("dim"), "encoder": e.get("encoder")}
                          for s, e in (info.get("manifest", {}).get("spaces") or {}).items()}
        keep["writes"] = bool(self.svc.settings.roots)
        keep["last_errors"] = [{"uri": self.public_uri(e["uri"]), "reason": self._msg(Exception(e["reason"]))}
                               for e in info.get("last_errors", [])[:10]]
        import json

        return ToolResult(json.loads(scrub(json.dumps(keep, default=str), self.svc.known_paths())))


def _children(item_id: str) -> Any:
    from omniret.store.base import Filter

    return Filter(parent_id=item_id)


def _joined(parts: Sequence[Item]) -> str:
    """The text of a file from its parts in order: text chunks (character spans, overlapping) are
    stitched without repeating the overlap; pages are joined by blank lines."""
    out: list[str] = []
    covered = 0
    for c in parts:
        text = c.text or ""
        if c.modality is Modality.TEXT and c.span is not None:
            start, end = int(c.span[0]), int(c.span[1])
            if end <= covered:
                continue
            out.append(text[max(0, covered - start):])
            covered = end
        elif text:
            out.append(("\n\n" if out else "") + text)
    return "".join(out)
