"""open_clip backend: a tiny random-init checkpoint through open_clip's real local-dir loader."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from omniret.encoders.registry import create
from omniret.errors import ModelError
from omniret.items import Modality


def test_local_dir_dims_known_before_loading(tiny_openclip_dir: Path) -> None:
    enc = create(f"openclip:local-dir:{tiny_openclip_dir}", device="cpu")
    assert (enc.dim, enc.image_size) == (32, 32)
    assert enc._model is None  # nothing loaded yet
    assert enc.name == f"openclip:local-dir:{tiny_openclip_dir.resolve()}"
    assert enc.modalities == frozenset({Modality.TEXT, Modality.IMAGE})
    assert enc.config() == {}  # the registry name carries the model


def test_local_dir_embeds_texts_and_images(tiny_openclip_dir: Path, sample_images: dict) -> None:
    enc = create(f"openclip:local-dir:{tiny_openclip_dir}", device="cpu", batch_size=2)
    texts = ["a cat", "a cup of coffee", "a rocket"]
    t = enc.encode_text(texts)
    assert t.shape == (3, 32) and t.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    # batching does not change results
    np.testing.assert_allclose(enc.encode_text(texts[1:2]), t[1:2], atol=1e-5)
    ims = list(sample_images.values())[:3]
    v = enc.encode_images(ims)
    assert v.shape == (3, 32) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(enc.encode_images(ims[2:]), v[2:], atol=1e-5)
    assert not np.allclose(v[0], v[1])


def test_weights_really_loaded(tiny_openclip_dir: Path) -> None:
    """The encoder uses the saved weights, not a fresh random init."""
    import open_clip
    import torch

    enc = create(f"openclip:local-dir:{tiny_openclip_dir}", device="cpu")
    got = enc.encode_text(["hello world"])
    model = open_clip.create_model(f"local-dir:{tiny_openclip_dir}")
    with torch.inference_mode():
        ref = model.encode_text(open_clip.get_tokenizer(f"local-dir:{tiny_openclip_dir}")(["hello world"]))
    ref = ref.numpy() / np.linalg.norm(ref.numpy(), axis=1, keepdims=True)
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_preprocessor_is_picklable_and_uses_config(tiny_openclip_dir: Path, sample_images: dict) -> None:
    enc = create(f"openclip:local-dir:{tiny_openclip_dir}", device="cpu")
    pre = enc.image_preprocessor()
    arr = pre(sample_images["chelsea"])
    assert arr.shape == (3, 32, 32) and arr.dtype == np.float32
    again = pickle.loads(pickle.dumps(pre))
    np.testing.assert_array_equal(again(sample_images["chelsea"]), arr)
    assert pre.cfg["mean"] == [0.5, 0.5, 0.5] or tuple(pre.cfg["mean"]) == (0.5, 0.5, 0.5)


def test_builtin_name_dim_without_weights() -> None:
    enc = create("openclip:ViT-B-32-256/datacomp_s34b_b86k", device="cpu")
    assert (enc.dim, enc.image_size) == (512, 256)
    assert enc.space == "openclip:ViT-B-32-256/datacomp_s34b_b86k"


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("openclip:NoSuchArch/x", "unknown open_clip architecture"),
        ("openclip:ViT-B-32", "names no pretrained weights"),
        ("openclip:ViT-B-32/not_a_tag", "neither a pretrained tag"),
        ("openclip:", "openclip needs a model"),
    ],
)
def test_bad_names(name: str, fragment: str) -> None:
    with pytest.raises(ModelError, match=fragment):
        create(name)


def test_local_dir_without_config(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="open_clip_config.json"):
        create(f"openclip:local-dir:{tmp_path}")


def test_local_dir_without_weights_is_model_error(tiny_openclip_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "open_clip_config.json").write_text((tiny_openclip_dir / "open_clip_config.json").read_text())
    enc = create(f"openclip:local-dir:{tmp_path}", device="cpu")
    with pytest.raises(ModelError, match="could not load open_clip model"):
        enc.encode_text(["x"])


def test_missing_hub_weights_fail_fast_with_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from omniret.encoders import openclip as oc

    monkeypatch.setattr(oc, "cached_file", lambda repo, files: None)
    monkeypatch.setattr(oc, "hub_reachable", lambda repo, files, timeout=3.0: None)
    enc = create("openclip:ViT-B-32-256/datacomp_s34b_b86k", device="cpu")
    with pytest.raises(ModelError, match="offline") as info:
        enc.encode_text(["x"])
    assert "ViT-B-32-256/datacomp_s34b_b86k" in str(info.value)
    assert "local-dir" in str(info.value)
