"""Page thumbnails show the hit's own page (pages are numbered from 1), the last page included."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import omniret
from omniret.items import Modality
from omniret.server.thumbs import page_index, thumbnail

pdfium = pytest.importorskip("pypdfium2")


def _render(pdf: Path, index0: int, size: int) -> np.ndarray:
    doc = pdfium.PdfDocument(str(pdf))
    try:
        pg = doc[index0]
        im = pg.render(scale=size / max(pg.get_size())).to_pil()
    finally:
        doc.close()
    im.thumbnail((size, size))
    return np.asarray(im.convert("RGB"), dtype=np.float32)


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    return float(np.abs(a[:h, :w] - b[:h, :w]).mean())


def test_every_page_thumbnail_is_that_page(texdoc: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "ltxtable.pdf"
    shutil.copy(texdoc / "carlisle" / "ltxtable.pdf", pdf)  # 3 pages of real text
    with omniret.open(tmp_path / "idx", model="fake") as idx:
        idx.add(pdf, workers=0, pdf_blocks=False, pdf_ocr=False)
        pages = sorted((it for it in idx.store.iter_items() if it.modality is Modality.DOCUMENT and it.parent_id),
                       key=lambda it: it.metadata["page"])
        assert [it.metadata["page"] for it in pages] == [1, 2, 3]
        renders = [_render(pdf, i, 128) for i in range(3)]
        for it in pages:
            got = thumbnail(it, tmp_path / "thumbs", size=128)  # the last page used to be out of range
            with Image.open(got) as im:
                shot = np.asarray(im.convert("RGB"), dtype=np.float32)
            diffs = [_diff(shot, r) for r in renders]
            assert int(np.argmin(diffs)) == it.metadata["page"] - 1, (it.metadata["page"], diffs)
        doc = next(it for it in idx.store.iter_items() if it.parent_id is None)
        assert page_index(doc) == 0


def test_page_index_reads_the_page_number() -> None:
    from omniret.items import Item

    def item(**kw: object) -> Item:
        return Item("x", "/a.pdf", Modality.DOCUMENT, **kw)  # type: ignore[arg-type]

    assert page_index(item(span=(1.0, 1.0), metadata={"page": 1})) == 0
    assert page_index(item(span=(7.0, 7.0))) == 6
    assert page_index(item(metadata={"page": 3})) == 2
    assert page_index(item()) == 0
