"""Core value types: :class:`Item`, :class:`Modality`, :class:`Hit`.

These are plain dataclasses with no heavy imports (no torch, no numpy), so every layer can use them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Modality(StrEnum):
    """The kind of content an item holds."""

    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"  # a PDF page or a document as a whole

    @classmethod
    def parse(cls, value: str | Modality) -> Modality:
        try:
            return cls(str(value).lower())
        except ValueError:
            from omniret.errors import OmniretError

            raise OmniretError(
                f"unknown modality {value!r}; choose from {', '.join(m.value for m in cls)}"
            ) from None


class Role(StrEnum):
    """Whether an encoder is embedding a query or a document (some models differ)."""

    QUERY = "query"
    DOCUMENT = "document"


def path_bytes(text: str) -> bytes:
    """The bytes of a path (or any string that may hold one): UTF-8, where the characters Python uses for
    undecodable file-name bytes (lone surrogates U+DC80..U+DCFF, ``os.fsdecode``'s ``surrogateescape``)
    become those original bytes again.

    A valid-UTF-8 string gives exactly ``text.encode("utf-8")`` (so ids stored before stay the same);
    a file name that is not valid UTF-8 gives its bytes on disk, as ``os.fsencode`` does on a UTF-8
    file system. Any other lone surrogate (which no file name decodes to) is kept as its 3-byte
    ``surrogatepass`` form rather than raising.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode("utf-8", "surrogatepass")


def is_utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (no lone surrogates from an undecodable file name)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def displayable(text: str) -> str:
    """``text`` with the undecodable bytes of a non-UTF-8 file name shown as U+FFFD (for output that must be
    valid UTF-8, such as an HTTP response); valid text is returned unchanged."""
    return text if is_utf8(text) else path_bytes(text).decode("utf-8", "replace")


def make_id(uri: str, *, part: str | None = None) -> str:
    """A stable item id: a short hash of the source URI (and the part inside it, e.g. a chunk index).

    Ids depend only on *where* the content is, not on its bytes, so a changed file keeps its id
    and replaces its old vectors. The hash is over :func:`path_bytes`: a file name that is not valid
    UTF-8 hashes as its bytes on disk; every other URI hashes as its UTF-8, as it always did.
    """
    key = uri if part is None else f"{uri}#{part}"
    return hashlib.blake2b(path_bytes(key), digest_size=10).hexdigest()


@dataclass(frozen=True, slots=True)
class Item:
    """One searchable unit: an image, a text chunk, a page, an audio window…

    ``parent_id`` links a child (a text chunk, a page, a video segment) to its whole (the file).
    ``span`` is the child's position inside the parent: characters for text chunks, seconds for
    audio and video, ``(page, page)`` for PDF pages.
    """

    id: str
    uri: str
    modality: Modality
    parent_id: str | None = None
    span: tuple[float, float] | None = None
    text: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    content_hash: str | None = None
    mtime: float | None = None  # the source file's modification time (seconds since the epoch)


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result. ``score`` is comparable only within one search call."""

    id: str
    score: float
    modality: Modality
    uri: str
    parent_id: str | None = None
    span: tuple[float, float] | None = None
    text: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How the hit reads for people: see :func:`display_label`."""
        return display_label(self.modality, self.uri, self.parent_id, self.text, self.metadata)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "score": self.score,
            "modality": self.modality.value,
            "uri": self.uri,
            "label": self.label,
            "parent_id": self.parent_id,
            "span": list(self.span) if self.span is not None else None,
            "text": self.text,
            "metadata": self.metadata,
        }


#: the longest title a label shows
TITLE_CHARS = 80


def display_label(modality: Modality, uri: str, parent_id: str | None, text: str | None,
                  metadata: dict[str, Any] | None) -> str:
    """How an item or hit reads for people (the CLI and the web page show it beside the path).

    - pages, layout blocks, audio windows and video segments: the ``label`` ingest gave them
      (``book.pdf p. 2``, ``talk.mp4 @ 01:23–01:33``);
    - a whole document (a PDF rolled up from its pages): its file name, title and page count
      (``book.pdf: A Guide to Things · 12 pages``);
    - a whole text file with a title (a Markdown heading): ``notes.md: Title``;
    - anything else: its file name.
    """
    meta = metadata if isinstance(metadata, dict) else {}
    label = meta.get("label")
    if isinstance(label, str) and label:
        return label
    name = meta.get("name") if isinstance(meta.get("name"), str) else os.path.basename(uri)
    if parent_id is not None or modality not in (Modality.DOCUMENT, Modality.TEXT):
        return name
    title = meta.get("title") if isinstance(meta.get("title"), str) else text if modality is Modality.DOCUMENT else None
    title = " ".join((title or "").split())
    if len(title) > TITLE_CHARS:
        title = title[: TITLE_CHARS - 1].rstrip() + "…"
    out = f"{name}: {title}" if title and title != os.path.splitext(name)[0] else name
    pages = meta.get("pages")
    if modality is Modality.DOCUMENT and isinstance(pages, int):
        out += f" · {pages} page{'s' if pages != 1 else ''}"
    return out


