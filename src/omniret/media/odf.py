"""OpenDocument files with odfpy: text (``.odt``) in sections, spreadsheets (``.ods``) as sheets, presentations
(``.odp``) as slides.

Text: ``text:h`` headings (their outline level) cut the text into sections.

The body (``office:text``) is read in order: headings, paragraphs (odfpy's ``teletype.extractText``
turns ``text:s``, tabs and line breaks into their characters), lists, sections, and tables as rows
of cells joined with ``" | "``. A generated table of contents, of figures or of tables becomes a
part with ``role="toc"``, an alphabetical index one with ``role="index"``; the master pages'
headers and footers parts with ``role="header"`` / ``"footer"``. A document encrypted with a
password (its manifest lists encryption data) is refused. Metadata: title, author, subject,
keywords, creation date.

Spreadsheets: one part per ``table:table`` (the sheet), as ``.xlsx`` sheets are read — page = the sheet's
number, section = its name, rows as lines of cells joined with ``" | "`` (a cell repeated across columns
is repeated, at most :data:`MAX_REPEAT` times; empty trailing cells and empty rows dropped; at most
``DocOptions.max_rows`` rows, else ``metadata["truncated"]``), the first row kept as the column header of
every chunk when it holds only text. Presentations: one part per ``draw:page`` (page = slide number),
its title frame (``presentation:class="title"``) as title and section, the other frames' paragraphs and
tables in document order, speaker notes (``presentation:notes``) in ``metadata["notes"]``.
"""

from __future__ import annotations

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

_KIND = "odt"
_ROLES = {"text:table-of-content": "toc", "text:illustration-index": "toc", "text:table-index": "toc",
          "text:object-index": "toc", "text:user-index": "toc", "text:alphabetical-index": "index",
          "text:bibliography": "boilerplate"}
_SKIP = frozenset({"text:tracked-changes", "office:forms", "text:sequence-decls", "text:variable-decls",
                   "office:annotation", "text:note-citation"})
_META = (("dc:title", "title"), ("dc:creator", "author"), ("meta:initial-creator", "author"),
         ("dc:subject", "subject"), ("meta:keyword", "keywords"), ("meta:creation-date", "created"))


#: how many times a cell repeated across columns (``table:number-columns-repeated``) is written out
MAX_REPEAT = 64
_WHAT = {"odt": "OpenDocument text", "ods": "OpenDocument spreadsheet", "odp": "OpenDocument presentation"}


def _load(uri: str, kind: str, options: DocOptions) -> Any:
    """The odfpy document of an OpenDocument file of ``kind``, after the container checks; an encrypted
    one (its manifest lists encryption data) is refused."""
    require(uri, "odf", "odfpy", f"{_WHAT[kind]} (.{kind}) files")
    from odf import opendocument

    with open_zip(uri, kind, options) as zf:
        try:
            manifest = zf.read("META-INF/manifest.xml")
        except KeyError:
            manifest = b""
    if b"encryption-data" in manifest:
        raise MediaError(uri, f"password-protected {_WHAT[kind]} (its parts are encrypted); save a copy "
                              "without a password")
    try:
        return opendocument.load(uri)
    except Exception as e:  # odfpy raises KeyError, xml.sax errors on broken parts
        raise library_error(uri, kind, e) from e


def read_odt(uri: str, options: DocOptions) -> StructuredDoc:
    """Read an ``.odt`` file into sections (see the module docstring)."""
    doc = _load(uri, "odt", options)
    from odf import teletype

    try:
        out = Outline()
        _walk(doc.text, out, teletype)
        parts = out.close() + _furniture(doc, teletype)
        meta = _meta(doc, teletype)
    except MediaError:
        raise
    except Exception as e:  # odfpy raises KeyError, xml.sax errors on broken parts
        raise library_error(uri, _KIND, e) from e
    title = meta.pop("title", None) or next((p.title for p in parts if p.title), None)
    return finish(StructuredDoc("odt", title, meta, parts), options)


