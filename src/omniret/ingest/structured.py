"""Ingest of structured documents — HTML, Word, PowerPoint, Excel, EPUB, OpenDocument, e-mail — as items.

:func:`decode_structured` runs in the decode threads (:func:`omniret.ingest.run.decode_file`): the file's
reader (:mod:`omniret.media.formats`) gives a :class:`~omniret.media.document.StructuredDoc`, already
chunked, with attached pictures turned into the encoder's pixels. :func:`structured_items` makes the items
in the encoding process, in the shape PDFs have (:mod:`omniret.ingest.media`), so search treats both alike:

- the **file** (``DOCUMENT``, no vector, ``text`` = its title for BM25; metadata: the format, the
  reader's metadata — author, an e-mail's ``from``/``to``/``date``…);
- one child per **part** (``DOCUMENT``): a section (``metadata["heading"]``, its title, and
  ``metadata["level"]``, 0 = top), a slide or a sheet (pages: ``span = (n, n)``, ``metadata["page"] = n``;
  a sheet also ``metadata["sheet"]``) or a message body, with ``metadata["section"]`` (the section path
  as a list of titles from the top; absent before the first heading), ``metadata["role"]`` for
  navigation and furniture (absent for the body), ``metadata["label"]`` (``deck.pptx slide 3 › Results``,
  ``guide.epub › Task 2 › 2.7: DRM``) and the part's ``text`` (heading first). It is embedded by its text,
  preceded by the titles above its own heading. The document item conventions of
  :mod:`omniret.ingest.media` hold: a slide or sheet is a page, its chunks are its blocks;
- when a part is longer than one chunk, its **chunks** as its children (``span`` = character offsets in
  the part's text, ``metadata["chunk"]``; ``metadata["block"]`` too on a page's chunks), each embedded
  with the part's section path (a sheet: its column header) in front, so a chunk deep in a section
  still knows where it is;
- an e-mail's **attachments** as children of the file: a document attachment (no vector; its name is
  its ``text``) with its own parts and chunks below it, their section paths starting with the
  attachment's name; an image attachment as an ``IMAGE`` item embedded from its pixels. Attachments
  that could not be read are listed with the reason in the file's ``metadata["unread_attachments"]``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from omniret.ingest.media import PIXEL_DTYPE, MediaPayload, MediaWork
from omniret.items import Item, Modality, make_id
from omniret.media.document import Attachment, DocOptions, DocPart, StructuredDoc
from omniret.media.formats import format_for, read_document

#: section titles in labels and embedding prefixes are joined with this
SEP = " › "


def is_structured(uri: str) -> bool:
    """True for a document file that this module ingests (every document format but PDF)."""
    fmt = format_for(uri)
    return fmt is not None and fmt.walk and fmt.name != "pdf"


def decode_structured(uri: str, chunk_chars: int, chunk_overlap: int, preprocess: Any) -> MediaPayload:
    """Read one document file in a decode thread (raises ``MediaError``); attached pictures become pixels."""
    fn = (lambda im: np.asarray(preprocess(im), dtype=PIXEL_DTYPE)) if preprocess is not None else None
    doc = read_document(uri, DocOptions(chunk_chars=chunk_chars, chunk_overlap=chunk_overlap, image_fn=fn))
    meta: dict[str, Any] = {"format": doc.format, **doc.meta, "parts": len(doc.parts)}
    unread = [{"name": a.name, "reason": a.error} for a in _all_attachments(doc) if a.error]
    if unread:
        meta["unread_attachments"] = unread
    return MediaPayload(meta=meta, doc=doc)


def _all_attachments(doc: StructuredDoc) -> list[Attachment]:
    out = []
    for a in doc.attachments:
        out.append(a)
        if a.doc is not None:
            out.extend(_all_attachments(a.doc))
    return out


def structured_items(uri: str, payload: MediaPayload, base: dict[str, Any], common: dict[str, Any]) -> MediaWork:
    """Items and embedding work for one decoded document (see the module docstring)."""
    doc = payload.doc
    assert doc is not None  # decode_structured made this payload
    work, fid, name = MediaWork(), make_id(uri), base["name"]
    title = doc.title or next((p.title for p in doc.parts if p.title and p.role is None), None) \
        or os.path.splitext(name)[0]
    meta = {**base, **payload.meta}
    work.items.append(Item(fid, uri, Modality.DOCUMENT, text=title, metadata=meta, **common))
    _children(work, _Ctx(uri, name, name, "", (), common), fid, doc)
    if len(work.items) == 1:  # nothing to embed (an empty deck, a blank page): stored, and counted as such
        meta["embedded"] = False
        work.unembedded = 1
    return work


class _Ctx:
    """Where a document's children go: the file, the id prefix and section path of an attachment."""

    def __init__(self, uri: str, name: str, label: str, prefix: str, top: tuple[str, ...],
                 common: dict[str, Any]) -> None:
        self.uri, self.name, self.label, self.prefix, self.top, self.common = uri, name, label, prefix, top, common

    def inner(self, k: int, att: Attachment) -> _Ctx:
        return _Ctx(self.uri, self.name, f"{self.label}{SEP}{att.name}", f"{self.prefix}a{k}.", (*self.top, att.name),
                    self.common)


