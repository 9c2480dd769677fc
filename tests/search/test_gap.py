"""Modality gap (spec §7), running means, and T-norm calibration."""

from __future__ import annotations

import numpy as np
import pytest

from omniret.errors import QueryError
from omniret.methods import gap

IMG = np.array([[1.0, 0.0], [0.8, 0.6]])
TXT = np.array([[0.0, 1.0], [0.6, 0.8]])


def test_spec_gap_vector() -> None:
    np.testing.assert_allclose(IMG.mean(0), [0.9, 0.3])
    np.testing.assert_allclose(gap.gap_vector(IMG, TXT), [0.6, -0.6], atol=1e-12)
    assert gap.gap_distance(IMG, TXT) == pytest.approx(0.848528, abs=1e-6)


def test_shift_closes_the_gap() -> None:
    delta = gap.gap_vector(IMG, TXT)
    d0 = gap.gap_distance(IMG, TXT)
    t1, i1 = gap.gap_shift(TXT, IMG, delta, lam=0.5)
    t2, i2 = gap.gap_shift(TXT, IMG, delta, lam=-0.5)
    assert gap.gap_distance(i1, t1) < d0 < gap.gap_distance(i2, t2)
    np.testing.assert_allclose(np.linalg.norm(t1, axis=1), 1.0)
    u = delta / np.linalg.norm(delta)
    np.testing.assert_allclose(t1[0], (TXT[0] + 0.25 * u) / np.linalg.norm(TXT[0] + 0.25 * u))


def test_centering_rank_effects() -> None:
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(5, 8)), rng.normal(size=(30, 8))
    mu_g, mu_q = g.mean(0) + 0.5, q.mean(0) + 0.5
    raw = q @ g.T
    gal_only = q @ gap.center(g, mu_g, renormalize=False).T
    np.testing.assert_array_equal(np.argsort(-raw, 1), np.argsort(-gal_only, 1))
    np.testing.assert_allclose(raw - gal_only, np.tile((q @ mu_g)[:, None], (1, 30)))
    q_c = gap.center(q, mu_q, renormalize=False)
    np.testing.assert_allclose(q_c @ g.T, raw - (g @ mu_q)[None, :])
    np.testing.assert_allclose(np.linalg.norm(gap.center(g, mu_g), axis=1), 1.0)


def test_running_statistics_equal_batch() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 6))
    total, n = gap.running_sum_update(np.zeros(6), 0, x[:20])
    total, n = gap.running_sum_update(total, n, x[20:])
    np.testing.assert_allclose(gap.running_mean(total, n), x.mean(0))
    state = gap.moments_update(gap.moments(x[:10]), x[10:])
    mu, cov = gap.moments_mean_cov(state)
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(cov, np.cov(x.T, ddof=0), atol=1e-12)
    with pytest.raises(QueryError, match="no items"):
        gap.running_mean(np.zeros(6), 0)


def test_tnorm_equals_cohort_zscore() -> None:
    """The closed form equals z-scoring against the query's scores on every item of the modality."""
    rng = np.random.default_rng(2)
    mods = [rng.normal(size=(40, 5)) + 2.0, rng.normal(size=(60, 5)) - 1.0]
    q = rng.normal(size=(3, 5))
    stats = [gap.moments_mean_cov(gap.moments(m)) for m in mods]
    means, covs = np.stack([s[0] for s in stats]), np.stack([s[1] for s in stats])
    cand_mod = np.array([[0, 1, 1, 0]] * 3)
    cand_idx = np.array([[3, 7, 8, 11]] * 3)
    scores = np.stack([[q[i] @ mods[m][j] for m, j in zip(cand_mod[i], cand_idx[i], strict=True)] for i in range(3)])
    z = gap.tnorm_scores(q, scores, cand_mod, means, covs)
    for i in range(3):
        for c, (m, j) in enumerate(zip(cand_mod[i], cand_idx[i], strict=True)):
            cohort = mods[m] @ q[i]
            assert z[i, c] == pytest.approx((q[i] @ mods[m][j] - cohort.mean()) / cohort.std(), rel=1e-9)


def test_tnorm_removes_a_modality_offset() -> None:
    """Items of a modality with a constant similarity offset are ranked on equal terms after T-norm."""
    rng = np.random.default_rng(3)
    base = rng.normal(size=(200, 16))
    q = rng.normal(size=(1, 16))
    shift = 30.0 * q[0] / np.linalg.norm(q[0]) ** 2  # adds exactly 30 to every score of modality 1
    mods = [base[:100], base[100:] + shift]
    stats = [gap.moments_mean_cov(gap.moments(m)) for m in mods]
    raw = np.concatenate([mods[0] @ q[0], mods[1] @ q[0]])[None, :]
    cand_mod = np.repeat([0, 1], 100)[None, :]
    z = gap.tnorm_scores(q, raw, cand_mod, np.stack([s[0] for s in stats]), np.stack([s[1] for s in stats]))
    assert (np.argsort(-raw[0])[:20] >= 100).all()  # raw: modality 1 dominates the top
    assert 3 <= (np.argsort(-z[0])[:20] >= 100).sum() <= 17  # calibrated: both modalities present


def test_zscore_by_modality_and_errors() -> None:
    s = np.array([[0.3, 0.8, 0.5]])
    out = gap.zscore_by_modality(s, np.array([[0, 1, 0]]), np.array([0.2, 0.7]), np.array([0.1, 0.05]))
    np.testing.assert_allclose(out, [[1.0, 2.0, 3.0]])
    with pytest.raises(QueryError, match="codes"):
        gap.zscore_by_modality(s, np.array([[0, 2, 0]]), np.array([0.2, 0.7]), np.array([0.1, 0.05]))
    with pytest.raises(QueryError, match="non-zero"):
        gap.gap_shift(TXT, IMG, np.zeros(2), 1.0)


def test_inputs_not_mutated() -> None:
    img, txt = IMG.copy(), TXT.copy()
    gap.gap_shift(txt, img, gap.gap_vector(img, txt), 1.0)
    gap.center(img, img.mean(0))
    np.testing.assert_array_equal(img, IMG)
    np.testing.assert_array_equal(txt, TXT)
