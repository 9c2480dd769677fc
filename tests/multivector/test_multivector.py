"""MultiVectorIndex: MUVERA candidates + exact MaxSim, persistence, removals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omniret.errors import QueryError, StoreError
from omniret.methods.late_interaction import maxsim_naive
from omniret.methods.muvera import FDEConfig
from omniret.spaces.multivector import MultiVectorIndex

DIM = 8
CFG = FDEConfig(DIM, 3, 4, 7, 4, True)


def _docs(n: int, seed: int = 0) -> tuple[list[str], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    mats = []
    for _ in range(n):
        m = rng.standard_normal((int(rng.integers(1, 12)), DIM))
        mats.append(m / np.linalg.norm(m, axis=1, keepdims=True))
    return [f"doc{seed}-{i}" for i in range(n)], mats


def _brute(q: np.ndarray, ids: list[str], mats: list[np.ndarray], k: int) -> tuple[list[str], np.ndarray]:
    """Reference: naive MaxSim on the float16-rounded documents, ties to the earlier id."""
    stored = [m.astype(np.float16).astype(np.float64) for m in mats]
    scores = np.array([maxsim_naive(q.astype(np.float32).astype(np.float64), d) for d in stored])
    order = np.lexsort((np.arange(len(ids)), -scores))[:k]
    return [ids[i] for i in order], scores[order]


def _query(seed: int) -> np.ndarray:
    q = np.random.default_rng(100 + seed).standard_normal((5, DIM))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_full_candidates_equal_brute_force(tmp_path: Path, seed: int) -> None:
    ids, mats = _docs(40, seed)
    idx = MultiVectorIndex(tmp_path, "pages", DIM, CFG)
    idx.add(ids[:25], mats[:25])
    idx.add(ids[25:], mats[25:])
    q = _query(seed)
    got_ids, got = idx.search(q, k=10, candidates=40)
    want_ids, want = _brute(q, ids, mats, 10)
    assert got_ids == want_ids
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_few_candidates_scores_are_exact_and_sorted(tmp_path: Path) -> None:
    ids, mats = _docs(60)
    idx = MultiVectorIndex(tmp_path, "pages", DIM, CFG)
    idx.add(ids, mats)
    got_ids, got = idx.search(_query(0), k=5, candidates=12)
    assert len(got_ids) == 5 and np.all(np.diff(got) <= 0)
    ref = {i: maxsim_naive(_query(0).astype(np.float32).astype(np.float64),
                           m.astype(np.float16).astype(np.float64)) for i, m in zip(ids, mats, strict=True)}
    np.testing.assert_allclose(got, [ref[i] for i in got_ids], rtol=1e-5, atol=1e-5)


def test_persistence_round_trip(tmp_path: Path) -> None:
    ids, mats = _docs(30)
    idx = MultiVectorIndex(tmp_path, "pages", DIM, CFG)
    idx.add(ids[:10], mats[:10])
    idx.add(ids[10:], mats[10:])
    before = idx.search(_query(3), k=7, candidates=15)
    again = MultiVectorIndex(tmp_path, "pages", DIM, CFG)
    assert len(again) == 30 and again.ids() == ids
    after = again.search(_query(3), k=7, candidates=15)
    assert before[0] == after[0]
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_array_equal(again.tokens(ids[4]), mats[4].astype(np.float16).astype(np.float32))
    assert (tmp_path / "multivector" / "pages" / "meta.json").exists()


def test_removals_and_readd(tmp_path: Path) -> None:
    ids, mats = _docs(20)
    idx = MultiVectorIndex(tmp_path, "pages", DIM, CFG)
    idx.add(ids, mats)
    top = idx.search(_query(1), k=3, candidates=20)[0]
    assert idx.remove([top[0], "never-added"]) == 1
    assert top[0] not in idx and len(idx) == 19
    reopened = MultiVectorIndex(tmp_path, "pages", DIM, CFG)
    got = reopened.search(_query(1), k=20, candidates=20)[0]
    assert top[0] not in got and got[:2] == top[1:]
    keep = [i for i in ids if i != top[0]]
    assert got == _brute(_query(1), keep, [m for i, m in zip(ids, mats, strict=True) if i != top[0]], 20)[0]
    reopened.add([top[0]], [mats[ids.index(top[0])]])
    assert reopened.search(_query(1), k=3, candidates=20)[0] == top


def test_readd_supersedes_and_compact(tmp_path: Path) -> None:
    ids, mats = _docs(15)
    idx = MultiVectorIndex(tmp_path, "pages", DIM, CFG)
    idx.add(ids, mats)
    q = _query(2)
    idx.add([ids[0]], [q])  # doc0 now equals the query: it must be the top hit
    idx.remove([ids[1]])
    assert len(idx) == 14 and idx.search(q, k=1, candidates=15)[0] == [ids[0]]
    before = idx.search(q, k=14, candidates=15)
    idx.compact()
    folder = tmp_path / "multivector" / "pages"
    assert len(list(folder.glob("seg-*.ids.json"))) == 1
    after = MultiVectorIndex(tmp_path, "pages", DIM, CFG).search(q, k=14, candidates=15)
    assert before[0] == after[0]
    np.testing.assert_allclose(before[1], after[1])


def test_rebuild_and_empty(tmp_path: Path) -> None:
    ids, mats = _docs(5)
    idx = MultiVectorIndex(tmp_path, "pages", DIM, CFG)
    assert idx.search(_query(0), k=3)[0] == []
    idx.add(ids, mats)
    idx.rebuild()
    assert len(idx) == 0 and len(MultiVectorIndex(tmp_path, "pages", DIM, CFG)) == 0


def test_bad_input(tmp_path: Path) -> None:
    ids, mats = _docs(3)
    idx = MultiVectorIndex(tmp_path, "pages", DIM, CFG)
    with pytest.raises(QueryError, match="3 ids but 2"):
        idx.add(ids, mats[:2])
    with pytest.raises(QueryError, match="non-empty"):
        idx.add(["x"], [np.zeros((3, DIM + 1))])
    with pytest.raises(QueryError, match="NaN"):
        idx.add(["x"], [np.full((2, DIM), np.nan)])
    with pytest.raises(QueryError, match="unique"):
        idx.add(["x", "x"], mats[:2])
    idx.add(ids, mats)
    with pytest.raises(QueryError, match="query tokens"):
        idx.search(np.zeros((2, DIM + 1)))
    with pytest.raises(QueryError, match="candidates"):
        idx.search(_query(0), candidates=0)
    with pytest.raises(StoreError, match="rebuild"):
        MultiVectorIndex(tmp_path, "pages", DIM, FDEConfig(DIM, 2, 4, 7, 4, True))
    with pytest.raises(QueryError, match="folder name"):
        MultiVectorIndex(tmp_path, "../x", DIM, CFG)
