"""Document structure from decoded pages: sections, navigation pages, running headers and footers.

Pure functions over plain page views (:class:`PageView`: each page's text lines and blocks with their
boxes and fonts), so PDFs and any other paged format share them.

- **Sections** (:func:`sections_from_outline`, :func:`detect_headings`, :func:`assign_sections`). The
  outline (bookmarks) gives each section its title, depth and start page (and, for XYZ destinations,
  how far down the page it starts). Without an outline, headings are detected from the fonts: the body
  size is the size covering most characters; a short block (≤ 2 lines, ≤ 120 characters, not a
  sentence) set at least 15 % larger than the body, or bold at about body size where the body is not
  bold, is a heading; its level is the rank of its size among the heading sizes (larger = higher).
  Texts repeated on several pages (running heads) are not headings. Every block then belongs to the
  section whose heading precedes it in reading order; a page's section is that of its first body block.
- **Navigation pages** (:func:`page_roles`): a page is ``toc`` when at least 5 of its lines (and 40 %)
  end in a page number after dotted leaders or are section titles (a dense run of outline titles),
  or when such number-ending lines dominate a page in the first fifth of the document; ``index`` when
  number-ending lines dominate and most of them list several pages (``term, 12, 40``) or the page is
  in the last fifth of the document.
- **Running headers, footers, boilerplate** (:func:`block_roles`): a block in the top (bottom) 10 % of
  its page whose text, digits masked, recurs on at least 3 pages (or is only a page number) is a
  ``header`` (``footer``); elsewhere a block is ``boilerplate`` when its exact text recurs on at
  least 3 pages and 25 % of them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

Box = tuple[float, float, float, float]
NAV_ROLES = ("toc", "index", "header", "footer", "boilerplate")


@dataclass
class BlockView:
    text: str
    bbox: Box  # fractions of the page, origin top-left
    size: float = 0.0
    weight: int = 0
    lines: int = 1


@dataclass
class PageView:
    number: int  # 1-based
    lines: list[str]
    blocks: list[BlockView] = field(default_factory=list)


@dataclass(frozen=True)
class Section:
    """A section: its title path from the top, level (0 = top), start page and the heading's block on
    that page (its index, or None when the heading was not located: the section starts at the top)."""

    path: tuple[str, ...]
    level: int
    page: int
    block: int | None = None
    top: float | None = None

    @property
    def title(self) -> str:
        return self.path[-1]


# -- sections -------------------------------------------------------------------------------------
_NUM = re.compile(r"^(?:(?:chapter|appendix|section|part)\s+)?(?:\d+(?:\.\d+)*|[A-Z](?:\.\d+)+)[.:]?\s+", re.I)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", _NUM.sub("", " ".join(text.split())).lower()).split())


def sections_from_outline(entries: Sequence[tuple[int, str, int, float | None]], pages: Sequence[PageView]
                          ) -> list[Section]:
    """Sections from outline entries ``(level, title, page, top)`` in document order, each located on
    its page: the block whose text is the title (numbering ignored), else the first block at or below
    the destination's ``top``, else the top of the page."""
    by_number = {p.number: p for p in pages}
    stack: list[str] = []
    out = []
    for level, title, page, top in entries:
        level = max(0, min(level, len(stack)))
        stack[level:] = [title]
        view = by_number.get(page)
        block = _locate(view, title, top) if view is not None else None
        out.append(Section(tuple(stack), level, page, block, top))
    return out


def _locate(page: PageView, title: str, top: float | None) -> int | None:
    want = _norm(title)
    if want:
        for j, b in enumerate(page.blocks):
            got = _norm(b.text)
            if got == want or (len(want) >= 8 and got.startswith(want) and len(got) <= len(want) + 40):
                return j
    if top is not None:
        for j, b in enumerate(page.blocks):
            if b.bbox[3] >= top + 0.005:
                return j
    return None


def body_font(pages: Sequence[PageView]) -> tuple[float, int]:
    """The (size, weight) that covers the most characters of the document's blocks."""
    cover: Counter[tuple[float, int]] = Counter()
    for p in pages:
        for b in p.blocks:
            if b.size > 0:
                cover[(round(b.size, 1), b.weight)] += len(b.text)
    return max(cover.items(), key=lambda kv: kv[1])[0] if cover else (0.0, 0)


def _heading_like(b: BlockView, body: tuple[float, int]) -> bool:
    text = b.text.strip()
    if b.size <= 0 or b.lines > 2 or not 3 <= len(text) <= 120 or not re.search(r"[A-Za-z]{2}", text):
        return False
    if text.endswith((".", ",", ";")) and not re.match(r"^\d+(\.\d+)*\.?$", text.split()[0]):
        return False
    bigger = b.size >= 1.15 * body[0]
    bold = b.weight >= body[1] + 150 and b.size >= 0.95 * body[0] and len(text) <= 80
    return bigger or bold


