"""IVF-PQ exact re-ranking (one FAISS C++ call), its candidate pool, and lazily read hit ids (IdRow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omniret.items import Item, Modality
from omniret.store.base import IdRow
from omniret.store.embedded import EmbeddedStore
from omniret.store.faiss_index import IndexConfig

SPACE = "s32"


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def ivfpq(tmp_path_factory: pytest.TempPathFactory) -> tuple[EmbeddedStore, np.ndarray]:
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((20, 32))
    mat = _unit(centers[rng.integers(0, 20, 2000)] + 0.3 * rng.standard_normal((2000, 32)))
    store = EmbeddedStore(tmp_path_factory.mktemp("rr") / "s", config=IndexConfig(kind="ivfpq"))
    store.upsert([Item(f"v{j}", f"/v/{j}", Modality.IMAGE) for j in range(2000)], {SPACE: mat})
    store.search(SPACE, mat[:1], 1)
    yield store, mat
    store.close()


def _numpy_rerank(mat: np.ndarray, q: np.ndarray, pos: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference: gather the candidates' rows, score them, sort (empty slots -1 last)."""
    s = np.where(pos >= 0, mat[np.maximum(pos, 0)] @ q, -np.inf)
    order = np.argsort(-s, kind="stable")[:k]
    return s[order], np.where(np.isfinite(s[order]), pos[order], -1)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 60), st.integers(0, 20))
def test_rerank_equals_numpy_gather_and_sort(ivfpq, seed: int, k: int, holes: int) -> None:  # type: ignore[no-untyped-def]
    store, mat = ivfpq
    idx = store._fresh_index(SPACE)
    rng = np.random.default_rng(seed)
    q = _unit(rng.standard_normal(32))
    pos = rng.choice(len(mat), size=50, replace=False).astype(np.int64)
    pos[rng.choice(50, size=holes, replace=False)] = -1  # FAISS pads short candidate lists with -1
    got_s, got_p = idx._rerank(q[None, :], pos[None, :], k)
    ref_s, ref_p = _numpy_rerank(idx.mat, q, pos, k)
    np.testing.assert_allclose(got_s[0], ref_s, rtol=1e-5, atol=1e-6)
    finite = np.isfinite(ref_s)
    assert (got_p[0][~finite] == -1).all() and not np.isfinite(got_s[0][~finite]).any()
    # each position returned carries its own exact score (equal scores may come in either order)
    np.testing.assert_allclose(idx.mat[got_p[0][finite]] @ q, got_s[0][finite], rtol=1e-5, atol=1e-6)
    assert len(set(got_p[0][finite].tolist())) == int(finite.sum())


def test_rerank_pool_rule(ivfpq) -> None:  # type: ignore[no-untyped-def]
    """rerank_min for shallow requests, 2k for K' = 100, never more than rerank_min beyond k."""
    idx = ivfpq[0]._fresh_index(SPACE)
    assert [idx.rerank_pool(k) for k in (1, 10, 20, 100, 150, 200, 1000)] == [200, 200, 200, 200, 300, 400, 1200]


def test_ivfpq_search_finds_the_exact_top_k(ivfpq) -> None:  # type: ignore[no-untyped-def]
    store, mat = ivfpq
    q = mat[:20] + 0.01
    for k in (10, 100):
        _, ids = store.search(SPACE, q, k)
        exact = np.argsort(-(q @ mat.T), axis=1)[:, :k]
        recall = np.mean([len({f"v{j}" for j in e} & set(row.tolist())) / k for e, row in zip(exact, ids, strict=True)])
        assert recall >= 0.95


def test_keyed_search_returns_lazy_ids_equal_to_eager_ones(ivfpq) -> None:  # type: ignore[no-untyped-def]
    store, mat = ivfpq
    q = mat[5:8]
    s_plain, ids_plain = store.search(SPACE, q, 30)
    s_keyed, ids_keyed, keys = store.search_keyed(SPACE, q, 30)
    assert all(isinstance(r, IdRow) for r in ids_keyed)
    np.testing.assert_array_equal(s_plain, s_keyed)
    for plain, lazy in zip(ids_plain, ids_keyed, strict=True):
        assert list(lazy) == plain.tolist() == lazy.tolist()
        assert len(lazy) == 30 and lazy[0] == plain[0] and lazy[-1] == plain[-1]
        assert lazy[3:7].tolist() == plain[3:7].tolist()
        order = np.arange(30)[::-1]
        assert lazy.take(order).tolist() == plain[order].tolist()
        assert not lazy.padded()


def test_lazy_ids_of_a_short_result_are_padded_with_none(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s") as store:
        store.upsert([Item(f"a{j}", f"/a/{j}", Modality.TEXT) for j in range(3)],
                     {SPACE: _unit(np.random.default_rng(1).standard_normal((3, 32)))})
        s, ids, keys = store.search_keyed(SPACE, _unit(np.ones((1, 32))), 5)
        row = ids[0]
        assert row.padded() and row.tolist()[3:] == [None, None] and row[4] is None and row[-1] is None
        assert sorted(i for i in row if i is not None) == ["a0", "a1", "a2"]
        assert keys[0][3:].tolist() == [-1, -1] and not np.isfinite(s[0][3:]).any()
