"""Diversifying a ranked list: Maximal Marginal Relevance.

MMR (Carbonell & Goldstein, "The use of MMR, diversity-based reranking for reordering documents and
producing summaries", SIGIR 1998, eq. 1) picks, one at a time, the candidate that is relevant to the
query but unlike what was already picked:

    MMR = argmax_{D_i ∈ R \\ S} [ λ · Sim1(D_i, Q) − (1 − λ) · max_{D_j ∈ S} Sim2(D_i, D_j) ]

with ``R`` the candidates, ``S`` the selected ones (empty at first: the first pick is the most
relevant), ``Sim1`` the query–document relevance and ``Sim2`` the document–document similarity.
``λ = 1`` is the relevance order; ``λ = 0`` the most diverse order.
"""

from __future__ import annotations

import numpy as np

from omniret.errors import QueryError

__all__ = ["mmr"]


def mmr(relevance: np.ndarray, similarity: np.ndarray, lam: float = 0.5, k: int | None = None) -> list[int]:
    """Indices of up to ``k`` candidates in MMR order (all of them when ``k`` is None).

    ``relevance``: (n,) ``Sim1(D_i, Q)``; ``similarity``: (n, n) ``Sim2(D_i, D_j)`` (e.g. cosine of their
    embeddings); ``lam``: λ in [0, 1]. Ties go to the lower index (the earlier first-stage candidate).
    """
    rel = np.asarray(relevance, dtype=np.float64)
    sim = np.asarray(similarity, dtype=np.float64)
    n = len(rel)
    if rel.ndim != 1 or sim.shape != (n, n):
        raise QueryError(f"MMR needs relevance (n,) and similarity (n, n), got {rel.shape} and {sim.shape}")
    if not 0.0 <= lam <= 1.0:
        raise QueryError(f"MMR's lambda must be in [0, 1], got {lam}")
    k = n if k is None else max(0, min(int(k), n))
    picked: list[int] = []
    left = np.ones(n, dtype=bool)
    redundancy = np.full(n, -np.inf)  # max similarity to the picked ones (none yet)
    for _ in range(k):
        penalty = np.where(np.isfinite(redundancy), redundancy, 0.0) if picked else np.zeros(n)
        value = np.where(left, lam * rel - (1.0 - lam) * penalty, -np.inf)
        i = int(np.argmax(value))  # argmax returns the first of equal values: the lower index
        picked.append(i)
        left[i] = False
        redundancy = np.maximum(redundancy, sim[i])
    return picked