def detect_headings(pages: Sequence[PageView], skip: frozenset[int] = frozenset()) -> list[Section]:
    """Headings found from fonts (see the module docstring), as sections in document order.

    ``skip``: page numbers not searched for headings (navigation pages)."""
    body = body_font(pages)
    if body[0] <= 0:
        return []
    found: list[tuple[int, int, BlockView]] = []
    for p in pages:
        if p.number in skip:
            continue
        found += [(p.number, j, b) for j, b in enumerate(p.blocks) if _heading_like(b, body)]
    seen = Counter(_mask(b.text) for _, _, b in found)
    found = [f for f in found if seen[_mask(f[2].text)] < 3]  # recurring texts are running heads
    sizes = sorted({_size_key(b, body) for _, _, b in found}, reverse=True)
    rank = {s: i for i, s in enumerate(sizes)}
    stack: list[str] = []
    out = []
    for page, j, b in found:
        title = " ".join(b.text.split())
        level = min(rank[_size_key(b, body)], len(stack))
        stack[level:] = [title]
        out.append(Section(tuple(stack), level, page, j, b.bbox[1]))
    return out


def _size_key(b: BlockView, body: tuple[float, int]) -> tuple[float, int]:
    return round(b.size * 2) / 2, int(b.weight >= body[1] + 150)


def assign_sections(pages: Sequence[PageView], sections: Sequence[Section]) -> dict[int, list[tuple[str, ...]]]:
    """``{page number: [section path of each block]}``: the section in force at each block (in reading
    order). Blocks before the first heading get the empty path."""
    starts: dict[int, list[tuple[int, Section]]] = {}
    for s in sections:
        starts.setdefault(s.page, []).append((s.block if s.block is not None else -1, s))
    current: tuple[str, ...] = ()
    out = {}
    for p in sorted(pages, key=lambda v: v.number):
        here = sorted(starts.get(p.number, []), key=lambda t: t[0])
        paths = []
        k = 0
        for j in range(len(p.blocks)):
            while k < len(here) and here[k][0] <= j:
                current = here[k][1].path
                k += 1
            paths.append(current)
        while k < len(here):  # headings located nowhere on the page: in force from its end
            current = here[k][1].path
            k += 1
        out[p.number] = paths
    return out


# -- navigation pages, running heads and boilerplate ---------------------------------------------
_DOTTED = re.compile(r"(?:\.\s*){3,}\s*[\divxlc]+$", re.I)
_ENDS_NUM = re.compile(r"[A-Za-z]{2}.*?[\s.,)]\s*(\d{1,4}|[ivxlc]{1,6})$", re.I)
_MULTI = re.compile(r"\d+\s*[,–-]\s*\d+\s*$")


def page_roles(pages: Sequence[PageView], titles: Sequence[str] = (), n_pages: int | None = None) -> dict[int, str]:
    """``{page number: "toc" | "index"}`` for navigation pages (see the module docstring)."""
    known = {t for t in (_norm(x) for x in titles) if len(t) >= 4}
    total = n_pages or max((p.number for p in pages), default=1)
    out = {}
    for p in pages:
        lines = [ln for ln in (" ".join(x.split()) for x in p.lines) if ln]
        if len(lines) < 5:
            continue
        dotted = sum(bool(_DOTTED.search(ln)) for ln in lines)
        numbered = [ln for ln in lines if _ENDS_NUM.search(ln)]
        listed = sum(_norm(_DOTTED.sub("", ln).rstrip("0123456789 ")) in known for ln in lines) if known else 0
        share = max(dotted, listed, len(numbered)) / len(lines)
        if max(dotted, listed) >= 5 and max(dotted, listed) >= 0.4 * len(lines):
            out[p.number] = "toc"
        elif len(numbered) >= 5 and share >= 0.5:
            multi = sum(bool(_MULTI.search(ln)) for ln in numbered)
            if multi >= 0.3 * len(numbered) or p.number > 0.8 * total:
                out[p.number] = "index"
            elif p.number <= max(0.2 * total, 3):
                out[p.number] = "toc"
    return out


def _mask(text: str) -> str:
    return " ".join(re.sub(r"\d+", "#", text.lower()).split())


_PAGE_NUMBER = re.compile(r"^(?:page\s+)?(?:\d{1,4}|[ivxlc]{1,6})(?:\s*(?:of|/)\s*\d+)?$", re.I)


def block_roles(pages: Sequence[PageView]) -> dict[tuple[int, int], str]:
    """``{(page number, block index): role}`` for running headers, footers and boilerplate blocks."""
    n = len(pages)
    masked: dict[str, set[int]] = {}
    exact: dict[str, set[int]] = {}
    for p in pages:
        for b in p.blocks:
            masked.setdefault(_mask(b.text), set()).add(p.number)
            exact.setdefault(b.text, set()).add(p.number)
    out = {}
    for p in pages:
        for j, b in enumerate(p.blocks):
            edge = "header" if b.bbox[3] <= 0.1 else "footer" if b.bbox[1] >= 0.9 else None
            if edge and (len(masked[_mask(b.text)]) >= 3 or _PAGE_NUMBER.match(b.text.strip())):
                out[(p.number, j)] = edge
            elif (count := len(exact[b.text])) >= 3 and count >= 0.25 * n and n >= 4:
                out[(p.number, j)] = "boilerplate"
    return out
