"""Documents written by the formats' own libraries (python-docx, python-pptx, openpyxl, EbookLib, odfpy,
the standard library's e-mail writer, pillow-heif and Pillow), with distinct topics per section so that
a query has one right answer; and the Debian package files the real-file tests read."""

from __future__ import annotations

import datetime as dt
import os
import zipfile
from email.message import EmailMessage
from pathlib import Path

from PIL import Image

GARDEN = {
    "Soil": "Good soil is the foundation of every garden bed.",
    "Compost": "A compost heap turns kitchen scraps and fallen leaves into dark crumbly humus; earthworms and "
               "fungi do the work if the pile stays moist and is turned every few weeks.",
    "Soil acidity": "Most vegetables prefer a pH between six and seven. Garden lime raises the pH of acidic "
                    "ground, while sulphur and pine needles lower it for blueberries.",
    "Watering": "Water deeply and rarely rather than a little every day.",
    "Drip irrigation": "Drip lines deliver water straight to the roots through small emitters, losing little "
                       "to evaporation; a timer on the tap waters the beds at dawn.",
}


def write_docx(path: Path) -> Path:
    """A handbook: Title, Heading 1/2, a heading style based on Heading 2, a style with only an outline
    level, a table under its section, a ``toc 1`` contents list, a page header and footer."""
    import docx
    from docx.enum.style import WD_STYLE_TYPE
    from docx.oxml.ns import qn
    from docx.oxml.parser import OxmlElement

    d = docx.Document()
    d.core_properties.author = "Ada Gardener"
    d.add_paragraph("Home Garden Handbook", style="Title")
    toc = d.styles.add_style("toc 1", WD_STYLE_TYPE.PARAGRAPH)
    for line in ("Soil ........ 1", "Watering ........ 2"):
        d.add_paragraph(line, style=toc)
    d.add_heading("Soil", level=1)
    d.add_paragraph(GARDEN["Soil"])
    d.add_heading("Compost", level=2)
    d.add_paragraph(GARDEN["Compost"])
    custom = d.styles.add_style("Garden Heading", WD_STYLE_TYPE.PARAGRAPH)
    custom.base_style = d.styles["Heading 2"]
    d.add_paragraph("Soil acidity", style=custom)
    d.add_paragraph(GARDEN["Soil acidity"])
    kapitel = d.styles.add_style("Kapitel", WD_STYLE_TYPE.PARAGRAPH)  # a translated name: only the outline level
    lvl = OxmlElement("w:outlineLvl")
    lvl.set(qn("w:val"), "0")
    kapitel.element.get_or_add_pPr().append(lvl)
    d.add_paragraph("Watering", style=kapitel)
    d.add_paragraph(GARDEN["Watering"])
    d.add_heading("Drip irrigation", level=2)
    d.add_paragraph(GARDEN["Drip irrigation"])
    table = d.add_table(rows=3, cols=2)
    for r, (plant, water) in enumerate([("Plant", "Water per week"), ("Tomato", "25 litres"), ("Lettuce", "10 litres")]):
        table.cell(r, 0).text, table.cell(r, 1).text = plant, water
    d.sections[0].header.paragraphs[0].text = "Home Garden Handbook - draft"
    d.sections[0].footer.paragraphs[0].text = "Printed on recycled paper"
    d.save(path)
    return path


SLIDES = [
    ("Quarterly Review", ["Second quarter, sales and operations"]),
    ("Revenue by Region", ["Europe grew twelve percent on strong bicycle sales", "Asia was flat"]),
    ("Hiring Plan", ["Four warehouse staff in Rotterdam", "One data engineer"]),
]


