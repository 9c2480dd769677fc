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
        assert {"index.faiss", "lists.ivfdata", "vectors.npy"} <= {p.name for p in idx.folder.iterdir()}


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
