"""Paged documents (PDF today; any format that has pages or sections): decoded pages with their
structure, and the items they become. The item conventions are in :mod:`omniret.ingest.media`'s
docstring; this module implements them.

Worker side: :func:`decode_pdf` reads every page (text layer or OCR, layout blocks with fonts), then
the structure pass of :mod:`omniret.media.structure` — sections from the outline, or headings from
the fonts when there is none; ``toc``/``index`` pages; running headers, footers and boilerplate — so
each page and block arrives with its section path and role. Another format fills the same
:class:`PageData`/:class:`SectionData` (e.g. with :func:`structure_pages`) and gets the same items.

Encoding side: :func:`document_items` makes the document item, a page item per page, a block item
per distinct block text of a page (identical texts on one page are stored once), and a **section
item** per section: a child of the page where the section starts, whose ``text`` (BM25) is the
section path joined by `` › `` and whose vector embeds the heading title, so a heading query lands on
the page where its section starts — the page a reader wants — and a search for a title finds it by
words and by meaning.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omniret.items import Item, Modality, make_id

Box = tuple[float, float, float, float]
#: layout blocks shorter than this many characters are not indexed as items
MIN_BLOCK_CHARS = 8
#: joins the titles of a section path in text (BM25 text, labels)
PATH_SEP = " › "


@dataclass
class BlockData:
    text: str
    bbox: Box | None = None  # fractions of the page, origin top-left
    section: tuple[str, ...] = ()
    role: str | None = None  # header | footer | boilerplate | toc | index (navigation); None = body


@dataclass
class SectionData:
    path: tuple[str, ...]  # titles from the top
    level: int  # 0 = top
    page: int  # 1-based page where it starts
    block: int | None = None  # the heading's block on that page (None: not located)
    bbox: Box | None = None  # the heading's box, when located


@dataclass
class PageData:
    number: int
    text: str
    text_source: str
    size: tuple[float, float]
    blocks: list[BlockData] = field(default_factory=list)
    pixels: np.ndarray | None = None
    png: bytes | None = None  # the rendered page for the page model (MediaConfig.page_size)
    section: tuple[str, ...] = ()  # the section in force at the page's first body block
    role: str | None = None  # toc | index for navigation pages


# -- structure (worker side) ----------------------------------------------------------------------
def structure_pages(pages: Sequence[PageData], outline: Sequence[tuple[int, str, int, float | None]],
                    lines: dict[int, list[str]] | None = None, fonts: dict[int, list[tuple[float, int, int]]] | None = None,
                    n_pages: int | None = None) -> tuple[list[SectionData], str]:
    """Fill each page's and block's ``section`` and ``role`` in place; returns the sections and where they
    came from (``"outline"``, ``"fonts"`` or ``"none"``).

    ``outline``: ``(level, title, page, top)`` entries (empty: headings are detected from ``fonts``,
    ``{page: [(size, weight, lines) per block]}``). ``lines``: each page's text lines (default: its text).
    """
    from omniret.media import structure as st

    views = []
    for pg in pages:
        f = (fonts or {}).get(pg.number) or []
        views.append(st.PageView(pg.number, (lines or {}).get(pg.number) or pg.text.split("\n"), [
            st.BlockView(b.text, b.bbox or (0.0, 0.0, 1.0, 1.0), *(f[j] if j < len(f) else (0.0, 0, 1)))
            for j, b in enumerate(pg.blocks)]))
    roles = st.page_roles(views, [e[1] for e in outline], n_pages)
    if outline:
        sections, source = st.sections_from_outline(outline, views), "outline"
    else:
        sections = st.detect_headings(views, skip=frozenset(roles))
        source = "fonts" if sections else "none"
    paths = st.assign_sections(views, sections)
    edges = st.block_roles(views)
    for pg in pages:
        pg.role = roles.get(pg.number)
        body = None
        for j, (b, path) in enumerate(zip(pg.blocks, paths.get(pg.number, []), strict=False)):
            b.section = path
            b.role = edges.get((pg.number, j)) or pg.role
            if body is None and b.role is None:
                body = path
        pg.section = body if body is not None else (paths[pg.number][0] if paths.get(pg.number) else ())
    by_number = {pg.number: pg for pg in pages}
    out = []
    for s in sections:
        pg = by_number.get(s.page)
        box = pg.blocks[s.block].bbox if pg is not None and s.block is not None and s.block < len(pg.blocks) else None
        out.append(SectionData(s.path, s.level, s.page, s.block, box))
    return out, source


def decode_pdf(uri: str, cfg: Any, preprocess: Any, dtype: Any
               ) -> tuple[dict[str, Any], list[PageData], list[SectionData]]:
    """Decode a PDF's pages with their structure (see the module docstring): ``(file metadata, pages,
    sections)``. ``cfg`` is the worker's ``MediaConfig``; pixels travel as ``dtype``."""
    from omniret.media.pdf import PdfOptions, iter_pages, open_pdf

    PIXEL_DTYPE = dtype  # noqa: N806
    info = open_pdf(uri)
    page_model = bool(cfg.page_size)
    opts = PdfOptions(ocr=cfg.pdf_ocr, blocks=cfg.pdf_blocks, render="always" if page_model else
                      "textless" if preprocess else "never",
                      image_size=max(cfg.page_size or 0, cfg.image_size), max_pages=cfg.pdf_max_pages)
    meta: dict[str, Any] = {"pages": info.pages, **({"title": info.title} if info.title else {})}
    pages: list[PageData] = []
    fonts: dict[int, list[tuple[float, int, int]]] = {}
    if not page_model and preprocess is not None:
        def fn(im: Any) -> Any:
            return np.asarray(preprocess(im), dtype=PIXEL_DTYPE)
    else:
        fn = None  # type: ignore[assignment]
    for page in iter_pages(uri, opts, image_fn=fn):
        pixels, png = page.image, None
        if page_model:
            from omniret.spaces.pages import page_png

            png = page_png(page.image)
            pixels = (np.asarray(preprocess(page.image), dtype=PIXEL_DTYPE)
                      if preprocess is not None and not page.text else None)
        pages.append(PageData(page.number, page.text, page.text_source, (page.width, page.height),
                                  [BlockData(b.text, b.bbox) for b in page.blocks], pixels, png))
        fonts[page.number] = [(b.size, b.weight, b.lines) for b in page.blocks]
    outline = [(e.level, e.title, e.page, e.top) for e in info.outline]
    sections, meta["structure"] = structure_pages(pages, outline, fonts=fonts, n_pages=info.pages)
    meta["ocr_pages"] = sum(p.text_source == "ocr" for p in pages)
    meta["sections"] = len(sections)
    return meta, pages, sections


