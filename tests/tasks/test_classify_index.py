"""Zero-shot classification over an index with the deterministic fake model."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax
from tasks_helpers import ANIMALS

from omniret.errors import QueryError
from omniret.index import Index
from omniret.items import Role
from omniret.methods.prompts import IMAGENET_TEMPLATES
from omniret.tasks.classify import Classification, build_prompts, classify, label_embeddings


@pytest.fixture
def index(tmp_path: Path, animal_notes: Path) -> Index:
    idx = Index.open(tmp_path / "idx", model="fake")
    idx.add(animal_notes, workers=0)
    yield idx
    idx.close()


def _chunks(idx: Index) -> list:
    return [it for it in idx.store.iter_items() if it.parent_id is not None]


def test_labels_match_the_notes(index: Index) -> None:
    out = classify(index, ANIMALS, templates="none")
    assert len(out) == 10 and all(isinstance(c, Classification) for c in out)
    for c in out:
        animal = Path(c.uri).stem[:-1]
        assert c.best == animal and c.labels[0][0] == animal and len(c.labels) == 1


def test_probabilities_match_a_naive_softmax(index: Index) -> None:
    out = classify(index, ANIMALS, templates=["a note about a {}.", "{}"], k=5, temperature=30.0)
    enc = index.encoder
    cls = []
    for a in ANIMALS:
        e = enc.encode_text([f"a note about a {a}.", a], role=Role.QUERY).astype(np.float64)
        m = (e / np.linalg.norm(e, axis=1, keepdims=True)).mean(axis=0)
        cls.append(m / np.linalg.norm(m))
    for c in out:
        v = index.store.vectors(enc.space, [c.id])[0].astype(np.float64)
        p = softmax(30.0 * (v / np.linalg.norm(v)) @ np.array(cls).T)
        got = dict(c.labels)
        assert len(got) == 5 and sum(got.values()) == pytest.approx(1.0, abs=1e-6)
        for j, a in enumerate(ANIMALS):
            assert got[a] == pytest.approx(p[j], rel=1e-4, abs=1e-7)
        assert [lab for lab, _ in c.labels] == [ANIMALS[j] for j in np.argsort(-p, kind="stable")]


def test_clip80_templates_are_used(index: Index) -> None:
    prompts = build_prompts(["cat", "dog"], "clip80")
    assert len(prompts["cat"]) == 80 and prompts["cat"][0] == IMAGENET_TEMPLATES[0].format("cat")
    out = classify(index, ANIMALS, chunk=3)  # default: the 80 CLIP templates, chunks of 3 items
    assert len(out) == 10 and all(c.best in ANIMALS for c in out)


def test_threshold_and_k(index: Index) -> None:
    all5 = classify(index, ANIMALS, templates="none", k=5)
    tagged = classify(index, ANIMALS, templates="none", k=5, threshold=0.2)
    for a, t in zip(all5, tagged, strict=True):
        assert [x for x in a.labels if x[1] >= 0.2] == list(t.labels)
    none = classify(index, ANIMALS, templates="none", k=3, threshold=0.5, temperature=1.0)
    assert all(c.labels == () and c.best is None for c in none)
    top1 = classify(index, ANIMALS, templates="none", k=1, threshold=0.0)
    assert all(len(c.labels) == 1 for c in top1)


def test_descriptions_change_the_class_embedding(index: Index) -> None:
    desc = {"cat": ["a small furry pet that purrs"], "dog": ["a loyal pet that barks"]}
    prompts = build_prompts(["cat", "dog"], "none", desc)
    assert prompts["cat"] == ["cat", "a small furry pet that purrs"]
    plain = label_embeddings(index.encoder, build_prompts(["cat", "dog"], "none"))
    rich = label_embeddings(index.encoder, prompts)
    assert not np.allclose(plain, rich)
    with pytest.raises(QueryError, match="not in the label set"):
        build_prompts(["cat"], "none", {"lion": ["x"]})


def test_gloss_source_is_pluggable_and_wordnet_skips_gracefully(index: Index, monkeypatch: pytest.MonkeyPatch) -> None:
    prompts = build_prompts(["cat", "dog"], "none", glosses=lambda lab: "a feline" if lab == "cat" else None)
    assert prompts["cat"] == ["cat", "a photo of a cat, which is a feline."] and prompts["dog"] == ["dog"]
    monkeypatch.setenv("OMNIRET_WORDNET", str(Path(index.path) / "no-wordnet-here"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = build_prompts(["cat"], "none", glosses="wordnet")
    assert p["cat"][0] == "cat"
    if len(p["cat"]) == 1:  # no WordNet data here: skipped with a note
        assert any("WordNet glosses skipped" in str(w.message) for w in caught)


def test_filters_ids_and_modality(index: Index) -> None:
    some = [it.id for it in _chunks(index)][:3]
    assert [c.id for c in classify(index, ANIMALS, templates="none", ids=some)] == some
    assert classify(index, ANIMALS, templates="none", modality="image") == []
    only_cat = classify(index, ANIMALS, templates="none", where={"name": "cat0.txt"})
    assert [c.best for c in only_cat] == ["cat"]


def test_write_makes_labels_filterable_and_keeps_vectors(index: Index) -> None:
    space = index.encoder.space
    ids = sorted(it.id for it in _chunks(index))
    before = index.store.vectors(space, ids)
    n_items = index.store.count()
    out = classify(index, ANIMALS, templates="none", k=2, write=True, chunk=4)
    assert len(out) == 10 and index.store.count() == n_items
    after = index.store.vectors(space, ids)
    assert not np.isnan(after).any() and np.array_equal(before, after)
    hits = index.search("number", k=20, where={"class": "dog"})
    assert sorted(Path(h.uri).name for h in hits) == ["dog0.txt", "dog1.txt"]
    it = index.get(hits[0].id)
    assert it is not None and it.metadata["class"] == "dog" and it.metadata["classes"][0] == "dog"
    assert set(it.metadata["class_probs"]) == set(it.metadata["classes"]) and len(it.metadata["classes"]) == 2
    assert "label" not in it.metadata  # the display label is not the classifier's
    assert it.metadata["name"] == "dog0.txt" or it.metadata["name"] == "dog1.txt"  # other metadata kept
    # a second run with a threshold replaces the labels, never stacks them
    classify(index, ["cat", "dog"], templates="none", write=True, threshold=0.9, temperature=1.0)
    assert index.search("number", k=20, where={"class": "dog"}) == []
    classify(index, ["cat", "dog"], templates="none", write=True, key="tag")
    assert index.search("number", k=20, where={"tag": "dog"}) and index.get(hits[0].id).metadata["tags"]  # type: ignore[union-attr]


def test_bad_arguments(index: Index) -> None:
    for kwargs, msg in [({"k": 0}, "k must"), ({"threshold": 1.5}, "threshold"), ({"temperature": 0}, "temperature"),
                        ({"templates": "clip81"}, "unknown templates"), ({"templates": []}, "templates")]:
        with pytest.raises(QueryError, match=msg):
            classify(index, ANIMALS, **kwargs)
    with pytest.raises(QueryError, match="duplicates"):
        classify(index, ["cat", "cat"])
    with pytest.raises(QueryError, match="write=True"):
        classify(index, ANIMALS, files=[index.path], write=True)


def test_to_dict_is_json() -> None:
    c = Classification("i1", "/x.png", (("cat", 0.9), ("dog", 0.1)), "cat")
    assert json.loads(json.dumps(c.to_dict()))["labels"][0] == {"label": "cat", "prob": 0.9}
