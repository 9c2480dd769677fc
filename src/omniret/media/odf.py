"""OpenDocument text (``.odt``) with odfpy: ``text:h`` headings (their outline level) cut the text into sections.

The body (``office:text``) is read in order: headings, paragraphs (odfpy's ``teletype.extractText``
turns ``text:s``, tabs and line breaks into their characters), lists, sections, and tables as rows
of cells joined with ``" | "``. A generated table of contents, of figures or of tables becomes a
part with ``role="toc"``, an alphabetical index one with ``role="index"``; the master pages'
headers and footers parts with ``role="header"`` / ``"footer"``. A document encrypted with a
password (its manifest lists encryption data) is refused. Metadata: title, author, subject,
keywords, creation date.
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


def read_odt(uri: str, options: DocOptions) -> StructuredDoc:
    """Read an ``.odt`` file into sections (see the module docstring)."""
    require(uri, "odf", "odfpy", "OpenDocument (.odt) files")
    from odf import opendocument, teletype

    with open_zip(uri, "odt", options) as zf:
        try:
            manifest = zf.read("META-INF/manifest.xml")
        except KeyError:
            manifest = b""
    if b"encryption-data" in manifest:
        raise MediaError(uri, "password-protected OpenDocument text (its parts are encrypted); save a copy "
                              "without a password")
    try:
        doc = opendocument.load(uri)
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
