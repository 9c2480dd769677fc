"""The ``ondisk`` index kind: memory-mapped IVF-PQ with float16 re-ranking from disk."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import faiss
import numpy as np
import pytest
from store_helpers import SPACE

from omniret.errors import StoreError
from omniret.items import Item, Modality
from omniret.store.embedded import EmbeddedStore
from omniret.store.faiss_index import IndexConfig
from omniret.store.ondisk import OnDiskIndex, index_bytes, ondisk_shape

N, DIM = 3000, 32


@pytest.fixture(autouse=True)
def one_faiss_thread():  # tiny indexes: OpenMP spin-waits cost seconds on a loaded 2-core machine
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((20, dim))
    x = centres[rng.integers(0, 20, n)] + 0.3 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def items_for(n: int, start: int = 0) -> list[Item]:
    return [Item(id=f"v{j}", uri=f"/v/{j}", modality=Modality.IMAGE) for j in range(start, start + n)]


def recall(store: EmbeddedStore, ids: list[str], mat: np.ndarray, q: np.ndarray, k: int = 10) -> float:
    truth = np.argsort(-(q @ mat.T), axis=1)[:, :k]
    _, got = store.search(SPACE, q, k)
    return float(np.mean([len(set(got[i]) & {ids[j] for j in truth[i]}) / k for i in range(len(q))]))


def ondisk_store(path: Path, **cfg: object) -> EmbeddedStore:
    return EmbeddedStore(path, config=IndexConfig(kind="ondisk", **cfg))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def data() -> tuple[list[Item], np.ndarray, np.ndarray]:
    return items_for(N), clustered(N, DIM, seed=1), clustered(40, DIM, seed=2)


def test_sizing_rule() -> None:
    nlist, m = ondisk_shape(1_000_000, 512)
    assert (nlist, m) == (4000, 64)
    small_budget = index_bytes(1_000_000, 512, 4000, 16)
    assert ondisk_shape(1_000_000, 512, small_budget) == (4000, 16)
    assert ondisk_shape(1_000_000, 512, small_budget - 1)[1] == 8
    assert ondisk_shape(2000, 32)[0] == 51  # k-means wants >= 39 points a list: at most n/39
    assert ondisk_shape(200, 32)[0] == 16  # and at least 16 lists
    with pytest.raises(StoreError, match="memory budget"):
        ondisk_shape(1_000_000, 512, 1_000_000)


def test_recall_and_files(tmp_path: Path, data: tuple[list[Item], np.ndarray, np.ndarray]) -> None:
    items, mat, q = data
    ids = [it.id for it in items]
    with ondisk_store(tmp_path / "s") as store:
        store.upsert(items, {SPACE: mat})
        assert recall(store, ids, mat, q) >= 0.95
        assert store.info()["spaces"][SPACE]["index_kind"] == "ondisk"
        idx = store._indexes[SPACE]
        assert isinstance(idx, OnDiskIndex)
        assert isinstance(idx.mat, np.memmap) and idx.mat.dtype == np.float16
        names = {p.name for p in idx.folder.iterdir()}
        assert {"index.faiss", "vectors.npy", "vids.npy", "ids.bin", "ids_off.npy"} <= names
        (lists,) = idx.folder.glob("lists-*.ivfdata")
        assert lists.stat().st_size == N * (idx.index.code_size + 8)  # compact: code + id, no slack
        assert isinstance(idx.vids, np.memmap)  # position -> row id on disk, not in RAM


def test_reopen_memory_maps_and_catches_up(tmp_path: Path, data: tuple[list[Item], np.ndarray, np.ndarray]) -> None:
    items, mat, q = data
    ids = [it.id for it in items]
    with ondisk_store(tmp_path / "s") as store:
        store.upsert(items[:2500], {SPACE: mat[:2500]})
        before = store.search(SPACE, q, 10)
        folder = store._indexes[SPACE].folder
    with ondisk_store(tmp_path / "s") as store:
        idx = store._indexes[SPACE]
        assert idx.folder == folder and isinstance(idx.mat, np.memmap)  # loaded, not rebuilt
        after = store.search(SPACE, q, 10)
        np.testing.assert_array_equal(before[1], after[1])
        store.upsert(items[2500:], {SPACE: mat[2500:]})  # appended in place to lists and vectors.npy
        assert recall(store, ids, mat, q) >= 0.95
        assert store._indexes[SPACE].folder == folder and store._indexes[SPACE].n == N
    with ondisk_store(tmp_path / "s") as store:
        assert store._indexes[SPACE].n == N
        assert recall(store, ids, mat, q) >= 0.95


def test_deletes_masked(tmp_path: Path, data: tuple[list[Item], np.ndarray, np.ndarray]) -> None:
    items, mat, q = data
    with ondisk_store(tmp_path / "s") as store:
        store.upsert(items, {SPACE: mat})
        _, top = store.search(SPACE, q[:5], 3)
        gone = sorted({str(i) for i in top.ravel()})
        store.delete(gone)
        idx = store._indexes[SPACE]
        _, got = store.search(SPACE, q[:5], 10)
        assert not set(got.ravel()) & set(gone)
        assert store._indexes[SPACE] is idx and len(idx.masked) == len(gone)  # masked, not rebuilt
        keep = [j for j, it in enumerate(items) if it.id not in gone]
        assert recall(store, [items[j].id for j in keep], mat[keep], q) >= 0.95


def _build(tmp_path: Path, name: str, mat: np.ndarray, chunk: int) -> OnDiskIndex:
    cfg = IndexConfig(kind="ondisk", build_chunk=chunk)
    n = len(mat)
    chunks = ((np.arange(a, min(a + chunk, n)), np.array([f"v{j}" for j in range(a, min(a + chunk, n))], dtype=object),
               mat[a : a + chunk].astype(np.float16)) for a in range(0, n, chunk))
    return OnDiskIndex.build_chunks(tmp_path / f"{name}.npz", DIM, cfg, n, chunks, seq=1)


def test_shards_build_the_same_index(tmp_path: Path, data: tuple[list[Item], np.ndarray, np.ndarray]) -> None:
    _, mat, q = data
    one = _build(tmp_path, "one", mat, chunk=N)
    sharded = _build(tmp_path, "many", mat, chunk=256)
    s1, i1 = one.search(q, 10)
    s2, i2 = sharded.search(q, 10)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(s1, s2)
    assert one.index.ntotal == sharded.index.ntotal == N


def test_build_memory_bounded_by_chunk(tmp_path: Path) -> None:
    n, dim, chunk = 40_000, 64, 2_000
    rng = np.random.default_rng(3)
    cfg = IndexConfig(kind="ondisk", build_chunk=chunk, train_max=4_000)

    def chunks():  # generated lazily: the full matrix never exists in memory
        for a in range(0, n, chunk):
            x = rng.standard_normal((chunk, dim)).astype(np.float32)
            yield np.arange(a, a + chunk), np.full(chunk, "x", dtype=object), (x / np.linalg.norm(x, axis=1)[:, None]).astype(np.float16)

    tracemalloc.start()
    try:
        idx = OnDiskIndex.build_chunks(tmp_path / "big.npz", dim, cfg, n, chunks(), seq=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full_f32 = n * dim * 4
    per_vector_index = n * (8 + 8 + 8)  # vids + object-id pointers the index keeps in RAM
    assert idx.index.ntotal == n
    assert peak < per_vector_index + 6 * (chunk + cfg.train_max) * dim * 4
    assert peak < full_f32  # less than one float32 copy of the data (what ivfpq holds)


def _self_hits(store: EmbeddedStore, ids: list[str], mat: np.ndarray) -> list[str]:
    """Top-1 id of each vector searched for itself (ids whose vector is its own nearest)."""
    _, got = store.search(SPACE, mat, 1)
    return [str(g) for g in got[:, 0]]


def fresh(store: EmbeddedStore) -> OnDiskIndex:
    """The space's index, caught up with every commit (the store applies commits at the next search)."""
    store.search(SPACE, np.ones((1, DIM), np.float32) / np.sqrt(DIM), 1)
    idx = store._indexes[SPACE]
    assert isinstance(idx, OnDiskIndex)
    return idx


