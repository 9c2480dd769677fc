"""Session fixtures of the multi-vector tests: the tiny random-init ColQwen2 checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def colqwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-init ColQwen2 saved with save_pretrained (model, Qwen2-VL image processor, BPE tokenizer)."""
    from multivector.tiny_colqwen import build

    return build(tmp_path_factory.mktemp("colqwen2") / "ckpt")
