"""The ``colpali:`` page encoder on a tiny random-init ColQwen2 loaded through the real loaders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omniret.encoders import registry
from omniret.encoders.colpali import ColPaliEncoder
from omniret.errors import ModelError


@pytest.fixture(scope="module")
def enc(colqwen_dir: Path) -> ColPaliEncoder:
    return registry.create_page_model(f"colpali:{colqwen_dir}", device="cpu")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def pages() -> list[Image.Image]:
    from skimage import data

    page = Image.fromarray(data.page()).convert("RGB")  # a scanned book page (191 x 384)
    text = Image.fromarray(data.text()).convert("RGB")
    return [page, text, Image.fromarray(data.coffee())]


def _n_tokens(enc: ColPaliEncoder, **kw: object) -> list[int]:
    _, proc = enc._load()
    fn = proc.process_images if "images" in kw else proc.process_queries
    return [int(x) for x in fn(**kw, return_tensors="pt")["attention_mask"].sum(1)]


def test_registry_builds_a_page_model_not_a_main_model(colqwen_dir: Path) -> None:
    enc = registry.create_page_model(f"colpali:{colqwen_dir}")
    assert isinstance(enc, ColPaliEncoder)
    assert (enc.name, enc.space, enc.dim, enc.family) == (f"colpali:{colqwen_dir}", "pages", 16, "colqwen2")
    assert enc.config() == {"batch_size": 4, "page_size": 448}
    assert enc._model is None  # lazy: nothing loaded yet
    with pytest.raises(ModelError, match="page_model"):
        registry.create(f"colpali:{colqwen_dir}")
    with pytest.raises(ModelError, match="not a page model"):
        registry.create_page_model("offline")
    assert any(e.prefix == "colpali" and e.kind == "multivector" for e in registry.entries())


def test_page_matrices_shapes_normalisation_and_mask(enc: ColPaliEncoder, pages: list[Image.Image]) -> None:
    mats = enc.encode_pages(pages)
    assert len(mats) == 3
    # one row per attended position: the padded batch drops exactly the padding
    assert [m.shape for m in mats] == [(n, 16) for n in _n_tokens(enc, images=pages)]
    assert len({m.shape[0] for m in mats}) > 1  # different page sizes → different token counts (padding happened)
    for m in mats:
        assert m.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-5)
    # padding has no effect: each page alone encodes to the same rows as inside the padded batch
    for page, m in zip(pages, mats, strict=True):
        np.testing.assert_allclose(enc.encode_pages([page])[0], m, atol=1e-5)


def test_pages_differ_and_encoding_is_deterministic(enc: ColPaliEncoder, pages: list[Image.Image],
                                                    colqwen_dir: Path) -> None:
    a = enc.encode_pages(pages[:2])
    b = ColPaliEncoder(str(colqwen_dir), batch_size=1).encode_pages(pages[:2])  # fresh load, other batching
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-5)
    page, text = a
    n = min(len(page), len(text))
    # same prompt tokens, but the image-patch rows (and everything after them, causally) differ
    assert not np.allclose(page[:n], text[:n], atol=1e-3)


def test_query_matrices(enc: ColPaliEncoder) -> None:
    texts = ["fonts", "how do I typeset a table with aligned columns in LaTeX?"]
    mats = enc.encode_queries(texts)
    assert [m.shape for m in mats] == [(n, 16) for n in _n_tokens(enc, text=texts)]
    assert mats[0].shape[0] < mats[1].shape[0]
    np.testing.assert_allclose(enc.encode_queries(texts[:1])[0], mats[0], atol=1e-5)  # padding dropped
    for m in mats:
        np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ModelError, match="non-empty"):
        enc.encode_queries(["  "])


def test_unavailable_or_wrong_checkpoints_say_what_to_do(tmp_path: Path, colqwen_dir: Path) -> None:
    with pytest.raises(ModelError, match=r"colpali:vidore/no-such-colqwen.*(download|save_pretrained)"):
        registry.create_page_model("colpali:vidore/no-such-colqwen")
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelError, match="not a page retriever"):
        registry.create_page_model(f"colpali:{tmp_path / 'bert'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="config.json"):
        registry.create_page_model(f"colpali:{tmp_path / 'empty'}")
    half = tmp_path / "no-processor"
    half.mkdir()
    for f in ("config.json", "model.safetensors"):
        (half / f).write_bytes((colqwen_dir / f).read_bytes())
    with pytest.raises(ModelError, match="processor"):
        ColPaliEncoder(str(half)).encode_queries(["fonts"])
    with pytest.raises(ModelError, match="give a checkpoint"):
        registry.create_page_model("colpali:")


def test_extreme_page_colpali_is_not_refused(enc: ColPaliEncoder) -> None:
    """Issue 13.1: Qwen2-VL refuses images over 200:1; a very long page keeps its centre and is embedded."""
    mats = enc.encode_pages([Image.new("RGB", (2, 7168), (250, 250, 250)), Image.new("RGB", (9000, 3), (9, 9, 9))])
    assert all(m.ndim == 2 and np.isfinite(m).all() for m in mats)
