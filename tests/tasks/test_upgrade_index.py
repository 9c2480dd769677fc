"""Model upgrade without re-indexing first: fake (64-d) -> fake2 (48-d, another space)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omniret.encoders import registry
from omniret.errors import QueryError
from omniret.index import Index
from omniret.items import Modality, Role
from omniret.tasks.upgrade import MappedQueryEncoder, encoder_for, fit_upgrade, load_map, resume_upgrade


@pytest.fixture
def index(tmp_path: Path, mixed_corpus: Path) -> Index:
    idx = Index.open(tmp_path / "idx", model="fake")
    idx.add(mixed_corpus, workers=0)
    yield idx
    idx.close()


def _vectored(idx: Index, space: str) -> list[str]:
    ids = [it.id for it in idx.store.iter_items()]
    v = idx.store.vectors(space, ids)
    return [i for i, row in zip(ids, v, strict=True) if not np.isnan(row).any()]


def test_map_recovers_recall_close_to_old(index: Index) -> None:
    rep = fit_upgrade(index, "fake2", method="lstsq", pairs=500, holdout=0.2)
    assert rep.pairs == 132 and rep.held_out == round(0.2 * 132)
    n2o, o2o = rep.recall["new_to_old"], rep.recall["old_to_old"]
    assert o2o[1] == 1.0  # each held-out item's own old vector: the upper bound
    assert n2o[10] >= 0.9 and n2o[1] >= 0.6
    m = index.store.manifest()["upgrade"]
    assert m["state"] == "mapped" and m["to"] == "fake2" and m["dim"] == 48 and m["old_dim"] == 64
    W = load_map(index.path, m)
    assert W.shape == (48, 64)


def test_procrustes_needs_equal_dims(index: Index) -> None:
    with pytest.raises(QueryError, match="procrustes needs equal dims"):
        fit_upgrade(index, "fake2", method="procrustes")
    with pytest.raises(QueryError, match="own space"):
        fit_upgrade(index, "fake")


def test_mapped_queries_find_the_right_items(index: Index) -> None:
    fit_upgrade(index, "fake2", pairs=500)
    enc = encoder_for(index.store.manifest(), registry.create, index.path)
    assert isinstance(enc, MappedQueryEncoder) and enc.space == "fake-64" and enc.dim == 64
    mapped = Index(index.store, enc, index.path)
    texts = [it for it in index.store.iter_items() if it.parent_id is not None][:40]
    found = 0
    for it in texts:
        hits = mapped.search(it.text, k=5, modality="text")
        found += it.id in [h.id for h in hits]
    assert found >= 36  # >= 90% of items found by their own text through the map
    img = next(it for it in index.store.iter_items() if it.modality is Modality.IMAGE)
    assert mapped.search(image=img.uri, k=3, modality="image")[0].id == img.id
    # the mapped encoder equals normalize(fake2(x) W)
    W = load_map(index.path, index.store.manifest()["upgrade"])
    raw = registry.create("fake2").encode_text(["river stone"], role=Role.QUERY) @ W
    assert np.allclose(enc.encode_text(["river stone"]), raw / np.linalg.norm(raw), atol=1e-5)


def test_resume_after_interruption_then_switch(index: Index) -> None:
    fit_upgrade(index, "fake2", pairs=200)
    old_ids = _vectored(index, "fake-64")
    first = resume_upgrade(index, commit_every=16, limit=50)
    assert first.embedded == 50 and not first.switched and first.remaining == len(old_ids) - 50
    assert index.store.manifest()["upgrade"]["state"] == "reembedding"
    assert encoder_for(index.store.manifest(), registry.create, index.path) is not None
    # a crash inside a batch: nothing of that batch is committed, the rest is kept
    calls = {"n": 0}
    real_commit = index.store.commit

    def flaky(batch):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real_commit(batch)

    index.store.commit = flaky  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        resume_upgrade(index, commit_every=16)
    index.store.commit = real_commit  # type: ignore[method-assign]
    assert len(_vectored(index, "fake2-48")) == 66
    last = resume_upgrade(index, commit_every=16)
    assert last.switched and last.remaining == 0 and last.embedded == len(old_ids) - 66
    new_ids = _vectored(index, "fake2-48")
    assert sorted(new_ids) == sorted(old_ids)  # exactly one new vector per item
    info = index.store.info()["spaces"]
    assert info["fake2-48"]["vectors"] == len(old_ids) == info["fake-64"]["vectors"]
    # the stored new vectors are the new model's own embeddings
    chunk = next(it for it in index.store.iter_items() if it.parent_id is not None)
    want = registry.create("fake2").encode_text([chunk.text], role=Role.DOCUMENT)[0]
    assert np.allclose(index.store.vectors("fake2-48", [chunk.id])[0], want, atol=2e-3)
    m = index.store.manifest()
    assert m["encoder"]["name"] == "fake2" and m["encoder"]["space"] == "fake2-48"
    assert m["upgrade"]["state"] == "complete" and m["upgrade"]["from"]["name"] == "fake"
    assert encoder_for(m, registry.create, index.path) is None
    assert resume_upgrade(index).switched  # nothing left to do


def test_switch_reopens_with_the_new_model_and_can_drop_old(tmp_path: Path, index: Index) -> None:
    fit_upgrade(index, "fake2", pairs=200)
    rep = resume_upgrade(index, drop_old=True)
    assert rep.switched and rep.dropped_old
    assert _vectored(index, "fake-64") == []
    n = index.store.count()
    path = index.path
    index.close()
    with Index.open(path) as again:
        assert again.encoder.name == "fake2" and again.store.count() == n
        hits = again.search("river stone bread", k=3)
        assert hits and hits[0].modality is Modality.TEXT


def test_resume_without_upgrade_is_an_error(index: Index) -> None:
    with pytest.raises(QueryError, match="no model upgrade"):
        resume_upgrade(index)
