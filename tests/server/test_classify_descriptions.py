"""POST /classify with ``descriptions`` given as the name of a shipped set (``"sounds"``) or as a mapping."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

import omniret
from omniret.server.models import ClassifyRequest


def test_request_model_accepts_a_set_name_or_a_mapping() -> None:
    assert ClassifyRequest(labels=["dog"], descriptions="sounds").options() == {"descriptions": "sounds"}
    got = ClassifyRequest(labels=["dog"], descriptions={"dog": ["a dog barks"]}).options()
    assert got == {"descriptions": {"dog": ["a dog barks"]}}
    with pytest.raises(ValueError, match="descriptions"):
        ClassifyRequest(labels=["dog"], descriptions=["a dog barks"])  # type: ignore[arg-type]


def test_classify_with_the_shipped_sound_descriptions(client: TestClient, index: omniret.Index) -> None:
    labels = ["dog", "rain"]
    r = client.post("/classify", json={"labels": labels, "k": 2, "descriptions": "sounds"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    want = [c.to_dict() for c in index.classify(labels, k=2, descriptions="sounds")]
    assert want and len(results) == len(want)
    for got, ref in zip(sorted(results, key=lambda c: c["id"]), sorted(want, key=lambda c: c["id"]), strict=True):
        assert (got["id"], got["best"]) == (ref["id"], ref["best"])
        assert [x["label"] for x in got["labels"]] == [x["label"] for x in ref["labels"]]
        assert [x["prob"] for x in got["labels"]] == pytest.approx([x["prob"] for x in ref["labels"]])
    plain = [c.to_dict() for c in index.classify(labels, k=2)]
    # the descriptions enter the class embeddings, so the probabilities differ from the plain prompts'
    assert [c["labels"] for c in want] != [c["labels"] for c in plain]
    r = client.post("/classify", json={"labels": labels, "descriptions": "colours"})
    assert r.status_code == 400 and "sounds" in r.json()["error"]
    r = client.post("/classify", json={"labels": labels, "descriptions": {"dog": ["a dog barks in a park"]}})
    assert r.status_code == 200, r.text