def _walk(root: Any, out: Outline, teletype: Any) -> None:
    stack = list(reversed(root.childNodes))
    while stack:
        node = stack.pop()
        tag = getattr(node, "tagName", None)
        if tag is None or tag in _SKIP:
            continue
        if tag == "text:h":
            title = " ".join(teletype.extractText(node).split())
            if title:
                out.heading(_outline_level(node), title)
        elif tag == "text:p":
            out.text(teletype.extractText(node))
        elif tag in _ROLES:
            body = next((c for c in node.childNodes if getattr(c, "tagName", "") == "text:index-body"), node)
            lines = [" ".join(teletype.extractText(c).split()) for c in body.childNodes]
            out.role_part(_ROLES[tag], "\n".join(x for x in lines if x))
        elif tag == "table:table":
            out.text("\n".join(_rows(node, teletype)))
        else:  # lists, list items, sections, frames...: their children in place
            stack.extend(reversed(node.childNodes))


def _outline_level(h: Any) -> int:
    try:
        return max(1, int(h.getAttribute("outlinelevel") or 1))
    except (TypeError, ValueError):
        return 1


def _rows(table: Any, teletype: Any) -> list[str]:
    lines = []
    stack = list(reversed(table.childNodes))
    while stack:
        node = stack.pop()
        tag = getattr(node, "tagName", None)
        if tag == "table:table-row":
            cells = [" ".join(teletype.extractText(c).split()) for c in node.childNodes
                     if getattr(c, "tagName", "") == "table:table-cell"]
            while cells and not cells[-1]:
                cells.pop()
            if cells:
                lines.append(" | ".join(cells))
        elif tag in ("table:table-header-rows", "table:table-rows", "table:table-row-group"):
            stack.extend(reversed(node.childNodes))
    return lines


def _furniture(doc: Any, teletype: Any) -> list[DocPart]:
    seen: set[str] = set()
    out = []
    for page in getattr(doc.masterstyles, "childNodes", []):
        for node in getattr(page, "childNodes", []):
            role = {"style:header": "header", "style:footer": "footer"}.get(getattr(node, "tagName", ""))
            if role is None:
                continue
            text = " ".join(teletype.extractText(node).split())
            if text and text not in seen:
                seen.add(text)
                out.append(DocPart(text, role=role))
    return out