def write_pptx(path: Path) -> Path:
    """Four slides: titled ones with bullets, a table and speaker notes, a hidden one, an untitled one
    holding a group of text boxes."""
    import pptx
    from pptx.util import Inches

    prs = pptx.Presentation()
    prs.core_properties.title = "Q2 Review"
    for i, (title, bullets) in enumerate(SLIDES):
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        body.text = bullets[0]
        for b in bullets[1:]:
            body.add_paragraph().text = b
        if i == 1:
            rows = [("Region", "Revenue"), ("Europe", "4.2 M"), ("Asia", "1.1 M")]
            shape = slide.shapes.add_table(3, 2, Inches(1), Inches(5), Inches(4), Inches(1))
            for r, row in enumerate(rows):
                for c, v in enumerate(row):
                    shape.table.cell(r, c).text = v
            slide.notes_slide.notes_text_frame.text = "Mention the currency effect on the euro figures."
        if i == 2:
            slide._element.set("show", "0")
    blank = prs.slides.add_slide(prs.slide_layouts[6])
    group = blank.shapes.add_group_shape()
    for j, text in enumerate(["Risks: supply chain delays at the port", "Mitigation: a second supplier"]):
        group.shapes.add_textbox(Inches(1), Inches(1 + j), Inches(6), Inches(1)).text_frame.text = text
    prs.save(path)
    return path


