"""What every adapter says about a hit: its text for a language model and its metadata."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlparse

from omniret.items import Hit, Modality


def hit_text(hit: Hit) -> str:
    """The text a language model reads for a hit: its own text (a chunk, a page, a caption), else its
    label (``talk.mp4 @ 01:23–01:33``, ``report.pdf p. 2``), else its file name."""
    meta = hit.metadata if isinstance(hit.metadata, dict) else {}
    for value in (hit.text, meta.get("caption"), meta.get("label"), meta.get("title")):
        if isinstance(value, str) and value.strip():
            return value
    return os.path.basename(local_path(hit.uri) or hit.uri)


def hit_metadata(hit: Hit) -> dict[str, Any]:
    """The hit's own metadata plus ``id``, ``score``, ``uri``, ``modality``, ``parent_id`` and pointers:
    ``page`` (documents), ``start``/``end`` (seconds, audio and video), ``bbox`` (a block on its page)."""
    meta = dict(hit.metadata) if isinstance(hit.metadata, dict) else {}
    out: dict[str, Any] = {**meta, "id": hit.id, "score": float(hit.score), "uri": hit.uri,
                           "modality": hit.modality.value, "parent_id": hit.parent_id}
    if hit.span is not None and hit.modality in (Modality.AUDIO, Modality.VIDEO):
        out["start"], out["end"] = hit.span
    return out


def local_path(uri: str) -> str | None:
    """The file behind a uri on this machine (a path, or ``file://``), else ``None``."""
    if uri.startswith("file://"):
        return unquote(urlparse(uri).path)
    return uri if os.path.isabs(uri) else None
