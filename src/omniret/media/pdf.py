"""PDF decoding with pypdfium2: pages streamed one at a time, each with its text, layout blocks and image.

:func:`open_pdf` reads the document's facts (page count, title) and :func:`iter_pages` yields a
:class:`PdfPage` per page, opening and closing each page in turn, so a PDF of thousands of pages
needs the memory of one page (plus what the caller keeps). Per page:

- ``text``: the text layer (PDFium's text page); when the page has none and ``ocr=True``, the page
  is rendered at ``ocr_dpi`` and read by RapidOCR (PP-OCR ONNX models shipped in the
  ``rapidocr_onnxruntime`` / ``rapidocr`` wheels);
- ``blocks``: layout-level text blocks with boxes. PDFium's text rectangles (runs of text on one
  line) are joined into lines (vertical overlap ≥ 50 %), and lines into blocks (next line starts
  within ``0.8`` line heights below and overlaps horizontally), a greedy reading of the layout in
  the spirit of MMDocIR's layout-level items. OCR line boxes are grouped the same way. Boxes are
  ``(x0, y0, x1, y1)`` as fractions of the page, origin top-left;
- ``image``: the page rendered so its short side is ``image_size`` pixels (its long side at most
  ``MAX_ASPECT`` times that: extreme page shapes are drawn smaller), passed through ``image_fn``; rendered only when ``render`` says so (``"always"``, ``"textless"``, ``"never"``).

Encrypted, malformed and empty files raise :class:`MediaError`; a page that fails to parse is
reported with its number.

PDFium is not thread-safe, not even across documents (pypdfium2's documentation): every call into it
here holds :data:`PDFIUM_LOCK`, never across a ``yield``, so decode threads, the server's thumbnails and
a caller's own threads can share the process.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from omniret.errors import MediaError
from omniret.media._io import describe, file_size, open_binary
from omniret.media.image import MAX_ASPECT

Box = tuple[float, float, float, float]
#: OCR renders have at most this many pixels (a 200 × 200 inch page at 150 dpi would be 900 M)
MAX_OCR_PIXELS = 25_000_000
_OCR_ENGINE: Any = None
_OCR_LOCK = threading.Lock()
#: held around every PDFium call in the process (PDFium is not thread-safe); re-entrant
PDFIUM_LOCK = threading.RLock()


@dataclass
class TextBlock:
    text: str
    bbox: Box  # fractions of the page, origin top-left
    size: float = 0.0  # font size (points) covering most of the block's characters; 0 when unknown (OCR)
    weight: int = 0  # font weight (400 regular, 700 bold) of those characters; 0 when unknown
    lines: int = 1


@dataclass
class PdfPage:
    number: int  # 1-based
    width: float  # points
    height: float
    text: str
    text_source: str  # "layer", "ocr" or "none"
    blocks: list[TextBlock] = field(default_factory=list)
    image: Any = None


@dataclass(frozen=True)
class OutlineEntry:
    """One bookmark of the PDF outline: its depth (0 = top), title, the 1-based page it points to and,
    when the destination gives one, how far down that page it points (fraction of the height, from the top)."""

    level: int
    title: str
    page: int
    top: float | None = None


@dataclass(frozen=True)
class PdfInfo:
    pages: int
    title: str | None
    metadata: dict[str, str]
    outline: tuple[OutlineEntry, ...] = ()


@dataclass(frozen=True)
class PdfOptions:
    ocr: bool = True
    ocr_dpi: float = 150.0
    blocks: bool = True
    render: str = "textless"  # "always" | "textless" | "never"
    image_size: int = 224
    max_pages: int | None = None  # None: all pages
    password: str | None = None


def _open_document(uri: str, password: str | None) -> Any:
    import pypdfium2 as pdfium

    with open_binary(uri) as f:
        if file_size(f) == 0:
            raise MediaError(uri, "empty file (0 bytes)")
        head = f.read(1024)
    try:
        return pdfium.PdfDocument(uri, password=password)
    except pdfium.PdfiumError as e:
        msg = str(e)
        if "password" in msg.lower():
            raise MediaError(uri, "encrypted PDF (a password is required)") from e
        if b"%PDF" not in head:
            raise MediaError(uri, f"not a PDF (looks like {describe(head)})") from e
        raise MediaError(uri, f"malformed PDF ({msg.split('(PDFium: ')[-1].rstrip(').') or msg})") from e


def open_pdf(path: str | os.PathLike[str], password: str | None = None) -> PdfInfo:
    """Page count, title and document metadata of the PDF at ``path``."""
    uri = os.fspath(path)
    with PDFIUM_LOCK:
        doc = _open_document(uri, password)
        try:
            return _info(uri, doc)
        finally:
            doc.close()


def _info(uri: str, doc: Any) -> PdfInfo:
    n = len(doc)
    if n == 0:
        raise MediaError(uri, "PDF has no pages")
    try:
        meta = {k: v for k, v in doc.get_metadata_dict(skip_empty=True).items() if isinstance(v, str)}
    except Exception:  # broken info dictionaries are common; they only lose the title
        meta = {}
    return PdfInfo(n, meta.get("Title") or None, meta, read_outline(doc, n))


#: at most this many outline entries are read (a malformed outline can loop or be huge)
MAX_OUTLINE = 20_000


def read_outline(doc: Any, n_pages: int) -> tuple[OutlineEntry, ...]:
    """The document outline (bookmarks) in document order, from an open ``pdfium.PdfDocument``.

    Entries that point outside the document or nowhere are dropped; titles are whitespace-normalised
    and empty ones dropped. A broken outline yields what could be read before the break (PDFium
    already guards against cycles). ``top`` comes from an XYZ destination's ``top`` (PDF points from
    the bottom), as a fraction of the page height from the top.
    """
    out: list[OutlineEntry] = []
    try:
        for bm in doc.get_toc(max_depth=15):
            if len(out) >= MAX_OUTLINE:
                break
            title = " ".join((bm.get_title() or "").split())
            dest = bm.get_dest()
            index = dest.get_index() if dest is not None else None
            if not title or index is None or not 0 <= index < n_pages:
                continue
            out.append(OutlineEntry(int(bm.level), title, index + 1, _dest_top(doc, dest, index)))
    except Exception:  # a damaged outline costs the structure, never the document
        pass
    return tuple(out)


def _dest_top(doc: Any, dest: Any, index: int) -> float | None:
    try:
        mode, pos = dest.get_view()
        if mode != 1 or len(pos) < 2 or not pos[1]:  # 1 = PDFDEST_VIEW_XYZ: [left, top, zoom]
            return None
        height = doc.get_page_size(index)[1]
        return min(max(1.0 - float(pos[1]) / height, 0.0), 1.0) if height > 0 else None
    except Exception:
        return None


def iter_pages(
    path: str | os.PathLike[str],
    options: PdfOptions = PdfOptions(),  # noqa: B008 - frozen, shared safely
    image_fn: Callable[[Any], Any] | None = None,
) -> Iterator[PdfPage]:
    """Yield the pages of ``path`` in order, one open page at a time (see the module docstring)."""
    import pypdfium2 as pdfium

    uri = os.fspath(path)
    if options.render not in ("always", "textless", "never"):
        raise MediaError(uri, f"render must be 'always', 'textless' or 'never', got {options.render!r}")
    with PDFIUM_LOCK:
        doc = _open_document(uri, options.password)
    try:
        with PDFIUM_LOCK:
            n = _info(uri, doc).pages
        if options.max_pages is not None:
            n = min(n, options.max_pages)
        for i in range(n):
            with PDFIUM_LOCK:
                try:
                    page = doc[i]
                except pdfium.PdfiumError as e:
                    raise MediaError(uri, f"page {i + 1} cannot be parsed ({e})") from e
                try:
                    out = _read_page(uri, page, i + 1, options, image_fn)
                finally:
                    page.close()
            yield out
    finally:
        with PDFIUM_LOCK:
            doc.close()


def _read_page(uri: str, page: Any, number: int, options: PdfOptions, image_fn: Callable[[Any], Any] | None) -> PdfPage:
    w, h = page.get_size()
    if w <= 0 or h <= 0:
        raise MediaError(uri, f"page {number} has an empty size ({w}x{h})")
    textpage = page.get_textpage()
    try:
        text = _clean(textpage.get_text_range())
        blocks = _layer_blocks(textpage, w, h) if options.blocks and text else []
    finally:
        textpage.close()
    out = PdfPage(number, float(w), float(h), text, "layer" if text else "none", blocks)
    if not text and options.ocr:
        out.text, ocr_blocks = _ocr_page(page, options.ocr_dpi, w, h)
        out.text_source = "ocr" if out.text else "none"
        out.blocks = ocr_blocks if options.blocks else []
    if options.render == "always" or (options.render == "textless" and not out.text):
        im = render_page(page, options.image_size)
        out.image = image_fn(im) if image_fn else im
    return out


def render_page(page: Any, short_side: int) -> Any:
    """An RGB PIL image of ``page`` whose short side is about ``short_side`` pixels, and whose long side is
    at most ``MAX_ASPECT × short_side`` (a 3 × 14400 pt page is drawn smaller, not 448 × 2,150,400 px)."""
    w, h = page.get_size()
    scale = min(short_side / min(w, h), short_side * MAX_ASPECT / max(w, h))
    return page.render(scale=scale).to_pil().convert("RGB")


def _ocr_scale(dpi: float, w: float, h: float) -> float:
    """The render scale for OCR: ``dpi``, lowered so the page has at most :data:`MAX_OCR_PIXELS`."""
    scale = dpi / 72.0
    return min(scale, math.sqrt(MAX_OCR_PIXELS / max(w * h, 1e-6)))


def _clean(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(x for x in lines if x).strip()


def _layer_blocks(textpage: Any, w: float, h: float) -> list[TextBlock]:
    """Text blocks from PDFium's text rectangles (PDF points, origin bottom-left → fractions, top-left),
    each with the font size and weight of the character at its rectangles' centres."""
    runs: list[tuple[Box, str]] = []
    fonts: list[tuple[float, int]] = []
    for i in range(textpage.count_rects()):
        left, bottom, right, top = textpage.get_rect(i)
        t = " ".join(textpage.get_text_bounded(left, bottom, right, top).split())
        if t:
            runs.append(((left / w, 1 - top / h, right / w, 1 - bottom / h), t))
            y, tol = (bottom + top) / 2, (top - bottom) / 2
            font = _font_at(textpage, (left + right) / 2, y, tol)
            fonts.append(font if font[0] > 0 else _font_at(textpage, left + min(tol, (right - left) / 4), y, tol))
    return group_blocks(runs, fonts=fonts)


