"""``Index.add_vectors`` and ``search(vector=...)``: embeddings you already have."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import omniret
from omniret.errors import OmniretError, QueryError


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    m = rng.standard_normal((n, d)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_own_space_vectors_are_searchable_by_vector_and_exactly_ranked(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    mat = _unit(rng, 50, 512)
    ids = [f"doc-{i}" for i in range(50)]
    with omniret.open(str(tmp_path / "i"), model="fake") as idx:
        report = idx.add_vectors(ids, mat * 3.0, space="clip-b32",
                                 items=[{"text": f"caption {i}", "metadata": {"i": i}} for i in range(50)])
        assert (report.new, report.items, report.failed) == (50, 50, [])
        assert idx.store.manifest()["spaces"]["clip-b32"]["dim"] == 512
        q = mat[7] + 0.01 * rng.standard_normal(512).astype(np.float32)
        hits = idx.search(vector=q, space="clip-b32", k=5)
        ref = np.argsort(-(mat @ (q / np.linalg.norm(q))))[:5]
        assert [h.id for h in hits] == [ids[i] for i in ref]
        assert hits[0].text == "caption 7" and hits[0].uri == "record:doc-7" and hits[0].metadata == {"i": 7}
        assert [h.id for h in idx.search(vector=q, space="clip-b32", k=3, where={"i": 9})] == ["doc-9"]
        assert idx.search("caption", k=1)  == []  # nothing in the model's own space yet
    with omniret.open(str(tmp_path / "i")) as again:  # the space is recorded: dims are checked after reopening
        with pytest.raises(OmniretError, match=r"holds 512-d vectors.*these are 256-d"):
            again.add_vectors(["x"], _unit(rng, 1, 256), space="clip-b32")
        with pytest.raises(QueryError, match="takes 512-d query vectors"):
            again.search(vector=[1.0, 2.0], space="clip-b32")
        with pytest.raises(QueryError, match="unknown space 'nope'"):
            again.search(vector=mat[0], space="nope")
        with pytest.raises(QueryError, match="cannot be combined"):
            again.search("text", vector=mat[0], space="clip-b32")
        with pytest.raises(QueryError, match="model's own space"):
            again.search(vector=mat[0], space="clip-b32", hubness="qbnorm")


def test_vectors_in_the_models_space_meet_text_queries(tmp_path: Path, corpus: Path) -> None:
    with omniret.open(str(tmp_path / "i"), model="fake") as idx:
        idx.add(str(corpus), workers=0)
        text_vecs = idx.encoder.encode_text(["volcano eruption lava", "quiet library books"])
        report = idx.add_vectors(["v1", "v2"], text_vecs, items=[{"modality": "text", "text": "volcano"}, None])
        assert report.items == 2 and idx.get("v1").modality.value == "text" and idx.get("v2").modality.value == "image"
        assert idx.search("volcano eruption lava", k=1)[0].id == "v1"
        assert idx.search(vector=text_vecs[1], k=1)[0].id == "v2"
        with pytest.raises(OmniretError, match=r"holds 64-d vectors \(fake\), these are 3-d.*space of their own"):
            idx.add_vectors(["x"], [[1.0, 0.0, 0.0]])
        # the model's vectors of a file are never overwritten; a space of your own is fine
        file_id = idx.search("rocket launch satellites", k=1)[0].id
        clash = idx.add_vectors([file_id], text_vecs[:1])
        assert "comes from the model" in dict(clash.failed)[file_id]
        before = idx.store.vectors(idx.encoder.space, [file_id])
        assert idx.add_vectors([file_id], [[0.0, 1.0]], space="tags").items == 1
        assert np.array_equal(idx.store.vectors(idx.encoder.space, [file_id]), before)
        assert idx.search(vector=[0.1, 1.0], space="tags", k=1)[0].uri.endswith("rockets.md")


def test_bad_rows_and_updates(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    with omniret.open(str(tmp_path / "i"), model="fake") as idx:
        good = _unit(rng, 3, 8)
        idx.add_vectors(["a", "b", "c"], good, space="s")
        idx.add_vectors(["a"], _unit(rng, 1, 64))  # "a" gets a vector in the model's space too
        bad = np.vstack([good[:1], np.full((1, 8), np.nan), np.zeros((1, 8)), good[1:2]])
        report = idx.add_vectors(["a", "nan", "zero", ""], bad, space="s",
                                 items=[{"text": "now with text"}, None, None, None])
        assert report.items == 1
        assert dict(report.failed) == {"nan": "vector holds NaN or infinity", "zero": "vector is all zeros",
                                       "row 3": "id must be a non-empty string"}
        assert idx.get("a").text == "now with text"
        # the new fields replaced the item; its vector in the other space came along in the same commit
        assert not np.isnan(idx.store.vectors(idx.encoder.space, ["a"])).any()
        with pytest.raises(OmniretError, match=r"vectors of shape \(2, 8\) for 3 ids"):
            idx.add_vectors(["x", "y", "z"], good[:2], space="s")
        odd = idx.add_vectors(["q"], good[:1], space="s", items=[{"colour": "red"}])
        assert "unknown item field(s) colour" in dict(odd.failed)["q"] and idx.get("q") is None
        huge = idx.add_vectors(["h"], np.full((1, 8), 1e6), space="s", normalize=False)
        assert "beyond" in dict(huge.failed)["h"]
        assert idx.add_vectors([42], good[:1], space="s").items == 1 and idx.get("42") is not None
