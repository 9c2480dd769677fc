"""The torch form of :mod:`omniret.methods.alignment` (differentiable, for training the projector).

Same formulas as the numpy reference, which the tests compare it with: STRUCTURE's regulariser
``R_S`` (Gröger et al., NeurIPS 2025, arXiv 2506.16895) and CLIP's symmetric InfoNCE.
"""

from __future__ import annotations

from typing import Any


def _walk(x: Any, tau: float) -> Any:
    import torch

    u = torch.nn.functional.normalize(x, dim=1)
    u = u - u.mean(dim=0, keepdim=True)
    return torch.softmax(u @ u.T / tau, dim=1)


def structure_loss(x: Any, z: Any, *, levels: int = 1, tau: float = 0.07, weighting: str = "inverse",
                   eps: float = 1e-12) -> Any:
    """``R_S(X, Z) = (1/L) Σ_l w_l JS(P_X^l ‖ P_Z^l)`` over a batch (rows: distributions over the batch)."""
    import torch

    px, pz = _walk(x.detach(), tau), _walk(z, tau)  # the original features are fixed
    total = z.new_zeros(())
    for level in range(1, levels + 1):
        p, q = torch.linalg.matrix_power(px, level), torch.linalg.matrix_power(pz, level)
        m = 0.5 * (p + q)
        kl_p = (p * ((p + eps).log() - (m + eps).log())).sum(dim=1)
        kl_q = (q * ((q + eps).log() - (m + eps).log())).sum(dim=1)
        js = (0.5 * (kl_p + kl_q)).mean()
        total = total + (js / level if weighting == "inverse" else js)
    return total / levels


def symmetric_info_nce(z: Any, t: Any, tau: float) -> Any:
    """``½ [CE(Z Tᵀ/τ, I) + CE(T Zᵀ/τ, I)]`` for unit rows paired on the diagonal."""
    import torch

    logits = z @ t.T / tau
    labels = torch.arange(len(z))
    return 0.5 * (torch.nn.functional.cross_entropy(logits, labels) + torch.nn.functional.cross_entropy(logits.T, labels))