#: font names (subset prefix dropped, lower case) that say bold: the word, and TeX's bold-extended families
_BOLD_NAME = re.compile(r"bold|black|heavy|demi|^(cmbx|sfbx|ecbx|cmb\d)")


def _font_at(textpage: Any, x: float, y: float, tol: float) -> tuple[float, int]:
    """``(size in points, weight)`` of the character nearest ``(x, y)`` (``(0, 0)`` when none is).

    PDFium reports weight 0 for fonts whose descriptor gives none — among them the standard Type 1
    fonts (Helvetica, Helvetica-Bold, Times-Bold …) that have no descriptor at all. Their weight then
    comes from the font's name: 700 when it says bold (``Helvetica-Bold``, ``NimbusSanL-Bold``,
    ``CMBX10``), else 400, so bold-only headings in such PDFs still stand out from the body."""
    import ctypes

    import pypdfium2.raw as pdfium_c

    i = textpage.get_index(x, y, max(tol, 1.0), max(tol, 1.0))
    if i is None or i < 0:
        return 0.0, 0
    size = float(pdfium_c.FPDFText_GetFontSize(textpage.raw, i))
    weight = int(pdfium_c.FPDFText_GetFontWeight(textpage.raw, i))
    if weight <= 0:
        buf = ctypes.create_string_buffer(128)
        n = pdfium_c.FPDFText_GetFontInfo(textpage.raw, i, buf, len(buf), None)
        name = buf.value.decode("latin-1").split("+", 1)[-1].lower() if 0 < n <= len(buf) else ""
        weight = (700 if _BOLD_NAME.search(name) else 400) if name else 0
    return size, weight


