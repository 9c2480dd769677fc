"""Milvus-specific behaviour: locations, the commit protocol after a failure or a crash, change tracking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from store_helpers import SPACE, make_items, unit

from omniret.errors import StoreError
from omniret.store import open_store
from omniret.store.base import Filter, SourceState, WriteBatch
from omniret.store.milvus import MilvusStore
from omniret.store.milvus_expr import filter_expr, glob_prefix, parse_location


def test_locations(tmp_path: Path) -> None:
    lite = parse_location(f"milvus-lite://{tmp_path}/a/x.db")
    assert lite.lite and lite.uri == f"{tmp_path}/a/x.db" and lite.state_path.endswith("x.db.state.sqlite")
    srv = parse_location("milvus://db.example:19530/photos")
    assert (srv.uri, srv.prefix, srv.lite) == ("http://db.example:19530", "photos", False)
    assert parse_location("milvus+https://h:443").uri == "https://h:443"
    for bad in ("milvus-lite:///tmp/x.txt", "milvus:///coll", "milvus://h:1/9bad", "mongo://h"):
        with pytest.raises(StoreError):
            parse_location(bad)


def test_filter_expressions() -> None:
    assert glob_prefix("/data/photos/*.jpg") == "/data/photos/" and glob_prefix("*x") == ""
    expr = filter_expr(Filter(path_glob="/a/*", metadata={"k": 'x"y'}, ids=frozenset({"i"})), max_seq=4)
    assert expr == 'seq <= 4 and uri like "/a/%" and metadata["k"] == "x\\"y" and id in ["i"]'


def test_open_store_scheme(tmp_path: Path) -> None:
    with open_store(f"milvus-lite://{tmp_path}/m.db") as store:
        assert isinstance(store, MilvusStore) and store.info()["backend"] == "milvus-lite"


def test_failed_commit_is_invisible_and_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MilvusStore(f"milvus-lite://{tmp_path}/m.db")
    items = make_items(6)
    first = WriteBatch(sources=[SourceState(it.uri, 1, 1, "h") for it in items])
    first.add(items, {SPACE: unit(6, seed=1)})
    store.commit(first)
    assert store.version() == 1

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store._state, "finish_batch", boom)
    second = WriteBatch(sources=[SourceState(items[0].uri, 2, 2, "h2")])
    second.add([items[0], *make_items(2, start=100)], {SPACE: unit(3, seed=2)})
    with pytest.raises(StoreError, match="rolled back"):
        store.commit(second)
    monkeypatch.undo()
    assert store.version() == 1 and store.get(["it100", "it101"]) == [None, None]
    # the replaced item is gone with its source state, so the next add re-ingests that file
    assert items[0].uri not in store.source_states() and items[1].uri in store.source_states()
    _, ids = store.search(SPACE, unit(1, seed=3), 10)
    assert {i for i in ids[0] if i is not None} == {it.id for it in items[1:]}
    store.close()


def test_crash_mid_batch_is_rolled_back_on_open(tmp_path: Path) -> None:
    loc = f"milvus-lite://{tmp_path}/m.db"
    store = MilvusStore(loc)
    store.upsert(make_items(4), {SPACE: unit(4)})
    # what a process killed after writing rows to Milvus but before the commit point leaves behind
    store._state.begin_batch(2, ["/data/photos/file_200.jpg"])
    store._client.upsert(store._items, [{"id": "ghost", "seq": 2, "uri": "/x", "modality": "text", "parent_id": None,
                                         "mtime": None, "metadata": {}, "span_start": None, "span_end": None,
                                         "text": "ghost", "content_hash": None, "lex": "ghost"}])
    assert store.get(["ghost"]) == [None]  # invisible even before recovery
    store.close()
    again = MilvusStore(loc)
    assert again._state.pending() is None and again.count() == 4
    again.upsert(make_items(1, start=7), {SPACE: unit(1)})
    assert again.version() == 2 and again.count() == 5
    again.close()


def test_change_tracking_and_hnsw(tmp_path: Path) -> None:
    store = MilvusStore(f"milvus-lite://{tmp_path}/m.db", index_type="HNSW",
                        index_params={"M": 16, "efConstruction": 64}, search_params={"ef": 64})
    items = make_items(30)
    mat = unit(30, seed=4)
    store.upsert(items[:20], {SPACE: mat[:20]})
    v1 = store.version()
    store.upsert(items[20:], {SPACE: mat[20:]})
    store.delete([items[0].id, items[21].id])
    chunks = list(store.iter_vectors(SPACE, since=v1, chunk=4))
    got = {i: v for ids, _, m in chunks for i, v in zip(ids, m, strict=True)}
    assert set(got) == {it.id for it in items[20:]} - {items[21].id}
    np.testing.assert_allclose(got[items[25].id], mat[25], atol=1e-3)
    assert store.deleted_since(SPACE, v1) == 2 and store.deleted_since(SPACE, store.version()) == 0
    _, ids = store.search(SPACE, mat[5:6], 1)
    assert ids[0, 0] == items[5].id
    store.close()


def test_index_on_a_store_uri_keeps_its_files_beside_the_side_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An Index opened from a URI puts its query bank and statistics in the store's side folder; before,
    the URI was taken as a relative folder name (``./milvus-lite:/...`` in the working directory)."""
    import omniret

    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        (docs / f"d{i}.txt").write_text(f"apple banana note {i}")
    idx = omniret.open(f"milvus-lite://{tmp_path / 'm.db'}", model="fake")
    try:
        idx.add(str(docs), workers=0)
        idx.set_query_bank(["apple pie", "banana split"])
        for kw in ({"hubness": "qbnorm"}, {"gap": "center"}, {"gap": "calibrate"}):
            assert len(idx.search("apple", k=3, **kw)) == 3  # stages on a store without vector keys
        assert idx.files == str(tmp_path / "m.db.state.files")
        assert list((Path(idx.files) / "banks").iterdir())
        assert not list(work.iterdir())
    finally:
        idx.close()
