"""Few-pair alignment of a unimodal image encoder to a text space: STRUCTURE's regulariser and the
contrastive objective, as pure numpy (the reference the torch training in :mod:`omniret.tasks.align`
is checked against).

STRUCTURE (Gröger, Wen, Le, Brbić, "With Limited Data for Multimodal Alignment, Let the STRUCTURE Guide
You", NeurIPS 2025, arXiv 2506.16895) learns light alignment maps from a few thousand pairs and keeps
each encoder's neighbourhood geometry while doing so. For a batch of ``N`` original embeddings ``X`` and
their aligned images ``Z = f(X)``:

    x̂_i = normalize(x_i) − mean_j normalize(x_j)            (unit rows, then centred; the same for Z)
    P_X = softmax_row( X̂ X̂ᵀ / τ ),   P_Z = softmax_row( Ẑ Ẑᵀ / τ )     (a random walk over the batch)
    R_S(X, Z) = (1/L) Σ_{l=1..L} w_l · JS( P_X^l ‖ P_Z^l ),   w_l = 1/l ("inverse") or 1 ("none")

where ``P^l`` is the ``l``-step transition matrix (the matrix power: neighbourhoods at growing scales) and
``JS(P ‖ Q) = ½ KL(P ‖ M) + ½ KL(Q ‖ M)``, ``M = ½ (P + Q)``, averaged over the rows (each row a
distribution over the batch). The paper's default is one level, τ equal to the contrastive temperature
and a weight λ = 10 on R_S next to the symmetric InfoNCE loss of CLIP (Radford et al. 2021):

    L = ½ [ CE(s · Z Tᵀ, I) + CE(s · T Zᵀ, I) ] + λ · R_S(X, Z),   s = 1/τ

with ``T`` the (fixed) unit text embeddings paired row by row with ``Z``. Here only the image side is
mapped — the text space is the index's own, so queries do not change — and R_S is applied to it.
The steps (centring after normalisation, softmax of cosine / τ, matrix powers, mean over rows) follow a
public reproduction of the paper's code (``structure_reg``); its JS term, written with torch's
``kl_div(log P, M)``, computes ``½ KL(M ‖ P) + ½ KL(M ‖ Q)``. Here JS is the paper's (and the textbook)
Jensen–Shannon divergence, ``½ KL(P ‖ M) + ½ KL(Q ‖ M)``: symmetric, bounded by ln 2.
"""

from __future__ import annotations

import numpy as np

from omniret.errors import QueryError

__all__ = ["info_nce", "js_rows", "structure_regularizer", "walk"]


def _unit_centred(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise QueryError(f"STRUCTURE needs a batch of at least two embeddings (n, d), got shape {x.shape}")
    n = np.linalg.norm(x, axis=1, keepdims=True)
    u = x / np.maximum(n, 1e-12)
    return u - u.mean(axis=0, keepdims=True)


def walk(x: np.ndarray, tau: float) -> np.ndarray:
    """``P = softmax_row(X̂ X̂ᵀ / τ)``: the one-step random walk over a batch (rows sum to 1)."""
    if tau <= 0:
        raise QueryError(f"the temperature must be > 0, got {tau}")
    u = _unit_centred(x)
    s = u @ u.T / tau
    s -= s.max(axis=1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=1, keepdims=True)


def js_rows(p: np.ndarray, q: np.ndarray, eps: float = 1e-12) -> float:
    """Mean over rows of the Jensen–Shannon divergence (natural log) of row distributions ``p`` and ``q``."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    m = 0.5 * (p + q)
    kl_p = np.sum(p * (np.log(p + eps) - np.log(m + eps)), axis=1)  # KL(P ‖ M)
    kl_q = np.sum(q * (np.log(q + eps) - np.log(m + eps)), axis=1)  # KL(Q ‖ M)
    return float(np.mean(0.5 * (kl_p + kl_q)))


def structure_regularizer(x: np.ndarray, z: np.ndarray, *, levels: int = 1, tau: float = 0.07,
                          weighting: str = "inverse") -> float:
    """``R_S(X, Z)``: how much the aligned batch ``z`` changed the multi-scale neighbourhoods of ``x``."""
    if len(x) != len(z):
        raise QueryError(f"x and z must be the same batch, got {len(x)} and {len(z)} rows")
    if levels < 1:
        raise QueryError(f"levels must be >= 1, got {levels}")
    if weighting not in ("inverse", "none"):
        raise QueryError(f"unknown weighting {weighting!r}; choose 'inverse' or 'none'")
    px, pz = walk(x, tau), walk(z, tau)
    total = 0.0
    for level in range(1, levels + 1):
        d = js_rows(np.linalg.matrix_power(px, level), np.linalg.matrix_power(pz, level))
        total += d / level if weighting == "inverse" else d
    return total / levels


def info_nce(z: np.ndarray, t: np.ndarray, tau: float = 0.07) -> float:
    """CLIP's symmetric InfoNCE loss of unit rows ``z`` (images) and ``t`` (their texts), pairs on the diagonal."""
    z, t = np.asarray(z, dtype=np.float64), np.asarray(t, dtype=np.float64)
    if z.shape != t.shape:
        raise QueryError(f"z and t must pair row by row, got {z.shape} and {t.shape}")
    logits = z @ t.T / tau

    def ce(a: np.ndarray) -> float:
        a = a - a.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(a).sum(axis=1)) - np.diag(a)))

    return 0.5 * (ce(logits) + ce(logits.T))
