"""Turn a score matrix or a run/qrels pair into the arrays the metric kernels read.

Both input forms end up as one :class:`Judged`: for every query, the relevance of the documents it
ranked at positions 1..depth (``gains``), the ideal relevance ordering from the judgements
(``ideal``), the number of relevant documents (``n_relevant``), and the 0-based rank of its best
relevant document under two tie rules (``rank_average``, ``rank_optimistic``).

Tie rules (documented because references differ):

* The top-``depth`` order sorts by descending score, then by ascending column index (matrix form)
  or ascending document id (run form). CLIP_benchmark's ``torch.topk`` and ranx's numba argsort
  leave tie order implementation-defined; on tie-free scores all agree.
* ``rank_average`` is the collaborative-experts rule (McSherry & Najork, ECIR 2008): a document
  tied with ``t - 1`` others after ``g`` strictly better ones has rank ``g + (t - 1) / 2``.
* ``rank_optimistic`` puts a relevant document first among its ties: rank ``g``.

A document is relevant when its judgement is ``> 0`` (ranx's default ``rel_lvl = 1`` for integer
judgements).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from omniret.errors import OmniretError

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, float]]

_ROW_BATCH = 1024


@dataclass(frozen=True)
class Judged:
    """Per-query ranked relevance; every array has one row per query, in ``query_ids`` order."""

    query_ids: tuple[str, ...]
    gains: np.ndarray  # (n, depth) float64: judgement of the document at each rank, 0 if none
    ideal: np.ndarray  # (n, depth) float64: the query's judgements sorted descending, 0-padded
    n_relevant: np.ndarray  # (n,) int64: documents with judgement > 0
    rank_average: np.ndarray  # (n,) float64: 0-based rank of the best relevant doc; NaN if unknown
    rank_optimistic: np.ndarray  # (n,) float64: same with optimistic ties; NaN if unknown
    n_ranked: np.ndarray  # (n,) int64: length of each query's full ranking (may exceed depth)

    @property
    def depth(self) -> int:
        return int(self.gains.shape[1])


def _top_order(scores: np.ndarray, depth: int) -> np.ndarray:
    """Column indices of the ``depth`` best scores per row: descending score, then ascending index."""
    n_rows, n_cols = scores.shape
    if depth >= n_cols:
        return np.argsort(-scores, axis=1, kind="stable")
    kth = np.partition(scores, n_cols - depth, axis=1)[:, n_cols - depth]
    chosen = scores >= kth[:, None]
    counts = chosen.sum(axis=1)
    # Rows whose boundary score is tied with columns left out need the exact stable order.
    tied = np.flatnonzero(counts != depth)
    chosen[tied] = False
    chosen[tied, :depth] = True  # a placeholder of the right size; those rows are redone below
    part = np.nonzero(chosen)[1].reshape(n_rows, depth)  # ascending column order within each row
    sub = np.take_along_axis(scores, part, axis=1)
    top = np.take_along_axis(part, np.lexsort((part, -sub), axis=-1), axis=1)
    for row in tied:
        top[row] = np.argsort(-scores[row], kind="stable")[:depth]
    return top


def _ideal(rel: np.ndarray, depth: int) -> np.ndarray:
    """The row's judgements sorted descending, first ``depth``; binary judgements need no sort."""
    if np.isin(rel, (0.0, 1.0)).all():
        return (np.arange(depth)[None, :] < (rel > 0).sum(axis=1)[:, None]).astype(np.float64)
    if depth >= rel.shape[1]:
        return -np.sort(-rel, axis=1)
    part = -np.partition(-rel, depth - 1, axis=1)[:, :depth]
    return -np.sort(-part, axis=1)


