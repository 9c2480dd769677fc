"""PDFs and text files found inside other documents (an e-mail's attachments), as :class:`StructuredDoc` s.

PDF files on disk take the page pipeline (:mod:`omniret.media.pdf` through :mod:`omniret.ingest.media`:
layout blocks, OCR, page images); an attached PDF becomes one part per page with its text layer
(``kind="page"``, ``page`` = its number), and an attached text file one part with its text.
"""

from __future__ import annotations

from omniret.media.document import DocOptions, DocPart, StructuredDoc, finish, require
from omniret.media.text import decode_text, read_text_bytes


def read_pdf(uri: str, options: DocOptions) -> StructuredDoc:
    """One part per page of the PDF at ``uri``, with its text layer (no OCR, no blocks)."""
    require(uri, "pypdfium2", "pypdfium2", "PDF files")
    from omniret.media.pdf import PdfOptions, iter_pages, open_pdf

    info = open_pdf(uri)
    parts = [DocPart(p.text, kind="page", page=p.number)
             for p in iter_pages(uri, PdfOptions(ocr=False, blocks=False, render="never"))]
    return finish(StructuredDoc("pdf", info.title, {"pages": info.pages}, parts), options)


def read_text(uri: str, options: DocOptions) -> StructuredDoc:
    """The text file at ``uri`` as one part (encoding detected as for text files)."""
    data, encoding = read_text_bytes(uri, max_bytes=options.max_bytes)
    return finish(StructuredDoc("text", None, {"encoding": encoding}, [DocPart(decode_text(uri, data, encoding),
                                                                              kind="body")]), options)
