"""Document structure: sections from outlines and fonts, navigation pages, running heads (pure
functions on hand-made pages, then real texlive manuals with and without their outline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from omniret.media import structure as st
from omniret.media.pdf import open_pdf

TOC = ["Contents", "1 Introduction . . . . . . . 3", "1.1 Getting started . . . . . 3", "1.2 Options . . . . . 5",
       "2 Usage . . . . . . . . 7", "2.1 Examples . . . . . . 8", "Index . . . . . 12"]
INDEX = ["Index", "alignment, 3, 7", "arrays, 4–6", "boxes, 12", "columns, 5, 9", "options, 5", "usage, 7, 8"]


def _page(n: int, lines: list[str], blocks: list[tuple[str, float, float, int]] | None = None) -> st.PageView:
    views = [st.BlockView(t, (0.1, y, 0.9, y + 0.02), size, weight) for t, y, size, weight in blocks or []]
    return st.PageView(n, lines, views)


def test_toc_and_index_pages_are_told_apart_from_body_pages() -> None:
    body = ["Some text about arrays that runs for a while.", "It mentions 3 things.", "And more text here",
            "then a line", "and the end of the page 42 lines"]
    pages = [_page(1, TOC), _page(2, body), _page(3, body), _page(4, body), _page(5, body), _page(6, INDEX)]
    assert st.page_roles(pages) == {1: "toc", 6: "index"}
    # a dense run of outline titles without page numbers is a contents page too
    listed = _page(2, ["Introduction", "Getting started", "Options", "Usage", "Examples", "Reference"])
    titles = ["1 Introduction", "Getting started", "Options", "Usage", "Examples", "Reference"]
    assert st.page_roles([listed], titles, n_pages=50) == {2: "toc"}
    assert st.page_roles([listed], [], n_pages=50) == {}


def test_running_heads_footers_and_boilerplate() -> None:
    pages = [_page(n, [], [(f"Chapter 2: Installation {n}", 0.03, 10, 400), (f"Body text number {n} here", 0.4, 10, 400),
                           ("Copyright notice of the project", 0.5, 10, 400), (str(n), 0.95, 10, 400)])
             for n in range(1, 6)]
    roles = st.block_roles(pages)
    assert roles[(1, 0)] == "header" and roles[(3, 3)] == "footer" and roles[(2, 2)] == "boilerplate"
    assert (1, 1) not in roles  # body text is compared exactly: differing numbers make it body text


def test_headings_from_fonts_make_a_section_tree() -> None:
    def blocks(*items: tuple[str, float, int]) -> list[tuple[str, float, float, int]]:
        return [(t, 0.1 + 0.1 * i, size, w) for i, (t, size, w) in enumerate(items)]

    body = "Plain paragraph text that is long enough to count as the body of this document."
    pages = [
        _page(1, [], blocks(("1 Introduction", 17, 700), (body, 10, 400), ("1.1 Scope", 13, 700), (body, 10, 400))),
        _page(2, [], blocks((body, 10, 400), ("Note", 10, 700), (body, 10, 400), (body * 2, 10, 400))),
        _page(3, [], blocks(("2 Usage", 17, 700), (body, 10, 400), ("A sentence in bold that ends.", 10, 700))),
    ]
    secs = st.detect_headings(pages)
    assert [(s.path, s.level, s.page, s.block) for s in secs] == [
        (("1 Introduction",), 0, 1, 0), (("1 Introduction", "1.1 Scope"), 1, 1, 2),
        (("1 Introduction", "1.1 Scope", "Note"), 2, 2, 1), (("2 Usage",), 0, 3, 0)]
    paths = st.assign_sections(pages, secs)
    assert paths[1] == [("1 Introduction",), ("1 Introduction",), ("1 Introduction", "1.1 Scope"),
                        ("1 Introduction", "1.1 Scope")]
    assert paths[2][0] == ("1 Introduction", "1.1 Scope") and paths[3][2] == ("2 Usage",)


def test_outline_sections_are_located_by_title_or_destination() -> None:
    page = _page(4, [], [("Header line", 0.02, 9, 400), ("Some body text before it", 0.2, 10, 400),
                         ("3.2 Apt pinning", 0.5, 12, 700), ("Pinning lets you", 0.55, 10, 400)])
    entries = [(0, "3 Package management", 4, 0.1), (1, "Apt pinning", 4, 0.48), (1, "Nowhere", 4, None)]
    secs = st.sections_from_outline(entries, [page])
    assert [s.block for s in secs] == [1, 2, None]  # by destination, by title, not located
    assert secs[1].path == ("3 Package management", "Apt pinning")
    paths = st.assign_sections([page], secs[:2])
    assert paths[4] == [(), ("3 Package management",), ("3 Package management", "Apt pinning"),
                        ("3 Package management", "Apt pinning")]


@pytest.mark.parametrize("name", ["amsmath/amsldoc.pdf", "fancyhdr/fancyhdr.pdf"])
def test_real_manual_sections_with_and_without_outline(texdoc: Path, tmp_path: Path, name: str) -> None:
    """The outline's sections land on their pages with located headings; with the outline stripped, the
    headings found from fonts recover most of the outline's (title, page) pairs."""
    from omniret.eval.manuals import heading_query, strip_outline
    from omniret.ingest.documents import decode_pdf
    from omniret.ingest.media import PIXEL_DTYPE, MediaConfig

    src = texdoc / name
    info = open_pdf(src)
    meta, pages, secs = decode_pdf(str(src), MediaConfig(pdf_ocr=False), None, PIXEL_DTYPE)
    assert meta["structure"] == "outline" and len(secs) == len(info.outline)
    located = [s for s in secs if s.block is not None]
    assert len(located) >= 0.9 * len(secs) and all(s.bbox is not None for s in located)
    assert any(p.role == "toc" for p in pages[:4])  # the contents page near the front
    body = [p for p in pages if p.role is None and p.blocks]
    assert sum(bool(p.section) for p in body) >= 0.8 * len(body)

    bare = strip_outline(src, tmp_path / "bare.pdf")
    assert open_pdf(bare).outline == ()
    meta2, _, found = decode_pdf(str(bare), MediaConfig(pdf_ocr=False), None, PIXEL_DTYPE)
    want = {(st._norm(q), e.page) for e in info.outline if (q := heading_query(e.title))}
    got = {(st._norm(s.path[-1]), s.page) for s in found}
    assert meta2["structure"] == "fonts" and len(want & got) >= 0.7 * len(want)


def test_bold_type1_headings_at_body_size(tmp_path: Path) -> None:
    """Helvetica-Bold headings set at the body's size, no outline: PDFium gives the standard Type 1 fonts
    weight 0, so the weight comes from the font's name and the headings still make the sections."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from mediagen import write_text_pdf

    from omniret.ingest.documents import decode_pdf
    from omniret.ingest.media import PIXEL_DTYPE, MediaConfig

    body = [(f"Regular body text line {i} that says something about the tools and the server.", 11) for i in range(8)]
    pages = [[("1 Installing the tools", 11, "bold"), *body], body,
             [*body[:3], ("2 Configuring the server", 11, "bold"), *body[3:]]]
    src = write_text_pdf(tmp_path / "manual.pdf", pages)
    meta, decoded, secs = decode_pdf(str(src), MediaConfig(pdf_ocr=False), None, PIXEL_DTYPE)
    assert meta["structure"] == "fonts"
    assert [(s.path, s.page) for s in secs] == [(("1 Installing the tools",), 1), (("2 Configuring the server",), 3)]
    assert decoded[1].section == ("1 Installing the tools",)  # page 2 lies in the first section
