"""STRUCTURE's regulariser and CLIP's InfoNCE in numpy, against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from omniret.errors import QueryError
from omniret.methods.alignment import info_nce, js_rows, structure_regularizer, walk


def _kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def test_walk_and_js_by_hand() -> None:
    # two orthogonal unit rows: centred rows are ±(e1 − e2)/2, so cosines are ±0.5 -> with tau 1
    # each row's walk is softmax([0.5, -0.5]) = [e^.5, e^-.5] / (e^.5 + e^-.5)
    x = np.eye(2)
    a = math.exp(0.5) / (math.exp(0.5) + math.exp(-0.5))
    np.testing.assert_allclose(walk(x, 1.0), [[a, 1 - a], [1 - a, a]], rtol=1e-12)
    # two equal rows centre to zero: a uniform walk
    z = np.array([[1.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(walk(z, 1.0), [[0.5, 0.5], [0.5, 0.5]])
    p, q = [a, 1 - a], [0.5, 0.5]
    m = [(a + 0.5) / 2, (1 - a + 0.5) / 2]
    js = 0.5 * _kl(p, m) + 0.5 * _kl(q, m)
    assert js_rows(np.array([p, p[::-1]]), np.array([q, q])) == pytest.approx(js, rel=1e-9)
    assert structure_regularizer(x, z, tau=1.0) == pytest.approx(js, rel=1e-9)  # = 0.02854 (by hand: 0.5·0.029637 + 0.5·0.027433)
    assert js == pytest.approx(0.0285353, abs=1e-7)
    # two levels: P^2 = [[a²+b², 2ab], ...] against the uniform Q^2; inverse weights 1 and 1/2, mean over 2
    b = 1 - a
    p2 = [a * a + b * b, 2 * a * b]
    m2 = [(p2[0] + 0.5) / 2, (p2[1] + 0.5) / 2]
    js2 = 0.5 * _kl(p2, m2) + 0.5 * _kl(q, m2)
    assert structure_regularizer(x, z, tau=1.0, levels=2) == pytest.approx((js + js2 / 2) / 2, rel=1e-9)
    assert structure_regularizer(x, z, tau=1.0, levels=2, weighting="none") == pytest.approx((js + js2) / 2)


def test_regularizer_is_zero_for_a_similarity_and_bounded() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 8))
    q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    assert structure_regularizer(x, 3.0 * x @ q) == pytest.approx(0.0, abs=1e-12)  # rotation + scale keep it
    r = structure_regularizer(x, rng.standard_normal((20, 8)), levels=3)
    assert 0.0 < r <= math.log(2)


def test_info_nce_by_hand() -> None:
    z = np.eye(2)
    t = np.eye(2)
    # logits = I / tau: each row's CE is log(e^(1/tau) + 1) - 1/tau
    tau = 0.5
    want = math.log(math.exp(2.0) + 1.0) - 2.0
    assert info_nce(z, t, tau) == pytest.approx(want, rel=1e-12)
    assert info_nce(z, t[::-1], tau) == pytest.approx(math.log(math.exp(2.0) + 1.0), rel=1e-12)


def test_bad_input() -> None:
    with pytest.raises(QueryError, match="at least two"):
        walk(np.ones((1, 3)), 0.1)
    with pytest.raises(QueryError, match="temperature"):
        walk(np.eye(2), 0.0)
    with pytest.raises(QueryError, match="same batch"):
        structure_regularizer(np.eye(2), np.eye(3))
    with pytest.raises(QueryError, match="levels"):
        structure_regularizer(np.eye(2), np.eye(2), levels=0)
    with pytest.raises(QueryError, match="pair row by row"):
        info_nce(np.eye(2), np.eye(3))