# -- items (encoding side) ------------------------------------------------------------------------
#: the document item's metadata key of a document committed in parts: ``{"pages_done": n, "content_hash": h}``
PARTIAL = "partial"


def document_items(uri: str, p: Any, base: dict[str, Any], common: dict[str, Any], work: Any,
                   pages: tuple[int, int] | None = None) -> None:
    """Append a paged document's items and embedding inputs to ``work`` (a ``MediaWork``): the document,
    its pages (those numbered within ``pages = (first, last)``, default all), their blocks, and the
    sections starting on those pages.

    A part that stops before the last page writes the document item with ``metadata["partial"]`` (pages
    done, content hash): an ``add`` killed later resumes after those pages (see :mod:`omniret.ingest.run`);
    the last part writes it without."""
    fid, name = make_id(uri), base["name"]
    first = next((pg.text for pg in p.pages if pg.text), "")
    title = p.meta.get("title") or (first.split("\n", 1)[0][:200] if first else os.path.splitext(name)[0])
    lo, hi = pages or (1, p.pages[-1].number if p.pages else 0)
    meta = {**base, **p.meta}
    if p.pages and hi < p.pages[-1].number:
        meta[PARTIAL] = {"pages_done": hi, "content_hash": common.get("content_hash")}
    work.items.append(Item(fid, uri, Modality.DOCUMENT, text=title, metadata=meta, **common))
    starts: dict[int, list[tuple[int, SectionData]]] = {}
    for i, s in enumerate(p.sections):
        starts.setdefault(s.page, []).append((i, s))
    for pg in p.pages:
        if lo <= pg.number <= hi:
            _page_items(uri, name, fid, pg, starts.get(pg.number, []), common, work)


def page_items_count(pg: PageData, n_sections: int) -> int:
    """How many items a page becomes (itself, its indexed blocks, the sections starting on it)."""
    return 1 + len({b.text for b in pg.blocks if len(b.text) >= MIN_BLOCK_CHARS}) + n_sections


def _page_items(uri: str, name: str, fid: str, pg: PageData, sections: list[tuple[int, SectionData]],
                common: dict[str, Any], work: Any) -> None:
    pid, n = make_id(uri, part=f"p{pg.number}"), float(pg.number)
    label = f"{name} p. {pg.number}"
    meta: dict[str, Any] = {"name": name, "page": pg.number, "text_source": pg.text_source,
                            "page_size": [round(pg.size[0], 1), round(pg.size[1], 1)], "label": label}
    if pg.section:
        meta["section"] = list(pg.section)
    if pg.role:
        meta["role"] = pg.role
    work.items.append(Item(pid, uri, Modality.DOCUMENT, parent_id=fid, span=(n, n), text=pg.text or None,
                           metadata=meta, **common))
    if pg.png is not None:
        work.pages.append((pid, pg.png))
    if pg.text:
        work.texts.append((pid, pg.text))
    elif pg.pixels is not None:
        work.pixels.append((pid, pg.pixels))
    elif pg.png is None:
        meta["embedded"] = False
        work.unembedded += 1
    seen: set[str] = set()
    for j, b in enumerate(pg.blocks):
        if len(b.text) < MIN_BLOCK_CHARS or b.text in seen:  # noise, and identical texts stored once a page
            continue
        seen.add(b.text)
        bid = make_id(uri, part=f"p{pg.number}b{j}")
        bmeta: dict[str, Any] = {"name": name, "page": pg.number, "block": j, "label": label}
        if b.bbox is not None:
            bmeta["bbox"] = list(b.bbox)
        if b.section:
            bmeta["section"] = list(b.section)
        if b.role:
            bmeta["role"] = b.role
        work.items.append(Item(bid, uri, Modality.DOCUMENT, parent_id=pid, span=(n, n), text=b.text,
                               metadata=bmeta, **common))
        work.texts.append((bid, b.text))
    for i, s in sections:
        sid = make_id(uri, part=f"s{i}")
        smeta: dict[str, Any] = {"name": name, "page": pg.number, "section": list(s.path), "heading": s.path[-1],
                                 "level": s.level, "label": f"{label} · {s.path[-1]}"}
        if s.block is not None:
            smeta["block"] = s.block
        if s.bbox is not None:
            smeta["bbox"] = list(s.bbox)
        work.items.append(Item(sid, uri, Modality.DOCUMENT, parent_id=pid, span=(n, n), text=PATH_SEP.join(s.path),
                               metadata=smeta, **common))
        work.texts.append((sid, s.path[-1]))
