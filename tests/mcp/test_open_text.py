"""``open_item`` stitches a file's overlapping chunks back into the file's text."""

from __future__ import annotations

from pathlib import Path

from omniret.items import Item, Modality
from omniret.mcp.tools import _joined
from omniret.media.text import load_text


def test_chunks_stitch_back_into_the_file(tmp_path: Path) -> None:
    (tmp_path / "long.txt").write_text(" ".join(f"word{i}" for i in range(3000)) + "\n\nThe end.\n")
    doc = load_text(tmp_path / "long.txt", max_chars=800, overlap=150)
    assert len(doc.chunks) > 10
    parts = [Item(str(i), "u", Modality.TEXT, span=(c.start, c.end), text=c.text) for i, c in enumerate(doc.chunks)]
    assert _joined(parts) == doc.text.rstrip()  # the last chunk drops the trailing newline
    pages = [Item(f"p{i}", "u", Modality.DOCUMENT, span=(i, i), text=f"page {i}") for i in (1, 2)]
    assert _joined(pages) == "page 1\n\npage 2"
