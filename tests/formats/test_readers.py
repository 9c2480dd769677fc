"""Each document reader on real files (Debian packages, CPython's test data) and on files written by the
format's own library: sections, slides, sheets, roles, metadata, chunks, attachments."""

from __future__ import annotations

import shutil
from pathlib import Path

import docgen  # type: ignore[import-not-found]
import numpy as np
import pytest

from omniret.errors import MediaError, OmniretError
from omniret.media import decode
from omniret.media.document import DocOptions
from omniret.media.formats import FORMATS, document_extensions, format_for, read_document
from omniret.media.image import load_image
from omniret.sources.walk import MODALITY_BY_EXTENSION


def _by_path(doc) -> dict:  # type: ignore[no-untyped-def]
    return {p.section: p for p in doc.parts if p.role is None}


# -- HTML -------------------------------------------------------------------------------------------
def test_html_real_debian_manual(base_passwd_html: Path) -> None:
    doc = read_document(base_passwd_html)
    assert doc.format == "html" and doc.title == "Users and Groups in the Debian System"
    parts = _by_path(doc)
    chapter = parts[("Chapter 2. Users and Groups",)]
    assert chapter.text.startswith("Chapter 2. Users and Groups\n") and "/var/mail" in chapter.text
    assert len(chapter.chunks) > 5 and all(len(c.text) <= 800 for c in chapter.chunks)
    assert chapter.meta["anchors"] == ["ENTRIES"]  # DocBook's <a name> inside the heading
    toc = [p for p in doc.parts if p.role == "toc"]  # DocBook's <div class="TOC">
    assert len(toc) == 1 and "1. Introduction" in toc[0].text and "2. Users and Groups" in toc[0].text