def group_blocks(runs: list[tuple[Box, str]], line_gap: float = 0.8,
                 fonts: list[tuple[float, int]] | None = None) -> list[TextBlock]:
    """Join text runs (box, text), boxes top-left-origin, into lines and lines into blocks.

    Two runs share a line when their vertical overlap is at least half the shorter height; a line
    joins a block when it starts within ``line_gap`` line heights below the block's last line and
    overlaps it horizontally. Blocks come out in reading order (top to bottom, then left to right).
    ``fonts`` (aligned with ``runs``): each run's ``(size, weight)``; a block gets the size and the
    weight that cover most of its characters.
    """
    lines = _join_lines(runs)
    # box, runs, [last line's bottom], [lines], [last line's font]; only blocks whose last line is near
    # the current one stay open (lines come top to bottom), which keeps a dense page linear
    blocks: list[tuple[list[float], list[int], list[float], list[int], list[tuple[float, int]]]] = []
    open_: list[int] = []
    for lb, members in sorted(lines, key=lambda x: (x[0][1], x[0][0])):
        height = lb[3] - lb[1]
        font = _dominant([(fonts[n], len(runs[n][1])) for n in members]) if fonts else (0.0, 0)
        open_ = [k for k in open_ if blocks[k][2][0] >= lb[1] - max(0.06, 2 * height)]
        for k in open_:
            bb, bm, last, nl, bf = blocks[k]
            gap = lb[1] - last[0]
            if -0.5 * height <= gap <= line_gap * height and min(bb[2], lb[2]) > max(bb[0], lb[0]) \
                    and _same_font(bf[0], font):
                bb[:] = [min(bb[0], lb[0]), min(bb[1], lb[1]), max(bb[2], lb[2]), max(bb[3], lb[3])]
                bm.extend(members)
                last[0] = lb[3]
                nl[0] += 1
                bf[0] = font
                break
        else:
            open_.append(len(blocks))
            blocks.append((list(lb), list(members), [lb[3]], [1], [font]))
    out = []
    for bb, bm, _, nl, _ in blocks:
        text = " ".join(runs[n][1] for n in bm)
        box = tuple(round(min(max(float(v), 0.0), 1.0), 4) for v in bb)
        size, weight = _dominant([(fonts[n], len(runs[n][1])) for n in bm]) if fonts else (0.0, 0)
        out.append(TextBlock(text, box, size, weight, nl[0]))  # type: ignore[arg-type]
    return out


