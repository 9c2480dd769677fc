"""Embedding upgrade maps (spec §11)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import special_ortho_group

from omniret.errors import QueryError
from omniret.methods import upgrade as up

X = np.array([[1.0, 0.0], [0.0, 1.0], [0.7071, 0.7071]])
Y = np.array([[0.0, 1.0], [-1.0, 0.0], [-0.7071, 0.7071]])


def test_spec_rotation() -> None:
    for method in ("procrustes", "lstsq"):
        w = up.fit_map(X, Y, method=method)  # type: ignore[arg-type]
        np.testing.assert_allclose(w, [[0.0, 1.0], [-1.0, 0.0]], atol=1e-6)
        np.testing.assert_allclose(X @ w, Y, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 12), st.integers(0, 2**31 - 1))
def test_procrustes_recovers_random_rotation(d: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    r = special_ortho_group.rvs(d, random_state=seed)
    x = rng.normal(size=(3 * d, d))
    w = up.fit_map(x, x @ r, method="procrustes")
    np.testing.assert_allclose(w, r, atol=1e-8)
    np.testing.assert_allclose(w @ w.T, np.eye(d), atol=1e-10)


def test_ridge_shrinks_and_matches_closed_form() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 6)), rng.normal(size=(50, 4))
    w0 = up.fit_map(x, y)
    w1 = up.fit_map(x, y, ridge=10.0)
    np.testing.assert_allclose(w1, np.linalg.inv(x.T @ x + 10 * np.eye(6)) @ x.T @ y)
    assert np.linalg.norm(w1) < np.linalg.norm(w0)
    with pytest.raises(QueryError, match="equal dims"):
        up.fit_map(x, y, method="procrustes")


def test_compatibility_recall_on_held_out_pairs() -> None:
    rng = np.random.default_rng(4)
    d_old, d_new, n = 16, 24, 400
    latent = rng.normal(size=(n, d_old))
    old = latent / np.linalg.norm(latent, axis=1, keepdims=True)
    mix = rng.normal(size=(d_old, d_new))
    new = old @ mix + 0.01 * rng.normal(size=(n, d_new))
    w = up.fit_map(new[:300], old[:300])
    queries_old = old[300:] + 0.05 * rng.normal(size=(100, d_old))
    queries_new = queries_old @ mix
    res = up.compatibility_recall(queries_new, queries_old, old[300:], np.arange(100), w, ks=(1, 5))
    assert res["old_to_old"][1] > 0.9
    assert res["new_to_old"][1] > 0.9
    # an unrelated map fails
    bad = up.compatibility_recall(queries_new, queries_old, old[300:], np.arange(100), rng.normal(size=(d_new, d_old)))
    assert bad["new_to_old"][1] < 0.2
    np.testing.assert_allclose(np.linalg.norm(up.apply_map(new[:5], w), axis=1), 1.0)


def test_inputs_not_mutated() -> None:
    x, y = X.copy(), Y.copy()
    w = up.fit_map(x, y, method="procrustes")
    w0 = w.copy()
    up.apply_map(x, w)
    up.fit_map(x, y, ridge=1.0)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(y, Y)
    np.testing.assert_array_equal(w, w0)
