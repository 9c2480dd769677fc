"""HTML (and the XHTML inside EPUBs) with Beautiful Soup: headings ``h1``–``h6`` cut the text into sections.

:func:`html_parts` parses with lxml when it is installed (Python's ``html.parser`` otherwise; Beautiful
Soup detects the encoding from the byte-order mark, ``<meta charset>`` or the bytes) and walks the
body in document order, without recursion (deep markup cannot overflow the stack):

- a heading starts a section; its path is the titles of the open headings above it (an ``h3``
  closes the previous ``h3``–``h6``); text before the first heading is a part with the path ``()``;
- ``<nav>`` (or ``role="navigation"``, or an element whose class or id names a table of contents:
  ``toc``, ``toctree``, ``table-of-contents``, as DocBook, Sphinx and MediaWiki write them) becomes a part with ``role="toc"``; a page-level ``<header>`` /
  ``<footer>`` (not inside ``<article>``, ``<main>`` or ``<section>``; or ``role="banner"`` /
  ``"contentinfo"``) a part with ``role="header"`` / ``"footer"``;
- block elements break lines (paragraphs, list items, table rows), table cells are joined with
  ``" | "``; scripts, styles, templates and inline SVG are dropped;
- each part records the ``id`` s of its heading (``meta["anchors"]``), which EPUB tables of contents
  point at.
"""

from __future__ import annotations

import re
from typing import Any

from omniret.errors import MediaError
from omniret.media._io import describe, looks_like_text, open_binary
from omniret.media.document import (
    DocOptions,
    DocPart,
    Outline,
    StructuredDoc,
    finish,
    quiet,
    read_head,
    require,
)

_SKIP = frozenset({"script", "style", "noscript", "template", "head", "svg", "iframe", "object", "select"})
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_PARAGRAPH = frozenset({"p", "div", "section", "article", "main", "aside", "blockquote", "pre", "table", "ul",
                        "ol", "dl", "figure", "form", "fieldset", "details", "address", "hr", "body"})
_LINE = frozenset({"li", "tr", "br", "dt", "dd", "figcaption", "caption", "summary", "thead", "tbody", "tfoot"})
_ARIA_ROLES = {"navigation": "toc", "banner": "header", "contentinfo": "footer"}
_TOC_NAME = re.compile(r"(?:^|[-_])(?:toc|toctree|table-of-contents)(?:$|[-_])", re.I)
_SPACE = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n{3,}")


def read_html(uri: str, options: DocOptions) -> StructuredDoc:
    """Read an HTML file into a :class:`StructuredDoc` of sections (see the module docstring)."""
    head = read_head(uri, options, 1024)
    if not looks_like_text(head):
        raise MediaError(uri, f"not an HTML file (looks like {describe(head)})")
    with open_binary(uri) as f:
        data = f.read()
    title, parts = html_parts(uri, data)
    return finish(StructuredDoc("html", title, {}, parts), options)


def html_parts(uri: str, data: bytes | str) -> tuple[str | None, list[DocPart]]:
    """The title and the parts of an HTML document (``uri`` names it in errors)."""
    bs4 = require(uri, "bs4", "beautifulsoup4", "HTML")
    try:
        quiet(category=bs4.XMLParsedAsHTMLWarning)  # XHTML (EPUB chapters) read as HTML on purpose, as browsers do
        soup = bs4.BeautifulSoup(data, _parser())
    except Exception as e:  # the parsers recover from nearly anything; what is left is not HTML
        raise MediaError(uri, f"cannot parse as HTML ({type(e).__name__}: {e})") from e
    title = None
    if soup.title is not None and soup.title.get_text(strip=True):
        title = _SPACE.sub(" ", soup.title.get_text()).strip()
    root = soup.body or soup
    builder = _Builder()
    _walk(root, builder, bs4)
    parts = builder.close()
    if title is None:
        title = next((p.title for p in parts if p.title and p.role is None), None)
    return title, parts


def _parser() -> str:
    try:
        import lxml  # noqa: F401 - only whether it is there

        return "lxml"
    except ImportError:
        return "html.parser"


def _walk(root: Any, b: _Builder, bs4: Any, *, flat: bool = False) -> None:
    """Feed ``root``'s text to ``b`` in document order; ``flat``: headings and navigation are plain text."""
    strings = (bs4.NavigableString, bs4.CData)
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            b.end(node.name)
            continue
        if type(node) in strings:
            b.text(str(node))
            continue
        if not isinstance(node, bs4.Tag) or node.name in _SKIP:
            continue
        if not flat:
            role = _role(node)
            if role is not None:
                sub = _Builder()
                _walk(node, sub, bs4, flat=True)
                b.role_part(role, "".join(sub.buf))
                continue
            level = _HEADINGS.get(node.name)
            if level is not None:
                b.heading(level, _SPACE.sub(" ", node.get_text(" ")).strip(), _anchors(node))
                continue
        b.start(node.name)
        stack.append((node, True))
        stack.extend((c, False) for c in reversed(node.contents))


def _role(node: Any) -> str | None:
    aria = _ARIA_ROLES.get(str(node.get("role", "")).lower())
    if aria is not None:
        return aria
    if node.name == "nav" or any(_TOC_NAME.search(n) for n in [*node.get_attribute_list("class"), node.get("id")] if n):
        return "toc"
    if node.name in ("header", "footer") and node.find_parent(["article", "main", "section"]) is None:
        return node.name
    return None


def _anchors(heading: Any) -> list[str]:
    """Ids a link can point at to reach ``heading``: its own, its descendants', its section's."""
    ids = [heading.get("id")] + [t.get("id") or t.get("name") for t in heading.find_all(True)]
    parent = heading.parent
    if parent is not None and parent.name in ("section", "div", "article") and parent.get("id"):
        first = parent.find(True)
        if first is heading:
            ids.append(parent.get("id"))
    return [str(i) for i in ids if i]


class _Builder:
    """The text of the open section, with line breaks from the markup, fed to an :class:`Outline`."""

    def __init__(self) -> None:
        self.outline = Outline()
        self.buf: list[str] = []
        self.row_cells: list[int] = []  # cells seen in each open table row

    def text(self, s: str) -> None:
        self.buf.append(_SPACE.sub(" ", s))

    def _break(self, name: str) -> None:
        if name in _PARAGRAPH or name in _HEADINGS:
            self.buf.append("\n\n")
        elif name in _LINE:
            self.buf.append("\n")

    def start(self, name: str) -> None:
        self._break(name)
        if name == "tr":
            self.row_cells.append(0)
        elif name in ("td", "th") and self.row_cells:
            if self.row_cells[-1]:
                self.buf.append(" | ")
            self.row_cells[-1] += 1

    def end(self, name: str) -> None:
        if name in _PARAGRAPH or name in _HEADINGS:  # line breaks only before: rows and items end at the next
            self.buf.append("\n\n")
        if name == "tr" and self.row_cells:
            self.row_cells.pop()

    def heading(self, level: int, title: str, anchors: list[str]) -> None:
        if title:
            self._flush()
            self.outline.heading(level, title, {"anchors": anchors} if anchors else None)

    def role_part(self, role: str, text: str) -> None:
        self.outline.role_part(role, tidy(text))

    def _flush(self) -> None:
        self.outline.text(tidy("".join(self.buf)))
        self.buf = []

    def close(self) -> list[DocPart]:
        self._flush()
        return self.outline.close()


def tidy(text: str) -> str:
    """Whitespace of extracted text: runs of spaces become one, lines are stripped, at most one blank line."""
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
