"""Issue 13 (10): QB-Norm and DualDIS with exact-duplicate gallery items.

Two copies of a picture tie in every bank row; the activation set keeps the lower-indexed copy. The
query's top-1 must be chosen by the same rule (lowest gallery index among equal maxima), not by the
ANN's candidate order, or "a cat" is never normalised when two copies exist.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import omniret
from omniret.methods import hubness as h


def _gallery_with_duplicate() -> tuple[np.ndarray, np.ndarray, int, int]:
    """``(S (1, Ng), bank (Nb, Ng), lo, hi)``: gallery items ``lo < hi`` are exact duplicates, the query's
    best match and the top-1 of a bank row."""
    rng = np.random.default_rng(4)
    g = rng.standard_normal((12, 8))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    lo, hi = 3, 9
    g[hi] = g[lo]
    bank = rng.standard_normal((6, 8))
    bank[0] = g[lo] + 0.01
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    q = g[lo] + 0.02 * rng.standard_normal(8)
    q /= np.linalg.norm(q)
    return q[None] @ g.T, bank @ g.T, lo, hi


def test_activation_set_keeps_the_lower_copy() -> None:
    S, bank, lo, hi = _gallery_with_duplicate()
    assert S[0, lo] == S[0, hi] and S[0].argmax() == lo
    _, active = h.gallery_stats(bank, 20.0, 1)
    assert active[lo] and not active[hi]


@pytest.mark.parametrize("method", ["qbnorm", "dualdis"])
def test_qbnorm_ties_judged_alike_in_any_candidate_order(method: str) -> None:
    """Candidates in the ANN's order with the higher copy first: the row is still normalised, and equals
    the full-gallery reference (whose argmax takes the lowest index)."""
    S, bank, lo, hi = _gallery_with_duplicate()
    lz, act = h.gallery_stats(bank, 20.0, 1)
    lzg, actg = h.gallery_stats(S, 3.0, 1) if method == "dualdis" else (lz, act)
    order = np.array([hi, lo, *[j for j in np.argsort(-S[0]) if j not in (lo, hi)]])
    cand = S[:, order]
    if method == "qbnorm":
        full = h.qb_norm_log(S, bank, 20.0, 1)
        got = h.apply_qbnorm(cand, lz[order][None], act[order][None], 20.0, order[None])
        first_in_order = h.apply_qbnorm(cand, lz[order][None], act[order][None], 20.0)
    else:
        full = h.dual_dis_log(S, bank, S, 20.0, 3.0, 1)
        got = h.apply_dual_dis(cand, lz[order][None], act[order][None], lzg[order][None], actg[order][None],
                               20.0, 3.0, order[None])
        first_in_order = h.apply_dual_dis(cand, lz[order][None], act[order][None], lzg[order][None],
                                          actg[order][None], 20.0, 3.0)
    np.testing.assert_allclose(got, full[:, order], atol=1e-12)
    assert not np.allclose(first_in_order, full[:, order])  # the old rule: not normalised by the bank


def test_unseen_candidates_never_win_a_tie() -> None:
    s = np.array([[0.9, 0.9, 0.1]])
    assert h._top1(s, np.array([[-1, 5, 2]]))[0] == 1
    assert h._top1(s, np.array([[7, 5, 2]]))[0] == 1
    assert h._top1(s)[0] == 0
    assert h._top1(s, np.array([[-1, -1, 2]]))[0] == 0


@pytest.mark.parametrize("method", ["qbnorm", "dualdis"])
def test_a_cat_is_normalised_when_two_copies_exist(tmp_path: Path, method: str) -> None:
    """End to end through the index (ANN candidates, statistics rows): with two identical "a cat" files,
    the hubness-corrected scores of "a cat" differ from the raw ones (the query is normalised)."""
    corpus = tmp_path / "c"
    corpus.mkdir()
    for i, w in enumerate(["dog running", "red car", "blue sky", "green tree", "old house", "cold river",
                           "a cat", "a cat"]):
        (corpus / f"f{i}.txt").write_text(w, encoding="utf-8")
    with omniret.open(str(tmp_path / "idx"), model="fake") as idx:
        idx.add(str(corpus), workers=0)
        idx.set_query_bank(["a cat", "dog", "car", "sky", "tree", "house", "river"])
        raw = idx.search("a cat", k=3)
        corrected = idx.search("a cat", k=3, hubness=method)
        assert {h.uri[-6:] for h in corrected[:2]} == {"f6.txt", "f7.txt"}
        assert corrected[0].score == pytest.approx(corrected[1].score)
        assert not np.allclose([x.score for x in corrected], [x.score for x in raw], atol=1e-6), \
            "the query was not normalised"