def test_html_sections_roles_tables(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text(
        "<html><head><title>Site</title><style>p{}</style></head><body>"
        "<header>Acme Corp - home</header><nav><a href='#a'>A</a> <a href='#b'>B</a></nav>"
        "<p>Intro <b>text</b>.</p><h1 id='a'>Alpha</h1><p>one</p><h3>Deep</h3><p>two</p>"
        "<h2>Beta</h2><table><tr><th>k</th><th>v</th></tr><tr><td>x</td><td>1</td></tr></table>"
        "<script>var x = 1;</script><h1>Gamma</h1><article><header><h2>In article</h2></header><p>three</p>"
        "</article><footer>(c) Acme</footer></body></html>", encoding="utf-8")
    doc = read_document(page)
    roles = {p.role: p.text for p in doc.parts if p.role}
    assert roles == {"header": "Acme Corp - home", "toc": "A B", "footer": "(c) Acme"}
    parts = _by_path(doc)
    assert parts[()].text == "Intro text."
    assert parts[("Alpha", "Deep")].text == "Deep\n\ntwo"
    assert parts[("Alpha", "Beta")].text == "Beta\n\nk | v\nx | 1"  # an h2 closes the h3, stays under the h1
    assert parts[("Gamma", "In article")].text == "In article\n\nthree"  # a header inside an article is content
    assert "var x" not in "".join(p.text for p in doc.parts)


# -- Word -------------------------------------------------------------------------------------------
def test_docx_real_officer_example(debdoc) -> None:  # type: ignore[no-untyped-def]
    doc = read_document(debdoc("example.docx"))
    assert doc.format == "docx" and doc.title == "document title" and doc.meta["author"] == "author"
    parts = _by_path(doc)
    assert set(parts) >= {("Title 1",), ("Title 2",), ("Title 2", "Sub title 1"), ("Title 2", "Sub title 2")}
    assert "Petals | Internode | Sepal | Bract" in parts[("Title 2", "Sub title 2")].text  # the table, in its section
    assert {p.role for p in doc.parts if p.role} == {"header", "footer"}


def test_docx_written_by_python_docx(made: Path) -> None:
    doc = read_document(made / "garden.docx")
    assert doc.title == "Home Garden Handbook" and doc.meta["author"] == "Ada Gardener"
    parts = _by_path(doc)
    assert list(parts) == [("Soil",), ("Soil", "Compost"), ("Soil", "Soil acidity"), ("Watering",),
                           ("Watering", "Drip irrigation")]  # custom style based on Heading 2; outline level only
    assert parts[("Watering", "Drip irrigation")].text.endswith("Tomato | 25 litres\nLettuce | 10 litres")
    roles = {p.role: p.text for p in doc.parts if p.role}
    assert roles == {"toc": "Soil ........ 1\nWatering ........ 2", "header": "Home Garden Handbook - draft",
                     "footer": "Printed on recycled paper"}


# -- PowerPoint -------------------------------------------------------------------------------------
def test_pptx_real_officer_example(debdoc) -> None:  # type: ignore[no-untyped-def]
    doc = read_document(debdoc("example.pptx"))
    assert doc.meta["slides"] == 3 and [p.page for p in doc.parts] == [1, 2, 3]
    assert [p.section for p in doc.parts] == [("Title",), ("Hi",), ()]
    assert "Header 1 | Header 2 | Header 3" in doc.parts[0].text  # a table shape


def test_pptx_written_by_python_pptx(made: Path) -> None:
    doc = read_document(made / "review.pptx")
    assert doc.title == "Q2 Review" and doc.meta["slides"] == 4
    s1, s2, s3, s4 = doc.parts
    assert (s2.kind, s2.page, s2.title, s2.section) == ("slide", 2, "Revenue by Region", ("Revenue by Region",))
    assert "Europe | 4.2 M" in s2.text and s2.text.endswith("Notes: Mention the currency effect on the euro figures.")
    assert s2.meta["notes"].startswith("Mention") and s3.meta == {"hidden": True}
    assert s4.section == () and s4.text == "Risks: supply chain delays at the port\nMitigation: a second supplier"


# -- Excel ------------------------------------------------------------------------------------------
def test_xlsx_real_readxl_datasets(debdoc) -> None:  # type: ignore[no-untyped-def]
    doc = read_document(debdoc("datasets.xlsx"))
    assert doc.meta["sheets"] == ["iris", "mtcars", "chickwts", "quakes"]
    quakes = doc.parts[3]
    assert quakes.section == ("quakes",) and quakes.meta == {"sheet": "quakes", "rows": 1001}  # all rows read
    assert quakes.context == "quakes: lat | long | depth | mag | stations"
    assert quakes.text.split("\n")[2] == "-20.42 | 181.62 | 562 | 4.8 | 41"
    assert len(quakes.chunks) > 10


def test_xlsx_written_by_openpyxl(made: Path) -> None:
    doc = read_document(made / "inventory.xlsx", DocOptions(max_rows=50))
    stock, suppliers, notes = doc.parts
    assert stock.meta == {"sheet": "Stock", "rows": 50, "truncated": True}
    assert stock.text.split("\n")[2] == "T-0000 | hammer size 0 | 0 | 2024-01-01"
    assert suppliers.text.endswith("Porto Ferragens | Portugal | 21\nTotal")  # a formula never computed: no value
    assert notes.meta["hidden"] is True and doc.meta["author"] == "openpyxl"


# -- EPUB -------------------------------------------------------------------------------------------
def test_epub_real_calibre_guide(debdoc) -> None:  # type: ignore[no-untyped-def]
    doc = read_document(debdoc("quick_start.epub"))
    assert doc.title == "Quick Start Guide" and doc.meta["authors"] == ["John Schember"]
    parts = _by_path(doc)
    drm = parts[("Common Tasks", "Task 2: Conversion", "2.7: DRM: the bane of conversion")]  # from the TOC's anchors
    assert "Digital Rights Management" in drm.text and drm.meta["file"] == "text/task_2_conversion.xhtml"
    assert ("Common Tasks", "Task 2: Conversion") in parts  # the chapter heading is not repeated below its entry
    toc = [p for p in doc.parts if p.role == "toc"]
    assert toc and all(p.meta["file"] == "text/toc.xhtml" for p in toc)  # a printed contents page, by its lines


def test_epub_written_by_ebooklib(made: Path) -> None:
    doc = read_document(made / "astronomy.epub")
    assert doc.title == "A Small Astronomy" and doc.meta["language"] == "en"
    parts = _by_path(doc)
    assert list(parts) == [("The Moon",), ("The Moon", "Phases"), ("The Moon", "Tides"), ("The Planets",),
                           ("The Planets", "Mars"), ("The Planets", "Jupiter")]
    assert {p.meta["file"] for p in doc.parts if p.role == "toc"} == {"nav.xhtml", "contents.xhtml"}


# -- OpenDocument -----------------------------------------------------------------------------------
def test_odt_written_by_odfpy(made: Path) -> None:
    doc = read_document(made / "recipes.odt")
    parts = _by_path(doc)
    assert list(parts) == [("Breads",), ("Breads", "Sourdough"), ("Breads", "Focaccia"), ("Soups",),
                           ("Soups", "Minestrone")]
    assert parts[("Soups", "Minestrone")].text.endswith("a large pot\na wooden spoon\nDish | Minutes\nMinestrone | 45")
    assert [p.text for p in doc.parts if p.role == "toc"] == ["Breads 1\nSoups 1"]


def test_ods_written_by_odfpy(tmp_path: Path) -> None:
    doc = read_document(docgen.write_ods(tmp_path / "harvest.ods"))
    assert doc.format == "ods" and doc.meta["sheets"] == ["Harvest", "Notes"]
    harvest, notes = doc.parts
    assert harvest.kind == "sheet" and harvest.page == 1 and harvest.section == ("Harvest",)
    assert harvest.text.split("\n") == ["Harvest", "Crop | Kilograms | Week 1 | Week 2",
                                        "Tomatoes | 42 | ok | ok", "Courgettes | 17 | late | late"]  # repeated cell
    assert harvest.context == "Harvest: Crop | Kilograms | Week 1 | Week 2" and harvest.meta["rows"] == 3
    assert notes.page == 2 and notes.text.endswith("Water the greenhouse every evening in July")
    short = read_document(tmp_path / "harvest.ods", DocOptions(max_rows=2)).parts[0]
    assert short.meta == {"sheet": "Harvest", "rows": 2, "truncated": True}


def test_odp_written_by_odfpy(tmp_path: Path) -> None:
    doc = read_document(docgen.write_odp(tmp_path / "review.odp"))
    assert doc.format == "odp" and doc.title == "Quarterly Review" and doc.meta["slides"] == 4
    assert [(p.kind, p.page, p.title) for p in doc.parts] == [
        ("slide", 1, "Quarterly Review"), ("slide", 2, "Revenue by Region"), ("slide", 3, "Hiring Plan"),
        ("slide", 4, None)]
    revenue = doc.parts[1]
    assert "Region | Revenue\nEurope | 4.2 M" in revenue.text  # the table
    assert revenue.meta["notes"] == "Mention the currency effect on the euro figures."
    assert doc.parts[3].text == "Risks: supply chain delays at the port\nMitigation: a second supplier"  # a group


def test_ods_named_odp_is_refused_with_the_fix(tmp_path: Path) -> None:
    wrong = docgen.write_ods(tmp_path / "harvest.ods").rename(tmp_path / "harvest.odp")
    with pytest.raises(MediaError, match=r"OpenDocument spreadsheet \(\.ods\).*rename"):
        read_document(wrong)


# -- e-mail -----------------------------------------------------------------------------------------
def test_eml_real_cpython_messages(cpython_mail: Path, tmp_path: Path) -> None:
    for name in ("msg_07", "msg_02"):
        shutil.copy(cpython_mail / f"{name}.txt", tmp_path / f"{name}.eml")
    fish = read_document(tmp_path / "msg_07.eml", DocOptions(image_fn=lambda im: np.asarray(im)))
    assert fish.title == "Here is your dingus fish" and fish.meta["date"] == "2001-04-20T19:35:02-04:00"
    assert fish.parts[0].text == "Hi there,\n\nThis is the dingus fish."
    (gif,) = fish.attachments
    assert gif.name == "dingusfish.gif" and gif.error is None and gif.image.shape[2] == 3
    digest = read_document(tmp_path / "msg_02.eml")
    assert [a.content_type for a in digest.attachments] == ["message/rfc822"] * 5  # a digest's messages
    assert all(a.doc is not None and a.doc.format == "eml" for a in digest.attachments)
    assert digest.attachments[0].doc.title == "[Ppp] testing #1"


def test_eml_written_by_the_email_package(made: Path) -> None:
    doc = read_document(made / "trip.eml", DocOptions(image_fn=lambda im: im.size))
    assert doc.title == "Trip itinerary for Lisbon" and doc.meta["from"] == "Rita <rita@example.org>"
    assert [p.text for p in doc.parts] == ["Hi all,\n\nWe land in Lisbon on Friday morning and take the tram to the "
                                            "old town."]  # the plain body; its HTML alternative is not repeated
    by_name = {a.name: a for a in doc.attachments}
    assert [p.section for p in by_name["handbook.docx"].doc.parts if p.role is None][1] == ("Soil", "Compost")
    assert by_name["photo.jpg"].image == (600, 400)
    assert by_name["packing.txt"].doc.parts[0].text.startswith("Pack sunscreen")
    assert by_name["message-4.eml"].doc.title == "Ferry times"
    assert by_name["blob.bin"].error == "not a format omniret reads (application/octet-stream)"


def test_eml_attachment_depth_limit(made: Path) -> None:
    doc = read_document(made / "trip.eml", DocOptions(max_depth=0))
    assert all(a.doc is None and "max_depth" in (a.error or "") for a in doc.attachments)


def test_eml_pdf_attachment(texdoc: Path, tmp_path: Path) -> None:
    from email.message import EmailMessage

    pdf = min(texdoc.rglob("*.pdf"), key=lambda p: p.stat().st_size)
    msg = EmailMessage()
    msg["Subject"], msg["From"] = "the manual", "a@example.org"
    msg.set_content("attached")
    msg.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf", filename=pdf.name)
    (tmp_path / "m.eml").write_bytes(bytes(msg))
    (att,) = read_document(tmp_path / "m.eml").attachments
    assert att.doc.format == "pdf" and att.doc.meta["pages"] == len(att.doc.parts) >= 1
    assert att.doc.parts[0].page == 1 and att.doc.parts[0].kind == "page" and att.doc.parts[0].text


# -- HEIC / AVIF ------------------------------------------------------------------------------------
def test_heic_and_avif_decode(made: Path) -> None:
    from skimage import data

    for name, ref in (("cat.heic", data.chelsea()), ("rocket.avif", data.rocket())):
        im = load_image(made / name)
        assert im.mode == "RGB" and im.size == (ref.shape[1], ref.shape[0])
        err = np.abs(np.asarray(im, dtype=np.float32) - ref).mean()
        assert err < 12, (name, err)  # lossy, but the same picture


# -- registry and dispatch --------------------------------------------------------------------------
def test_registry_feeds_walker_and_decode(made: Path) -> None:
    assert document_extensions() == {"pdf", "html", "htm", "xhtml", "docx", "pptx", "xlsx", "xlsm", "epub", "odt", "ods",
                                     "odp", "eml"}
    for ext in document_extensions():
        assert MODALITY_BY_EXTENSION[ext].value == "document"
    assert MODALITY_BY_EXTENSION["heic"].value == MODALITY_BY_EXTENSION["avif"].value == "image"
    assert format_for("x.bin", "application/epub+zip") is FORMATS["epub"] and format_for("x.bin") is None
    assert decode(made / "review.pptx", "document", max_rows=5).format == "pptx"
    with pytest.raises(OmniretError, match="unknown option.*ocr_dpi.*choose from chunk_chars"):
        decode(made / "review.pptx", "document", ocr_dpi=3)
