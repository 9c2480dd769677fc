"""Records with the real offline model on real pictures (scikit-image samples held in memory)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import omniret

pytestmark = pytest.mark.slow


def test_records_from_arrays_search_like_files(tmp_path: Path) -> None:
    from PIL import Image
    from skimage import data

    pics = {name: np.asarray(getattr(data, name)()) for name in ("chelsea", "astronaut", "rocket", "coffee")}
    Image.fromarray(pics["chelsea"]).save(tmp_path / "chelsea.png")
    rows = [{"id": f"sk/{name}", "image": arr, "metadata": {"set": "skimage"}} for name, arr in pics.items()]
    rows.append({"id": "note-1", "text": "A rocket launch sends satellites into orbit."})
    with omniret.open(str(tmp_path / "idx"), model="offline", device="cpu") as idx:
        report = idx.add_records(rows, workers=0)
        assert (report.items, report.failed) == (5, [])
        assert [h.id for h in idx.search("a cat", k=1, modality="image")] == ["sk/chelsea"]
        assert [h.id for h in idx.search("a cup of coffee", k=1, modality="image")] == ["sk/coffee"]
        assert idx.search("space launch", k=1, modality="text")[0].id == "note-1"
        # the same picture as a file goes through the same preprocessing and model: the same vector
        idx.add(str(tmp_path / "chelsea.png"), workers=0)
        file_hit = idx.search(image=str(tmp_path / "chelsea.png"), k=2)
        assert {h.id for h in file_hit} >= {"sk/chelsea"} and min(h.score for h in file_hit) > 0.999
