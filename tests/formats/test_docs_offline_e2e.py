"""End to end with the real offline model on a realistic folder of mixed documents: real files from
Debian packages (calibre's EPUB guide, readxl's workbook, base-passwd's HTML manual) beside files the
formats' libraries wrote (Word, PowerPoint, OpenDocument, e-mail with attachments, HEIC, AVIF). A query
in plain words lands on the right section, slide or sheet, and the hit says where it is.

Slow (a few minutes on a loaded 2-core machine): the offline model embeds a few hundred sections.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import omniret
from omniret.index import Index

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def index(made: Path, debdoc, base_passwd_html: Path,  # type: ignore[no-untyped-def]
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    root = tmp_path_factory.mktemp("docs-e2e")
    pile = root / "pile"
    shutil.copytree(made, pile)
    shutil.copy(debdoc("quick_start.epub"), pile / "calibre-guide.epub")
    shutil.copy(debdoc("datasets.xlsx"), pile / "datasets.xlsx")
    shutil.copy(base_passwd_html, pile / "users-and-groups.html")
    with omniret.open(root / "idx", model="offline") as ix:
        report = ix.add(pile, workers=0)
        assert report.failed == [] and report.new == 11
        yield ix


@pytest.mark.parametrize(("query", "name", "section"), [
    ("DRM: the bane of conversion", "calibre-guide.epub", ["Common Tasks", "Task 2: Conversion",
                                                           "2.7: DRM: the bane of conversion"]),
    ("why are there so many different e-book formats", "calibre-guide.epub",
     ["Common Tasks", "Task 2: Conversion", "2.2: Why are there different e-book formats?"]),
    ("earthquake magnitude and depth", "datasets.xlsx", ["quakes"]),
    ("compost heap with earthworms and fallen leaves", "garden.docx", ["Soil", "Compost"]),
    ("feeding the sourdough starter", "recipes.odt", ["Breads", "Sourdough"]),
    ("hiring warehouse staff", "review.pptx", ["Hiring Plan"]),
    ("when does the ferry to Cacilhas leave", "trip.eml", ["message-4.eml"]),
])
def test_query_lands_on_its_section(index: Index, query: str, name: str, section: list[str]) -> None:
    hit = index.search(query, k=1, modality="document")[0]
    where = (hit.metadata["name"], hit.metadata["section"])
    # trip.eml carries garden.docx as its attachment handbook.docx: the same section, one level down
    assert where in ((name, section), ("trip.eml", ["handbook.docx", *section])), hit.metadata.get("label")


def test_slide_hit_carries_its_number_and_sheet_hit_its_name(index: Index) -> None:
    slide = index.search("hiring warehouse staff", k=1)[0]
    assert slide.metadata["page"] == 3 and slide.span == (3.0, 3.0)
    assert slide.metadata["label"] == "review.pptx slide 3 › Hiring Plan"
    sheet = index.search("fuel consumption, horsepower and cylinders of cars", k=1)[0]
    assert sheet.metadata["sheet"] == "mtcars" and sheet.metadata["label"].startswith("datasets.xlsx › mtcars")


def test_photos_in_new_formats_and_attachments(index: Index) -> None:
    hits = index.search("a cat", k=1, modality="image")
    assert hits[0].uri.endswith("cat.heic")
    cup = index.search("a cup of coffee", k=1, modality="image")[0]
    assert cup.metadata.get("attachment") == "photo.jpg" and cup.uri.endswith("trip.eml")


def test_documents_roll_up_to_their_file(index: Index) -> None:
    hits = index.search("users and groups reserved by Debian base-passwd", k=3, granularity="root")
    assert hits[0].uri.endswith("users-and-groups.html") and hits[0].parent_id is None
