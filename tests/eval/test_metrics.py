"""Metrics: spec §13 test vectors, cross-checks against ranx, sklearn (INQUIRE) and naive references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omniret.errors import OmniretError
from omniret.eval.metrics import (
    average_precision,
    average_precision_inquire,
    evaluate,
    evaluate_matrix,
    evaluate_run,
    image_text_recall,
    mean_rank,
    median_rank,
    metric_names,
    ndcg,
    parse_metric,
    reciprocal_rank,
    transpose_qrels,
)
from omniret.eval.ranking import judge_matrix, judge_run

# ---------------------------------------------------------------- spec §13 vectors

SPEC_SCORES = np.array([[0.9, 0.1, 0.3], [0.2, 0.4, 0.8], [0.1, 0.7, 0.6], [0.5, 0.2, 0.3]])
SPEC_TEXT_TO_IMAGE = [0, 1, 1, 2]


def test_clip_benchmark_recall_vector() -> None:
    out = image_text_recall(SPEC_SCORES, SPEC_TEXT_TO_IMAGE, ks=(1, 2))
    assert out["image_retrieval_recall@1"] == pytest.approx(0.5, abs=1e-12)
    assert out["image_retrieval_recall@2"] == pytest.approx(1.0, abs=1e-12)
    assert out["text_retrieval_recall@1"] == pytest.approx(2 / 3, abs=1e-12)
    assert out["text_retrieval_recall@2"] == pytest.approx(2 / 3, abs=1e-12)


def test_inquire_ranx_ap_ndcg_mrr_vector() -> None:
    gains = np.array([[0, 1, 0, 1, 1, 0, 0, 0, 0, 0]], dtype=float)
    n_pos = np.array([15])
    ideal = np.ones((1, 10))
    assert average_precision_inquire(gains, n_pos, 10)[0] == pytest.approx((1 / 2 + 2 / 4 + 3 / 5) / 10)
    assert average_precision(gains, n_pos, 10)[0] == pytest.approx((1 / 2 + 2 / 4 + 3 / 5) / 15)
    assert average_precision_inquire(gains, n_pos, 10)[0] == pytest.approx(0.16, abs=1e-12)
    assert average_precision(gains, n_pos, 10)[0] == pytest.approx(0.106667, abs=1e-6)
    expected_ndcg = (1 / np.log2(3) + 1 / np.log2(5) + 1 / np.log2(6)) / sum(
        1 / np.log2(i + 1) for i in range(1, 11)
    )
    assert ndcg(gains, ideal, 10)[0] == pytest.approx(expected_ndcg, abs=1e-12)
    assert ndcg(gains, ideal, 10)[0] == pytest.approx(0.318794, abs=1e-6)
    assert reciprocal_rank(gains, 10)[0] == 0.5


def test_median_mean_rank_vector() -> None:
    ranks = np.array([0, 3, 1, 7, 20], dtype=float)
    assert median_rank(ranks) == 4.0
    assert mean_rank(ranks) == pytest.approx(7.2, abs=1e-12)


def test_same_vector_through_run_form() -> None:
    # ranked top-10 relevance [0,1,0,1,1,0,...] with 15 positives overall (12 unretrieved)
    run = {"q": {f"d{i}": 10.0 - i for i in range(10)}}
    qrels = {"q": {"d1": 1, "d3": 1, "d4": 1, **{f"u{i}": 1 for i in range(12)}}}
    out = evaluate_run(run, qrels, ["map@10", "map_inquire@10", "ndcg@10", "mrr@10", "recall@1", "recall@2"])
    assert out == pytest.approx(
        {"map@10": 1.6 / 15, "map_inquire@10": 0.16, "ndcg@10": 0.318794, "mrr@10": 0.5,
         "recall@1": 0.0, "recall@2": 1.0},
        abs=1e-6,
    )


# ---------------------------------------------------------------- ties and ranks

def test_collaborative_experts_tie_averaging_and_vse_floor() -> None:
    scores = np.array(
        [
            [0.5, 0.5, 0.5, 0.1],  # positive col 1 tied with 2 others at the top: rank (0+1+2)/3 = 1
            [0.9, 0.2, 0.2, 0.3],  # positive col 2 tied with col 1 after 2 better: rank 2.5
            [0.1, 0.2, 0.3, 0.4],  # positive col 3 strictly best: rank 0
            [0.4, 0.3, 0.2, 0.1],  # positive col 3 last: rank 3
        ]
    )
    positive = np.zeros_like(scores, dtype=bool)
    positive[[0, 1, 2, 3], [1, 2, 3, 3]] = True
    judged = judge_matrix(scores, positive)
    np.testing.assert_array_equal(judged.rank_average, [1.0, 2.5, 0.0, 3.0])
    np.testing.assert_array_equal(judged.rank_optimistic, [0.0, 2.0, 0.0, 3.0])
    out = evaluate(judged, ["median_rank", "mean_rank", "median_rank_vse", "mean_rank_vse"])
    assert out["median_rank"] == (1.0 + 2.5) / 2 + 1
    assert out["mean_rank"] == pytest.approx((1 + 2.5 + 0 + 3) / 4 + 1)
    assert out["median_rank_vse"] == np.floor((0.0 + 2.0) / 2) + 1
    assert out["mean_rank_vse"] == pytest.approx(5 / 4 + 1)
    # VSE floors a half-integer median: ranks [0, 1, 2, 3] → median 1.5 → 2 (average rule gives 2.5)
    assert median_rank(np.array([0.0, 1, 2, 3]), floor=True) == 2.0
    assert median_rank(np.array([0.0, 1, 2, 3])) == 2.5


def _ce_rank_naive(row: np.ndarray, positives: list[int]) -> float:
    """collaborative-experts v2t: min over positives of the mean position among equal sorted values."""
    dists = -row
    sorted_dists = np.sort(dists)
    return min(float(np.where(sorted_dists == dists[j])[0].mean()) for j in positives)


def test_tie_averaged_ranks_match_naive_on_quantised_scores() -> None:
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 5, size=(40, 30)).astype(float) / 4  # many ties
    positive = rng.random((40, 30)) < 0.1
    positive[np.arange(40), rng.integers(0, 30, 40)] = True
    judged = judge_matrix(scores, positive)
    naive = [_ce_rank_naive(scores[i], list(np.flatnonzero(positive[i]))) for i in range(40)]
    np.testing.assert_allclose(judged.rank_average, naive, atol=1e-12)


def test_top_order_is_stable_under_boundary_ties() -> None:
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 3, size=(64, 50)).astype(float)
    rel = rng.random((64, 50)) < 0.2
    full = np.take_along_axis(rel, np.argsort(-scores, axis=1, kind="stable"), axis=1)
    for depth in (1, 3, 10, 49):
        judged = judge_matrix(scores, rel, depth)
        np.testing.assert_array_equal(judged.gains, full[:, :depth].astype(float))


def test_clip_benchmark_recall_matches_torch_topk_reference() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    n_img, per = 30, 5
    scores = rng.standard_normal((n_img * per, n_img))
    text_to_image = np.repeat(np.arange(n_img), per)
    positive = torch.zeros(scores.shape, dtype=torch.bool)
    positive[torch.arange(len(text_to_image)), torch.as_tensor(text_to_image)] = True
    s = torch.as_tensor(scores)

    def reference(sc: torch.Tensor, pos: torch.Tensor, k: int) -> float:
        top = torch.topk(sc, k, dim=1).indices
        tp = torch.gather(pos, 1, top).sum(dim=1).double()
        return float(((tp / pos.sum(dim=1)) > 0).double().mean())

    out = image_text_recall(scores, text_to_image, ks=(1, 5, 10))
    for k in (1, 5, 10):
        assert out[f"image_retrieval_recall@{k}"] == pytest.approx(reference(s, positive, k), abs=1e-9)
        assert out[f"text_retrieval_recall@{k}"] == pytest.approx(reference(s.T, positive.T, k), abs=1e-9)


# ---------------------------------------------------------------- ranx cross-checks

RANX_PAIRS = {
    "recall@{k}": "hit_rate@{k}",
    "recall_fraction@{k}": "recall@{k}",
    "precision@{k}": "precision@{k}",
    "map@{k}": "map@{k}",
    "ndcg@{k}": "ndcg@{k}",
    "ndcg_burges@{k}": "ndcg_burges@{k}",
    "mrr@{k}": "mrr@{k}",
    "map": "map",
    "mrr": "mrr",
    "ndcg": "ndcg",
}


def _random_run(seed: int, n_q: int = 25, n_docs: int = 60) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    run: dict[str, dict[str, float]] = {}
    qrels: dict[str, dict[str, int]] = {}
    for q in range(n_q):
        length = int(rng.integers(1, n_docs))
        docs = rng.choice(n_docs, size=length, replace=False)
        scores = rng.permutation(length) + rng.random()  # distinct scores: no ties
        run[f"q{q}"] = {f"d{d}": float(s) for d, s in zip(docs, scores, strict=True)}
        judged = rng.choice(n_docs, size=int(rng.integers(1, 12)), replace=False)
        qrels[f"q{q}"] = {f"d{d}": int(rng.integers(0, 4)) for d in judged}  # graded, some all-zero
    return run, qrels


@pytest.mark.parametrize("seed", range(6))
def test_every_shared_metric_matches_ranx_per_query(seed: int) -> None:
    ranx = pytest.importorskip("ranx")
    run, qrels = _random_run(seed)
    qrels = dict(sorted(qrels.items()))  # ranx returns per-query values in sorted query-id order
    judged = judge_run(run, qrels)
    from omniret.eval.metrics import per_query

    for ours, theirs in RANX_PAIRS.items():
        for k in (1, 3, 10, 100):
            mine = per_query(judged, ours.format(k=k))
            ref = ranx.evaluate(
                ranx.Qrels(qrels), ranx.Run(run), theirs.format(k=k), return_mean=False
            )
            ref = np.asarray(ref, dtype=float)
            np.testing.assert_allclose(mine, ref, atol=1e-9, rtol=0, err_msg=f"{ours} vs ranx {theirs}")


def test_matrix_and_run_forms_agree() -> None:
    rng = np.random.default_rng(7)
    scores = rng.standard_normal((20, 35))
    rel = rng.integers(0, 3, size=(20, 35)) * (rng.random((20, 35)) < 0.15)
    rel[:, 0] = np.where(rel.sum(axis=1) == 0, 1, rel[:, 0])
    run = {f"q{i}": {f"d{j}": float(scores[i, j]) for j in range(35)} for i in range(20)}
    qrels = {f"q{i}": {f"d{j}": int(rel[i, j]) for j in range(35) if rel[i, j]} for i in range(20)}
    metrics = ["recall@1", "recall@5", "map@10", "map_inquire@10", "ndcg@10", "mrr@10", "precision@5",
               "median_rank", "mean_rank", "median_rank_vse", "mean_rank_vse"]
    a = evaluate_matrix(scores, rel, metrics)
    b = evaluate_run(run, qrels, metrics)
    assert a == pytest.approx(b, abs=1e-12)


# ---------------------------------------------------------------- INQUIRE against sklearn

def test_inquire_ap_and_ndcg_match_sklearn_formulation() -> None:
    metrics_mod = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(13)
    k = 50
    for _ in range(20):
        n_docs = 200
        labels = rng.random(n_docs) < rng.uniform(0.02, 0.4)
        labels[rng.integers(0, n_docs)] = True
        scores = rng.permutation(n_docs).astype(float)
        order = np.argsort(-scores)
        y_true, y_pred = labels[order][:k], scores[order][:k]
        hits, count_pos = int(y_true.sum()), int(labels.sum())
        ref_ap = 0.0
        if hits:
            ref_ap = metrics_mod.average_precision_score(y_true, y_pred) * hits / min(count_pos, k)
        # INQUIRE nDCG: append the unretrieved positives with score -100, then sklearn ndcg_score@k
        missing = count_pos - hits
        t = np.concatenate([y_true, np.ones(missing)])[None]
        p = np.concatenate([y_pred, np.full(missing, -100.0)])[None]
        ref_ndcg = metrics_mod.ndcg_score(t, p, k=k)
        out = evaluate_matrix(scores[None], labels[None], [f"map_inquire@{k}", f"ndcg@{k}"])
        assert out[f"map_inquire@{k}"] == pytest.approx(ref_ap, abs=1e-9)
        assert out[f"ndcg@{k}"] == pytest.approx(ref_ndcg, abs=1e-9)


# ---------------------------------------------------------------- properties

@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(2, 20),
    st.integers(0, 10_000),
    st.integers(1, 25),
)
def test_metric_bounds_and_orderings(n_q: int, n_d: int, seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((n_q, n_d))
    rel = rng.random((n_q, n_d)) < 0.3
    out = evaluate_matrix(scores, rel, [f"recall@{k}", f"map@{k}", f"map_inquire@{k}", f"ndcg@{k}",
                                        f"mrr@{k}", f"recall_fraction@{k}"])
    for value in out.values():
        assert -1e-12 <= value <= 1 + 1e-12
    assert out[f"map@{k}"] <= out[f"map_inquire@{k}"] + 1e-12  # 1/N_pos ≤ 1/min(N_pos, K)
    assert out[f"mrr@{k}"] <= out[f"recall@{k}"] + 1e-12
    assert out[f"recall_fraction@{k}"] <= out[f"recall@{k}"] + 1e-12
    # a perfect ranking scores 1 on every metric for queries that have positives
    has = rel.any(axis=1)
    if has.any():
        perfect = evaluate_matrix(rel[has].astype(float), rel[has], [f"ndcg@{k}", f"map_inquire@{k}", f"mrr@{k}"])
        assert perfect == pytest.approx({f"ndcg@{k}": 1.0, f"map_inquire@{k}": 1.0, f"mrr@{k}": 1.0})


# ---------------------------------------------------------------- errors and helpers

def test_unknown_metric_lists_choices() -> None:
    with pytest.raises(OmniretError, match="unknown metric 'recal@5'; choose from .*ndcg"):
        parse_metric("recal@5")
    with pytest.raises(OmniretError, match="takes no @K"):
        parse_metric("median_rank@5")
    with pytest.raises(OmniretError, match="needs a cut-off"):
        evaluate_matrix(SPEC_SCORES, SPEC_SCORES > 0.5, ["map_inquire"])
    assert "median_rank_vse" in metric_names()


def test_run_qrels_mismatch_and_make_comparable() -> None:
    run = {"a": {"x": 1.0}, "b": {"y": 1.0}}
    qrels = {"a": {"x": 1}, "c": {"z": 1}}
    with pytest.raises(OmniretError, match="only in the run.*make_comparable=True"):
        evaluate_run(run, qrels, ["recall@1"])
    out = evaluate_run(run, qrels, ["recall@1"], make_comparable=True)
    assert out["recall@1"] == 0.5  # "c" scores as an empty ranking, "b" is dropped


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(OmniretError, match="relevance has shape"):
        evaluate_matrix(np.zeros((2, 3)), np.zeros((3, 2)), ["recall@1"])
    with pytest.raises(OmniretError, match="NaN"):
        evaluate_matrix(np.full((2, 3), np.nan), np.ones((2, 3)), ["recall@1"])
    with pytest.raises(OmniretError, match="1 queries have none"):
        evaluate_matrix(np.eye(3), np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]]), ["median_rank"])
    with pytest.raises(OmniretError, match="one image index per score row"):
        image_text_recall(SPEC_SCORES, [0, 1])
    judged = judge_matrix(SPEC_SCORES, SPEC_SCORES > 0.5, depth=1)
    with pytest.raises(OmniretError, match="depth 1"):
        evaluate(judged, ["recall@2"])


def test_transpose_qrels_gives_i2t() -> None:
    t2i = {"t0": {"i0": 1}, "t1": {"i1": 1}, "t2": {"i1": 1}}
    assert transpose_qrels(t2i) == {"i0": {"t0": 1}, "i1": {"t1": 1, "t2": 1}}
