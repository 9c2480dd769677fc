"""Embedded-backend specifics: derived FAISS files, index kinds, masking, locking, threads."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from store_helpers import SPACE, assert_search_matches, make_items, unit

from omniret.errors import StoreError
from omniret.items import Item, Modality
from omniret.store import open_store
from omniret.store.embedded import EmbeddedStore
from omniret.store.sql import fts_query, glob_to_sqlite


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((20, dim))
    x = centres[rng.integers(0, 20, n)] + 0.3 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def recall_at(store: EmbeddedStore, ids: list[str], mat: np.ndarray, q: np.ndarray, k: int) -> float:
    truth = np.argsort(-(q @ mat.T), axis=1)[:, :k]
    _, got = store.search(SPACE, q, k)
    return float(np.mean([len(set(got[i]) & {ids[j] for j in truth[i]}) / k for i in range(len(q))]))


def test_deleting_faiss_folder_loses_nothing(tmp_path: Path) -> None:
    items, mat = make_items(200), unit(200, seed=1)
    q = unit(5, seed=2)
    with EmbeddedStore(tmp_path / "s") as store:
        store.upsert(items, {SPACE: mat})
        before = store.search(SPACE, q, 10)
    assert list((tmp_path / "s" / "faiss").glob("*.npz"))
    shutil.rmtree(tmp_path / "s" / "faiss")
    with EmbeddedStore(tmp_path / "s") as store:
        after = store.search(SPACE, q, 10)
        np.testing.assert_array_equal(before[1], after[1])
        np.testing.assert_allclose(before[0], after[0])
    (tmp_path / "s" / "faiss" / next(p.name for p in (tmp_path / "s" / "faiss").glob("*.npz"))).write_bytes(b"junk")
    with EmbeddedStore(tmp_path / "s") as store:  # a corrupt index file is rebuilt
        np.testing.assert_array_equal(store.search(SPACE, q, 10)[1], before[1])


def test_saved_index_is_caught_up_on_open(tmp_path: Path) -> None:
    items, mat = make_items(100), unit(100, seed=3)
    with EmbeddedStore(tmp_path / "s") as store:
        store.upsert(items[:60], {SPACE: mat[:60]})
        store.search(SPACE, mat[:1], 1)  # builds and saves at commit 1
    with EmbeddedStore(tmp_path / "s") as writer:  # another opener commits more
        writer.upsert(items[60:], {SPACE: mat[60:]})
        writer.delete([items[0].id])
        writer._indexes.clear()  # do not let it save: the saved file must stay stale
        writer._closed = True
        for conn in writer._conns:
            conn.close()
    with EmbeddedStore(tmp_path / "s") as store:
        assert store._indexes[SPACE].seq == 3
        assert_search_matches(store, unit(4, seed=4), 10, [it.id for it in items[1:]], mat[1:])


@pytest.mark.parametrize("kind", ["auto", "hnsw", "ivfpq"])
def test_index_kinds_recall(tmp_path: Path, kind: str) -> None:
    n, dim = 3000, 32
    mat = clustered(n, dim, seed=1)
    items = [Item(id=f"v{j}", uri=f"/v/{j}", modality=Modality.IMAGE) for j in range(n)]
    store = EmbeddedStore(tmp_path / "s", index_kind=kind, flat_threshold=1000)
    store.upsert(items, {SPACE: mat})
    q = clustered(50, dim, seed=2)
    expected = "ivfpq" if kind == "auto" else kind
    assert recall_at(store, [it.id for it in items], mat, q, 10) >= 0.95
    assert store.info()["spaces"][SPACE]["index_kind"] == expected
    store.close()


def test_auto_switches_kind_above_threshold(tmp_path: Path) -> None:
    dim = 32
    mat = clustered(1500, dim, seed=5)
    items = [Item(id=f"v{j}", uri=f"/v/{j}", modality=Modality.IMAGE) for j in range(1500)]
    with EmbeddedStore(tmp_path / "s", flat_threshold=1000) as store:
        store.upsert(items[:500], {SPACE: mat[:500]})
        store.search(SPACE, mat[:1], 1)
        assert store.info()["spaces"][SPACE]["index_kind"] == "flat"
        store.upsert(items[500:], {SPACE: mat[500:]})
        assert recall_at(store, [it.id for it in items], mat, clustered(40, dim, seed=6), 10) >= 0.95
        assert store.info()["spaces"][SPACE]["index_kind"] == "ivfpq"


def test_deletes_are_masked_then_rebuilt(tmp_path: Path) -> None:
    items, mat = make_items(300), unit(300, seed=7)
    ids = [it.id for it in items]
    q = unit(6, seed=8)
    with EmbeddedStore(tmp_path / "s") as store:
        store.upsert(items, {SPACE: mat})
        first = store._fresh_index(SPACE)
        store.delete(ids[:10])  # 10/300: masked in place
        assert_search_matches(store, q, 10, ids[10:], mat[10:])
        assert store._indexes[SPACE] is first and len(first.masked) == 10
        store.delete(ids[10:60])  # now > 10 % masked: rebuilt
        assert_search_matches(store, q, 10, ids[60:], mat[60:])
        rebuilt = store._indexes[SPACE]
        assert rebuilt is not first and len(rebuilt.masked) == 0 and rebuilt.n == 240
        store.upsert(items[:5], {SPACE: -mat[:5]})  # re-added with new vectors
        assert_search_matches(store, q, 10, ids[:5] + ids[60:], np.concatenate([-mat[:5], mat[60:]]))


def test_masked_ids_stay_out_of_filtered_search(tmp_path: Path) -> None:
    items, mat = make_items(200), unit(200, seed=9)
    with EmbeddedStore(tmp_path / "s", config=None) as store:
        store.upsert(items, {SPACE: mat})
        store.search(SPACE, mat[:1], 1)
        store.delete([items[0].id])
        _, got = store.search(SPACE, mat[:1], 5, where=None)
        assert items[0].id not in set(got.ravel())


def test_commits_from_another_connection_are_seen(tmp_path: Path) -> None:
    a, b = EmbeddedStore(tmp_path / "s"), EmbeddedStore(tmp_path / "s")
    a.upsert(make_items(10), {SPACE: unit(10, seed=1)})
    assert b.search(SPACE, unit(1, seed=1), 1)[1][0, 0] == "it0"
    a.delete(["it0"])
    assert b.search(SPACE, unit(1, seed=1), 1)[1][0, 0] != "it0"
    a.close()
    b.close()


def test_write_lock_held_too_long_is_a_store_error(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s", busy_timeout_s=0.2)
    other = sqlite3.connect(tmp_path / "s" / "omniret.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreError, match="write lock"):
        store.upsert(make_items(1), {SPACE: unit(1)})
    other.execute("ROLLBACK")
    other.close()
    store.upsert(make_items(1), {SPACE: unit(1)})
    assert store.count() == 1
    store.close()


def test_concurrent_readers_during_writes(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s")
    store.upsert(make_items(50), {SPACE: unit(50, seed=0)})
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader(seed: int) -> None:
        q = unit(3, seed=seed)
        try:
            while not stop.is_set():
                scores, ids = store.search(SPACE, q, 10)
                assert (ids != None).all() and np.all(np.diff(scores, axis=1) <= 1e-6)  # noqa: E711
                store.lexical("apple", 3)
                store.count()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for c in range(30):
        store.upsert(make_items(20, start=100 + 20 * c), {SPACE: unit(20, seed=100 + c)})
        if c % 3 == 0:
            store.delete([f"it{100 + 20 * c}"])
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    items = list(store.iter_items())
    mat = store.vectors(SPACE, [it.id for it in items])
    assert_search_matches(store, unit(5, seed=77), 10, [it.id for it in items], mat)
    store.close()


def test_open_store_registry(tmp_path: Path) -> None:
    with open_store(tmp_path / "a") as a:
        assert isinstance(a, EmbeddedStore)
    with open_store(f"embedded://{tmp_path / 'b'}") as b:
        assert isinstance(b, EmbeddedStore) and b.path == tmp_path / "b"
    with pytest.raises(StoreError, match="unknown store backend 'nosuch'.*embedded"):
        open_store("nosuch://x")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        open_store(tmp_path / "file")
    with pytest.raises(StoreError, match="index_kind"):
        EmbeddedStore(tmp_path / "c", index_kind="annoy")


def test_closed_store_is_a_clear_error(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.count()


def test_fts_query_quotes_everything() -> None:
    assert fts_query('violin AND "x" OR y*') == '"violin" OR "and" OR "x" OR "or" OR "y"'
    assert fts_query("  ()*: ") is None


@pytest.mark.parametrize("pattern", ["/data/*", "*.jpg", "/d?ta/[!p]*", "*/file_[0-9]*", "[abc]x"])
def test_glob_translation_matches_fnmatch(tmp_path: Path, pattern: str) -> None:
    import fnmatch

    uris = ["/data/photos/file_1.jpg", "/dota/sounds/a.wav", "/data/x", "ax", "dx", "/data/file_9.txt"]
    conn = sqlite3.connect(":memory:")
    got = [u for u in uris if conn.execute("SELECT ? GLOB ?", (u, glob_to_sqlite(pattern))).fetchone()[0]]
    assert got == [u for u in uris if fnmatch.fnmatchcase(u, pattern)]


def test_ivfpq_catches_up_without_rebuilding(tmp_path: Path) -> None:
    from omniret.store.faiss_index import IndexConfig

    dim = 32
    mat = clustered(2100, dim, seed=11)
    items = [Item(id=f"v{j}", uri=f"/v/{j}", modality=Modality.IMAGE) for j in range(2100)]
    cfg = IndexConfig(kind="ivfpq", train_max=500)  # trained on a sample smaller than the index
    with EmbeddedStore(tmp_path / "s", config=cfg) as store:
        store.upsert(items[:2000], {SPACE: mat[:2000]})
        built = store._fresh_index(SPACE)
        store.upsert(items[2000:], {SPACE: mat[2000:]})
        _, got = store.search(SPACE, mat[2000:2010], 1)
        assert store._indexes[SPACE] is built and built.n == 2100
        assert list(got[:, 0]) == [f"v{j}" for j in range(2000, 2010)]


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_filter_through_id_selector(tmp_path: Path, kind: str) -> None:
    """Broad filters go through an IDSelector inside FAISS (exact for flat, recall for the rest)."""
    from omniret.store.base import Filter
    from omniret.store.faiss_index import IndexConfig

    dim, n = 32, 2000
    mat = clustered(n, dim, seed=21)
    items = [Item(id=f"v{j}", uri=f"/v/{'even' if j % 2 == 0 else 'odd'}/{j}", modality=Modality.IMAGE)
             for j in range(n)]
    cfg = IndexConfig(kind=kind, exact_filter_max=10)
    where = Filter(path_glob="/v/even/*")
    keep = np.arange(0, n, 2)
    q = clustered(30, dim, seed=22)
    with EmbeddedStore(tmp_path / "s", config=cfg) as store:
        store.upsert(items, {SPACE: mat})
        store.delete(["v0", "v2"])  # masked and filtered at once
        keep = keep[2:]
        ids = [items[j].id for j in keep]
        if kind == "flat":
            assert_search_matches(store, q, 10, ids, mat[keep], where)
        else:
            truth = np.argsort(-(q @ mat[keep].T), axis=1)[:, :10]
            _, got = store.search(SPACE, q, 10, where)
            assert all(x in set(ids) for x in got.ravel())
            rec = np.mean([len(set(got[i]) & {ids[j] for j in truth[i]}) / 10 for i in range(len(q))])
            assert rec >= 0.95


def test_small_flat_searches_run_on_one_omp_thread_and_restore_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The single-query flat search pins FAISS to one OpenMP thread for the call only; results are unchanged."""
    import faiss
    import numpy as np

    from omniret.items import Item, Modality
    from omniret.store.base import WriteBatch
    from omniret.store.embedded import EmbeddedStore
    from omniret.store.faiss_index import one_omp_thread

    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((500, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    store = EmbeddedStore(tmp_path / "idx")
    batch = WriteBatch()
    batch.add([Item(f"i{n}", f"/d/{n}", Modality.IMAGE) for n in range(500)], {"s": vecs})
    store.commit(batch)
    faiss.omp_set_num_threads(2)
    seen: list[int] = []
    with one_omp_thread(True):
        seen.append(faiss.omp_get_max_threads())
    assert seen == [1] and faiss.omp_get_max_threads() == 2
    q = vecs[:3] + 0.01
    s1, ids1 = store.search("s", q, 5)  # 3 queries: one thread
    assert faiss.omp_get_max_threads() == 2
    many = np.repeat(q, 4, axis=0)  # 12 queries: the default threads
    s2, ids2 = store.search("s", many, 5)
    np.testing.assert_array_equal(ids2[::4], ids1)
    np.testing.assert_allclose(s2[::4], s1, rtol=1e-6)
    exact = np.argsort(-(q @ vecs.T), axis=1)[:, :5]
    assert [[int(x[1:]) for x in row] for row in ids1] == exact.tolist()
    store.close()
