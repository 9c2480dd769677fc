"""Granularity on a PDF: blocks → page → document, labels kept for display."""

from __future__ import annotations

from pathlib import Path

import pytest
from mediagen import write_text_pdf

import omniret
from omniret.items import Modality

PAGES = [
    [("Chapter One: Volcanoes and Lava", 22), ("Molten rock flows downhill from the crater of the mountain.", 11)],
    [("Chapter Two: Penguins of Antarctica", 22), ("Flightless birds that swim in the cold southern ocean.", 11)],
    [("Chapter Three: Baking Sourdough Bread", 22), ("Flour, water and a starter make a loaf in the oven.", 11)],
]


def test_item_parent_root_on_a_pdf(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    write_text_pdf(tmp_path / "docs" / "book.pdf", PAGES)
    with omniret.open(tmp_path / "idx", model="fake") as index:
        report = index.add(tmp_path / "docs", workers=0, pdf_blocks=True)
        assert report.failed == []
        q = "Penguins of Antarctica flightless birds"
        items = index.search(q, k=3)
        assert items[0].metadata["label"] == "book.pdf p. 2" and items[0].span == (2.0, 2.0)
        pages = index.search(q, k=3, granularity="parent")
        assert pages[0].metadata["label"] == "book.pdf p. 2" and pages[0].parent_id is not None
        assert len({h.id for h in pages}) == len(pages)
        assert [h.id for h in index.search(q, k=3, rollup=True)] == [h.id for h in pages]
        (root,) = index.search(q, k=3, granularity="root")
        assert root.parent_id is None and root.modality is Modality.DOCUMENT and root.metadata["pages"] == 3
        assert root.score == pytest.approx(items[0].score)  # max-pooled from its best block/page
