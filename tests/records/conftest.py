from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from recordkit import COLOURS  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent.parent / "routing"))
sys.path.insert(0, str(Path(__file__).parent.parent / "media2"))



@pytest.fixture(autouse=True, scope="session")
def _register_fake_clap() -> None:
    from omniret.encoders.registry import EncoderEntry, register

    register(EncoderEntry("fake-clap", "fake_clap:create", "fake CLAP (audio + text) for tests", "fake-clap"))
    register(EncoderEntry("fake-other", "fake_other:create", "the fake encoder in another space", "fake-other"))


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    """Four solid-colour PNGs (32x32), one per colour in COLOURS."""
    d = tmp_path / "pictures"
    d.mkdir()
    for name, rgb in COLOURS.items():
        Image.new("RGB", (32, 32), rgb).save(d / f"{name}.png")
    return d


NOTES = {
    "cats.txt": "Cats are small furry animals. A cat likes to sleep in the sun.",
    "rockets.md": "# Rockets\n\nA rocket launch sends satellites into orbit around the earth.",
    "cooking.txt": "Boil the pasta in salted water, then add tomato sauce and basil.",
}


@pytest.fixture
def corpus(pictures: Path) -> Path:
    """The four pictures plus three text notes in a sub-folder."""
    sub = pictures / "notes"
    sub.mkdir()
    for name, text in NOTES.items():
        (sub / name).write_text(text, encoding="utf-8")
    return pictures
