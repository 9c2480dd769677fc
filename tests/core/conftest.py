from __future__ import annotations

from pathlib import Path

import pytest
from builders import make_image

COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (20, 40, 230), "yellow": (240, 230, 20)}
NOTES = {
    "cats.txt": "Cats are small furry animals. A cat likes to sleep in the sun.",
    "rockets.md": "# Rockets\n\nA rocket launch sends satellites into orbit around the earth.",
    "cooking.txt": "Boil the pasta in salted water, then add tomato sauce and basil.",
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A small folder: four coloured images (two formats), three text notes, one nested folder."""
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    for i, (name, rgb) in enumerate(COLORS.items()):
        ext = "png" if i % 2 == 0 else "jpg"
        make_image(root / f"{name}.{ext}", rgb, stripe=(name == "blue"))
    for name, text in NOTES.items():
        (root / "sub" / name).write_text(text, encoding="utf-8")
    return root