_BAND = 0.004  # line lookup buckets: fractions of the page height


def _join_lines(runs: list[tuple[Box, str]]) -> list[tuple[list[float], list[int]]]:
    """Runs joined into lines, left to right: a run extends a line it overlaps vertically by at least half
    the shorter height and starts less than 3 of its heights after. Lines are found through buckets of
    their vertical centre, so a page of thousands of runs costs linear time."""
    lines: list[tuple[list[float], list[int]]] = []  # box, runs
    bands: dict[int, list[int]] = {}
    for n in sorted(range(len(runs)), key=lambda n: (runs[n][0][0], runs[n][0][1])):
        box = runs[n][0]
        h = box[3] - box[1]
        lo, hi = int((box[1] - h) / _BAND), int((box[3] + h) / _BAND)
        seen: set[int] = set()
        hit = None
        for band in range(lo, hi + 1):
            for k in bands.get(band, ()):
                if k in seen:
                    continue
                seen.add(k)
                lb = lines[k][0]
                overlap = min(lb[3], box[3]) - max(lb[1], box[1])
                if overlap >= 0.5 * min(lb[3] - lb[1], h) and box[0] - lb[2] < 3 * h and (hit is None or k < hit):
                    hit = k
        if hit is None:
            hit = len(lines)
            lines.append((list(box), []))
        else:
            lb = lines[hit][0]
            lb[:] = [min(lb[0], box[0]), min(lb[1], box[1]), max(lb[2], box[2]), max(lb[3], box[3])]
        lines[hit][1].append(n)
        band = int((lines[hit][0][1] + lines[hit][0][3]) / 2 / _BAND)
        if hit not in bands.setdefault(band, []):
            bands[band].append(hit)
    return lines


