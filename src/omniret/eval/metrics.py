"""Retrieval metrics computed exactly as the reference code computes them (spec §13).

Kernels are pure array-in/array-out functions on :class:`~omniret.eval.ranking.Judged` arrays and
return one value per query; :func:`evaluate` parses metric names (``"recall@5"``, ``"ndcg@10"``,
``"median_rank"``) and averages. Two input forms:

* :func:`evaluate_matrix` — a (queries × documents) score matrix and a positive-pairs mask, as in
  CLIP_benchmark; ranks at COCO scale (25k × 5k) without building dictionaries.
* :func:`evaluate_run` — a run ``{query: {doc: score}}`` and qrels ``{query: {doc: relevance}}``,
  ranx's input form.

Why not call ranx for the metrics it shares: ranx takes dictionaries only (a 25k × 5k matrix would
be 125M entries), compiles with numba on first use (seconds), and has no any-positive recall under
that name, INQUIRE AP or rank metrics. The tests cross-check every shared metric against ranx on
random runs to 1e-9.

Metric names (``K`` is a positive integer; without ``@K`` the whole ranking counts):

=====================  =======================================================================
``recall@K``           any-positive recall (CLIP_benchmark; = ranx ``hit_rate@K``)
``recall_fraction@K``  relevant retrieved / relevant (ranx ``recall@K``)
``precision@K``        relevant retrieved / K (ranx ``precision@K``)
``map@K``              trec/ranx AP: Σ P@i·rel_i / N_pos
``map_inquire@K``      INQUIRE AP: Σ P@i·rel_i / min(N_pos, K)
``ndcg@K``             Järvelin nDCG (ranx ``ndcg``); ``ndcg_burges@K`` uses 2^rel − 1
``mrr@K``              reciprocal rank of the first relevant document within K
``median_rank``        collaborative-experts: median of tie-averaged 0-based ranks, + 1
``mean_rank``          collaborative-experts: mean of tie-averaged 0-based ranks, + 1
``median_rank_vse``    VSE: floor(median of optimistic ranks) + 1
``mean_rank_vse``      VSE: mean of optimistic ranks + 1
=====================  =======================================================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from omniret.errors import OmniretError
from omniret.eval.ranking import Judged, Qrels, Run, judge_matrix, judge_run


def _cut(gains: np.ndarray, k: int | None) -> np.ndarray:
    return gains if k is None else gains[:, :k]


def _binary(gains: np.ndarray) -> np.ndarray:
    return (gains > 0).astype(np.float64)


def recall_any(gains: np.ndarray, k: int | None) -> np.ndarray:
    """1 if any relevant document is in the top ``k``, else 0 (CLIP_benchmark ``recall_at_k > 0``).

    LAION-AI/CLIP_benchmark ``metrics/zeroshot_retrieval.py::recall_at_k``; ranx ``hit_rate``.
    """
    return _binary(_cut(gains, k)).max(axis=1, initial=0.0)


def recall_fraction(gains: np.ndarray, n_relevant: np.ndarray, k: int | None) -> np.ndarray:
    """|relevant ∩ top k| / N_pos (0 when N_pos = 0). ranx ``recall``."""
    hits = _binary(_cut(gains, k)).sum(axis=1)
    return np.divide(hits, n_relevant, out=np.zeros_like(hits), where=n_relevant > 0)


def precision(gains: np.ndarray, n_ranked: np.ndarray, k: int | None) -> np.ndarray:
    """|relevant ∩ top k| / k (a short run is not forgiven); without k, / run length. ranx ``precision``.

    An empty ranking scores 0.
    """
    hits = _binary(_cut(gains, k)).sum(axis=1)
    den = (n_ranked if k is None else np.full_like(n_ranked, k)).astype(np.float64)
    return np.divide(hits, den, out=np.zeros_like(hits), where=den > 0)


def _precision_sum(gains: np.ndarray, k: int | None) -> np.ndarray:
    hit = _binary(_cut(gains, k))
    prec_at_i = np.cumsum(hit, axis=1) / np.arange(1, hit.shape[1] + 1)
    return (prec_at_i * hit).sum(axis=1)


def average_precision(gains: np.ndarray, n_relevant: np.ndarray, k: int | None) -> np.ndarray:
    """trec/ranx AP@k = Σ_{i≤k} P@i · rel_i / N_pos (0 when N_pos = 0).

    AmenRa/ranx ``metrics/average_precision.py::_average_precision``.
    """
    num = _precision_sum(gains, k)
    return np.divide(num, n_relevant, out=np.zeros_like(num), where=n_relevant > 0)


def average_precision_inquire(gains: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """INQUIRE AP@k = Σ_{i≤k} P@i · rel_i / min(N_pos, k) (0 when N_pos = 0).

    inquire-benchmark/INQUIRE ``src/metrics.py::ap_at_k`` (sklearn AP on the top k rescaled by
    hits / min(N_pos, k)); Vendrow et al., "INQUIRE", NeurIPS 2024 Datasets & Benchmarks.
    """
    num = _precision_sum(gains, k)
    den = np.minimum(n_relevant, k).astype(np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _dcg(gains: np.ndarray, burges: bool) -> np.ndarray:
    gain = np.power(2.0, gains) - 1.0 if burges else gains
    discount = np.log2(np.arange(2, gains.shape[1] + 2))
    return (gain / discount).sum(axis=1)


def ndcg(gains: np.ndarray, ideal: np.ndarray, k: int | None, burges: bool = False) -> np.ndarray:
    """nDCG@k = DCG@k / IDCG@k with DCG@k = Σ_{i≤k} g(rel_i) / log2(i + 1).

    g(r) = r (Järvelin & Kekäläinen, TOIS 2002) or 2^r − 1 (Burges et al., ICML 2005); IDCG from
    the judgements sorted descending; IDCG = 0 is replaced by 1 (ranx ``metrics/ndcg.py``).
    """
    dcg = _dcg(_cut(gains, k), burges)
    idcg = _dcg(_cut(ideal, k), burges)
    return dcg / np.where(idcg == 0.0, 1.0, idcg)


def reciprocal_rank(gains: np.ndarray, k: int | None) -> np.ndarray:
    """1 / (rank of the first relevant document within k), 0 if none. ranx ``reciprocal_rank``."""
    hit = _binary(_cut(gains, k)) > 0
    first = hit.argmax(axis=1)
    return np.where(hit.any(axis=1), 1.0 / (first + 1.0), 0.0)


def _known_ranks(ranks: np.ndarray, query_ids: Sequence[str]) -> np.ndarray:
    unknown = np.flatnonzero(np.isnan(ranks))
    if unknown.size:
        names = [query_ids[i] for i in unknown[:3]]
        raise OmniretError(
            f"rank metrics need a ranked relevant document for every query; {unknown.size} queries "
            f"have none (e.g. {names}); drop unjudged queries or pass the full ranking"
        )
    return ranks


def median_rank(ranks: np.ndarray, floor: bool = False) -> float:
    """MdR = median(r) + 1 over 0-based ranks r; VSE-style code uses floor(median(r)) + 1.

    ioanacroi/qb-norm ``metric.py::cols2metrics`` (from albanie/collaborative-experts); VSE++
    (Faghri et al., BMVC 2018) ``evaluation.py::i2t``.
    """
    med = float(np.median(ranks))
    return (float(np.floor(med)) if floor else med) + 1.0


def mean_rank(ranks: np.ndarray) -> float:
    """MnR = mean(r) + 1 over 0-based ranks r (collaborative-experts ``cols2metrics``)."""
    return float(np.mean(ranks)) + 1.0


def _need_k(name: str, k: int | None) -> int:
    if k is None:
        raise OmniretError(f"metric {name!r} needs a cut-off; write e.g. '{name}@50'")
    return k


PerQuery = Callable[[Judged, "int | None"], np.ndarray]

_PER_QUERY: dict[str, PerQuery] = {
    "recall": lambda j, k: recall_any(j.gains, k),
    "hit_rate": lambda j, k: recall_any(j.gains, k),
    "recall_fraction": lambda j, k: recall_fraction(j.gains, j.n_relevant, k),
    "precision": lambda j, k: precision(j.gains, j.n_ranked, k),
    "map": lambda j, k: average_precision(j.gains, j.n_relevant, k),
    "map_inquire": lambda j, k: average_precision_inquire(j.gains, j.n_relevant, _need_k("map_inquire", k)),
    "ndcg": lambda j, k: ndcg(j.gains, j.ideal, k),
    "ndcg_burges": lambda j, k: ndcg(j.gains, j.ideal, k, burges=True),
    "mrr": lambda j, k: reciprocal_rank(j.gains, k),
}

_RANKS: dict[str, Callable[[Judged], float]] = {
    "median_rank": lambda j: median_rank(_known_ranks(j.rank_average, j.query_ids)),
    "mean_rank": lambda j: mean_rank(_known_ranks(j.rank_average, j.query_ids)),
    "median_rank_vse": lambda j: median_rank(_known_ranks(j.rank_optimistic, j.query_ids), floor=True),
    "mean_rank_vse": lambda j: mean_rank(_known_ranks(j.rank_optimistic, j.query_ids)),
}

_NAME = re.compile(r"^([a-z_]+)(?:@(\d+))?$")


@dataclass(frozen=True)
class MetricSpec:
    """A parsed metric name: ``"ndcg@10"`` → ``MetricSpec("ndcg", 10)``."""

    name: str
    k: int | None

    def __str__(self) -> str:
        return self.name if self.k is None else f"{self.name}@{self.k}"


def metric_names() -> list[str]:
    """Every metric name :func:`evaluate` understands (``@K`` optional for per-query metrics)."""
    return sorted(_PER_QUERY) + sorted(_RANKS)


def parse_metric(text: str) -> MetricSpec:
    """Parse ``"name"`` or ``"name@K"``; unknown names raise an error listing the choices."""
    match = _NAME.match(text.strip().lower())
    name = match.group(1) if match else text
    if match is None or (name not in _PER_QUERY and name not in _RANKS):
        raise OmniretError(f"unknown metric {text!r}; choose from {', '.join(metric_names())} (add @K)")
    k = int(match.group(2)) if match.group(2) else None
    if k is not None and name in _RANKS:
        raise OmniretError(f"metric {name!r} takes no @K cut-off; write {name!r}")
    if k is not None and k < 1:
        raise OmniretError(f"metric {text!r}: K must be at least 1")
    return MetricSpec(name, k)


def required_depth(metrics: Sequence[str]) -> int | None:
    """The ranking depth the metrics need: the largest K, or None (everything) if one has no K."""
    specs = [parse_metric(m) for m in metrics]
    if any(s.name in _PER_QUERY and s.k is None for s in specs):
        return None
    ks = [s.k for s in specs if s.k is not None]
    return max(ks) if ks else 1


def per_query(judged: Judged, metric: str) -> np.ndarray:
    """One value per query for a per-query metric (every metric except the rank statistics)."""
    spec = parse_metric(metric)
    if spec.name in _RANKS:
        raise OmniretError(f"{spec.name!r} is a statistic over queries; use evaluate() for it")
    want = judged.n_ranked if spec.k is None else np.minimum(judged.n_ranked, spec.k)
    if (want > judged.depth).any():
        raise OmniretError(
            f"{metric!r} needs more ranks than the depth {judged.depth} the rankings were cut at; "
            "judge with a larger depth"
        )
    return _PER_QUERY[spec.name](judged, spec.k)


def evaluate(judged: Judged, metrics: Sequence[str]) -> dict[str, float]:
    """Mean of each per-query metric over all queries (unjudged queries count 0), and rank statistics."""
    if isinstance(metrics, str):
        metrics = [metrics]
    out: dict[str, float] = {}
    for metric in metrics:
        spec = parse_metric(metric)
        if spec.name in _RANKS:
            out[str(spec)] = _RANKS[spec.name](judged)
        else:
            out[str(spec)] = float(np.mean(per_query(judged, metric)))
    return out


def evaluate_matrix(
    scores: np.ndarray,
    relevance: np.ndarray,
    metrics: Sequence[str],
    query_ids: Sequence[str] | None = None,
) -> dict[str, float]:
    """Evaluate a (queries × documents) score matrix against a positive-pairs/graded mask."""
    ranks = any(parse_metric(m).name in _RANKS for m in metrics)
    judged = judge_matrix(scores, relevance, required_depth(metrics), query_ids, ranks=ranks)
    return evaluate(judged, metrics)


def evaluate_run(
    run: Run, qrels: Qrels, metrics: Sequence[str], make_comparable: bool = False
) -> dict[str, float]:
    """Evaluate a run ``{query: {doc: score}}`` against qrels ``{query: {doc: relevance}}``."""
    judged = judge_run(run, qrels, required_depth(metrics), make_comparable)
    return evaluate(judged, metrics)


def image_text_recall(
    scores: np.ndarray, text_to_image: Sequence[int], ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """CLIP_benchmark's zero-shot retrieval report from a (texts × images) score matrix.

    ``image_retrieval_recall@K`` ranks images per text (t2i); ``text_retrieval_recall@K`` ranks texts
    per image on ``scores.T`` (i2t). A query is a hit when any of its positives is in the top K.
    LAION-AI/CLIP_benchmark ``metrics/zeroshot_retrieval.py::evaluate``.
    """
    scores = np.asarray(scores)
    idx = np.asarray(text_to_image, dtype=np.int64)
    if scores.ndim != 2 or idx.shape != (scores.shape[0],):
        raise OmniretError(
            f"text_to_image must give one image index per score row; got {idx.shape} for scores {scores.shape}"
        )
    if idx.size and (idx.min() < 0 or idx.max() >= scores.shape[1]):
        raise OmniretError(f"text_to_image holds indices outside 0..{scores.shape[1] - 1}")
    positive = np.zeros(scores.shape, dtype=bool)
    positive[np.arange(scores.shape[0]), idx] = True
    names = [f"recall@{k}" for k in ks]
    t2i = evaluate(judge_matrix(scores, positive, max(ks), ranks=False), names)
    # one contiguous transpose is far faster than gathering row batches out of a column-major view
    i2t = evaluate(judge_matrix(np.ascontiguousarray(scores.T), positive.T, max(ks), ranks=False), names)
    out = {f"image_retrieval_recall@{k}": t2i[f"recall@{k}"] for k in ks}
    out.update({f"text_retrieval_recall@{k}": i2t[f"recall@{k}"] for k in ks})
    return out


def transpose_qrels(qrels: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Swap queries and documents: t2i qrels ``{text: {image: 1}}`` → i2t ``{image: {text: 1}}``."""
    out: dict[str, dict[str, float]] = {}
    for q, docs in qrels.items():
        for d, rel in docs.items():
            out.setdefault(str(d), {})[str(q)] = rel
    return out
