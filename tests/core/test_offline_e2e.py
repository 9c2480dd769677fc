"""End to end with the real offline model on real images (scikit-image and scikit-learn samples)."""

from __future__ import annotations

import os

import pytest

import omniret
from omniret.cli.demo import write_samples

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def offline_index(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("offline")
    samples = root / "samples"
    write_samples(samples)
    idx = omniret.open(str(root / "idx"), model="offline", device="cpu")
    report = idx.add(str(samples))
    assert report.failed == []
    yield idx, samples
    idx.close()


def _names(hits: list[omniret.Hit]) -> list[str]:
    return [os.path.basename(h.uri) for h in hits]


def test_a_cat_finds_chelsea(offline_index) -> None:
    idx, _ = offline_index
    assert "chelsea.png" in _names(idx.search("a cat", k=3, modality="image"))
    assert "chelsea.png" in _names(idx.search("a cat", k=3))


def test_a_cup_of_coffee_finds_coffee(offline_index) -> None:
    idx, _ = offline_index
    assert "coffee.png" in _names(idx.search("a cup of coffee", k=3, modality="image"))


def test_image_query_returns_itself_first(offline_index) -> None:
    idx, samples = offline_index
    for name in ("chelsea.png", "astronaut.png", "rocket.png", "china.jpg"):
        assert _names(idx.search(image=str(samples / name), k=1)) == [name]


def test_text_notes_are_searchable(offline_index) -> None:
    idx, _ = offline_index
    hits = idx.search("rocket launch into orbit", k=1, modality="text")
    assert _names(hits) == ["space.txt"]
