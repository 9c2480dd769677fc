"""Documents at the reader's level: page hits once with matched blocks, sections searchable by words
and meaning, navigation pages and repeated text kept from crowding the top (fake encoder, real PDFs)."""

from __future__ import annotations

import shutil
from pathlib import Path

from mediagen import write_text_pdf

import omniret
from omniret.media.structure import NAV_ROLES

WARNING = "Warning: never mix packages from unstable into a stable system without pinning them first."
PAGES = [
    [("Contents", 16), ("1 Package management . . . . . . 2", 11), ("1.1 Apt pinning . . . . . . 3", 11),
     ("1.2 Holding packages . . . . . 3", 11), ("2 Networking . . . . . . . 4", 11), ("2.1 Routes . . . . . . 4", 11)],
    [("1 Package management", 20), ("Packages are installed and upgraded with apt and dpkg tools.", 11),
     (WARNING, 8)],
    [("1.1 Apt pinning", 16), ("Pinning assigns priorities to package versions from several releases.", 11),
     (WARNING, 8), ("Preferences live in /etc/apt/preferences.d as small files.", 11), (WARNING, 8)],
    [("2 Networking", 20), ("Interfaces, routes and name resolution are configured here.", 11)],
]


def test_pages_once_with_matches_sections_and_folded_repeats(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    write_text_pdf(tmp_path / "docs" / "admin.pdf", PAGES)
    with omniret.open(tmp_path / "idx", model="fake") as index:
        assert index.add(tmp_path / "docs", workers=0).failed == []
        items = list(index.store.iter_items())
        toc = next(it for it in items if it.metadata.get("page") == 1 and "block" not in it.metadata)
        assert toc.metadata["role"] == "toc"
        on3 = [it for it in items if it.metadata.get("page") == 3 and it.text == WARNING]
        assert len(on3) == 1  # the warning twice on page 3: stored once
        section = next(it for it in items if it.metadata.get("heading") == "1.1 Apt pinning")
        assert section.metadata["section"] == ["1 Package management", "1.1 Apt pinning"]
        assert section.text == "1 Package management › 1.1 Apt pinning" and len(section.metadata["bbox"]) == 4
        # section titles are searchable by words (BM25) ...
        assert section.id in [i for i, _ in index.store.lexical("apt pinning", 5)]
        # ... and by meaning: the heading's own page, once, with the matched heading and its box
        hits = index.search("Apt pinning", k=5)
        assert hits[0].metadata["page"] == 3 and hits[0].metadata["section"][-1] == "1.1 Apt pinning"
        assert hits[0].metadata["matched"][0]["bbox"] and "block" not in hits[0].metadata
        pages = [(h.uri, h.metadata.get("page")) for h in hits]
        assert len(pages) == len(set(pages)) and not any(h.metadata.get("role") in NAV_ROLES for h in hits)
        # the same warning on pages 2 and 3 is one hit, not two
        warned = index.search(WARNING, k=5)
        assert [h.metadata["matched"][0]["text"] for h in warned].count(WARNING) == 1
        first = next(h for h in warned if h.metadata["matched"][0]["text"] == WARNING)
        assert sorted([first.metadata["page"], *first.metadata["also_pages"]]) == [2, 3]
        # navigation stays findable when asked for; every item as found with granularity="item"
        asked = index.search("Apt pinning", k=5, where={"role": "toc"})
        assert asked and all(h.metadata.get("role") == "toc" for h in asked)
        raw = index.search(WARNING, k=5, granularity="item")
        assert sum(h.text == WARNING for h in raw) == 2 and all("matched" not in h.metadata for h in raw)


def test_real_manual_outline_gives_sections(texdoc: Path, tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    shutil.copy(texdoc / "amsmath" / "amsldoc.pdf", tmp_path / "docs" / "amsldoc.pdf")
    with omniret.open(tmp_path / "idx", model="fake") as index:
        assert index.add(tmp_path / "docs", workers=0, pdf_ocr=False).failed == []
        doc = next(it for it in index.store.iter_items() if it.parent_id is None)
        assert doc.metadata["structure"] == "outline" and doc.metadata["sections"] >= 50
        hits = index.search("Alignment structures for equations", k=3)
        assert hits[0].metadata.get("section") and hits[0].metadata["page"] > 3
        assert all(isinstance(t, str) for t in hits[0].metadata["section"])


def _long_section(topic: str, n: int) -> str:
    return " ".join(f"{topic} sentence number {i} says something different about {topic}." for i in range(n))


def test_chunks_of_a_flowing_section_come_back_as_their_section_once(tmp_path: Path) -> None:
    """HTML/Word/EPUB sections long enough to be chunked: by default (``auto``) a section is one hit,
    its matched chunks listed under it, never the section and its chunks side by side; plain text
    files' chunks still come back as chunks (issue 15's note: repeated sections in ``auto`` results)."""
    (tmp_path / "docs").mkdir()
    html = ("<html><head><title>Field guide</title></head><body>"
            f"<h1>Owls</h1><p>{_long_section('owl', 60)}</p>"
            f"<h1>Rivers</h1><p>{_long_section('river', 60)}</p></body></html>")
    (tmp_path / "docs" / "guide.html").write_text(html, encoding="utf-8")
    (tmp_path / "docs" / "notes.txt").write_text(_long_section("pasta", 60), encoding="utf-8")
    with omniret.open(tmp_path / "idx", model="fake") as index:
        assert index.add(tmp_path / "docs", workers=0).failed == []
        items = list(index.store.iter_items())
        sections = {it.id for it in items if it.metadata.get("heading") in ("Owls", "Rivers")}
        chunks = [it for it in items if it.parent_id in sections]
        assert len(sections) == 2 and len(chunks) >= 4  # both sections were cut into chunks
        hits = index.search("owl sentence number 3", k=50)
        html_hits = [h for h in hits if h.uri.endswith("guide.html")]
        assert html_hits and not any(h.parent_id in sections for h in html_hits), "a chunk beside its section"
        assert len({h.id for h in html_hits}) == len(html_hits)
        found = [h for h in html_hits if h.id in sections]
        assert len(found) == 2 and all(h.metadata["matched"] for h in found)
        assert all("chunk" in m for h in found for m in h.metadata["matched"])
        assert sum(h.uri.endswith("notes.txt") and "chunk" in h.metadata for h in hits) >= 2
        raw = index.search("owl sentence number 3", k=50, granularity="item")
        assert any(h.parent_id in sections for h in raw)
