"""EPUB e-books with EbookLib: chapters in reading order, their sections named by the book's table of contents.

The spine's documents are read in order, each through the HTML reader (:func:`omniret.media.html.html_parts`).
A part's section path comes from the book's table of contents (EPUB 3 nav or EPUB 2 NCX, as EbookLib
reads it): a heading whose ``id`` a TOC entry points at (``chapter2.xhtml#sec2.7``) takes that entry's
path (``("Common Tasks", "Task 2: Conversion", "2.7: DRM")``); other headings hang below the entry of
their file (a chapter's own heading is not repeated); a file without an entry continues the section
of the file before it (chapters split across files). The navigation document, and spine documents
whose lines are mostly the TOC's own titles (a printed "Contents" page), are parts with
``role="toc"``. Books with DRM (content encrypted per ``META-INF/encryption.xml``; font obfuscation is
not DRM) are refused. Metadata: title, authors, language, publisher, date.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from typing import Any

from omniret.errors import MediaError
from omniret.media.document import (
    DocOptions,
    DocPart,
    StructuredDoc,
    finish,
    library_error,
    open_zip,
    quiet,
    require,
)
from omniret.media.html import html_parts

_KIND = "epub"
_FONT_OBFUSCATION = frozenset({"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"})
_ENC = "{http://www.w3.org/2001/04/xmlenc#}"
_NUMBERING = re.compile(r"^[\dIVXLCivxlc]+(?:[.:]\d+)*[.:]?\s+")

Toc = list[tuple[tuple[str, ...], str, str]]  # (path, file, fragment)


def read_epub(uri: str, options: DocOptions) -> StructuredDoc:
    """Read an ``.epub`` file into sections named by its table of contents (see the module docstring)."""
    ebooklib = require(uri, "ebooklib", "EbookLib", "EPUB e-books")
    from ebooklib import epub

    with open_zip(uri, "epub", options) as zf:
        encrypted = _drm_members(zf)
    try:
        quiet("ebooklib")  # EbookLib warns about its future defaults on every read
        book = epub.read_epub(uri, options={"ignore_ncx": False})
        toc = _flatten(book.toc, ())
        parts = _spine_parts(uri, book, toc, encrypted, ebooklib, epub)
        meta = _meta(book)
    except MediaError:
        raise
    except Exception as e:  # EbookLib raises EpubException, KeyError, lxml errors on broken books
        raise library_error(uri, _KIND, e) from e
    return finish(StructuredDoc("epub", meta.pop("title", None), meta, parts), options)


def _drm_members(zf: zipfile.ZipFile) -> frozenset[str]:
    """Members encrypted by something other than font obfuscation (DRM)."""
    try:
        root = ET.fromstring(zf.read("META-INF/encryption.xml"))
    except (KeyError, ET.ParseError):
        return frozenset()
    out = set()
    for data in root.iter(f"{_ENC}EncryptedData"):
        method = data.find(f"{_ENC}EncryptionMethod")
        ref = data.find(f"{_ENC}CipherData/{_ENC}CipherReference")
        if ref is not None and (method is None or method.get("Algorithm") not in _FONT_OBFUSCATION):
            out.add(ref.get("URI", ""))
    return frozenset(out)


def _flatten(entries: Any, above: tuple[str, ...]) -> Toc:
    """EbookLib's nested TOC (``Link`` s and ``(Section, children)`` pairs) as ``(path, file, fragment)``."""
    out: Toc = []
    for entry in entries:
        node, children = (entry[0], entry[1]) if isinstance(entry, tuple | list) else (entry, [])
        title = " ".join(str(getattr(node, "title", "") or "").split())
        path = (*above, title) if title else above
        href = str(getattr(node, "href", "") or "")
        if href:
            file, _, frag = href.partition("#")
            out.append((path, file, frag))
        out.extend(_flatten(children, path))
    return out


def _spine_parts(uri: str, book: Any, toc: Toc, encrypted: frozenset[str], ebooklib: Any, epub: Any) -> list[DocPart]:
    titles = {_norm(p[-1]) for p, _, _ in toc if p}
    parts: list[DocPart] = []
    base: tuple[str, ...] = ()
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() not in (ebooklib.ITEM_DOCUMENT, ebooklib.ITEM_NAVIGATION):
            continue
        name = item.get_name()
        if any(e == name or e.endswith("/" + name) for e in encrypted):  # zip paths; names are the OPF's
            raise MediaError(uri, "DRM-protected EPUB (its chapters are encrypted); only a DRM-free copy can be indexed")
        entries = [(path, frag) for path, file, frag in toc if file == name]
        if entries:
            base = next((path for path, frag in entries if not frag), entries[0][0])
        _title, doc_parts = html_parts(uri, item.get_content())
        is_toc = isinstance(item, epub.EpubNav) or "nav" in (getattr(item, "properties", None) or []) \
            or _mostly_titles(doc_parts, titles)
        anchors = {frag: path for path, frag in entries if frag}
        for p in doc_parts:
            hit = next((anchors[a] for a in p.meta.pop("anchors", []) if a in anchors), None)
            p.section = hit or _below(base, p.section)
            if is_toc and p.role is None:
                p.role = "toc"
            p.meta["file"] = name
        parts.extend(doc_parts)
    return parts


def _below(base: tuple[str, ...], inner: tuple[str, ...]) -> tuple[str, ...]:
    """A heading path inside a chapter file, under the chapter's TOC path (its own title not repeated)."""
    if base and inner and _norm(inner[0]) == _norm(base[-1]):
        inner = inner[1:]
    return (*base, *inner)


def _mostly_titles(parts: list[DocPart], titles: set[str]) -> bool:
    """True for a printed contents page: at least 3 lines, at least half of them the TOC's own titles."""
    lines = [ln for p in parts for ln in p.text.split("\n")[1 if p.title else 0:] if ln.strip()]
    hits = sum(_norm(ln) in titles for ln in lines)
    return hits >= 3 and hits >= 0.5 * len(lines)


def _norm(title: str) -> str:
    return " ".join(_NUMBERING.sub("", title.strip()).lower().split())


def _meta(book: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, field in (("title", "title"), ("authors", "creator"), ("language", "language"),
                       ("publisher", "publisher"), ("date", "date")):
        values = [" ".join(str(v).split()) for v, _attrs in book.get_metadata("DC", field) if v]
        if values:
            out[key] = values[0] if key != "authors" else values
    return out
