"""The streaming top-k merge equals the reference merge, ties included."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from omniret.methods import hubness as hub


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 40), st.integers(1, 3), st.integers(0, 10_000), st.booleans())
def test_merge_chunk_topk_equals_merge_bank_topk(nb: int, width: int, k: int, seed: int, coarse: bool) -> None:
    rng = np.random.default_rng(seed)
    sims = rng.integers(0, 4, (nb, width)) / 4.0 if coarse else rng.standard_normal((nb, width))  # coarse: many ties
    start_ids, start_scores = hub.bank_topk(rng.standard_normal((nb, 5)), k)
    a = hub.merge_bank_topk(start_ids, start_scores, sims, 5, k)
    b = hub.merge_chunk_topk(start_ids, start_scores, sims, 5, k)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1])


def test_log_partition_is_the_logsumexp() -> None:
    sims = np.array([[0.9, 0.1], [0.8, 0.3]])
    np.testing.assert_allclose(hub.log_partition(sims, 20.0), np.log(np.exp(20 * sims).sum(axis=0)))


def test_center_scores_equal_explicit_centring() -> None:
    from omniret.methods import gap as gapm

    rng = np.random.default_rng(1)
    g = rng.standard_normal((30, 16))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    q = rng.standard_normal(16)
    q /= np.linalg.norm(q)
    mods = rng.integers(0, 3, 30)
    means = np.stack([g[mods == m].mean(axis=0) for m in range(3)])
    ref = np.array([gapm.center(g[i : i + 1], means[mods[i]])[0] @ gapm.center(q[None], means[1])[0] for i in range(30)])
    got = gapm.center_scores(g @ q, q, 1, mods, g @ means.T, means)
    np.testing.assert_allclose(got, ref, atol=1e-10)