def _children(work: MediaWork, ctx: _Ctx, parent_id: str, doc: StructuredDoc) -> None:
    for i, part in enumerate(doc.parts):
        _part(work, ctx, parent_id, i, part)
    for k, att in enumerate(doc.attachments):
        _attachment(work, ctx, parent_id, k, att)


def _part(work: MediaWork, ctx: _Ctx, parent_id: str, i: int, part: DocPart) -> None:
    pid = make_id(ctx.uri, part=f"{ctx.prefix}s{i}")
    section = [*ctx.top, *part.section]
    shared: dict[str, Any] = {"name": ctx.name, "label": label(ctx.label, part)}
    if section:
        shared["section"] = section
    if part.page is not None:
        shared["page"] = part.page
    if part.role is not None:
        shared["role"] = part.role
    if "sheet" in part.meta:
        shared["sheet"] = part.meta["sheet"]
    meta = {**part.meta, **shared, "kind": part.kind, "part": i}
    if part.title:
        meta["title"] = part.title
        if part.page is None:  # a section of a flowing document (a slide or sheet is a page)
            meta.update(heading=part.title, level=len(section) - 1)
    span = (float(part.page), float(part.page)) if part.page is not None else None
    work.items.append(Item(pid, ctx.uri, Modality.DOCUMENT, parent_id=parent_id, span=span, text=part.text,
                           metadata=meta, **ctx.common))
    work.texts.append((pid, embed_text(section, part.text)))
    if len(part.chunks) < 2:
        return
    for j, c in enumerate(part.chunks):
        cid = make_id(ctx.uri, part=f"{ctx.prefix}s{i}c{j}")
        chunk_meta = {**shared, "chunk": j}
        if part.page is not None:  # a piece of a page (slide, sheet): a block of it, as PDF blocks are
            chunk_meta["block"] = j
        work.items.append(Item(cid, ctx.uri, Modality.DOCUMENT, parent_id=pid, span=(float(c.start), float(c.end)),
                               text=c.text, metadata=chunk_meta, **ctx.common))
        work.texts.append((cid, embed_text(section, c.text) if j == 0 else _with_context(part, section, c.text)))


def _attachment(work: MediaWork, ctx: _Ctx, parent_id: str, k: int, att: Attachment) -> None:
    if att.doc is None and att.image is None:
        return
    aid = make_id(ctx.uri, part=f"{ctx.prefix}a{k}")
    inner = ctx.inner(k, att)
    meta: dict[str, Any] = {"name": ctx.name, "attachment": att.name, "content_type": att.content_type,
                            "size": att.size, "section": list(inner.top), "label": inner.label}
    if att.image is not None:
        work.items.append(Item(aid, ctx.uri, Modality.IMAGE, parent_id=parent_id, metadata=meta, **ctx.common))
        work.pixels.append((aid, att.image))
        return
    assert att.doc is not None
    meta.update({"format": att.doc.format, **att.doc.meta, "parts": len(att.doc.parts)})
    work.items.append(Item(aid, ctx.uri, Modality.DOCUMENT, parent_id=parent_id,
                           text=att.doc.title or att.name, metadata=meta, **ctx.common))
    _children(work, inner, aid, att.doc)


def label(name: str, part: DocPart) -> str:
    """How a hit on a part reads: ``deck.pptx slide 3 › Results``, ``book.xlsx › quakes``, ``a.docx › 2 › 2.1``
    (``name`` is the file's name, or ``mail.eml › attached.docx`` for an attachment's parts)."""
    section = list(part.section)
    where = name
    if part.kind == "slide" and part.page is not None:
        where = f"{name} slide {part.page}"
    elif part.kind == "page" and part.page is not None:
        where = f"{name} p. {part.page}"
    text = SEP.join([where, *section]) if section else where
    return f"{text} ({part.role})" if part.role else text


def _with_context(part: DocPart, section: list[str], text: str) -> str:
    """A later chunk of a part: its column header (a sheet) or its section path, then the chunk."""
    context = part.context or SEP.join(section)
    return f"{context}\n{text}" if context else text


def embed_text(section: list[str], text: str) -> str:
    """What a part (or its first chunk) is embedded as: the titles above its own heading, then its text."""
    above = section[:-1] if section and text.startswith(section[-1]) else section
    return f"{SEP.join(above)}\n{text}" if above else text
