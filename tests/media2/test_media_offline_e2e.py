"""End to end with the real offline model: a video made of real photos and real PDFs, searched by text.

Slow (~2 min on 2 cores): most of it is the offline model building its ImageNet class embeddings once.
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
def index(media_dir: Path, texdoc: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    root = tmp_path_factory.mktemp("e2e")
    docs = root / "docs"
    docs.mkdir()
    shutil.copy(media_dir / "scenes.mp4", docs / "scenes.mp4")
    shutil.copy(media_dir / "book.pdf", docs / "book.pdf")
    for rel in ("carlisle/ltxtable.pdf", "tools/tools-overview.pdf", "base/ltnews18.pdf"):
        shutil.copy(texdoc / rel, docs / Path(rel).name)
    with omniret.open(root / "idx", model="offline") as ix:
        report = ix.add(docs, workers=0, video_frames_per_segment=4)
        assert report.failed == [] and report.new == 5
        yield ix


@pytest.mark.parametrize(("query", "label"), [
    ("a cat", "scenes.mp4 @ 00:10–00:20"),
    ("a rocket", "scenes.mp4 @ 00:00–00:10"),
    ("a cup of coffee", "scenes.mp4 @ 00:20–00:30"),
])
def test_video_moment_found_by_text(index: Index, query: str, label: str) -> None:
    (hit,) = index.search(query, k=1, modality="video", where=None)
    assert hit.metadata["label"] == label and hit.parent_id is not None
    assert hit.span == (float(label[-5:-3]) * 60 + float(label[-2:]) - 10, float(label[-5:-3]) * 60 + float(label[-2:]))


def test_heading_words_find_their_page(index: Index) -> None:
    hits = index.search("penguins of antarctica", k=3, modality="document")
    assert hits[0].uri.endswith("book.pdf") and hits[0].metadata["page"] == 2  # the page, once, with its matches
    assert len({(h.uri, h.metadata.get("page")) for h in hits}) == len(hits)
    matched = hits[0].metadata["matched"]
    assert matched[0]["text"] == "Chapter Two: Penguins of Antarctica"  # the heading (block or section item)
    assert len(matched[0]["bbox"]) == 4 and hits[0].metadata["section"] == ["Chapter Two: Penguins of Antarctica"]
    blocks = index.search("penguins of antarctica", k=3, modality="document", granularity="item")
    assert any("bbox" in h.metadata and h.metadata["page"] == 2 for h in blocks[:2])  # the heading's block too


def test_texlive_heading_finds_its_page(index: Index) -> None:
    (hit,) = index.search("longtable meets tabularx", k=1, modality="document")
    assert hit.uri.endswith("ltxtable.pdf") and hit.metadata["page"] == 1 and "block" not in hit.metadata
    rolled = index.search("Contents of the tools bundle", k=1, rollup=True)
    assert rolled[0].uri.endswith("tools-overview.pdf")
