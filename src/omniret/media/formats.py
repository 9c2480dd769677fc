"""The document formats omniret reads, by name: extensions, content types, the reader, its library.

:data:`FORMATS` is the one registry: the walker takes its document extensions from it
(:func:`document_extensions`), :func:`read_document` dispatches on it, and an e-mail's attachments
are matched to a reader by file name or content type (:func:`format_for`). Readers are imported on
first use, so this module stays light. PDF files on disk go through :mod:`omniret.media.pdf` and the
page pipeline; the ``pdf`` and ``text`` entries here read PDFs and text files found *inside* other
documents (attachments).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from types import MappingProxyType

from omniret.errors import MediaError
from omniret.media.document import DocOptions, StructuredDoc


@dataclass(frozen=True)
class DocFormat:
    name: str
    extensions: tuple[str, ...]  # lower case, no dot
    content_types: tuple[str, ...]
    reader: str  # "module:function", called as function(uri, options) -> StructuredDoc
    package: str | None  # the pip package the reader needs (None: the standard library / core deps)
    walk: bool = True  # files with these extensions are documents for the walker


FORMATS: MappingProxyType[str, DocFormat] = MappingProxyType({f.name: f for f in (
    DocFormat("html", ("html", "htm", "xhtml"), ("text/html", "application/xhtml+xml"),
              "omniret.media.html:read_html", "beautifulsoup4"),
    DocFormat("docx", ("docx",), ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",),
              "omniret.media.word:read_docx", "python-docx"),
    DocFormat("pptx", ("pptx",), ("application/vnd.openxmlformats-officedocument.presentationml.presentation",),
              "omniret.media.slides:read_pptx", "python-pptx"),
    DocFormat("xlsx", ("xlsx", "xlsm"), ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",),
              "omniret.media.sheets:read_xlsx", "openpyxl"),
    DocFormat("epub", ("epub",), ("application/epub+zip",), "omniret.media.epub:read_epub", "EbookLib"),
    DocFormat("odt", ("odt",), ("application/vnd.oasis.opendocument.text",), "omniret.media.odf:read_odt", "odfpy"),
    DocFormat("ods", ("ods",), ("application/vnd.oasis.opendocument.spreadsheet",), "omniret.media.odf:read_ods",
              "odfpy"),
    DocFormat("odp", ("odp",), ("application/vnd.oasis.opendocument.presentation",), "omniret.media.odf:read_odp",
              "odfpy"),
    DocFormat("eml", ("eml",), ("message/rfc822",), "omniret.media.mail:read_eml", None),
    DocFormat("pdf", ("pdf",), ("application/pdf",), "omniret.media.attached:read_pdf", "pypdfium2"),
    DocFormat("text", ("txt", "md", "markdown", "rst", "csv"), ("text/plain", "text/markdown", "text/csv"),
              "omniret.media.attached:read_text", None, walk=False),
)})


def document_extensions() -> frozenset[str]:
    """Extensions the walker files as documents (every format but plain text, which is its own modality)."""
    return frozenset(e for f in FORMATS.values() if f.walk for e in f.extensions)


def format_for(name: str, content_type: str | None = None) -> DocFormat | None:
    """The format of a file called ``name`` (by extension), else by ``content_type``, or ``None``."""
    ext = os.path.splitext(name)[1].lower().lstrip(".")
    for f in FORMATS.values():
        if ext in f.extensions:
            return f
    ct = (content_type or "").lower()
    for f in FORMATS.values():
        if ct in f.content_types:
            return f
    return None


def read_document(path: str | os.PathLike[str], options: DocOptions | None = None, *,
                  fmt: DocFormat | None = None) -> StructuredDoc:
    """Read the document at ``path`` with the reader of its format (by extension, or ``fmt``).

    Raises :class:`MediaError` for an unknown extension or whatever the reader refuses.
    """
    uri = os.fspath(path)
    fmt = fmt or format_for(uri)
    if fmt is None:
        known = ", ".join(sorted(document_extensions()))
        raise MediaError(uri, f"not a document format omniret reads (by its extension); known: {known}")
    module, func = fmt.reader.split(":")
    reader = getattr(importlib.import_module(module), func)
    doc: StructuredDoc = reader(uri, options or DocOptions())
    return doc