def write_xlsx(path: Path, stock_rows: int = 120) -> Path:
    """Sheets: ``Stock`` (a header and ``stock_rows`` rows: long enough to be chunked), ``Suppliers``,
    a formula whose cached value was never computed, a date, and a hidden ``Notes`` sheet."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Stock"
    ws.append(["SKU", "Item", "Quantity", "Restocked"])
    tools = ["hammer", "screwdriver", "wrench", "pliers", "chisel", "handsaw"]
    for i in range(stock_rows):
        ws.append([f"T-{i:04d}", f"{tools[i % len(tools)]} size {i % 7}", i * 3 % 50, dt.date(2024, 1 + i % 12, 1 + i % 28)])
    sup = wb.create_sheet("Suppliers")
    sup.append(["Name", "Country", "Lead time (days)"])
    sup.append(["Nordic Steel AB", "Sweden", 14])
    sup.append(["Porto Ferragens", "Portugal", 21])
    sup.append(["Total", None, "=SUM(C2:C3)"])
    notes = wb.create_sheet("Notes")
    notes.append(["Inventory is counted on the first Monday of every month"])
    notes.sheet_state = "hidden"
    wb.save(path)
    return path


CHAPTERS = {
    "The Moon": {"Phases": "The Moon shows phases from new moon to full moon as sunlight falls on it from different "
                           "angles during its monthly orbit.",
                 "Tides": "The Moon's gravity raises ocean tides; spring tides come when Sun and Moon line up."},
    "The Planets": {"Mars": "Mars is a cold desert planet with red iron-oxide dust and the tallest volcano, "
                            "Olympus Mons.",
                    "Jupiter": "Jupiter, the largest planet, is a gas giant with a storm called the Great Red Spot."},
}


def write_epub(path: Path) -> Path:
    """An EPUB 3 book: a contents page, two chapters with sections (``h2`` ids), a nested TOC whose
    entries point at the sections (``chapter.xhtml#id``), and the nav document."""
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("omniret-test-astronomy")
    book.set_title("A Small Astronomy")
    book.set_language("en")
    book.add_author("Vera Observer")
    items, toc = [], []
    contents = epub.EpubHtml(title="Contents", file_name="contents.xhtml", lang="en")
    lines = "".join(f"<li>{c}</li>" + "".join(f"<li>{s}</li>" for s in secs) for c, secs in CHAPTERS.items())
    contents.content = f"<h1>Contents</h1><ul>{lines}</ul>"
    items.append(contents)
    for n, (chapter, sections) in enumerate(CHAPTERS.items(), 1):
        ch = epub.EpubHtml(title=chapter, file_name=f"ch{n}.xhtml", lang="en")
        body = "".join(f'<h2 id="s{n}{k}">{s}</h2><p>{text}</p>' for k, (s, text) in enumerate(sections.items()))
        ch.content = f"<h1>{chapter}</h1><p>An introduction to {chapter.lower()}.</p>{body}"
        items.append(ch)
        links = [epub.Link(f"ch{n}.xhtml#s{n}{k}", s, f"s{n}{k}") for k, s in enumerate(sections)]
        toc.append((epub.Section(chapter, f"ch{n}.xhtml"), links))
    for it in items:
        book.add_item(it)
    book.toc = toc
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    epub.write_epub(str(path), book)
    return path


RECIPES = {
    "Breads": {"Sourdough": "Feed the starter the night before; the dough rises slowly in a cool kitchen.",
               "Focaccia": "Dimple the dough with oiled fingers and top it with rosemary and flaky salt."},
    "Soups": {"Minestrone": "Simmer beans, carrots, celery and small pasta in a tomato broth."},
}


def write_odt(path: Path) -> Path:
    """An ODT: a generated table of contents, ``text:h`` headings at two levels, a list and a table."""
    from odf import table as T
    from odf import text as X
    from odf.opendocument import OpenDocumentText

    d = OpenDocumentText()
    toc = X.TableOfContent(name="Contents")
    body = X.IndexBody()
    for chapter in RECIPES:
        body.addElement(X.P(text=f"{chapter}\t1"))
    toc.addElement(body)
    d.text.addElement(toc)
    for chapter, dishes in RECIPES.items():
        d.text.addElement(X.H(outlinelevel=1, text=chapter))
        for dish, how in dishes.items():
            d.text.addElement(X.H(outlinelevel=2, text=dish))
            d.text.addElement(X.P(text=how))
    lst = X.List()
    for item in ("a large pot", "a wooden spoon"):
        li = X.ListItem()
        li.addElement(X.P(text=item))
        lst.addElement(li)
    d.text.addElement(lst)
    tab = T.Table(name="Timings")
    for row in (("Dish", "Minutes"), ("Minestrone", "45")):
        tr = T.TableRow()
        for v in row:
            cell = T.TableCell()
            cell.addElement(X.P(text=v))
            tr.addElement(cell)
        tab.addElement(tr)
    d.text.addElement(tab)
    d.save(str(path))
    return path


def _odf_cell(value: object, table_mod: object, text_mod: object, repeat: int = 1) -> object:
    kind = "float" if isinstance(value, int | float) else "string"
    kw = {"valuetype": kind, **({"value": value} if kind == "float" else {})}
    if repeat > 1:
        kw["numbercolumnsrepeated"] = repeat
    cell = table_mod.TableCell(**kw)  # type: ignore[attr-defined]
    cell.addElement(text_mod.P(text=str(value)))  # type: ignore[attr-defined]
    return cell


def write_ods(path: Path) -> Path:
    """Two sheets written by odfpy: ``Harvest`` (a text header, numbers, a value repeated across two
    columns, an empty row between) and ``Notes`` (one line of text)."""
    from odf import table as T
    from odf import text as X
    from odf.opendocument import OpenDocumentSpreadsheet

    d = OpenDocumentSpreadsheet()
    harvest = T.Table(name="Harvest")
    rows = [["Crop", "Kilograms", "Week 1", "Week 2"], ["Tomatoes", 42, "ok"], [], ["Courgettes", 17, "late"]]
    for row in rows:
        tr = T.TableRow()
        for i, v in enumerate(row):
            tr.addElement(_odf_cell(v, T, X, repeat=2 if i == 2 and row[0] != "Crop" else 1))
        harvest.addElement(tr)
    d.spreadsheet.addElement(harvest)
    notes = T.Table(name="Notes")
    tr = T.TableRow()
    tr.addElement(_odf_cell("Water the greenhouse every evening in July", T, X))
    notes.addElement(tr)
    d.spreadsheet.addElement(notes)
    d.save(str(path))
    return path


def write_odp(path: Path) -> Path:
    """Three slides written by odfpy: a title + outline frame, a slide with a table and speaker notes,
    and an untitled slide with a group of two text frames."""
    from odf import draw as D
    from odf import presentation as P
    from odf import table as T
    from odf import text as X
    from odf.opendocument import OpenDocumentPresentation
    from odf.style import MasterPage, PageLayout

    d = OpenDocumentPresentation()
    layout = PageLayout(name="PL")
    d.automaticstyles.addElement(layout)
    master = MasterPage(name="Default", pagelayoutname=layout)
    d.masterstyles.addElement(master)

    def frame(lines: list[str], cls: str | None = None) -> object:
        f = D.Frame(width="20cm", height="3cm", x="1cm", y="1cm", **({"class": cls} if cls else {}))
        box = D.TextBox()
        for line in lines:
            box.addElement(X.P(text=line))
        f.addElement(box)
        return f

    for n, (title, bullets) in enumerate(SLIDES, 1):
        page = D.Page(name=f"page{n}", masterpagename=master)
        page.addElement(frame([title], "title"))
        page.addElement(frame(bullets, "outline"))
        if n == 2:
            tf = D.Frame(width="10cm", height="3cm", x="1cm", y="6cm")
            tab = T.Table(name="Revenue")
            for row in (("Region", "Revenue"), ("Europe", "4.2 M")):
                tr = T.TableRow()
                for v in row:
                    tr.addElement(_odf_cell(v, T, X))
                tab.addElement(tr)
            tf.addElement(tab)
            page.addElement(tf)
            notes = P.Notes()
            notes.addElement(frame(["Mention the currency effect on the euro figures."], "notes"))
            page.addElement(notes)
        d.presentation.addElement(page)
    last = D.Page(name="risks", masterpagename=master)
    group = D.G()
    group.addElement(frame(["Risks: supply chain delays at the port"]))
    group.addElement(frame(["Mitigation: a second supplier"]))
    last.addElement(group)
    d.presentation.addElement(last)
    d.save(str(path))
    return path


def write_eml(path: Path, *, docx_file: Path, photo: Image.Image, nested_subject: str = "Ferry times") -> Path:
    """A message with a plain and an HTML body, and attachments: a Word file, a JPEG photo, a text note,
    a forwarded message, and an unreadable binary."""
    import io

    msg = EmailMessage()
    msg["Subject"] = "Trip itinerary for Lisbon"
    msg["From"] = "Rita <rita@example.org>"
    msg["To"] = "team@example.org"
    msg["Date"] = "Tue, 14 May 2024 09:30:00 +0200"
    msg.set_content("Hi all,\n\nWe land in Lisbon on Friday morning and take the tram to the old town.\n")
    msg.add_alternative("<p>Hi all,</p><p>We land in <b>Lisbon</b> on Friday morning.</p>", subtype="html")
    msg.add_attachment(docx_file.read_bytes(), maintype="application",
                       subtype="vnd.openxmlformats-officedocument.wordprocessingml.document", filename="handbook.docx")
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=90)
    msg.add_attachment(buf.getvalue(), maintype="image", subtype="jpeg", filename="photo.jpg")
    msg.add_attachment("Pack sunscreen and a light jacket for the evening wind.\n", filename="packing.txt")
    inner = EmailMessage()
    inner["Subject"] = nested_subject
    inner["From"] = "port@example.org"
    inner.set_content("The ferry to Cacilhas leaves every twenty minutes from Cais do Sodre.\n")
    msg.add_attachment(inner)
    msg.add_attachment(b"\x00\x01\x02 not readable", maintype="application", subtype="octet-stream",
                       filename="blob.bin")
    path.write_bytes(bytes(msg))
    return path


