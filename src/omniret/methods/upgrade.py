"""Backward-compatible embedding upgrade without re-embedding the gallery: a closed-form linear map.

Given N items embedded by both the new model (``X_new`` (N, d_new)) and the old one (``Y_old``
(N, d_old)), fit ``W`` so that ``normalize(x_new W)`` can search an old-model gallery. A
training-free baseline for XBT (Jang & Lim, ICCV 2025, arXiv 2405.14715), which trains the map.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from omniret.errors import QueryError

__all__ = ["apply_map", "compatibility_recall", "fit_map"]


def _pairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0] or a.shape[0] == 0:
        raise QueryError(f"X_new and Y_old must be (N, d) arrays over the same N > 0 items, got {a.shape}, {b.shape}")
    return a, b


def fit_map(
    X_new: np.ndarray, Y_old: np.ndarray, method: Literal["lstsq", "procrustes"] = "lstsq", ridge: float = 0.0
) -> np.ndarray:
    """Fit ``W`` (d_new, d_old) mapping new-model embeddings onto old-model ones.

    * ``lstsq``: ``W = argmin ||X W - Y||_F^2`` (``np.linalg.lstsq``); with ``ridge = l > 0``,
      ``W = (X^T X + l I)^-1 X^T Y``.
    * ``procrustes`` (Schoenemann 1966): ``U S V^T = svd(X^T Y)``, ``W = U V^T``, the orthogonal
      map minimising ``||X W - Y||_F``; needs d_new = d_old (PCA or pad first otherwise).

    L2-normalise (and optionally mean-centre) both sides before fitting.
    """
    x, y = _pairs(X_new, Y_old)
    if ridge < 0:
        raise QueryError(f"ridge must be >= 0, got {ridge}")
    if method == "lstsq":
        if ridge == 0:
            return np.linalg.lstsq(x, y, rcond=None)[0]
        return np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ y)
    if method == "procrustes":
        if x.shape[1] != y.shape[1]:
            raise QueryError(
                f"procrustes needs equal dims, got new {x.shape[1]} and old {y.shape[1]}; "
                "use method='lstsq' or reduce both to one dim first"
            )
        u, _, vt = np.linalg.svd(x.T @ y)
        return u @ vt
    raise QueryError(f"unknown map method {method!r}; choose 'lstsq' or 'procrustes'")


def apply_map(X_new: np.ndarray, W: np.ndarray, normalize: bool = True) -> np.ndarray:
    """Map new-model embeddings into the old space: ``x W`` (L2-normalised unless ``normalize=False``)."""
    x, w = np.asarray(X_new, dtype=np.float64), np.asarray(W, dtype=np.float64)
    if x.shape[-1] != w.shape[0]:
        raise QueryError(f"embeddings have dim {x.shape[-1]} but the map expects {w.shape[0]}")
    out = x @ w
    if not normalize:
        return out
    n = np.linalg.norm(out, axis=-1, keepdims=True)
    return out / np.where(n > 0, n, 1.0)


def _recall(queries: np.ndarray, gallery: np.ndarray, targets: np.ndarray, ks: tuple[int, ...]) -> dict[int, float]:
    scores = queries @ gallery.T
    target_score = scores[np.arange(len(targets)), targets]
    # rank of the target: items scoring strictly higher, plus tied items with a lower index
    higher = (scores > target_score[:, None]).sum(axis=1)
    tied = ((scores == target_score[:, None]) & (np.arange(gallery.shape[0]) < targets[:, None])).sum(axis=1)
    rank = higher + tied
    return {k: float(np.mean(rank < k)) for k in ks}


def compatibility_recall(
    new_queries: np.ndarray,
    old_queries: np.ndarray,
    old_gallery: np.ndarray,
    targets: np.ndarray,
    W: np.ndarray,
    ks: tuple[int, ...] = (1, 5, 10),
) -> dict[str, dict[int, float]]:
    """Recall@K of mapped new->old retrieval vs the old->old upper bound on held-out pairs.

    ``targets[i]`` is the gallery row relevant to query i. Returns
    ``{"new_to_old": {k: R@k}, "old_to_old": {k: R@k}}``; ties are ranked by gallery index.
    """
    nq, oq = np.asarray(new_queries, np.float64), np.asarray(old_queries, np.float64)
    g, t = np.asarray(old_gallery, np.float64), np.asarray(targets, np.int64)
    if nq.shape[0] != oq.shape[0] or t.shape != (nq.shape[0],):
        raise QueryError("new_queries, old_queries and targets must describe the same held-out queries")
    if t.size and (t.min() < 0 or t.max() >= g.shape[0]):
        raise QueryError(f"targets must be gallery row indices in [0, {g.shape[0]})")
    return {
        "new_to_old": _recall(apply_map(nq, W), g, t, ks),
        "old_to_old": _recall(oq, g, t, ks),
    }
