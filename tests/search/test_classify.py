"""Prompt templates, prompt ensembling (spec §9) and zero-shot classification scoring."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from omniret.errors import ModelError, QueryError
from omniret.methods import classify as cl
from omniret.methods import prompts as pr


def fake_encode(texts: list[str]) -> np.ndarray:
    """Deterministic text 'encoder': a bag of hashed words (sha256, not hash())."""
    out = np.zeros((len(texts), 32))
    for i, t in enumerate(texts):
        for w in t.lower().strip(".").split():
            out[i, int(hashlib.sha256(w.encode()).hexdigest(), 16) % 32] += 1.0
    return out


def test_templates_are_the_80_clip_templates() -> None:
    assert len(pr.IMAGENET_TEMPLATES) == 80 == len(set(pr.IMAGENET_TEMPLATES))
    assert pr.IMAGENET_TEMPLATES[0] == "a bad photo of a {}."
    assert pr.IMAGENET_TEMPLATES[-1] == "a tattoo of the {}."
    assert all(t.count("{}") == 1 for t in pr.IMAGENET_TEMPLATES)


def test_templates_match_open_clip() -> None:
    meta = pytest.importorskip("open_clip.zero_shot_metadata")
    assert [t("{}") for t in meta.OPENAI_IMAGENET_TEMPLATES] == list(pr.IMAGENET_TEMPLATES)


def test_spec_ensemble_vector() -> None:
    np.testing.assert_allclose(cl.ensemble(np.array([[3.0, 4.0, 0.0], [0.0, 1.0, 0.0]])), [0.316228, 0.948683, 0.0], atol=1e-6)


def test_class_embeddings_templates_and_mapping() -> None:
    labels = ["dog", "cat {weird}"]
    emb = cl.class_embeddings(fake_encode, labels, ["a photo of a {}.", "a {c} drawing."])
    manual = [cl.ensemble(fake_encode([f"a photo of a {lab}.", f"a {lab} drawing."])) for lab in labels]
    np.testing.assert_allclose(emb, np.stack(manual))
    cupl = {"dog": ["a furry pet that barks"], "cat {weird}": ["a small cat", "a cat that meows"]}
    emb2 = cl.class_embeddings(fake_encode, labels, cupl)
    np.testing.assert_allclose(emb2[1], cl.ensemble(fake_encode(cupl["cat {weird}"])))
    with pytest.raises(QueryError, match="no prompt sentences"):
        cl.class_embeddings(fake_encode, ["dog", "owl"], cupl)
    with pytest.raises(ModelError, match="encode_fn"):
        cl.class_embeddings(lambda t: np.zeros((1, 4)), labels, ["{}"])


def test_classify_scores() -> None:
    classes = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    items = np.array([[2.0, 0.1], [0.0, -1.0]])
    probs, top, top_p = cl.classify_scores(items, classes, temperature=100.0, k=2)
    logits = 100 * (items / np.linalg.norm(items, axis=1, keepdims=True)) @ classes.T
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=1e-9)
    assert top.tolist() == [[0, 2], [0, 2]]
    np.testing.assert_allclose(top_p, np.take_along_axis(probs, top, 1))
    np.testing.assert_allclose(probs.sum(1), 1.0)
    mask = cl.labels_above(probs, 0.5)
    assert mask.tolist() == [[True, False, False], [True, False, False]]
    mask = cl.labels_above(np.array([[0.2, 0.3, 0.5], [0.4, 0.35, 0.25]]), 0.45, min_labels=1)
    assert mask.tolist() == [[False, False, True], [True, False, False]]


def test_gloss_prompts_pluggable() -> None:
    glosses = {"dog": "a domesticated canid."}
    out = pr.gloss_prompts(["dog", "zzz"], glosses.get)
    assert out == {"dog": ["a photo of a dog.", "a photo of a dog, which is a domesticated canid."], "zzz": ["a photo of a zzz."]}


def test_wordnet_source_gloss_or_clear_error() -> None:
    try:
        gloss = pr.wordnet_gloss_source()
    except ModelError as e:
        assert "WordNet" in str(e)
        return
    assert isinstance(gloss("dog"), str) and gloss("dog")
    assert gloss("qqxzvw") is None
