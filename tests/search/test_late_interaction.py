"""MaxSim (spec §6) and meanP video pooling (spec §12)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omniret.errors import QueryError
from omniret.methods import late_interaction as li


def test_spec_maxsim() -> None:
    q = np.array([[1.0, 0.0], [0.6, 0.8]])
    d = np.array([[0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]])
    assert li.maxsim(q, [d])[0] == pytest.approx(0.8 + 0.96, abs=1e-12)
    assert li.maxsim_naive(q, d) == pytest.approx(1.76, abs=1e-12)


def test_padding_is_masked_not_zero() -> None:
    q = np.array([[1.0, 0.0]])
    short, long_ = np.array([[-1.0, 0.0]]), np.array([[-0.5, 0.5], [-0.2, 0.1], [-0.9, 0.0]])
    scores = li.maxsim(q, [short, long_])
    np.testing.assert_allclose(scores, [-1.0, -0.2])  # zero padding would give 0 for the short doc


@st.composite
def query_and_docs(draw: st.DrawFn) -> tuple[np.ndarray, list[np.ndarray]]:
    seed = draw(st.integers(0, 2**32 - 1))
    dim = draw(st.integers(1, 6))
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(draw(st.integers(1, 5)), dim))
    docs = [rng.normal(size=(draw(st.integers(1, 7)), dim)) for _ in range(draw(st.integers(1, 6)))]
    return q, docs


@settings(max_examples=80, deadline=None)
@given(query_and_docs(), st.integers(1, 4))
def test_maxsim_equals_naive_and_bounds(data: tuple[np.ndarray, list[np.ndarray]], chunk: int) -> None:
    q, docs = data
    q0, docs0 = q.copy(), [d.copy() for d in docs]
    fast = li.maxsim(q, docs, chunk=chunk)
    naive = np.array([li.maxsim_naive(q, d) for d in docs])
    np.testing.assert_allclose(fast, naive, atol=1e-9)
    rng = np.random.default_rng(0)
    for score, d in zip(fast, docs, strict=True):
        sims = q @ d.T
        assignment = rng.integers(0, d.shape[0], q.shape[0])  # any token matching is a lower bound
        assert score >= sims[np.arange(q.shape[0]), assignment].sum() - 1e-9
        assert li.maxsim(np.abs(q), [np.abs(d)])[0] >= (np.abs(q) @ np.abs(d).T).max() - 1e-9
    batch = li.maxsim_batch([q, q[:1]], docs)
    np.testing.assert_allclose(batch[0], fast)
    np.testing.assert_array_equal(q, q0)
    for d, d0 in zip(docs, docs0, strict=True):
        np.testing.assert_array_equal(d, d0)


@settings(max_examples=60, deadline=None)
@given(query_and_docs())
def test_single_token_query_equals_best_single_similarity(data: tuple[np.ndarray, list[np.ndarray]]) -> None:
    q, docs = data
    scores = li.maxsim(q[:1], docs)
    np.testing.assert_allclose(scores, [float((q[:1] @ d.T).max()) for d in docs], atol=1e-12)


def test_maxsim_rejects_bad_shapes() -> None:
    with pytest.raises(QueryError, match="dim"):
        li.maxsim(np.ones((2, 3)), [np.ones((2, 4))])
    with pytest.raises(QueryError, match="non-empty"):
        li.maxsim(np.ones((2, 3)), [np.ones((0, 3))])


def test_spec_mean_pooling_and_frame_indices() -> None:
    v = li.mean_pool_frames(np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]]), np.array([1, 1, 0]))
    np.testing.assert_allclose(v, [0.894427, 0.447214], atol=1e-6)
    assert li.uniform_frame_indices(30, 12).tolist() == [0, 2, 5, 7, 10, 13, 15, 18, 21, 23, 26, 29]
    assert li.uniform_frame_indices(30, 4, mode=0).tolist() == [0, 1, 2, 3]
    assert li.uniform_frame_indices(30, 4, mode=1).tolist() == [26, 27, 28, 29]
    assert li.uniform_frame_indices(5, 12).tolist() == [0, 1, 2, 3, 4]


def test_float32_path_matches_float64() -> None:
    rng = np.random.default_rng(7)
    q = rng.normal(size=(8, 16)).astype(np.float32)
    docs = [rng.normal(size=(int(n), 16)).astype(np.float32) for n in rng.integers(1, 30, 50)]
    np.testing.assert_allclose(li.maxsim(q, docs), li.maxsim(q.astype(np.float64), [d.astype(np.float64) for d in docs]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("lengths", [[7, 7, 7], [1, 9, 4, 9]])
def test_float16_documents_score_in_float32_like_their_float32_copies(lengths: list[int]) -> None:
    """Stored float16 pages are converted while padding: same scores as float32 copies, near the naive."""
    rng = np.random.default_rng(4)
    q = rng.normal(size=(5, 16)).astype(np.float32)
    docs16 = [rng.normal(size=(n, 16)).astype(np.float16) for n in lengths]
    got = li.maxsim(q, docs16, chunk=3)
    np.testing.assert_array_equal(got, li.maxsim(q, [d.astype(np.float32) for d in docs16], chunk=3))
    naive = [li.maxsim_naive(q.astype(np.float64), d.astype(np.float64)) for d in docs16]
    np.testing.assert_allclose(got, naive, rtol=1e-5, atol=1e-5)
    assert li.pad_documents(docs16, dtype=np.float32)[0].dtype == np.float32
