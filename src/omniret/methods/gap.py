"""Modality gap: the "Mind the Gap" vector and shift, mean-centring, and cross-modality score calibration.

Embeddings are rows (n, d), assumed L2-normalised unless stated. Running statistics are kept as
sums plus a count so that adding items is O(new items): ``(sum, count)`` for means and
``(sum, outer_sum, count)`` for means and covariances; merge two states by adding them.
"""

from __future__ import annotations

import numpy as np

from omniret.errors import QueryError

__all__ = [
    "center",
    "center_scores",
    "gap_distance",
    "gap_shift",
    "gap_vector",
    "moments",
    "moments_mean_cov",
    "moments_update",
    "running_mean",
    "running_sum_update",
    "tnorm_scores",
    "zscore_by_modality",
]

_EPS = 1e-12


def _rows(name: str, a: np.ndarray) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2:
        raise QueryError(f"{name} must be a 2-D (n, d) array of embeddings, got shape {arr.shape}")
    return arr


def _normalize(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def gap_vector(image_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """Modality gap vector (Liang et al., NeurIPS 2022, "Mind the Gap"): ``mean(image) - mean(text)``."""
    img, txt = _rows("image_emb", image_emb), _rows("text_emb", text_emb)
    if img.shape[0] == 0 or txt.shape[0] == 0 or img.shape[1] != txt.shape[1]:
        raise QueryError(f"need non-empty image and text embeddings of one dim, got {img.shape} and {txt.shape}")
    return img.mean(axis=0) - txt.mean(axis=0)


def gap_distance(a_emb: np.ndarray, b_emb: np.ndarray) -> float:
    """Gap distance ``||mean(a) - mean(b)||`` (CLIP ~0.82 per the Modality-Gap README)."""
    return float(np.linalg.norm(gap_vector(a_emb, b_emb)))


def gap_shift(
    text_emb: np.ndarray, image_emb: np.ndarray, delta: np.ndarray, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """Shift both modalities along the gap (Weixin-Liang/Modality-Gap ``move_features``).

        d = delta / ||delta||;  text' = normalize(text + lam/2 d);  image' = normalize(image - lam/2 d)

    With ``delta = mean(image) - mean(text)``, ``lam > 0`` moves the modalities toward each other.
    An analysis tool: the paper finds the effect on zero-shot accuracy can go either way.
    """
    d = np.asarray(delta, dtype=np.float64)
    norm = np.linalg.norm(d)
    if d.ndim != 1 or norm == 0:
        raise QueryError("delta must be a non-zero (d,) gap vector; compute it with gap_vector")
    u = d / norm
    return _normalize(_rows("text_emb", text_emb) + 0.5 * lam * u), _normalize(_rows("image_emb", image_emb) - 0.5 * lam * u)


def center(emb: np.ndarray, mean: np.ndarray, renormalize: bool = True) -> np.ndarray:
    """Per-modality mean-centring ``x - mu_m`` (then L2-normalise unless ``renormalize=False``).

    Centring only the gallery without re-normalising shifts every score of a query by ``q . mu``
    and leaves its ranking unchanged; centring the query, or re-normalising, changes rankings.
    """
    x = np.asarray(emb, dtype=np.float64)
    out = x - np.asarray(mean, dtype=np.float64)
    return _normalize(out) if renormalize else out


def center_scores(
    scores: np.ndarray, query: np.ndarray, query_mod: int, cand_mod: np.ndarray, cand_dots: np.ndarray,
    means: np.ndarray,
) -> np.ndarray:
    """Cosine after per-modality mean-centring, from raw scores and precomputed dots (no vectors).

        cos(q - mu_a, g - mu_b) = (s - q.mu_b - g.mu_a + mu_a.mu_b) / (|q - mu_a| |g - mu_b|)
        |g - mu_b|^2 = 1 - 2 g.mu_b + |mu_b|^2          (g unit-norm)

    ``scores`` (K',) raw ``q.g``; ``cand_dots`` (K', M) each candidate's dot with every modality
    mean; ``query_mod`` / ``cand_mod`` modality codes (rows of ``means`` (M, d)). Equals
    ``center(q, mu_a) . center(g, mu_b)`` for unit ``g`` (the test checks it).
    """
    mu = np.asarray(means, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    mods = np.asarray(cand_mod, dtype=np.int64)
    dots = np.asarray(cand_dots, dtype=np.float64)
    rows = np.arange(len(mods))
    mu_a = mu[query_mod]
    # per-modality scalars first (M of them), then gathered per candidate: no (K', d) gather
    q_mu, mu_mu_a, mu_sq = mu @ q, mu @ mu_a, (mu**2).sum(axis=1)
    num = np.asarray(scores, dtype=np.float64) - q_mu[mods] - dots[:, query_mod] + mu_mu_a[mods]
    g_norm2 = 1.0 - 2.0 * dots[rows, mods] + mu_sq[mods]
    q_norm = np.linalg.norm(q - mu_a)
    return num / np.maximum(q_norm * np.sqrt(np.maximum(g_norm2, 0.0)), _EPS)


def running_sum_update(total: np.ndarray, count: int, new: np.ndarray) -> tuple[np.ndarray, int]:
    """Fold new rows into a running ``(sum (d,), count)``; the mean is ``sum / count``."""
    rows = _rows("new", new)
    return np.asarray(total, dtype=np.float64) + rows.sum(axis=0), int(count) + rows.shape[0]


def running_mean(total: np.ndarray, count: int) -> np.ndarray:
    """Mean from a running ``(sum, count)``."""
    if count <= 0:
        raise QueryError("the running mean has no items yet; add embeddings of this modality first")
    return np.asarray(total, dtype=np.float64) / count


def moments(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Sufficient statistics ``(sum x (d,), sum x x^T (d, d), n)`` of one modality's embeddings."""
    x = _rows("emb", emb)
    return x.sum(axis=0), x.T @ x, x.shape[0]


def moments_update(
    state: tuple[np.ndarray, np.ndarray, int], new: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """Add new rows to a ``moments`` state (removing rows = subtracting their moments)."""
    s, o, n = moments(new)
    return state[0] + s, state[1] + o, state[2] + n


def moments_mean_cov(state: tuple[np.ndarray, np.ndarray, int]) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and population covariance (d, d) from a ``moments`` state."""
    total, outer, n = state
    if n <= 0:
        raise QueryError("no embeddings in this modality's statistics; add some before calibrating")
    mu = total / n
    return mu, outer / n - np.outer(mu, mu)


def tnorm_scores(
    queries: np.ndarray, cand_scores: np.ndarray, cand_modality: np.ndarray, means: np.ndarray, covs: np.ndarray
) -> np.ndarray:
    """Calibrate mixed-modality candidate scores by per-query, per-modality T-norm.

        z(q, g) = (s(q, g) - q . mu_m) / sqrt(q^T Sigma_m q),   m = modality of g

    T-norm (Auckenthaler, Carey, Lloyd-Thomas, Digital Signal Processing 10, 2000) normalises a
    test score by the mean and std of the *same query's* scores against a cohort. Taking the
    cohort to be every item of modality m, these are exact closed forms of that modality's mean
    ``mu_m`` and covariance ``Sigma_m`` (see :func:`moments`), so no cohort is scored at query
    time and the stats update incrementally. A score then says how far an item stands out from
    the query's typical similarity to its modality, which removes the per-modality offset that
    the modality gap puts on raw cosines (e.g. text->text sims far above text->image sims).

    Shapes: queries (nq, d), cand_scores / cand_modality (nq, K'), means (M, d), covs (M, d, d).
    """
    q = _rows("queries", queries)
    s = _rows("cand_scores", cand_scores)
    mod = np.asarray(cand_modality, dtype=np.int64)
    mu, cov = np.asarray(means, dtype=np.float64), np.asarray(covs)  # covs keep their dtype (no copy)
    if mod.shape != s.shape or s.shape[0] != q.shape[0]:
        raise QueryError(f"cand_scores {s.shape}, cand_modality {mod.shape} and queries {q.shape} do not match")
    if mu.ndim != 2 or cov.shape != (mu.shape[0], q.shape[1], q.shape[1]) or mu.shape[1] != q.shape[1]:
        raise QueryError(f"means must be (M, {q.shape[1]}) and covs (M, {q.shape[1]}, {q.shape[1]})")
    if mod.size and (mod.min() < 0 or mod.max() >= mu.shape[0]):
        raise QueryError(f"cand_modality codes must be in [0, {mu.shape[0]}) (one per statistics row)")
    loc = q @ mu.T
    # q^T Sigma_m q for the modalities present among the candidates only (each Sigma_m is d x d: reading
    # them all dominates the cost), one 2-D BLAS product each (a broadcast 3-D matmul is far slower)
    var = np.ones((q.shape[0], mu.shape[0]))
    present = np.unique(mod) if mod.size else np.zeros(0, dtype=np.int64)
    for m in present:  # a view per modality: no copy of the d x d matrices
        qt = q.T.astype(cov.dtype, copy=False)
        var[:, m] = ((cov[m] @ qt) * qt).sum(axis=0)
    rows = np.arange(q.shape[0])[:, None]
    return (s - loc[rows, mod]) / np.sqrt(np.maximum(var[rows, mod], _EPS))


def zscore_by_modality(
    cand_scores: np.ndarray, cand_modality: np.ndarray, mu: np.ndarray, sigma: np.ndarray
) -> np.ndarray:
    """Query-independent variant: ``(s - mu_m) / sigma_m`` with scalar per-modality stats.

    ``mu_m``, ``sigma_m``: mean and std of a query bank's similarities to modality m (Z-norm,
    Li & Porter 1988); cheaper than :func:`tnorm_scores` but blind to the query.
    """
    s = np.asarray(cand_scores, dtype=np.float64)
    mod = np.asarray(cand_modality, dtype=np.int64)
    m, sd = np.asarray(mu, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
    if mod.shape != s.shape or m.shape != sd.shape or m.ndim != 1:
        raise QueryError(f"cand_modality {mod.shape} must match cand_scores {s.shape}; mu, sigma must be (M,)")
    if mod.size and (mod.min() < 0 or mod.max() >= m.shape[0]):
        raise QueryError(f"cand_modality codes must be in [0, {m.shape[0]})")
    return (s - m[mod]) / np.maximum(sd[mod], _EPS)


def cohort_tnorm(scores: np.ndarray, cohort: np.ndarray) -> np.ndarray:
    """T-norm a space's scores by the same query's scores against a cohort of that space's items.

        z(q, g) = (s(q, g) - mean_c s(q, c)) / std_c s(q, c)

    T-norm (Auckenthaler, Carey, Lloyd-Thomas, Digital Signal Processing 10, 2000). For the
    single-vector spaces :func:`omniret.methods.gap.tnorm_scores` computes the mean and std in
    closed form from each modality's moments; a multi-vector space (MaxSim page scores, which
    are sums over query tokens and not linear in a query vector) uses an explicit cohort of
    stored items instead. A cohort of fewer than two items, or with zero spread, only centres.
    """
    s = np.asarray(scores, dtype=np.float64)
    c = np.asarray(cohort, dtype=np.float64)
    if c.ndim != 1 or not np.isfinite(c).all():
        raise QueryError(f"cohort must be a 1-D array of finite scores, got shape {c.shape}")
    if c.size == 0:
        return s.copy()
    sd = float(c.std()) if c.size > 1 else 0.0
    return (s - float(c.mean())) / (sd if sd > 1e-12 else 1.0)
