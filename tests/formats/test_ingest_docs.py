"""Documents through ``add`` and ``search`` with the deterministic fake model: the items each format
becomes (file → sections/slides/sheets → chunks; e-mail attachments), what each is embedded as, and
hits that carry their section path, slide number or sheet name."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from docgen import write_pptx

import omniret
from omniret.encoders.registry import create
from omniret.items import Modality, make_id
from omniret.store.base import Filter

SPACE = "fake-64"


@pytest.fixture
def indexed(folder: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    index = omniret.open(tmp_path / "idx", model="fake")
    report = index.add(folder, workers=0)
    assert report.failed == [] and report.new == 8
    yield index, folder
    index.close()


def _items(index, name: str) -> list:  # type: ignore[no-untyped-def]
    return [it for it in index.store.iter_items() if it.uri.endswith("/" + name)]


def _vec(index, item_id: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    return index.store.vectors(SPACE, [item_id])[0]


def test_slides_are_pages_with_titles(indexed) -> None:  # type: ignore[no-untyped-def]
    index, folder = indexed
    items = _items(index, "review.pptx")
    (doc,) = [it for it in items if it.parent_id is None]
    assert doc.modality is Modality.DOCUMENT and doc.text == "Q2 Review" and doc.metadata["format"] == "pptx"
    assert doc.metadata["slides"] == 4 and np.isnan(_vec(index, doc.id)).all()  # the file: no vector of its own
    slides = sorted((it for it in items if it.parent_id == doc.id), key=lambda it: it.span)
    assert [s.span for s in slides] == [(n, n) for n in (1.0, 2.0, 3.0, 4.0)]
    s2 = slides[1]
    assert s2.metadata["page"] == 2 and s2.metadata["section"] == ["Revenue by Region"]
    assert s2.metadata["label"] == "review.pptx slide 2 › Revenue by Region" and s2.metadata["kind"] == "slide"
    assert s2.metadata["notes"].startswith("Mention the currency")
    fake = create("fake")
    np.testing.assert_allclose(_vec(index, s2.id), fake.encode_text([s2.text])[0], atol=2e-3)
    hit = index.search("currency effect on the euro figures", k=1, hybrid="rrf")[0]
    assert hit.id == s2.id and hit.metadata["page"] == 2


def test_sections_roles_and_embedded_paths(indexed) -> None:  # type: ignore[no-untyped-def]
    index, folder = indexed
    items = {tuple(it.metadata.get("section", ())): it for it in _items(index, "garden.docx")
             if it.parent_id and "role" not in it.metadata}
    compost = items[("Soil", "Compost")]
    assert compost.text.startswith("Compost\n\nA compost heap") and compost.metadata["label"] == \
        "garden.docx › Soil › Compost"
    assert (compost.metadata["heading"], compost.metadata["level"]) == ("Compost", 1) and "page" not in compost.metadata
    fake = create("fake")  # embedded with the titles above its own heading
    np.testing.assert_allclose(_vec(index, compost.id), fake.encode_text(["Soil\n" + compost.text])[0], atol=2e-3)
    roles = {it.metadata["role"] for it in _items(index, "garden.docx") if "role" in it.metadata}
    assert roles == {"toc", "header", "footer"}
    hits = index.search("Drip lines deliver water straight to the roots", k=3)
    assert hits[0].metadata["section"] == ["Watering", "Drip irrigation"]


def test_long_sheet_chunks_carry_the_column_header(indexed) -> None:  # type: ignore[no-untyped-def]
    index, folder = indexed
    items = _items(index, "inventory.xlsx")
    stock = next(it for it in items if it.metadata.get("kind") == "sheet" and it.metadata["sheet"] == "Stock")
    chunks = sorted((it for it in items if it.parent_id == stock.id), key=lambda it: it.metadata["chunk"])
    assert stock.metadata["page"] == 1 and stock.span == (1.0, 1.0) and "heading" not in stock.metadata  # a page
    assert len(chunks) > 3 and all(c.metadata["sheet"] == "Stock" and c.metadata["section"] == ["Stock"] for c in chunks)
    assert [c.metadata["block"] for c in chunks] == list(range(len(chunks)))  # a page's chunks are its blocks
    assert stock.text[int(chunks[2].span[0]):int(chunks[2].span[1])] == chunks[2].text  # span: offsets in the sheet text
    fake = create("fake")
    want = fake.encode_text([f"Stock: SKU | Item | Quantity | Restocked\n{chunks[2].text}"])[0]
    np.testing.assert_allclose(_vec(index, chunks[2].id), want, atol=2e-3)
    hidden = next(it for it in items if it.metadata.get("sheet") == "Notes" and it.parent_id == stock.parent_id)
    assert hidden.metadata["hidden"] is True
    hit = index.search("Nordic Steel AB | Sweden | 14", k=1)[0]
    assert hit.metadata["sheet"] == "Suppliers" and hit.metadata["label"] == "inventory.xlsx › Suppliers"


def test_email_with_attachments(indexed) -> None:  # type: ignore[no-untyped-def]
    index, folder = indexed
    items = _items(index, "trip.eml")
    (mail,) = [it for it in items if it.parent_id is None]
    assert mail.text == "Trip itinerary for Lisbon" and mail.metadata["to"] == "team@example.org"
    assert mail.metadata["unread_attachments"] == [{"name": "blob.bin", "reason": "not a format omniret reads "
                                                                                "(application/octet-stream)"}]
    by_att = {it.metadata["attachment"]: it for it in items if it.parent_id == mail.id and "attachment" in it.metadata}
    assert set(by_att) == {"handbook.docx", "photo.jpg", "packing.txt", "message-4.eml"}
    photo = by_att["photo.jpg"]
    assert photo.modality is Modality.IMAGE and not np.isnan(_vec(index, photo.id)).any()
    handbook = by_att["handbook.docx"]
    assert handbook.text == "Home Garden Handbook" and handbook.metadata["format"] == "docx"
    compost = next(it for it in items if it.metadata.get("section") == ["handbook.docx", "Soil", "Compost"])
    assert compost.parent_id == handbook.id and compost.metadata["label"] == "trip.eml › handbook.docx › Soil › Compost"
    assert by_att["message-4.eml"].text == "Ferry times"
    hits = index.search("The ferry to Cacilhas leaves every twenty minutes", k=1, where={"name": "trip.eml"})
    assert hits[0].metadata["section"] == ["message-4.eml"]
    assert index.search(image=str(folder / "cat.heic"), k=1, modality="image")[0].uri.endswith("cat.heic")


def test_epub_sections_and_bm25(indexed) -> None:  # type: ignore[no-untyped-def]
    index, folder = indexed
    hits = index.search("Olympus Mons", k=3, hybrid="rrf", where={"name": "astronomy.epub"})
    assert hits[0].metadata["section"] == ["The Planets", "Mars"]
    toc = [it for it in _items(index, "astronomy.epub") if it.metadata.get("role") == "toc"]
    assert len(toc) == 2 and all(it.metadata["label"].endswith("(toc)") for it in toc)


def test_changed_and_removed_documents(indexed) -> None:  # type: ignore[no-untyped-def]
    index, folder = indexed
    deck = folder / "review.pptx"
    before = len(_items(index, "review.pptx"))
    import pptx

    prs = pptx.Presentation(deck)
    prs.slides._sldIdLst.remove(prs.slides._sldIdLst[-1])  # python-pptx has no delete: drop the last slide's entry
    prs.save(deck)
    report = index.add(folder, workers=0)
    assert report.changed == 1 and len(_items(index, "review.pptx")) == before - 1
    assert index.store.get([make_id(str(deck), part="s3")]) == [None]
    n_mail = len(_items(index, "trip.eml"))
    assert n_mail > 10 and index.remove([str(folder / "trip.eml")]) >= 1
    assert _items(index, "trip.eml") == []


def test_documents_in_decode_threads(made: Path, tmp_path: Path) -> None:
    folder = tmp_path / "w"
    folder.mkdir()
    for i in range(2):
        for name in ("review.pptx", "trip.eml"):
            shutil.copy(made / name, folder / f"{i}-{name}")
    write_pptx(folder / "extra.pptx")
    with omniret.open(tmp_path / "idx", model="fake") as index:
        report = index.add(folder, workers=2)
        assert report.failed == []
        a = index.store.vectors(SPACE, [make_id(str(folder / "0-trip.eml"), part="a1")])  # the photo, decoded in a thread
        b = index.store.vectors(SPACE, [make_id(str(folder / "1-trip.eml"), part="a1")])
        np.testing.assert_allclose(a, b, atol=1e-3)
        assert index.store.count(Filter(modalities=frozenset({Modality.IMAGE}))) == 2


def test_thumbnails(indexed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    from omniret.server.thumbs import NoThumbnail, thumbnail

    index, folder = indexed
    (heic,) = _items(index, "cat.heic")
    with Image.open(thumbnail(heic, tmp_path / "t", size=64)) as im:
        assert max(im.size) == 64
    mail = _items(index, "trip.eml")
    photo = next(it for it in mail if it.metadata.get("attachment") == "photo.jpg")
    section = next(it for it in _items(index, "garden.docx") if it.parent_id)
    for item, why in ((photo, "attachment inside trip.eml"), (section, "only PDF pages are rendered")):
        with pytest.raises(NoThumbnail, match=why):
            thumbnail(item, tmp_path / "t")


def test_empty_deck_and_tiny_pictures(debdoc, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """officer's template deck has no slides: stored, counted as not embedded. A 1x1 picture in a message
    (a tracking pixel) is listed as unread, not indexed."""
    import io
    from email.message import EmailMessage

    from PIL import Image

    folder = tmp_path / "f"
    folder.mkdir()
    shutil.copy(debdoc("template.pptx"), folder / "empty.pptx")
    msg = EmailMessage()
    msg["Subject"], msg["From"] = "newsletter", "news@example.org"
    msg.set_content("Our spring offers are here.")
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "GIF")
    msg.add_attachment(buf.getvalue(), maintype="image", subtype="gif", filename="pixel.gif")
    (folder / "news.eml").write_bytes(bytes(msg))
    with omniret.open(tmp_path / "idx", model="fake") as index:
        report = index.add(folder, workers=0)
        assert report.failed == [] and report.unembedded == 1
        (deck,) = _items(index, "empty.pptx")
        assert deck.metadata["embedded"] is False and deck.metadata["slides"] == 0
        (mail,) = [it for it in _items(index, "news.eml") if it.parent_id is None]
        assert "too small to index" in mail.metadata["unread_attachments"][0]["reason"]
        assert index.store.count(Filter(modalities=frozenset({Modality.IMAGE}))) == 0


def test_opendocument_sheets_and_slides(tmp_path: Path) -> None:
    """.ods and .odp files through ``add``: sheets and slides are pages with their names and numbers, the
    file rolls them up, and a hybrid search lands on the slide holding the words."""
    from docgen import write_odp, write_ods

    folder = tmp_path / "od"
    folder.mkdir()
    write_ods(folder / "harvest.ods")
    write_odp(folder / "review.odp")
    with omniret.open(tmp_path / "idx", model="fake") as index:
        report = index.add(folder, workers=0)
        assert report.failed == [] and report.new == 2
        sheets = [it for it in _items(index, "harvest.ods") if it.parent_id]
        assert sorted((it.metadata["page"], it.metadata["sheet"]) for it in sheets) == [(1, "Harvest"), (2, "Notes")]
        slides = sorted((it for it in _items(index, "review.odp") if it.parent_id), key=lambda it: it.span)
        assert [it.metadata["page"] for it in slides] == [1, 2, 3, 4]
        assert slides[2].metadata["label"] == "review.odp slide 3 › Hiring Plan"
        hit = index.search("currency effect on the euro figures", k=1, hybrid="rrf")[0]
        assert hit.id == slides[1].id and hit.metadata["page"] == 2
        (doc,) = index.search("Quarterly Review", k=1, granularity="root", path_glob="*.odp")
        assert doc.parent_id is None and doc.metadata["format"] == "odp" and doc.metadata["slides"] == 4
