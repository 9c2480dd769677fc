"""Thumbnails of indexed items, cached on disk under the index folder (``<index>/thumbs/``).

A thumbnail is a JPEG whose longer side is at most ``size`` pixels, made from:

- an image item: the image itself (EXIF-oriented, RGB, via :func:`omniret.media.image.load_image`;
  an extreme aspect ratio cut to its centre by :func:`omniret.media.image.bound_aspect`, as the
  encoders see it);
- a document page (a PDF page item, ``span = (page, page)`` with the 1-based page number, as
  ``metadata["page"]``; a layout block: its page; the whole document: its first page) rendered by pypdfium2;
- a video item or segment: the frame at the start of its span (PyAV), or the first frame.

Items of other kinds (text, audio; sections of HTML, Office, EPUB and e-mail files; attachments inside
an e-mail) have no picture: :class:`NoThumbnail` says so.

The cache key is the item id, its content hash (or the source file's size and mtime when the item
has none) and the size, so a changed file gets a fresh thumbnail and a stale one is never served.
Files are written to a temporary name and renamed into place (``os.replace``), so concurrent
requests for the same thumbnail never see a half-written file.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from omniret.errors import MediaError, OmniretError
from omniret.items import Item, Modality

DEFAULT_SIZE = 256
MAX_SIZE = 1024
_JPEG_QUALITY = 82


class NoThumbnail(OmniretError):
    """The item has no picture to show (a text chunk, a sound)."""


def thumbs_dir(index_path: str | os.PathLike[str]) -> Path:
    """The cache folder of an index: ``<index>/thumbs``."""
    return Path(os.fspath(index_path)) / "thumbs"


def cache_key(item: Item, size: int) -> str:
    """A file name that changes whenever the item's content (or the requested size) changes."""
    version = item.content_hash
    if not version:
        try:
            st = os.stat(item.uri)
            version = f"{st.st_size}-{st.st_mtime_ns}"
        except OSError:
            version = "missing"
    span = "" if item.span is None else f"{item.span[0]:g}-{item.span[1]:g}"
    # "p1": page spans are read as 1-based numbers (thumbnails cached before that showed the next page)
    digest = hashlib.blake2b(f"p1|{item.id}|{version}|{span}|{size}".encode(), digest_size=12).hexdigest()
    return f"{digest}.jpg"


def thumbnail(item: Item, cache: str | os.PathLike[str], *, size: int = DEFAULT_SIZE) -> Path:
    """The path of ``item``'s cached thumbnail, made now if it is not cached yet.

    Raises :class:`NoThumbnail` for items without a picture and :class:`MediaError` when the
    source file cannot be read (gone, corrupt).
    """
    if not isinstance(size, int) or not 16 <= size <= MAX_SIZE:
        raise OmniretError(f"thumbnail size must be an integer from 16 to {MAX_SIZE}, got {size!r}")
    if item.modality not in (Modality.IMAGE, Modality.DOCUMENT, Modality.VIDEO):
        raise NoThumbnail(f"item {item.id} is {item.modality.value}, which has no picture to show")
    if item.metadata.get("attachment"):
        raise NoThumbnail(f"item {item.id} is an attachment inside {os.path.basename(item.uri)}; open the file to see it")
    if item.modality is Modality.DOCUMENT and not item.uri.lower().endswith(".pdf"):
        raise NoThumbnail(f"item {item.id} is part of {os.path.basename(item.uri)}; only PDF pages are rendered")
    folder = Path(os.fspath(cache))
    out = folder / cache_key(item, size)
    if out.is_file():
        return out
    picture = _render(item, size)
    picture.thumbnail((size, size))
    folder.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        picture.convert("RGB").save(tmp, "JPEG", quality=_JPEG_QUALITY, optimize=True)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _render(item: Item, size: int) -> Any:
    if item.modality is Modality.IMAGE:
        from omniret.media.image import bound_aspect, load_image

        return bound_aspect(load_image(item.uri, target_size=size))
    if item.modality is Modality.DOCUMENT:
        return _pdf_page(item.uri, page_index(item), size)
    start = float(item.span[0]) if item.span is not None else 0.0
    return _video_frame(item.uri, start)


def page_index(item: Item) -> int:
    """The 0-based index (for pypdfium2) of a document item's page: ingest numbers pages from 1 in
    ``metadata["page"]`` and ``span = (page, page)``; the document itself shows its first page."""
    page = item.metadata.get("page") if isinstance(item.metadata, dict) else None
    if not isinstance(page, int | float) and item.span is not None:
        page = item.span[0]
    return max(int(page) - 1, 0) if isinstance(page, int | float) else 0


def _pdf_page(uri: str, page: int, size: int) -> Any:
    try:
        import pypdfium2 as pdfium
    except ImportError as e:  # pragma: no cover - depends on the installed extras
        raise NoThumbnail("page thumbnails need pypdfium2: pip install 'omniret[media]'") from e
    from omniret.media.pdf import PDFIUM_LOCK

    with PDFIUM_LOCK:  # PDFium is not thread-safe; the server renders in a thread pool
        try:
            pdf = pdfium.PdfDocument(uri)
        except (pdfium.PdfiumError, OSError) as e:
            raise MediaError(uri, f"cannot open as PDF ({e})") from e
        try:
            if not 0 <= page < len(pdf):
                raise MediaError(uri, f"page {page + 1} out of range (the document has {len(pdf)} pages)")
            pg = pdf[page]
            width, height = pg.get_size()
            scale = size / max(width, height, 1.0)
            return pg.render(scale=max(scale, 0.05)).to_pil()
        finally:
            pdf.close()


def _video_frame(uri: str, start: float) -> Any:
    try:
        import av
    except ImportError as e:  # pragma: no cover - depends on the installed extras
        raise NoThumbnail("video thumbnails need PyAV: pip install 'omniret[media]'") from e
    try:
        with av.open(uri) as container:
            stream = container.streams.video[0]
            if start > 0 and stream.time_base:
                container.seek(int(start / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                t = frame.time if frame.time is not None else 0.0
                if t + 1e-3 >= start or start <= 0:
                    return frame.to_image()
    except (av.error.FFmpegError, IndexError, OSError) as e:
        raise MediaError(uri, f"cannot decode a video frame ({type(e).__name__})") from e
    raise MediaError(uri, f"no video frame at or after {start:.2f}s")