def _meta(doc: Any, teletype: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for node in doc.meta.childNodes:
        tag = getattr(node, "tagName", "")
        for odf_tag, key in _META:
            if tag == odf_tag and key not in found:
                value = " ".join(teletype.extractText(node).split())
                if value:
                    found[key] = value
    return found


def read_ods(uri: str, options: DocOptions) -> StructuredDoc:
    """Read an ``.ods`` file into one part per sheet (see the module docstring)."""
    doc = _load(uri, "ods", options)
    from odf import teletype

    try:
        sheets = [c for c in doc.spreadsheet.childNodes if getattr(c, "tagName", "") == "table:table"]
        parts = [_sheet(t, n, options.max_rows, teletype) for n, t in enumerate(sheets, 1)]
        meta = _meta(doc, teletype)
    except Exception as e:  # odfpy raises KeyError, AttributeError on broken parts
        raise library_error(uri, "ods", e) from e
    meta["sheets"] = [p.title for p in parts]
    return finish(StructuredDoc("ods", meta.pop("title", None), meta, parts), options)


def _sheet(tab: Any, number: int, max_rows: int, teletype: Any) -> DocPart:
    name = str(tab.getAttribute("name") or f"Sheet{number}")
    lines: list[str] = []
    header = ""
    truncated = False
    for cells, text_only in _sheet_rows(tab, teletype):
        if len(lines) >= max_rows:
            truncated = True
            break
        if not lines and text_only:
            header = " | ".join(cells)
        lines.append(" | ".join(cells))
    meta: dict[str, Any] = {"sheet": name, "rows": len(lines)}
    if truncated:
        meta["truncated"] = True
    return DocPart("\n".join([name, *lines]), kind="sheet", title=name, section=(name,), page=number,
                   context=f"{name}: {header}" if header else name, meta=meta)


def _sheet_rows(tab: Any, teletype: Any) -> Any:
    """``(cells, all text)`` for each non-empty row of a sheet, in order (row groups opened in place)."""
    stack = list(reversed(tab.childNodes))
    while stack:
        node = stack.pop()
        tag = getattr(node, "tagName", None)
        if tag == "table:table-row":
            cells, text_only = _cells(node, teletype)
            if cells:
                yield cells, text_only
        elif tag in ("table:table-header-rows", "table:table-rows", "table:table-row-group"):
            stack.extend(reversed(node.childNodes))


def _cells(row: Any, teletype: Any) -> tuple[list[str], bool]:
    cells: list[str] = []
    text_only = True
    for c in row.childNodes:
        if getattr(c, "tagName", "") not in ("table:table-cell", "table:covered-table-cell"):
            continue
        value = " ".join(teletype.extractText(c).split())
        try:
            repeat = int(c.getAttribute("numbercolumnsrepeated") or 1)
        except (TypeError, ValueError):
            repeat = 1
        cells.extend([value] * (min(repeat, MAX_REPEAT) if value else min(repeat, 1)))
        if value and (c.getAttribute("valuetype") or "string") != "string":
            text_only = False
    while cells and not cells[-1]:
        cells.pop()
    return cells, text_only


def read_odp(uri: str, options: DocOptions) -> StructuredDoc:
    """Read an ``.odp`` file into one part per slide (see the module docstring)."""
    doc = _load(uri, "odp", options)
    from odf import teletype

    try:
        pages = [c for c in doc.presentation.childNodes if getattr(c, "tagName", "") == "draw:page"]
        parts = [_slide(p, n, teletype) for n, p in enumerate(pages, 1)]
        meta = _meta(doc, teletype)
    except Exception as e:  # odfpy raises KeyError, AttributeError on broken parts
        raise library_error(uri, "odp", e) from e
    meta["slides"] = len(parts)
    title = meta.pop("title", None) or next((p.title for p in parts if p.title), None)
    return finish(StructuredDoc("odp", title, meta, parts), options)


def _slide(page: Any, number: int, teletype: Any) -> DocPart:
    title = ""
    lines: list[str] = []
    notes: list[str] = []
    for frame, in_notes in _frames(page):
        if frame.getAttribute("class") == "title" and not in_notes and not title:
            title = " ".join(teletype.extractText(frame).split())
            continue
        (notes if in_notes else lines).extend(_frame_lines(frame, teletype))
    meta: dict[str, Any] = {}
    if notes:
        meta["notes"] = "\n".join(notes)
    text = "\n".join(([title] if title else []) + lines + (["", f"Notes: {meta['notes']}"] if notes else []))
    return DocPart(text or f"Slide {number}", kind="slide", title=title or None, section=(title,) if title else (),
                   page=number, meta=meta)


def _frames(page: Any) -> Any:
    """``(draw:frame, inside the speaker notes)`` in document order; groups opened in place."""
    stack = [(c, False) for c in reversed(page.childNodes)]
    while stack:
        node, in_notes = stack.pop()
        tag = getattr(node, "tagName", None)
        if tag == "draw:frame":
            yield node, in_notes
        elif tag in ("draw:g", "presentation:notes"):
            stack.extend((c, in_notes or tag == "presentation:notes") for c in reversed(node.childNodes))


def _frame_lines(frame: Any, teletype: Any) -> list[str]:
    out: list[str] = []
    stack = list(reversed(frame.childNodes))
    while stack:
        node = stack.pop()
        tag = getattr(node, "tagName", None)
        if tag in ("text:p", "text:h"):
            line = " ".join(teletype.extractText(node).split())
            if line:
                out.append(line)
        elif tag == "table:table":
            out.extend(_rows(node, teletype))
        elif tag is not None:  # text boxes, lists, list items: their children in place
            stack.extend(reversed(node.childNodes))
    return out
