"""Hubness: spec §1 / §2 test vectors, log == exp domain, engine split == full matrix, no mutation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from omniret.errors import QueryError
from omniret.methods import hubness as h

B = np.array([[0.9, 0.1, 0.2], [0.8, 0.3, 0.1], [0.7, 0.2, 0.4], [0.6, 0.5, 0.3]])
S = np.array([[0.5, 0.4, 0.1], [0.2, 0.6, 0.3]])
GB = np.array([[0.95, 0.3, 0.2], [0.85, 0.2, 0.5], [0.7, 0.6, 0.1]])
TOL = dict(rtol=1e-6, atol=1e-6)


def test_spec_inverted_softmax_and_dis() -> None:
    log_z, active = h.gallery_stats(B, 20.0, 1)
    np.testing.assert_allclose(np.exp(log_z), [7.591144e07, 2.249188e04, 3.446374e03], rtol=1e-6)
    assert active.tolist() == [True, False, False]
    is_ = h.inverted_softmax(S, B, 20.0)
    np.testing.assert_allclose(is_, [[2.901600e-04, 1.325348e-01, 2.144009e-03], [7.192348e-07, 7.236157, 1.170589e-01]], rtol=1e-6)
    assert is_.argmax(axis=1).tolist() == [1, 1]
    np.testing.assert_allclose(h.qb_norm(S, B), [[2.901600e-04, 1.325348e-01, 2.144009e-03], [0.2, 0.6, 0.3]], rtol=1e-6)
    np.testing.assert_allclose(
        h.inverted_softmax_log(S, B, 20.0), [[-8.145078, -2.02091, -6.145078], [-14.145078, 1.97909, -2.145078]], **TOL
    )
    np.testing.assert_allclose(
        h.smith_inverted_softmax(S, 20.0), [[0.997527, 0.017986, 0.017986], [0.002473, 0.982014, 0.982014]], **TOL
    )


def test_spec_dbnorm() -> None:
    b1, b2 = 1 / 1.99, 3.0
    np.testing.assert_allclose(np.exp(h.gallery_stats(B, b1)[0]), [5.84015, 4.605612, 4.542603], rtol=1e-6)
    np.testing.assert_allclose(np.exp(h.gallery_stats(GB, b2)[0]), [38.261056, 10.331369, 7.653667], rtol=1e-6)
    np.testing.assert_allclose(h.dual_is(S, B, GB), [[0.025786, 0.085311, 0.040826], [0.009017, 0.171881, 0.082255]], **TOL)
    np.testing.assert_allclose(h.dual_dis(S, B, GB), [[0.025786, 0.085311, 0.040826], [0.04, 0.36, 0.09]], **TOL)
    np.testing.assert_allclose(h.dual_is_log(S, B, GB), np.log(h.dual_is(S, B, GB)), **TOL)


def test_dbnorm_uses_the_test_matrix_in_both_factors() -> None:
    """The official db_norm scores the gallery-bank matrix instead of S; the intended version uses S."""
    other = S + np.array([[0.0, 0.3, 0.0], [0.0, -0.5, 0.4]])
    assert not np.allclose(h.dual_is(S, B, GB), h.dual_is(other, B, GB))
    manual = h.inverted_softmax(S, B, 1 / 1.99) * h.inverted_softmax(S, GB, 3.0)
    np.testing.assert_allclose(h.dual_is(S, B, GB), manual)


def test_dual_dis_log_ranks_unactivated_rows_like_raw() -> None:
    s = np.array([[-0.5, -0.1, -0.3], [0.5, 0.4, 0.1]])
    bank = np.array([[0.9, 0.1, 0.2]])  # activation set {0}: row 0 (top-1 = 1) is not activated
    exp_dom = h.dual_dis(s, bank, bank)
    log_dom = h.dual_dis_log(s, bank, bank)
    assert np.argsort(-exp_dom[0]).tolist() != np.argsort(-s[0]).tolist()  # S*S flips negatives
    assert np.argsort(-log_dom[0]).tolist() == np.argsort(-s[0]).tolist()


sims = arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 7)), elements=st.floats(-1, 1))


@settings(max_examples=60, deadline=None)
@given(sims, st.floats(0.5, 30.0))
def test_is_with_queries_as_bank_equals_smith(s: np.ndarray, beta: float) -> None:
    np.testing.assert_allclose(h.inverted_softmax(s, s, beta), h.smith_inverted_softmax(s, beta), rtol=1e-9)


@settings(max_examples=60, deadline=None)
@given(sims, st.floats(0.5, 30.0), st.integers(1, 3))
def test_log_domain_equals_exp_domain(s: np.ndarray, beta: float, k: int) -> None:
    bank = np.roll(s, 1, axis=1) * 0.9
    np.testing.assert_allclose(np.log(h.inverted_softmax(s, bank, beta)), h.inverted_softmax_log(s, bank, beta), atol=1e-9)
    exp_dis, log_dis = h.qb_norm(s, bank, beta, k), h.qb_norm_log(s, bank, beta, k)
    _, active = h.gallery_stats(bank, beta, k)
    rows = active[np.argsort(-s, axis=1, kind="stable")[:, 0]]
    np.testing.assert_allclose(np.log(exp_dis[rows]), log_dis[rows], atol=1e-9)
    np.testing.assert_array_equal(exp_dis[~rows], s[~rows])
    np.testing.assert_array_equal(log_dis[~rows], s[~rows])
    both = h.dual_dis(s, bank, s, beta, beta / 2, k)
    fully = rows & h.gallery_stats(s, beta / 2, k)[1][np.argsort(-s, axis=1, kind="stable")[:, 0]]
    np.testing.assert_allclose(np.log(both[fully]), h.dual_dis_log(s, bank, s, beta, beta / 2, k)[fully], atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(sims, st.floats(0.5, 30.0), st.integers(1, 3))
def test_split_equals_full_matrix(s: np.ndarray, beta: float, k: int) -> None:
    bank = s[::-1] * 0.8 + 0.1
    log_z, active = h.gallery_stats(bank, beta, k)
    shape = s.shape
    lz, act = np.broadcast_to(log_z, shape), np.broadcast_to(active, shape)
    np.testing.assert_allclose(h.apply_qbnorm(s, lz, act, beta), h.qb_norm_log(s, bank, beta, k), atol=1e-12)
    np.testing.assert_allclose(h.apply_inverted_softmax(s, lz, beta), h.inverted_softmax_log(s, bank, beta), atol=1e-12)
    lzg, actg = h.gallery_stats(s, 2.0, k)
    np.testing.assert_allclose(
        h.apply_dual_is(s, lz, np.broadcast_to(lzg, shape), beta, 2.0), h.dual_is_log(s, bank, s, beta, 2.0), atol=1e-12
    )
    np.testing.assert_allclose(
        h.apply_dual_dis(s, lz, act, np.broadcast_to(lzg, shape), np.broadcast_to(actg, shape), beta, 2.0),
        h.dual_dis_log(s, bank, s, beta, 2.0, k),
        atol=1e-12,
    )


def test_split_on_candidate_subsets_matches_full() -> None:
    rng = np.random.default_rng(0)
    s, bank = rng.uniform(-1, 1, (20, 200)), rng.uniform(-1, 1, (50, 200))
    full = h.qb_norm_log(s, bank, 20.0, 1)
    log_z, active = h.gallery_stats(bank, 20.0, 1)
    cand = np.argsort(-s, axis=1)[:, :30]
    out = h.apply_qbnorm(np.take_along_axis(s, cand, 1), log_z[cand], active[cand], 20.0)
    np.testing.assert_allclose(out, np.take_along_axis(full, cand, 1))


def test_incremental_stats_equal_batch() -> None:
    rng = np.random.default_rng(1)
    bank = rng.uniform(-1, 1, (40, 30))
    full_lz, full_act = h.gallery_stats(bank, 20.0, 2)
    lz, act = h.gallery_stats(bank[:25], 20.0, 2)
    lz, act = h.add_bank_rows(lz, act, bank[25:], 20.0, 2)
    np.testing.assert_allclose(lz, full_lz)
    np.testing.assert_array_equal(act, full_act)
    # new gallery columns: log Z from the column only, activation by merging bank top-k
    ids, sc = h.bank_topk(bank[:, :18], 2)
    ids, sc = h.merge_bank_topk(ids, sc, bank[:, 18:], 18, 2)
    np.testing.assert_array_equal(h.activation_mask(ids, 30), full_act)
    np.testing.assert_allclose(np.concatenate([h.gallery_stats(bank[:, :18], 20.0, 2)[0], h.gallery_stats(bank[:, 18:], 20.0, 2)[0]]), full_lz)


def test_no_function_mutates_inputs() -> None:
    s, b, g = S.copy(), B.copy(), GB.copy()
    for fn in (h.qb_norm, h.qb_norm_log, h.inverted_softmax, h.inverted_softmax_log):
        fn(s, b, 20.0)
    h.dual_dis(s, b, g)
    h.dual_dis_log(s, b, g)
    h.dual_is(s, b, g)
    log_z, act = h.gallery_stats(b)
    lz, ac = np.tile(log_z, (2, 1)), np.tile(act, (2, 1))
    lz0, ac0 = lz.copy(), ac.copy()
    h.apply_qbnorm(s, lz, ac)
    h.apply_dual_dis(s, lz, ac, lz, ac)
    h.add_bank_rows(log_z, act, b)
    np.testing.assert_array_equal(s, S)
    np.testing.assert_array_equal(b, B)
    np.testing.assert_array_equal(g, GB)
    np.testing.assert_array_equal(lz, lz0)
    np.testing.assert_array_equal(ac, ac0)


def test_log_domain_survives_large_beta() -> None:
    out = h.qb_norm_log(S * 100, B * 100, 20.0)
    assert np.isfinite(out).all()


def test_empty_bank_leaves_scores() -> None:
    np.testing.assert_array_equal(h.qb_norm(S, np.zeros((0, 3))), S)
    np.testing.assert_array_equal(h.qb_norm_log(S, np.zeros((0, 3))), S)


def test_skewness_k_occurrence() -> None:
    even = np.eye(6)  # each gallery item is the top-1 of exactly one query
    assert h.skewness_k_occurrence(even, k=1) == 0.0
    hub = np.zeros((10, 5))
    hub[:, 0] = 1.0  # item 0 is every query's top-1
    hub[0, 1] = 2.0
    counts = np.array([9, 1, 0, 0, 0], dtype=float)
    expected = np.mean((counts - counts.mean()) ** 3) / counts.std() ** 3
    assert h.skewness_k_occurrence(hub, k=1) == pytest.approx(expected)
    assert h.skewness_k_occurrence(hub, k=1) > 1.0


def test_bad_inputs_raise_query_error() -> None:
    with pytest.raises(QueryError, match="gallery columns"):
        h.qb_norm(S, B[:, :2])
    with pytest.raises(QueryError, match="2-D"):
        h.inverted_softmax(S[0], B, 1.0)
    with pytest.raises(QueryError, match="k must"):
        h.skewness_k_occurrence(S, k=5)