def is_record_uri(uri: str) -> bool:
    """Whether ``uri`` is a URI (``file://…``, ``https://…``, ``record:…``, ``urn:…``) rather than the bare
    path of an indexed file: records (``Index.add_records``) always have one, file-derived items never."""
    return "://" in uri or uri.startswith(("record:", "urn:", "data:"))


#: the fields a record may have (``Index.add_records`` accepts dicts with these keys)
RECORD_FIELDS = ("id", "text", "image", "audio", "uri", "metadata")


@dataclass(frozen=True, slots=True)
class Record:
    """One row for :meth:`omniret.Index.add_records`: your own id plus content, upserted by id.

    ``image``: a path, an ``http(s)://`` URL, encoded bytes, a PIL image or an ``(H, W[, C])`` array;
    ``audio``: a path, a URL, encoded bytes or ``(samples, sample_rate)``; ``text``: a text item, or
    the caption of the image or sound; ``uri``: where the content lives, shown in hits (default: the
    image or audio path/URL, else ``record:<id>``); ``metadata``: JSON values, filterable with ``where``.
    """

    id: str
    text: str | None = None
    image: Any = None
    audio: Any = None
    uri: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, row: Record | Any) -> Record:
        """A checked record from a :class:`Record` or a mapping with :data:`RECORD_FIELDS` keys."""
        from omniret.errors import OmniretError

        if isinstance(row, Record):
            fields = {k: getattr(row, k) for k in RECORD_FIELDS}
        elif hasattr(row, "keys") and hasattr(row, "__getitem__"):
            unknown = sorted(str(k) for k in row.keys() if k not in RECORD_FIELDS)
            if unknown:
                raise OmniretError(f"unknown record field(s) {', '.join(unknown)}; a record has "
                                   f"{', '.join(RECORD_FIELDS)} (put other values under 'metadata')")
            fields = {k: row[k] for k in RECORD_FIELDS if k in row.keys()}
        else:
            raise OmniretError(f"a record must be a dict or omniret.Record, got {type(row).__name__}")
        rid = fields.get("id")
        if isinstance(rid, int) and not isinstance(rid, bool):
            rid = str(rid)
        if not isinstance(rid, str) or not rid.strip():
            raise OmniretError(f"record id must be a non-empty string (or an integer), got {rid!r}")
        text = fields.get("text")
        if text is not None and not isinstance(text, str):
            raise OmniretError(f"record {rid!r}: text must be a string, got {type(text).__name__}")
        uri = fields.get("uri")
        if uri is not None and (not isinstance(uri, str) or not uri):
            raise OmniretError(f"record {rid!r}: uri must be a non-empty string, got {uri!r}")
        if fields.get("image") is None and fields.get("audio") is None and not (text and text.strip()):
            raise OmniretError(f"record {rid!r} has no content; give it text, image or audio")
        return cls(rid, text, fields.get("image"), fields.get("audio"), uri,
                   json_metadata(rid, fields.get("metadata")))


def json_metadata(rid: str, meta: Any) -> dict[str, Any]:
    """``meta`` as plain JSON values (numpy scalars and arrays, dates and tuples converted)."""
    import json

    from omniret.errors import OmniretError

    if meta is None:
        return {}
    if not hasattr(meta, "items"):
        raise OmniretError(f"record {rid!r}: metadata must be a dict, got {type(meta).__name__}")

    def plain(x: Any) -> Any:
        if hasattr(x, "tolist"):  # numpy scalars and arrays
            return x.tolist()
        if hasattr(x, "isoformat"):  # date, datetime
            return x.isoformat()
        if isinstance(x, tuple | set | frozenset):
            return list(x)
        raise TypeError(f"{type(x).__name__} is not a JSON value")

    try:
        out = json.loads(json.dumps({str(k): v for k, v in meta.items()}, default=plain, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise OmniretError(f"record {rid!r}: metadata must hold JSON values ({e})") from e
    return dict(out)
