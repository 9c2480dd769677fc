"""Word documents (``.docx``) with python-docx: heading styles cut the text into sections; tables as rows.

The body is read in order — paragraphs, tables, and content controls (``w:sdt``, where Word keeps
its generated table of contents) — so a table lands in the section it sits in. A paragraph is a
heading when its style, or a style it is based on, is ``Heading N`` or carries an outline level
(``w:outlineLvl``; this also finds headings of documents written in other languages, whose style
names are translated); ``Title`` gives the document's title. Paragraphs in ``TOC N`` styles or in a
table-of-contents content control become a part with ``role="toc"``; page headers and footers
parts with ``role="header"`` / ``"footer"``. Table rows are lines of cells joined with ``" | "``
(merged cells once). Metadata: the core properties (title, author, subject, keywords, created,
modified).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from omniret.errors import MediaError
from omniret.media.document import (
    DocOptions,
    DocPart,
    Outline,
    StructuredDoc,
    finish,
    library_error,
    open_zip,
    require,
)

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_HEADING = re.compile(r"^heading\s*(\d)$", re.I)
_TOC_STYLE = re.compile(r"^(toc\s*\d|toc heading|table of figures)$", re.I)
_KIND = "docx"


def read_docx(uri: str, options: DocOptions) -> StructuredDoc:
    """Read a ``.docx`` file into sections (see the module docstring)."""
    docx = require(uri, "docx", "python-docx", "Word (.docx) files")
    open_zip(uri, "docx", options).close()
    try:
        document = docx.Document(uri)
        return finish(_read(document, docx), options)
    except MediaError:
        raise
    except Exception as e:  # python-docx raises KeyError, ValueError, lxml errors on broken parts
        raise library_error(uri, _KIND, e) from e


def _read(document: Any, docx: Any) -> StructuredDoc:
    props = document.core_properties
    meta = {k: v for k, v in (("author", props.author), ("subject", props.subject), ("keywords", props.keywords),
                              ("created", _iso(props.created)), ("modified", _iso(props.modified))) if v}
    out, toc, title = Outline(), [], None
    for kind, obj, in_toc in _blocks(document.element.body, document, docx, False):
        text = "\n".join(_table_lines(obj)) if kind == "table" else " ".join(obj.text.split())
        if not text:
            continue
        style = obj.style if kind == "paragraph" else None
        if kind == "paragraph" and (in_toc or (style is not None and _TOC_STYLE.match(style.name or ""))):
            toc.append(text)
            continue
        if toc:  # a run of table-of-contents lines ended
            out.role_part("toc", "\n".join(toc))
            toc = []
        level = _level(obj, style) if kind == "paragraph" else None
        if level == 0 and title is None:
            title = text
        elif level:
            out.heading(level, text)
        else:
            out.text(text)
    out.role_part("toc", "\n".join(toc))
    parts = out.close() + _furniture(document)
    return StructuredDoc("docx", props.title or title, meta, parts)


def _blocks(body: Any, document: Any, docx: Any, in_toc: bool) -> Iterator[tuple[str, Any, bool]]:
    """``("paragraph" | "table", object, inside a table of contents)`` in body order, into content controls."""
    for child in body.iterchildren():
        if child.tag == f"{_W}p":
            yield "paragraph", docx.text.paragraph.Paragraph(child, document.part), in_toc
        elif child.tag == f"{_W}tbl":
            yield "table", docx.table.Table(child, document.part), in_toc
        elif child.tag == f"{_W}sdt":
            content = child.find(f"{_W}sdtContent")
            if content is not None:
                yield from _blocks(content, document, docx, in_toc or _is_toc_control(child))


def _is_toc_control(sdt: Any) -> bool:
    gallery = sdt.find(f"{_W}sdtPr/{_W}docPartObj/{_W}docPartGallery")
    return gallery is not None and "contents" in (gallery.get(f"{_W}val") or "").lower()


def _level(paragraph: Any, style: Any) -> int | None:
    """0 for a title, 1–9 for a heading, ``None`` for body text."""
    own = _outline(paragraph._p.pPr)
    if own is not None:
        return own
    seen = 0
    while style is not None and seen < 10:  # based-on chains are short; the bound stops a cycle
        name = style.name or ""
        if name.lower() == "title":
            return 0
        m = _HEADING.match(name)
        if m:
            return int(m.group(1))
        lvl = _outline(style.element.pPr)
        if lvl is not None:
            return lvl
        style, seen = style.base_style, seen + 1
    return None


def _outline(ppr: Any) -> int | None:
    if ppr is None:
        return None
    el = ppr.find(f"{_W}outlineLvl")
    if el is None:
        return None
    try:
        lvl = int(el.get(f"{_W}val"))
    except (TypeError, ValueError):
        return None
    return lvl + 1 if 0 <= lvl < 9 else None  # 9 = body text


def _table_lines(table: Any) -> list[str]:
    lines = []
    for row in table.rows:
        cells: list[str] = []
        last = None
        for cell in row.cells:
            if cell._tc is last:  # a merged cell is returned once per grid column
                continue
            last = cell._tc
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            lines.append(" | ".join(cells))
    return lines


def _furniture(document: Any) -> list[DocPart]:
    """Page headers and footers (each distinct text once) as parts with their role."""
    seen: set[str] = set()
    out = []
    for section in document.sections:
        for role, hf in (("header", section.header), ("footer", section.footer)):
            if hf.is_linked_to_previous:
                continue
            text = "\n".join(" ".join(p.text.split()) for p in hf.paragraphs if p.text.strip())
            if text and text not in seen:
                seen.add(text)
                out.append(DocPart(text, role=role))
    return out


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
