from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "routing"), str(HERE.parent / "media2")]

from agentkit import COLOURS, NOTES  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _register_test_encoders() -> None:
    import mcp_launcher  # noqa: F401 - registers fake and fake-clap


@pytest.fixture(scope="module")
def agent_index(tmp_path_factory: pytest.TempPathFactory, texdoc: Path) -> tuple[Path, Path]:
    """An index (fake model + fake CLAP) over pictures, notes, a 12 s hum and a one-page PDF, and the
    root folder an agent may add from."""
    import omniret

    base = tmp_path_factory.mktemp("agent")
    data = base / "data"
    data.mkdir()
    for name, rgb in COLOURS.items():
        Image.new("RGB", (48, 48), rgb).save(data / f"{name}.png")
    for name, text in NOTES.items():
        (data / name).write_text(text)
    t = np.arange(16_000 * 12) / 16_000
    sf.write(data / "hum.wav", (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 16_000)
    shutil.copy(texdoc / "base" / "ltnews18.pdf", data / "news.pdf")
    (base / "inbox").mkdir()
    with omniret.open(str(base / "idx"), model="fake", audio_model="fake-clap") as idx:
        report = idx.add(str(data), workers=0)
        assert report.failed == [], report.failed
    return base / "idx", base
