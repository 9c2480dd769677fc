"""Fixtures for the classification and upgrade tests: a second fake model and small indexes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tasks_helpers import ANIMALS, write_image  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _register_fake2() -> None:
    from omniret.encoders.registry import EncoderEntry, register

    register(EncoderEntry("fake2", "fake2_encoder:create", "second deterministic test encoder", "fake2"))
    register(EncoderEntry("fake2text", "fake2_encoder:create_text_only", "fake2, text only", "fake2text"))


@pytest.fixture
def animal_notes(tmp_path: Path) -> Path:
    """Text notes, each about one animal (the animal's name repeated, so the trigram fake finds it)."""
    root = tmp_path / "notes"
    root.mkdir()
    for i, a in enumerate(ANIMALS):
        for j in range(2):
            (root / f"{a}{j}.txt").write_text(f"{a} {a} {a}, the {a} number {i * 2 + j}", encoding="utf-8")
    return root


@pytest.fixture
def mixed_corpus(tmp_path: Path) -> Path:
    """120 short distinct text notes and 12 coloured images, for the upgrade tests."""
    root = tmp_path / "mixed"
    root.mkdir()
    words = ["river", "stone", "bread", "cloud", "piano", "tiger", "lemon", "rocket", "violet", "copper", "garden",
             "winter"]
    rng = np.random.default_rng(3)
    for i in range(120):
        picked = rng.choice(words, size=3, replace=False)
        (root / f"n{i:03d}.txt").write_text(f"{' '.join(picked)} note {i} {words[i % 12]}{i}", encoding="utf-8")
    for i in range(12):
        write_image(root / f"img{i:02d}.png", tuple(int(v) for v in rng.integers(0, 256, 3)))
    return root
