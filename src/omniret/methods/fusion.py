"""Rank fusion for one query: Reciprocal Rank Fusion and normalised weighted score sums.

A *run* is one ranked result list for the query, given either as a mapping ``id -> score`` or
as a pair ``(ids, scores)``. Every function returns ``(ids, scores)``: a list of ids and a float64
array, sorted by score descending with ties broken by id ascending (deterministic; ids must be
mutually comparable, e.g. all ``str`` or all ``int``). Inside a run, a document's rank is its
position after sorting by score descending, ties by id ascending.

ranx (AmenRa/ranx) is the reference; it ranks tied scores in an implementation-defined order
(numba ``argsort`` of negated scores over insertion order), so it agrees with these functions
exactly only on runs without tied scores.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Literal

import numpy as np

from omniret.errors import QueryError

__all__ = ["Run", "minmax", "rrf", "rank_run", "weighted_sum", "zscore"]

Run = Mapping[Hashable, float] | tuple[Sequence[Hashable], Sequence[float] | np.ndarray]
_EPS = 1e-9


def _as_pairs(run: Run) -> tuple[list[Hashable], np.ndarray]:
    if isinstance(run, Mapping):
        return list(run.keys()), np.asarray(list(run.values()), dtype=np.float64)
    if not isinstance(run, tuple) or len(run) != 2:
        raise QueryError(f"a run must be a mapping id -> score or a pair (ids, scores), got {type(run).__name__}")
    ids, scores = list(run[0]), np.asarray(run[1], dtype=np.float64).ravel()
    if len(ids) != scores.shape[0]:
        raise QueryError(f"run has {len(ids)} ids but {scores.shape[0]} scores; give one score per id")
    if len(set(ids)) != len(ids):
        raise QueryError("run lists a document id twice; each id may appear once per run")
    return ids, scores


def _sorted(ids: list[Hashable], scores: np.ndarray) -> tuple[list[Hashable], np.ndarray]:
    """Sort by score descending, ties by id ascending (vectorised when ids are all str or all int)."""
    if ids and (all(isinstance(i, str) for i in ids) or all(type(i) is int for i in ids)):
        order = np.lexsort((np.asarray(ids), -scores))
    else:
        try:
            order = np.asarray(sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i])), dtype=np.int64)  # type: ignore[operator]
        except TypeError as e:
            raise QueryError("document ids in a run must be mutually comparable (all str or all int)") from e
    return [ids[i] for i in order], scores[order]


def rank_run(run: Run) -> tuple[list[Hashable], np.ndarray]:
    """A run as ``(ids, scores)`` sorted by score descending, ties by id ascending."""
    return _sorted(*_as_pairs(run))


def minmax(scores: np.ndarray) -> np.ndarray:
    """Min-max normalisation (ranx ``min-max``): ``(s - min) / max(max - min, 1e-9)``; a 1-doc run -> 0."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return s.copy()
    return (s - s.min()) / max(float(s.max() - s.min()), _EPS)


def zscore(scores: np.ndarray) -> np.ndarray:
    """Z-score normalisation (ranx ``zmuv``): ``(s - mean) / max(std, 1e-9)``, population std (ddof = 0)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return s.copy()
    return (s - s.mean()) / max(float(s.std()), _EPS)


def _accumulate(contribs: Sequence[tuple[list[Hashable], np.ndarray]]) -> tuple[list[Hashable], np.ndarray]:
    total: dict[Hashable, float] = {}
    for ids, values in contribs:
        for doc, v in zip(ids, values.tolist(), strict=True):
            total[doc] = total.get(doc, 0.0) + v
    return _sorted(list(total.keys()), np.asarray(list(total.values()), dtype=np.float64))


def rrf(runs: Sequence[Run], k: float = 60.0) -> tuple[list[Hashable], np.ndarray]:
    """Reciprocal Rank Fusion (Cormack, Clarke, Buettcher, SIGIR 2009).

        RRF(d) = sum_r 1 / (k + rank_r(d)),   rank 1-based, k = 60; absent from run r -> 0

    Example: runs [a, b, c] and [c, a, d] give a = 1/61 + 1/62, c = 1/63 + 1/61, b = 1/62, d = 1/63.
    Runs truncated at different depths bias RRF toward the deeper run.
    """
    if k <= 0:
        raise QueryError(f"RRF k must be > 0, got {k}")
    contribs = []
    for run in runs:
        ids, _ = rank_run(run)
        contribs.append((ids, 1.0 / (k + np.arange(1, len(ids) + 1, dtype=np.float64))))
    return _accumulate(contribs)


_NORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "minmax": minmax,
    "zscore": zscore,
    "none": lambda s: np.asarray(s, dtype=np.float64),
}


def weighted_sum(
    runs: Sequence[Run],
    weights: Sequence[float] | None = None,
    norm: Literal["minmax", "zscore", "none"] = "minmax",
) -> tuple[list[Hashable], np.ndarray]:
    """Weighted sum of per-run normalised scores (ranx ``wsum``; Fox & Shaw CombSUM when weights are 1).

        fused(d) = sum_r w_r * norm_r(d),   absent from run r -> 0 for that run

    ``norm``: ``"minmax"`` (ranx ``min-max``, the ranx default), ``"zscore"`` (ranx ``zmuv``) or
    ``"none"``. ``weights`` default to 1 per run.
    """
    if norm not in _NORMS:
        raise QueryError(f"unknown score normalisation {norm!r}; choose from {sorted(_NORMS)}")
    w = [1.0] * len(runs) if weights is None else [float(x) for x in weights]
    if len(w) != len(runs):
        raise QueryError(f"got {len(w)} weights for {len(runs)} runs; give one weight per run")
    contribs = []
    for run, wr in zip(runs, w, strict=True):
        ids, scores = _as_pairs(run)
        contribs.append((ids, wr * _NORMS[norm](scores)))
    return _accumulate(contribs)
