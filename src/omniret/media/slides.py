"""PowerPoint presentations (``.pptx``) with python-pptx: one part per slide, its title as its section.

Each slide is a part with ``page`` = its 1-based number, ``title`` = the title placeholder's text
(``section = (title,)``; untitled slides have ``()``), and ``text`` = the title, then the text of its
shapes in reading order (top to bottom, then left to right; grouped shapes opened; tables as rows of
cells joined with ``" | "``; chart titles), then the speaker notes after ``"Notes:"``. The notes also
go to ``meta["notes"]``; hidden slides carry ``meta["hidden"] = True``. Metadata: the core
properties and the number of slides.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from omniret.errors import MediaError
from omniret.media.document import (
    DocOptions,
    DocPart,
    StructuredDoc,
    finish,
    library_error,
    open_zip,
    require,
)

_KIND = "pptx"


def read_pptx(uri: str, options: DocOptions) -> StructuredDoc:
    """Read a ``.pptx`` file into one part per slide (see the module docstring)."""
    pptx = require(uri, "pptx", "python-pptx", "PowerPoint (.pptx) files")
    open_zip(uri, "pptx", options).close()
    try:
        prs = pptx.Presentation(uri)
        parts = [_slide(slide, n) for n, slide in enumerate(prs.slides, 1)]
        props = prs.core_properties
    except MediaError:
        raise
    except Exception as e:  # python-pptx raises KeyError, ValueError, lxml errors on broken parts
        raise library_error(uri, _KIND, e) from e
    meta = {k: v for k, v in (("author", props.author), ("subject", props.subject), ("keywords", props.keywords),
                              ("created", props.created.isoformat() if props.created else None)) if v}
    meta["slides"] = len(parts)
    title = props.title or next((p.title for p in parts if p.title), None)
    return finish(StructuredDoc("pptx", title, meta, parts), options)


def _slide(slide: Any, number: int) -> DocPart:
    title_shape = slide.shapes.title
    title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None and title_shape.has_text_frame else ""
    lines = [title] if title else []
    for shape in _reading_order(slide.shapes):
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        lines.extend(_shape_lines(shape))
    meta: dict[str, Any] = {}
    if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
        notes = slide.notes_slide.notes_text_frame.text.strip()
        if notes:
            meta["notes"] = notes
            lines += ["", f"Notes: {notes}"]
    if slide._element.get("show") == "0":
        meta["hidden"] = True
    text = "\n".join(lines) or f"Slide {number}"  # an empty slide still has a place in the deck
    return DocPart(text, kind="slide", title=title or None, section=(title,) if title else (), page=number, meta=meta)


def _reading_order(shapes: Any) -> Iterator[Any]:
    """Shapes top to bottom, then left to right; groups opened in place."""
    def key(s: Any) -> tuple[int, int]:
        return (s.top if s.top is not None else 0, s.left if s.left is not None else 0)

    for shape in sorted(shapes, key=key):
        if getattr(shape, "shapes", None) is not None:
            yield from _reading_order(shape.shapes)  # a group shape
        else:
            yield shape


def _shape_lines(shape: Any) -> list[str]:
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = []
        for row in shape.table.rows:
            cells = [" ".join(c.text.split()) for c in row.cells]
            if any(cells):
                rows.append(" | ".join(cells))
        return rows
    if getattr(shape, "has_chart", False) and shape.has_chart:
        chart = shape.chart
        return [chart.chart_title.text_frame.text] if chart.has_title and chart.chart_title.has_text_frame else []
    if shape.has_text_frame:
        return [" ".join(p.text.split()) for p in shape.text_frame.paragraphs if p.text.strip()]
    return []
