"""Composed queries: spec §3 (WeiMoCIR) and §4 (PDV) vectors."""

from __future__ import annotations

import numpy as np
import pytest

from omniret.errors import QueryError
from omniret.methods import composed as c

V, T = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
GAL = np.array([[0.6, 0.8, 0.0], [0.9, 0.1, 0.42]])
CAPS = [np.array([[0.2, 0.9, 0.1], [0.0, 1.0, 0.3], [0.5, 0.5, 0.5]]), np.array([[1.0, 0.0, 0.0], [0.8, 0.2, 0.1], [0.7, 0.0, 0.7]])]
F_TEXT, F_COMP, F_IMG = np.array([1.0, 0.2, 0.0]), np.array([0.6, 0.8, 0.1]), np.array([0.9, 0.0, 0.3])


def test_spec_weimocir() -> None:
    np.testing.assert_allclose(c.weighted_compose(V, T, 0.8), [0.242536, 0.970143, 0.0], atol=1e-6)
    s = c.weimocir(V, T, GAL, CAPS, alpha=0.8, beta=0.1)
    np.testing.assert_allclose(s, [0.916912, 0.313652], atol=1e-6)
    np.testing.assert_allclose(c.weimocir(V, T, GAL, np.stack(CAPS)), s)  # padded 3-D form
    q = c.weighted_compose(V, T, 0.8)
    s_q2i = c.normalize(GAL) @ q
    s_q2c = np.array([np.mean(c.normalize(cp) @ q) for cp in CAPS])
    np.testing.assert_allclose(s_q2i, [0.921635, 0.315865], atol=1e-6)
    np.testing.assert_allclose(s_q2c, [0.874398, 0.293733], atol=1e-6)
    np.testing.assert_allclose(c.weimocir_from_sims(s_q2i, s_q2c, 0.1), s)


def test_weimocir_batch_and_ragged_captions() -> None:
    caps = [CAPS[0][:2], CAPS[1]]
    batch = c.weimocir(np.stack([V, T]), np.stack([T, V]), GAL, caps)
    np.testing.assert_allclose(batch[0], c.weimocir(V, T, GAL, caps))
    np.testing.assert_allclose(batch[1], c.weimocir(T, V, GAL, caps))


def test_sum_compose_is_alpha_half() -> None:
    np.testing.assert_allclose(c.sum_compose(V, T), c.weighted_compose(V, T, 0.5))


def test_spec_pdv() -> None:
    ft, ftc = c.normalize(F_TEXT), c.normalize(F_COMP)
    np.testing.assert_allclose(ftc - ft, [-0.383558, 0.599914, 0.099504], atol=1e-6)
    np.testing.assert_allclose(c.pdv(F_TEXT, F_COMP, F_IMG, 1.4, 1.4, 0.75), [0.395768, 0.896667, 0.198384], atol=1e-6)
    np.testing.assert_allclose(c.pdv(F_TEXT, F_COMP, F_IMG, 1.4, 1.0, 1.0), [0.597022, 0.79603, 0.099504], atol=1e-6)
    np.testing.assert_allclose(c.pdv(F_TEXT, F_COMP, F_IMG), c.normalize(F_COMP))


def test_inputs_not_mutated_and_errors() -> None:
    v, t, g = V.copy(), T.copy(), GAL.copy()
    caps = [x.copy() for x in CAPS]
    c.weimocir(v, t, g, caps)
    c.pdv(v, t, g[0])
    np.testing.assert_array_equal(g, GAL)
    np.testing.assert_array_equal(v, V)
    assert all(np.array_equal(a, b) for a, b in zip(caps, CAPS, strict=True))
    with pytest.raises(QueryError, match="alpha"):
        c.weighted_compose(V, T, 1.5)
    with pytest.raises(QueryError, match="captions for 1 items"):
        c.weimocir(V, T, GAL, CAPS[:1])
    with pytest.raises(QueryError, match="one shape"):
        c.sum_compose(V, T[:2])
