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
