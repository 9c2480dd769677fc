"""Index-level: a random-init open_clip checkpoint in a local folder, loaded through the real
``openclip:local-dir:`` path, indexes real images and text and answers searches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import omniret
from omniret.cli.demo import write_samples


def test_index_and_search_with_openclip_local_dir(tmp_path: Path, tiny_openclip_dir: Path) -> None:
    samples = tmp_path / "samples"
    write_samples(samples)
    model = f"openclip:local-dir:{tiny_openclip_dir}"
    with omniret.open(str(tmp_path / "idx"), model=model, device="cpu") as idx:
        report = idx.add(str(samples), workers=0)
        assert report.failed == [] and report.items > 15
        assert idx.encoder.name == model
        hits = idx.search(image=str(samples / "rocket.png"), k=3)
        assert hits[0].uri.endswith("rocket.png")  # an image is its own nearest neighbour, whatever the weights
        assert hits[0].score == pytest.approx(1.0, abs=2e-2)
        text_hits = idx.search("a photo of a cat", k=5)
        assert len(text_hits) == 5 and all(np.isfinite(h.score) for h in text_hits)
    # reopening needs no model flag: the manifest names the local-dir model
    with omniret.open(str(tmp_path / "idx")) as idx:
        assert idx.encoder.name == model
        assert idx.search(image=str(samples / "coffee.png"), k=1)[0].uri.endswith("coffee.png")