def test_appends_after_compaction_keep_their_ids(tmp_path: Path, data: tuple[list[Item], np.ndarray, np.ndarray],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    items, mat, q = data
    ids = [it.id for it in items]
    monkeypatch.setattr(OnDiskIndex, "compact_min", 300)  # fold the delta in once it holds 300 vectors
    monkeypatch.setattr(OnDiskIndex, "compact_fraction", 0.0)
    with ondisk_store(tmp_path / "s") as store:
        store.upsert(items[:2000], {SPACE: mat[:2000]})
        idx = fresh(store)
        (first,) = idx.folder.glob("lists-*.ivfdata")
        store.upsert(items[2000:2200], {SPACE: mat[2000:2200]})  # 200 in the delta
        assert fresh(store) is idx and idx.base_n == 2000 and idx.delta.ntotal == 200
        store.upsert(items[2200:2500], {SPACE: mat[2200:2500]})  # 500 >= 300: compacted
        assert fresh(store) is idx and idx.base_n == 2500 and idx.delta.ntotal == 0
        (lists,) = idx.folder.glob("lists-*.ivfdata")
        assert lists != first and lists.stat().st_size == 2500 * (idx.index.code_size + 8)
        store.upsert(items[2500:2700], {SPACE: mat[2500:2700]})  # appends after the compaction
        assert fresh(store).delta.ntotal == 200
        assert _self_hits(store, ids, mat[:2700]) == ids[:2700]
        assert recall(store, ids[:2700], mat[:2700], q) >= 0.95
    with ondisk_store(tmp_path / "s") as store:  # reopened: base + delta as saved
        idx = fresh(store)
        assert (idx.base_n, idx.delta.ntotal) == (2500, 200)
        store.upsert(items[2700:], {SPACE: mat[2700:]})  # 500 in the delta again: compacted again
        assert fresh(store) is idx and (idx.base_n, idx.delta.ntotal) == (N, 0)
        assert _self_hits(store, ids, mat) == ids
        gone = ids[10:20] + ids[2600:2610]  # masks cover base and (former) delta positions alike
        store.delete(gone)
        _, got = store.search(SPACE, mat[[*range(10, 20), *range(2600, 2610)]], 5)
        assert not set(got.ravel()) & set(gone)


def test_compaction_keeps_every_result(tmp_path: Path, data: tuple[list[Item], np.ndarray, np.ndarray]) -> None:
    _, mat, q = data
    grown = _build(tmp_path, "grown", mat[:2000], chunk=500)
    grown.add(np.arange(2000, N), np.array([f"v{j}" for j in range(2000, N)], dtype=object), mat[2000:])
    before = grown.search(q, 10)
    grown.compact()
    after = grown.search(q, 10)
    np.testing.assert_array_equal(before[1], after[1])  # same codes, now in one compact base
    np.testing.assert_array_equal(before[0], after[0])
    assert grown.index.ntotal == N and grown.delta.ntotal == 0 and grown.base_n == N


def test_item_ids_round_trip_through_the_id_column(tmp_path: Path) -> None:
    mat = clustered(1200, DIM, seed=5)
    names = np.array([f"é-{j}-图" if j % 3 else f"plain{j}" for j in range(1200)], dtype=object)
    chunks = [(np.arange(a, a + 400), names[a : a + 400], mat[a : a + 400].astype(np.float16)) for a in (0, 400, 800)]
    idx = OnDiskIndex.build_chunks(tmp_path / "u.npz", DIM, IndexConfig(kind="ondisk", build_chunk=300), 1200,
                                   iter(chunks), seq=1)
    np.testing.assert_array_equal(idx.item_ids[np.arange(1200)], names)
    _, got = idx.search(mat[[7, 8, 900]], 1)
    assert got[:, 0].tolist() == [names[7], names[8], names[900]]


def test_no_output_on_stdout(tmp_path: Path, data: tuple[list[Item], np.ndarray, np.ndarray],
                             capfd: pytest.CaptureFixture[str]) -> None:
    items, mat, _ = data
    with ondisk_store(tmp_path / "s") as store:  # build, append, save
        store.upsert(items[:2000], {SPACE: mat[:2000]})
        fresh(store)
        store.upsert(items[2000:], {SPACE: mat[2000:]})
        fresh(store).compact()
    with ondisk_store(tmp_path / "s") as store:  # load
        store.search(SPACE, mat[:2], 3)
    assert capfd.readouterr().out == ""  # FAISS prints when it resizes or relocates a lists file


def test_keyed_search_and_modality_filter(tmp_path: Path, data: tuple[list[Item], np.ndarray, np.ndarray]) -> None:
    """The stage path on the on-disk kind: lazy ids read from the id column equal the plain search's;
    a modality filter (cached restriction, bitmap selector) keeps only that modality."""
    from omniret.store.base import Filter, IdRow

    items, mat, q = data
    half = [Item(id=it.id, uri=it.uri, modality=Modality.TEXT if j % 2 else Modality.IMAGE) for j, it in enumerate(items)]
    with ondisk_store(tmp_path / "s", exact_filter_max=10) as store:
        store.upsert(half, {SPACE: mat})
        _, plain = store.search(SPACE, q[:4], 20)
        _, lazy, keys = store.search_keyed(SPACE, q[:4], 20)
        assert all(isinstance(r, IdRow) for r in lazy) and (keys >= 0).all()
        assert [r.tolist() for r in lazy] == plain.tolist()
        images = Filter(modalities=frozenset({Modality.IMAGE}))
        for _ in range(2):  # the second search reuses the restriction
            _, got = store.search(SPACE, q[:4], 10, images)
            assert all(int(str(i)[1:]) % 2 == 0 for i in got.ravel())
        assert store._indexes[SPACE]._restrictions
