"""Composed image retrieval queries (reference image + text edit): sum, WeiMoCIR, PDV.

Vectors are rows: a single query is ``(d,)``, a batch ``(n, d)``; outputs keep that shape.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from omniret.errors import QueryError

__all__ = ["normalize", "pdv", "sum_compose", "weighted_compose", "weimocir", "weimocir_from_sims"]


def normalize(x: np.ndarray) -> np.ndarray:
    """``x / ||x||_2`` along the last axis (zero vectors stay zero)."""
    a = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(a, axis=-1, keepdims=True)
    return a / np.where(n > 0, n, 1.0)


def _same_shape(**arrays: np.ndarray) -> list[np.ndarray]:
    out = [np.asarray(a, dtype=np.float64) for a in arrays.values()]
    shapes = {a.shape for a in out}
    if len(shapes) != 1 or out[0].ndim not in (1, 2):
        desc = ", ".join(f"{k} {a.shape}" for k, a in zip(arrays, out, strict=True))
        raise QueryError(f"composed-query inputs must be (d,) or (n, d) arrays of one shape, got {desc}")
    return out


def sum_compose(v: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Plain composition ``normalize(v + t)`` of image ``v`` and text ``t`` (WeiMoCIR with alpha = -1)."""
    v_, t_ = _same_shape(v=v, t=t)
    return normalize(v_ + t_)


def weighted_compose(v: np.ndarray, t: np.ndarray, alpha: float = 0.8) -> np.ndarray:
    """WeiMoCIR query ``normalize((1 - alpha) v + alpha t)``; ``alpha`` weights the text.

    whats2000/WeiMoCIR ``element_wise_sum_with_alpha`` fuses *raw* (unnormalised) encoder
    outputs; pass raw or normalised embeddings as your parity needs (this function does not
    normalise its inputs).
    """
    if not 0.0 <= alpha <= 1.0:
        raise QueryError(f"alpha must be in [0, 1] (weight of the text), got {alpha}")
    v_, t_ = _same_shape(v=v, t=t)
    return normalize((1.0 - alpha) * v_ + alpha * t_)


def _caption_sims(q: np.ndarray, captions: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Mean over each gallery item's captions of ``cos(q, c_{n,m})`` -> (nq, Ng)."""
    if isinstance(captions, np.ndarray) and captions.ndim == 3:
        caps = normalize(np.asarray(captions, dtype=np.float64))
        n, m, d = caps.shape
        return (caps.reshape(n * m, d) @ q.T).reshape(n, m, -1).mean(axis=1).T
    mats = [np.asarray(c, dtype=np.float64) for c in captions]
    if any(m.ndim != 2 or m.shape[0] == 0 or m.shape[1] != q.shape[1] for m in mats):
        raise QueryError(f"each gallery item needs a non-empty (captions, {q.shape[1]}) caption array")
    flat = normalize(np.concatenate(mats))
    starts = np.cumsum([0] + [len(m) for m in mats[:-1]])
    return np.add.reduceat(q @ flat.T, starts, axis=1) / np.array([len(m) for m in mats])


def weimocir_from_sims(s_q2i: np.ndarray, s_q2c: np.ndarray, beta: float = 0.1) -> np.ndarray:
    """WeiMoCIR final score from precomputed similarities: ``(1 - beta) s_Q2I + beta s_Q2C``."""
    a, b = np.asarray(s_q2i, dtype=np.float64), np.asarray(s_q2c, dtype=np.float64)
    if a.shape != b.shape:
        raise QueryError(f"s_q2i {a.shape} and s_q2c {b.shape} must have the same shape")
    if not 0.0 <= beta <= 1.0:
        raise QueryError(f"beta must be in [0, 1] (weight of the caption similarity), got {beta}")
    return (1.0 - beta) * a + beta * b


def weimocir(
    v: np.ndarray,
    t: np.ndarray,
    gallery: np.ndarray,
    captions: np.ndarray | Sequence[np.ndarray],
    alpha: float = 0.8,
    beta: float = 0.1,
) -> np.ndarray:
    """WeiMoCIR (Wu, Lin, Yang 2024, arXiv 2409.04918), the paper's formula -> scores (Ng,) or (n, Ng).

        q = normalize((1 - alpha) v + alpha t)
        s_Q2I(n) = cos(q, g_n);   s_Q2C(n) = (1/M_n) sum_m cos(q, c_{n,m})
        s(n) = (1 - beta) s_Q2I(n) + beta s_Q2C(n)

    ``captions``: (Ng, M, d) array or a list of (M_n, d) arrays (per-item caption counts may
    differ). Defaults alpha = 0.8, beta = 0.1 (CLIP backbones; BLIP used 0.95 / 0.2). Deviation:
    the official code builds the caption-branch query from the reference image's k-th *caption*
    embedding instead of ``v`` and averages over k = 1..3; this uses the paper's single query.
    """
    q = weighted_compose(v, t, alpha)
    q2 = np.atleast_2d(q)
    g = np.asarray(gallery, dtype=np.float64)
    if g.ndim != 2 or g.shape[1] != q2.shape[1]:
        raise QueryError(f"gallery must be (Ng, {q2.shape[1]}), got shape {g.shape}")
    if len(captions) != g.shape[0]:
        raise QueryError(f"got captions for {len(captions)} items but the gallery has {g.shape[0]}")
    s = weimocir_from_sims(q2 @ normalize(g).T, _caption_sims(q2, captions), beta)
    return s[0] if q.ndim == 1 else s


def pdv(
    f_text: np.ndarray,
    f_text_composed: np.ndarray,
    f_image: np.ndarray,
    alpha_i: float = 1.0,
    alpha_t: float = 1.0,
    beta: float = 1.0,
) -> np.ndarray:
    """Prompt Directional Vectors, PDV-F query (Tursun et al., arXiv 2502.07215).

        (all inputs L2-normalised)   delta = f_text_composed - f_text
        PDV-T = f_text + alpha_t delta;   PDV-I = f_image + alpha_i delta
        PDV-F = normalize((1 - beta) PDV-I + beta PDV-T)

    Defaults alpha_i = alpha_t = beta = 1 reduce to ``normalize(f_text_composed)``; tuned values,
    e.g. FashionIQ CIReVL ViT-B/32: beta = 0.75, alpha_i = alpha_t = 1.4. Official code is not
    released; this follows the authors' ``calculate_pdv_features`` snippet.
    """
    ft, ftc, fi = (normalize(a) for a in _same_shape(f_text=f_text, f_text_composed=f_text_composed, f_image=f_image))
    delta = ftc - ft
    pdv_t = ft + alpha_t * delta
    pdv_i = fi + alpha_i * delta
    return normalize((1.0 - beta) * pdv_i + beta * pdv_t)
