from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "media2"))

RATE = 16_000


@pytest.fixture(autouse=True, scope="session")
def _register_fake_clap() -> None:
    from omniret.encoders.registry import EncoderEntry, register

    register(EncoderEntry("fake-clap", "fake_clap:create", "fake CLAP (audio + text) for tests", "fake-clap"))


def tone(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="session")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 images (solid colours), 6 text notes, 3 recordings (300 Hz, 3 kHz tones, noise)."""
    d = tmp_path_factory.mktemp("mixed")
    colours = {"red": (220, 20, 20), "green": (20, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30),
               "black": (5, 5, 5), "white": (250, 250, 250)}
    for name, rgb in colours.items():
        Image.new("RGB", (32, 32), rgb).save(d / f"{name}.png")
    notes = ["a low hum at 300 hz from the fridge", "recipe for tomato soup with basil",
             "train timetable for the weekend", "notes on the history of the violin",
             "shopping list: eggs, flour, milk", "the cat sleeps on the warm windowsill"]
    for i, text in enumerate(notes):
        (d / f"note{i}.txt").write_text(text)
    sf.write(d / "tone300.wav", tone(300, 12.0), RATE)
    sf.write(d / "tone3000.wav", tone(3000, 12.0), RATE)
    sf.write(d / "noise.wav", (0.2 * np.random.default_rng(0).standard_normal(RATE * 6)).astype(np.float32), RATE)
    return d


@pytest.fixture(scope="session")
def excerpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 s of a 300 Hz tone, not in the index: a query by example."""
    p = tmp_path_factory.mktemp("q") / "hum.wav"
    sf.write(p, tone(300, 5.0), RATE)
    return p
