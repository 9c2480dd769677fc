from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True, scope="session")
def _register_fake_encoder() -> None:
    from omniret.encoders.registry import EncoderEntry, register

    register(EncoderEntry("fake", "fakes:create", "deterministic test encoder", "fake"))


@pytest.fixture(scope="session")
def texdoc() -> Path:
    """texlive's LaTeX documentation PDFs (real documents with text layers and figures), unpacked by
    scripts/test-data.sh into ``$OMNIRET_TEXDOC`` or ``/tmp/texdoc/x``."""
    base = Path(os.environ.get("OMNIRET_TEXDOC", "/tmp/texdoc/x")) / "usr/share/doc/texlive-doc/latex"
    if not base.is_dir():
        pytest.skip("texlive PDFs missing: apt-get download texlive-latex-base-doc && dpkg-deb -x "
                    "texlive-latex-base-doc_*.deb /tmp/texdoc/x")
    return base