def _same_font(a: tuple[float, int], b: tuple[float, int]) -> bool:
    """Whether two lines are set alike: sizes within 10 % and weights within 150 (unknown fonts match
    anything), so a heading line does not merge into the paragraph under it."""
    if not a[0] or not b[0]:
        return True
    return abs(a[0] - b[0]) <= 0.1 * max(a[0], b[0]) and abs(a[1] - b[1]) < 150


def _dominant(votes: list[tuple[tuple[float, int], int]]) -> tuple[float, int]:
    """The (size, weight) pair that covers the most characters (ties: the larger size)."""
    cover: dict[tuple[float, int], int] = {}
    for (size, weight), n in votes:
        key = (round(size, 1), weight)
        cover[key] = cover.get(key, 0) + n
    return max(cover.items(), key=lambda kv: (kv[1], kv[0][0]))[0] if cover else (0.0, 0)


def ocr_engine() -> Any:
    """The process-wide RapidOCR engine (loaded on first use; ``rapidocr_onnxruntime`` or ``rapidocr``)."""
    global _OCR_ENGINE
    with _OCR_LOCK:
        if _OCR_ENGINE is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError:
                try:
                    from rapidocr import RapidOCR
                except ImportError as e:
                    raise MediaError("<ocr>", "OCR needs 'rapidocr_onnxruntime' (pip install rapidocr_onnxruntime)") from e
            _OCR_ENGINE = RapidOCR()
        return _OCR_ENGINE


def ocr_image(image: Any) -> list[tuple[Box, str, float]]:
    """OCR an RGB PIL image: ``[(box in pixels (x0, y0, x1, y1), text, score)]`` in the engine's order."""
    import numpy as np

    engine = ocr_engine()
    arr = np.asarray(image.convert("RGB"))
    res = engine(arr)
    if hasattr(res, "txts"):  # rapidocr >= 2: an object with boxes / txts / scores
        triples = list(zip(res.boxes if res.boxes is not None else [], res.txts or [], res.scores or [], strict=False))
    else:  # rapidocr_onnxruntime: (list of [box, text, score] or None, timings)
        triples = [(b, t, s) for b, t, s in (res[0] or [])]
    out = []
    for box, text, score in triples:
        pts = np.asarray(box, dtype=np.float64).reshape(-1, 2)
        out.append(((pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()), str(text), float(score)))
    return out


def _ocr_page(page: Any, dpi: float, w: float, h: float) -> tuple[str, list[TextBlock]]:
    im = page.render(scale=_ocr_scale(dpi, w, h)).to_pil().convert("RGB")
    W, H = im.size
    lines = ocr_image(im)
    runs = [((x0 / W, y0 / H, x1 / W, y1 / H), t) for (x0, y0, x1, y1), t, _ in lines if t.strip()]
    blocks = group_blocks(runs)
    return "\n".join(b.text for b in blocks), blocks
