"""Excel workbooks (``.xlsx``, ``.xlsm``) with openpyxl: one part per sheet, its rows as lines of text.

The workbook is opened read-only (rows are streamed, so a large sheet needs the memory of its text)
with the values Excel last computed (``data_only``: a formula gives its cached result). Each
worksheet is a part with ``kind="sheet"``, ``page`` = its 1-based place in the workbook, ``title`` = the
sheet's name (``section = (name,)``, ``meta["sheet"]``), and ``text`` = the name, then one line per non-empty row, cells joined with
``" | "`` (trailing empty cells dropped; numbers as Python writes them, dates in ISO form). When the
first non-empty row is all text it is taken as the column header: it is the part's ``context``, so
every chunk of a long sheet is embedded with the header it belongs under. At most ``max_rows`` rows
are read per sheet (``meta["truncated"]`` says when more were there). Chart sheets have no cells and
are skipped.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

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

_KIND = "xlsx"


def read_xlsx(uri: str, options: DocOptions) -> StructuredDoc:
    """Read an ``.xlsx`` file into one part per worksheet (see the module docstring)."""
    openpyxl = require(uri, "openpyxl", "openpyxl", "Excel (.xlsx) files")
    open_zip(uri, "xlsx", options).close()
    try:
        quiet("openpyxl")  # "extension is not supported": parts openpyxl skips, not errors
        wb = openpyxl.load_workbook(uri, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises KeyError, InvalidFileException, lxml errors on broken parts
        raise library_error(uri, _KIND, e) from e
    try:
        parts = [_sheet(ws, n, options.max_rows) for n, ws in enumerate(wb.worksheets, 1)]
        props = wb.properties
    except Exception as e:
        raise library_error(uri, _KIND, e) from e
    finally:
        wb.close()
    meta = {k: v for k, v in (("author", props.creator), ("subject", props.subject),
                              ("created", props.created.isoformat() if props.created else None)) if v}
    meta["sheets"] = [p.title for p in parts]
    return finish(StructuredDoc("xlsx", props.title or None, meta, parts), options)


def _sheet(ws: Any, number: int, max_rows: int) -> DocPart:
    name = str(ws.title)
    if hasattr(ws, "reset_dimensions"):  # read-only sheets trust the stored size, which some writers get wrong
        ws.reset_dimensions()
    lines: list[str] = []
    header = ""
    n = 0
    truncated = False
    for row in ws.iter_rows(values_only=True):
        cells = [_cell(v) for v in row]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        if n >= max_rows:
            truncated = True
            break
        if n == 0 and all(isinstance(v, str) for v in row[: len(cells)] if v is not None):
            header = " | ".join(cells)
        lines.append(" | ".join(cells))
        n += 1
    meta: dict[str, Any] = {"sheet": name, "rows": n}
    if truncated:
        meta["truncated"] = True
    if ws.sheet_state != "visible":
        meta["hidden"] = True
    text = "\n".join([name, *lines])
    return DocPart(text, kind="sheet", title=name, section=(name,), page=number,
                   context=f"{name}: {header}" if header else name, meta=meta)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    if isinstance(v, dt.datetime) and v.time() == dt.time(0):
        return v.date().isoformat()  # a date cell: Excel stores every date as a date-time
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    return " ".join(str(v).split())