def _best_ranks(scores: np.ndarray, rel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank of the highest-scored relevant column per row (it has the smallest rank under both rules)."""
    positive = rel > 0
    has = positive.any(axis=1)
    best = np.where(positive, scores, -np.inf).max(axis=1)
    greater = (scores > best[:, None]).sum(axis=1).astype(np.float64)
    tied = (scores == best[:, None]).sum(axis=1).astype(np.float64)
    average = np.where(has, greater + (tied - 1.0) / 2.0, np.nan)
    optimistic = np.where(has, greater, np.nan)
    return average, optimistic


def _check_matrix(scores: np.ndarray, relevance: np.ndarray) -> None:
    if scores.ndim != 2:
        raise OmniretError(f"scores must be a 2-D (queries × documents) array, got shape {scores.shape}")
    if relevance.shape != scores.shape:
        raise OmniretError(
            f"relevance has shape {relevance.shape} but scores has {scores.shape}; pass one judgement "
            "(bool or graded) per score"
        )
    if scores.shape[1] == 0:
        raise OmniretError("scores has no document columns; evaluate against a non-empty corpus")
    if np.isnan(scores).any():
        raise OmniretError("scores contain NaN; check the embeddings (a zero vector normalises to NaN)")


def judge_matrix(
    scores: np.ndarray,
    relevance: np.ndarray,
    depth: int | None = None,
    query_ids: Sequence[str] | None = None,
    ranks: bool = True,
) -> Judged:
    """Judge a dense (queries × documents) score matrix against a same-shaped relevance matrix.

    ``relevance`` is boolean (CLIP_benchmark's ``positive_pairs``) or graded (0 = not relevant).
    ``depth`` is how many ranks to keep (default: all documents). ``ranks=False`` skips the
    best-relevant ranks (NaN), which only the rank statistics need. Scores keep their float dtype
    (float32 embeddings' scores are compared as float32, as the references do).
    """
    scores = np.asarray(scores)
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    relevance = np.asarray(relevance)
    _check_matrix(scores, relevance)
    n_q, n_d = scores.shape
    depth = n_d if depth is None else min(int(depth), n_d)
    if depth < 1:
        raise OmniretError(f"depth must be at least 1, got {depth}")
    ids = tuple(str(i) for i in range(n_q)) if query_ids is None else tuple(query_ids)
    if len(ids) != n_q:
        raise OmniretError(f"{len(ids)} query ids given for {n_q} score rows; pass one id per row")
    gains = np.zeros((n_q, depth))
    ideal = np.zeros((n_q, depth))
    avg = np.full(n_q, np.nan)
    opt = np.full(n_q, np.nan)
    for start in range(0, n_q, _ROW_BATCH):
        rows = slice(start, start + _ROW_BATCH)
        s = np.ascontiguousarray(scores[rows])
        r = np.ascontiguousarray(relevance[rows]).astype(np.float64)
        top = _top_order(s, depth)
        gains[rows] = np.take_along_axis(r, top, axis=1)
        ideal[rows] = _ideal(r, depth)
        if ranks:
            avg[rows], opt[rows] = _best_ranks(s, r)
    ideal = np.clip(ideal, 0.0, None)
    gains = np.clip(gains, 0.0, None)
    n_rel = (relevance > 0).sum(axis=1).astype(np.int64)
    return Judged(ids, gains, ideal, n_rel, avg, opt, np.full(n_q, n_d, dtype=np.int64))


def _sorted_run(docs: Mapping[str, float]) -> list[tuple[str, float]]:
    return sorted(((str(d), float(s)) for d, s in docs.items()), key=lambda ds: (-ds[1], ds[0]))


def _query_ranks(ranked: list[tuple[str, float]], judged: Mapping[str, float]) -> tuple[float, float]:
    best = max((s for d, s in ranked if judged.get(d, 0) > 0), default=None)
    if best is None:
        return float("nan"), float("nan")
    greater = sum(1 for _, s in ranked if s > best)
    tied = sum(1 for _, s in ranked if s == best)
    return greater + (tied - 1) / 2.0, float(greater)


def _match_queries(run: Run, qrels: Qrels, make_comparable: bool) -> list[str]:
    extra = [q for q in run if q not in qrels]
    missing = [q for q in qrels if q not in run]
    if (extra or missing) and not make_comparable:
        raise OmniretError(
            f"run and qrels hold different queries ({len(extra)} only in the run, e.g. {extra[:3]}; "
            f"{len(missing)} only in qrels, e.g. {missing[:3]}); pass make_comparable=True to drop "
            "unjudged queries and score missing ones as empty rankings"
        )
    return [str(q) for q in qrels]


def judge_run(run: Run, qrels: Qrels, depth: int | None = None, make_comparable: bool = False) -> Judged:
    """Judge a run ``{query: {doc: score}}`` against qrels ``{query: {doc: relevance}}``.

    Queries are those of ``qrels`` in their order. ``depth`` defaults to the longest ranking.
    """
    queries = _match_queries(run, qrels, make_comparable)
    if not queries:
        raise OmniretError("qrels hold no queries; nothing to evaluate")
    rankings = [_sorted_run(run.get(q, {})) for q in queries]
    if depth is None:
        depth = max(1, max(len(r) for r in rankings))
    if depth < 1:
        raise OmniretError(f"depth must be at least 1, got {depth}")
    n_q = len(queries)
    gains = np.zeros((n_q, depth))
    ideal = np.zeros((n_q, depth))
    n_rel = np.zeros(n_q, dtype=np.int64)
    avg = np.empty(n_q)
    opt = np.empty(n_q)
    for i, q in enumerate(queries):
        judged = {str(d): float(r) for d, r in qrels[q].items()}
        ranked = rankings[i]
        row = [max(judged.get(d, 0.0), 0.0) for d, _ in ranked[:depth]]
        gains[i, : len(row)] = row
        rels = sorted((r for r in judged.values() if r > 0), reverse=True)[:depth]
        ideal[i, : len(rels)] = rels
        n_rel[i] = sum(1 for r in judged.values() if r > 0)
        avg[i], opt[i] = _query_ranks(ranked, judged)
    n_ranked = np.array([len(r) for r in rankings], dtype=np.int64)
    return Judged(tuple(queries), gains, ideal, n_rel, avg, opt, n_ranked)
