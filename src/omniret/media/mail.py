"""E-mail messages (``.eml``) with the standard library's :mod:`email` (``policy.default``).

The message's headers give the title (the subject) and the metadata (``subject``, ``from``, ``to``,
``cc``, ``date`` in ISO form, ``message_id``). The body is the plain-text version when there is one,
else the HTML one read by the HTML reader (its headings become sections); inline text parts that are
not alternatives of the body follow it. Every other leaf part is an :class:`Attachment`, decoded as
its own format where omniret reads it — by file name, else content type (:mod:`omniret.media.formats`:
documents, PDFs, text, attached messages, recursively up to ``max_depth``) — or as an image
(:func:`omniret.media.image.load_image`, then ``DocOptions.image_fn``; pictures under 32 pixels on a
side, logos and tracking pixels, are left out); anything else is listed with
the reason it was not read. An encrypted message (OpenPGP ``multipart/encrypted``, S/MIME
``enveloped-data``) is refused: its body cannot be read without the key.
"""

from __future__ import annotations

import email
import mimetypes
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from email import policy
from email.message import EmailMessage
from typing import Any

from omniret.errors import MediaError
from omniret.media._io import describe, open_binary
from omniret.media.document import Attachment, DocOptions, DocPart, StructuredDoc, finish, read_head

_HEADERS = ("from", "to", "subject", "date", "message-id")
_IMAGE_EXT = frozenset({"jpg", "jpeg", "png", "gif", "webp", "bmp", "tif", "tiff", "heic", "heif", "avif"})
_UNSAFE = re.compile(r"[^\w.-]+")
#: attached pictures smaller than this on a side (logos, tracking pixels) are not indexed
MIN_IMAGE_SIDE = 32


def read_eml(uri: str, options: DocOptions) -> StructuredDoc:
    """Read an ``.eml`` file: body parts and decoded attachments (see the module docstring)."""
    read_head(uri, options)
    with open_binary(uri) as f:
        data = f.read()
    return message_doc(uri, data, options)


def message_doc(uri: str, data: bytes, options: DocOptions) -> StructuredDoc:
    """The message in ``data`` (RFC 5322 bytes) as a :class:`StructuredDoc`; ``uri`` names it in errors."""
    msg = email.message_from_bytes(data, _class=EmailMessage, policy=policy.default)
    if not any(msg.get(h) for h in _HEADERS):
        raise MediaError(uri, f"not an e-mail message (no From, To, Subject or Date header; looks like "
                              f"{describe(data[:512])})")
    if _encrypted(msg):
        raise MediaError(uri, "encrypted e-mail (OpenPGP or S/MIME): its body cannot be read; index a "
                              "decrypted copy")
    meta = _meta(msg)
    body = msg.get_body(preferencelist=("plain", "html"))
    parts = _text_parts(uri, body) if body is not None else []
    attachments: list[Attachment] = []
    with tempfile.TemporaryDirectory(prefix="omniret-eml-") as tmp:
        for i, part in enumerate(_leaves(msg, body, False)):
            if _inline_text(part):
                parts.extend(_text_parts(uri, part))
            else:
                attachments.append(_attachment(part, i, options, tmp))
    if attachments:
        meta["attachments"] = [a.name for a in attachments]
    doc = StructuredDoc("eml", meta.get("subject"), meta, parts, attachments)
    return finish(doc, options)


def _encrypted(msg: EmailMessage) -> bool:
    ct = msg.get_content_type()
    return ct == "multipart/encrypted" or (
        ct in ("application/pkcs7-mime", "application/x-pkcs7-mime")
        and msg.get_param("smime-type", "enveloped-data") == "enveloped-data")


def _meta(msg: EmailMessage) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("subject", "from", "to", "cc", "message-id"):
        value = msg.get(key)
        if value:
            out[key.replace("-", "_")] = " ".join(str(value).split())
    date = msg.get("date")
    when = getattr(date, "datetime", None)
    if when is not None:
        out["date"] = when.isoformat()
    elif date:
        out["date"] = str(date)
    return out


def _leaves(part: EmailMessage, body: Any, in_alternative: bool) -> Iterator[EmailMessage]:
    """The leaf parts other than the body and its alternatives; attached messages stay whole."""
    if part is body:
        return
    ct = part.get_content_type()
    if ct == "message/rfc822" or not part.is_multipart():
        if not (in_alternative and ct.startswith("text/") and not part.get_filename()):
            yield part
        return
    for sub in part.iter_parts():
        yield from _leaves(sub, body, ct == "multipart/alternative")


def _inline_text(part: EmailMessage) -> bool:
    return (part.get_content_type() in ("text/plain", "text/html") and not part.get_filename()
            and part.get_content_disposition() != "attachment")


def _text_parts(uri: str, part: EmailMessage) -> list[DocPart]:
    text = _text(part)
    if part.get_content_type() == "text/html":
        from omniret.media.html import html_parts

        return [replace(p, kind="body") for p in html_parts(uri, text)[1]]
    return [DocPart(text, kind="body")]


def _text(part: EmailMessage) -> str:
    try:
        return str(part.get_content())
    except (LookupError, UnicodeError, AssertionError):  # an unknown or lying charset
        raw = part.get_payload(decode=True)
        return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw or "")


def _attachment(part: EmailMessage, i: int, options: DocOptions, tmp: str) -> Attachment:
    ct = part.get_content_type()
    name = part.get_filename() or f"attachment-{i + 1}{mimetypes.guess_extension(ct) or ''}"
    if ct == "message/rfc822":
        inner = part.get_payload()
        data = inner[0].as_bytes(policy=policy.default) if isinstance(inner, list) and inner else b""
        name = part.get_filename() or f"message-{i + 1}.eml"
    else:
        raw = part.get_payload(decode=True)
        data = raw if isinstance(raw, bytes) else b""
    att = Attachment(name, ct, len(data))
    if options.max_depth <= 0:
        att.error = "attachments nested deeper than max_depth are not read"
        return att
    path = os.path.join(tmp, f"{i}-{_UNSAFE.sub('_', os.path.basename(name))[-80:] or 'attachment'}")
    with open(path, "wb") as f:
        f.write(data)
    try:
        _decode_attachment(att, path, options)
    except MediaError as e:
        att.error = e.reason
    return att


def _decode_attachment(att: Attachment, path: str, options: DocOptions) -> None:
    from omniret.media.formats import format_for, read_document

    ext = os.path.splitext(att.name)[1].lower().lstrip(".")
    if att.content_type.startswith("image/") or ext in _IMAGE_EXT:
        from omniret.media.image import load_image

        image = load_image(path)
        if min(image.size) < MIN_IMAGE_SIDE:
            att.error = f"an image of {image.width}x{image.height} pixels: too small to index (a logo or tracking pixel)"
            return
        att.image = options.image_fn(image) if options.image_fn is not None else None
        if att.image is None:
            att.error = "an image, and the index's model does not embed images"
        return
    fmt = format_for(att.name, None if ext and ext != "bin" else att.content_type) or format_for("", att.content_type)
    if fmt is None:
        att.error = f"not a format omniret reads ({att.content_type})"
        return
    att.doc = read_document(path, replace(options, max_depth=options.max_depth - 1), fmt=fmt)
