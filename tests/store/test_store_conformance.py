"""Conformance suite: every store backend in ``conftest.BACKENDS`` must pass all of it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from store_helpers import DIM, SPACE, assert_search_matches, make_items, matches, unit

from omniret.errors import OmniretError
from omniret.items import Item, Modality
from omniret.store.base import Filter, SourceState, Store, WriteBatch

Factory = Callable[[], Store]


def filled(factory: Factory, n: int = 120) -> tuple[Store, list[Item], np.ndarray]:
    store = factory()
    items = make_items(n)
    mat = unit(n, seed=1)
    store.upsert(items, {SPACE: mat})
    return store, items, mat


def test_upsert_get_and_replace(store_factory: Factory) -> None:
    store, items, _ = filled(store_factory, 20)
    assert store.get([items[3].id, "nope", items[0].id]) == [items[3], None, items[0]]
    new = Item(id=items[3].id, uri="/elsewhere/x.png", modality=Modality.IMAGE, text="replaced", metadata={"a": 1})
    v = unit(1, seed=9)
    store.upsert([new], {SPACE: v})
    assert store.get([new.id]) == [new]
    assert store.count() == 20
    np.testing.assert_allclose(store.vectors(SPACE, [new.id]), v, atol=1e-3)
    scores, ids = store.search(SPACE, v, 1)
    assert ids[0, 0] == new.id and scores[0, 0] == pytest.approx(1.0, abs=2e-3)


def test_delete_by_id_and_by_uri(store_factory: Factory) -> None:
    store = store_factory()
    items = make_items(12)
    batch = WriteBatch(sources=[SourceState(it.uri, 10, 5, "h") for it in items])
    batch.add(items, {SPACE: unit(12, seed=2)})
    store.commit(batch)
    store.delete([items[0].id, items[1].id, "unknown"])
    assert store.get([items[0].id, items[1].id]) == [None, None]
    store.commit(WriteBatch(delete_uris=[items[2].uri, items[3].uri]))
    assert store.count() == 8
    assert items[2].uri not in store.source_states() and items[4].uri in store.source_states()
    _, ids = store.search(SPACE, unit(3, seed=3), 12)
    assert {i for i in ids.ravel() if i is not None} == {it.id for it in items[4:]}


def test_vectors_round_trip(store_factory: Factory) -> None:
    store, items, mat = filled(store_factory, 30)
    got = store.vectors(SPACE, [items[5].id, "missing", items[0].id])
    assert got.shape == (3, DIM) and got.dtype == np.float32
    np.testing.assert_allclose(got[0], mat[5], atol=1e-3)
    np.testing.assert_allclose(got[2], mat[0], atol=1e-3)
    assert np.isnan(got[1]).all()
    assert store.spaces() == {SPACE: DIM}


def test_search_matches_exact_reference(store_factory: Factory) -> None:
    store, items, mat = filled(store_factory)
    q = unit(7, seed=4)
    assert_search_matches(store, q, 10, [it.id for it in items], mat)
    # ties: duplicate vectors must come back with equal scores, in any order
    store.upsert(make_items(3, start=500, prefix="dup"), {SPACE: np.repeat(mat[:1], 3, axis=0)})
    ids = [it.id for it in items] + ["dup500", "dup501", "dup502"]
    assert_search_matches(store, mat[:1], 4, ids, np.concatenate([mat, np.repeat(mat[:1], 3, axis=0)]))


FILTERS = {
    "modality": Filter(modalities=frozenset({Modality.TEXT, Modality.AUDIO})),
    "glob": Filter(path_glob="/data/photos/*"),
    "glob_crosses_slash": Filter(path_glob="*file_1?.txt"),
    "glob_class": Filter(path_glob="/data/*/file_[!1]*"),
    "mtime": Filter(mtime_min=1010.0, mtime_max=1060.0),
    "metadata_str": Filter(metadata={"tag": "red"}),
    "metadata_int_bool": Filter(metadata={"rank": 3, "flag": True}),
    "parent": Filter(parent_id="it10"),
    "ids": Filter(ids=frozenset({"it1", "it7", "it50", "nope"})),
    "combined": Filter(modalities=frozenset({Modality.IMAGE}), metadata={"tag": "blue"}, mtime_max=1100.0),
    "nothing": Filter(metadata={"tag": "green"}),
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filters_match_naive_reference(store_factory: Factory, name: str) -> None:
    store, items, mat = filled(store_factory)
    where = FILTERS[name]
    keep = [i for i, it in enumerate(items) if matches(it, where)]
    assert store.count(where) == len(keep)
    assert sorted(it.id for it in store.iter_items(where)) == sorted(items[i].id for i in keep)
    assert_search_matches(store, unit(4, seed=5), 8, [items[i].id for i in keep], mat[keep], where)


def test_lexical_finds_words(store_factory: Factory) -> None:
    store, items, _ = filled(store_factory, 40)
    hits = store.lexical("violin", 50)
    assert {h for h, _ in hits} == {it.id for it in items if "violin" in (it.text or "")}
    assert all(a[1] >= b[1] for a, b in zip(hits, hits[1:], strict=False))
    assert store.lexical("violin number 11", 1)[0][0] == "it11"  # both words beat one
    assert store.lexical("file_12", 3)[0][0] == "it12"  # file names are indexed
    hits = store.lexical("violin", 50, Filter(metadata={"tag": "red"}))
    assert {h for h, _ in hits} == {it.id for it in items if "violin" in (it.text or "") and it.metadata["tag"] == "red"}
    for nasty in ['"', "AND OR NOT", "violin*", "(", "col:umn", "NEAR(a b)", "", "   "]:
        store.lexical(nasty, 5)  # never an FTS5 syntax error


def test_manifest_round_trip(store_factory: Factory) -> None:
    store = store_factory()
    assert store.manifest() == {}
    m = {"encoders": {"s": {"name": "fake", "dim": 16}}, "version": "0.1.0", "normalised": True}
    store.set_manifest(m)
    assert store.manifest() == m
    store.close()
    assert store_factory().manifest() == m


def test_source_states_and_errors(store_factory: Factory) -> None:
    store = store_factory()
    a, b = SourceState("/a.jpg", 10, 123, "ha"), SourceState("/b.pdf", 20, 456, "hb", error="truncated")
    store.commit(WriteBatch(sources=[a, b], errors=[("/b.pdf", "truncated")]))
    store.commit(WriteBatch(sources=[SourceState("/a.jpg", 11, 124, "ha2")], errors=[("/c.wav", "bad header")]))
    assert store.source_states() == {"/a.jpg": SourceState("/a.jpg", 11, 124, "ha2"), "/b.pdf": b}
    errs = store.errors()
    assert [(u, r) for u, r, _ in errs] == [("/c.wav", "bad header"), ("/b.pdf", "truncated")]
    assert errs[0][2] >= errs[1][2] > 0
    assert len(store.errors(limit=1)) == 1


def test_counts_and_info(store_factory: Factory) -> None:
    store, items, _ = filled(store_factory, 40)
    info = store.info()
    assert info["items"] == store.count() == 40
    assert info["modalities"] == {m.value: sum(it.modality == m for it in items) for m in {it.modality for it in items}}
    assert info["spaces"][SPACE]["vectors"] == 40 and info["spaces"][SPACE]["dim"] == DIM
    assert store.count(Filter(modalities=frozenset({Modality.IMAGE}))) == sum(it.modality == Modality.IMAGE for it in items)


def test_reopen_keeps_everything(store_factory: Factory) -> None:
    store, items, mat = filled(store_factory, 50)
    store.delete([items[0].id])
    store.close()
    again = store_factory()
    assert again.count() == 49
    assert again.get([items[1].id]) == [items[1]]
    assert_search_matches(again, unit(3, seed=6), 5, [it.id for it in items[1:]], mat[1:])


def test_empty_store(store_factory: Factory) -> None:
    store = store_factory()
    assert store.count() == 0 and list(store.iter_items()) == [] and store.spaces() == {}
    assert store.lexical("anything", 5) == [] and store.get(["x"]) == [None]
    with pytest.raises(OmniretError, match="unknown vector space"):
        store.search(SPACE, unit(1), 3)
    items = make_items(2)
    store.upsert(items, {SPACE: unit(2)})
    store.delete([it.id for it in items])
    scores, ids = store.search(SPACE, unit(2), 3)
    assert np.isneginf(scores).all() and (ids == None).all()  # noqa: E711


def test_k_larger_than_index(store_factory: Factory) -> None:
    store, items, mat = filled(store_factory, 5)
    assert_search_matches(store, unit(2, seed=7), 12, [it.id for it in items], mat)


def test_bad_input_is_a_clear_error(store_factory: Factory) -> None:
    store, _, _ = filled(store_factory, 5)
    with pytest.raises(OmniretError, match="dim"):
        store.search(SPACE, unit(1, dim=8), 3)
    with pytest.raises(OmniretError, match="k must be"):
        store.search(SPACE, unit(1), 0)
    with pytest.raises(OmniretError, match="16-d"):
        store.upsert(make_items(1, start=99), {SPACE: unit(1, dim=8)})
    with pytest.raises(OmniretError, match="unknown item"):
        store.commit(WriteBatch(vectors={SPACE: (["ghost"], unit(1))}))
    assert store.count() == 5  # failed commits left nothing behind


def test_non_utf8_file_name_round_trips(store_factory: Factory) -> None:
    """Issue 13 (2): a file name that is not valid UTF-8 (``os.fsdecode`` gives lone surrogates) is
    stored, found, filtered and deleted by URI like any other, and comes back as the same string."""
    store = store_factory()
    bad = "/d/caf\udce9-\udcff.png"  # the bytes b"/d/caf\xe9-\xff.png"
    items = [Item(id=f"n{i}", uri=u, modality=Modality.IMAGE, metadata={"name": u.rsplit("/", 1)[1]})
             for i, u in enumerate([bad, "/d/good.png", "/e/caf\u00e9.png"])]
    batch = WriteBatch(sources=[SourceState(it.uri, 1, 2, "h") for it in items], errors=[(bad, "was bad once")])
    batch.add(items, {SPACE: unit(3, seed=4)})
    store.commit(batch)
    assert store.get(["n0"]) == [items[0]]
    assert set(store.source_states()) == {it.uri for it in items}
    assert store.errors(5)[0][:2] == (bad, "was bad once")
    assert [it.id for it in store.iter_items(Filter(path_glob="/d/*"))] == ["n0", "n1"]
    assert [it.id for it in store.iter_items(Filter(path_glob="*caf*"))] == ["n0", "n2"]
    store.commit(WriteBatch(delete_uris=[bad]))
    assert store.get(["n0", "n1", "n2"]) == [None, items[1], items[2]]
    assert bad not in store.source_states()