def write_heic(path: Path, image: Image.Image) -> Path:
    import pillow_heif

    pillow_heif.from_pillow(image.convert("RGB")).save(str(path), quality=85)
    return path


def truncated(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def with_member(src: Path, dst: Path, name: str, data: bytes) -> Path:
    """A copy of the zip ``src`` with member ``name`` replaced (or added)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename != name:
                zout.writestr(info, zin.read(info.filename))
        zout.writestr(name, data)
    return dst


# -- files from Debian packages --------------------------------------------------------------------
DEB_FILES = {
    "example.docx": "usr/lib/R/site-library/officer/doc_examples/example.docx",
    "example.pptx": "usr/lib/R/site-library/officer/doc_examples/example.pptx",
    "template.pptx": "usr/lib/R/site-library/officer/template/template.pptx",  # no slides
    "datasets.xlsx": "usr/lib/R/site-library/readxl/extdata/datasets.xlsx",
    "quick_start.epub": "usr/share/calibre/quick_start/eng.epub",
}


def debian_root() -> Path:
    return Path(os.environ.get("OMNIRET_DEBDOCS", "/tmp/omniret-debdocs/x"))


def debian_file(name: str) -> Path | None:
    """A document shipped by a Debian package, unpacked by scripts/test-data.sh (None when missing)."""
    p = debian_root() / DEB_FILES[name]
    return p if p.is_file() else None
