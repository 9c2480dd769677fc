"""Late interaction (ColBERT / ColPali MaxSim) and video frame pooling (CLIP4Clip meanP).

MaxSim (Khattab & Zaharia, SIGIR 2020, ColBERT; Faysse et al. 2024, ColPali):

    score(Q, D) = sum_{i=1..|Q|} max_{j=1..|D|} <q_i, d_j>

Documents of different lengths are padded and the padded positions masked with ``-inf`` before
the max (ColBERT uses -9999; ColPali pads with 0, which lets a padding row win the max when all
real similarities of a query token are negative; this module does not). Scores are not length
normalised: compare them only within one query.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from omniret.errors import QueryError

__all__ = [
    "maxsim",
    "maxsim_batch",
    "maxsim_naive",
    "mean_pool_frames",
    "pad_documents",
    "uniform_frame_indices",
]


def _tokens(name: str, a: np.ndarray, dim: int | None = None, dtype: type | None = np.float64) -> np.ndarray:
    """``a`` as a checked (tokens, dim) array; ``dtype=None`` keeps its dtype (no copy of an array)."""
    arr: np.ndarray = np.asarray(a, dtype=dtype)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise QueryError(f"{name} must be a non-empty (tokens, dim) array, got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise QueryError(f"{name} has dim {arr.shape[1]} but the query has dim {dim}; embed both in one space")
    return arr


def pad_documents(docs: Sequence[np.ndarray], dtype: type = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Stack ragged token matrices into ``(N, Lmax, d)`` zeros-padded plus a ``(N, Lmax)`` bool mask."""
    if len(docs) == 0:
        raise QueryError("no documents to pad; pass at least one (tokens, dim) array")
    mats = [_tokens(f"document {i}", d, dtype=None) for i, d in enumerate(docs)]  # converted once, below
    dim = mats[0].shape[1]
    for i, m in enumerate(mats):
        _tokens(f"document {i}", m, dim, dtype=None)
    lmax = max(m.shape[0] for m in mats)
    padded = np.zeros((len(mats), lmax, dim), dtype=dtype)
    mask = np.zeros((len(mats), lmax), dtype=bool)
    for i, m in enumerate(mats):
        padded[i, : m.shape[0]] = m
        mask[i, : m.shape[0]] = True
    return padded, mask


def maxsim(Q: np.ndarray, docs: Sequence[np.ndarray], chunk: int = 256) -> np.ndarray:
    """MaxSim of one query ``Q`` (Lq, d) against each document in ``docs`` -> (N,) float64.

    Vectorised over padded chunks of ``chunk`` documents; padded positions are ``-inf``. Computes
    in float32 when the query is float32 and the first document float32 or float16 (as stored:
    float16 values are exact in float32, so converting them while padding changes no score), else
    float64. One BLAS product ``(n * L, d) @ (d, Lq)`` per chunk.
    """
    doc0 = np.asarray(docs[0]).dtype if len(docs) > 0 else None
    f32 = np.asarray(Q).dtype == np.float32 and doc0 in (np.dtype(np.float32), np.dtype(np.float16))
    dtype = np.float32 if f32 else np.float64
    q = _tokens("Q", Q, dtype=dtype)
    out = np.empty(len(docs))
    for start in range(0, len(docs), chunk):
        padded, mask = pad_documents(docs[start : start + chunk], dtype=dtype)
        n, length, dim = padded.shape
        if dim != q.shape[1]:
            raise QueryError(f"documents have dim {dim} but the query has dim {q.shape[1]}")
        sims = (padded.reshape(n * length, dim) @ q.T).reshape(n, length, -1)
        if not mask.all():
            sims[~mask] = -np.inf
        out[start : start + n] = sims.max(axis=1).sum(axis=1)
    return out


def maxsim_batch(queries: Sequence[np.ndarray], docs: Sequence[np.ndarray], chunk: int = 256) -> np.ndarray:
    """MaxSim of every query against every document -> (nq, N) float64."""
    return np.stack([maxsim(q, docs, chunk) for q in queries]) if queries else np.zeros((0, len(docs)))


def maxsim_naive(Q: np.ndarray, D: np.ndarray) -> float:
    """Reference MaxSim of one query and one document with plain loops (for tests)."""
    q, d = _tokens("Q", Q), _tokens("D", D)
    return float(sum(max(float(qi @ dj) for dj in d) for qi in q))


def uniform_frame_indices(n_frames: int, max_frames: int, mode: int = 2) -> np.ndarray:
    """CLIP4Clip ``slice_framepos`` frame choice when a video has more than ``max_frames`` frames.

    mode 0 = first ``max_frames``, 1 = last ``max_frames``, 2 = uniform
    ``np.linspace(0, n - 1, num=max_frames, dtype=int)`` (ArrowLuo/CLIP4Clip
    ``dataloader_msrvtt_retrieval.py``). With ``n <= max_frames`` all frames are kept.
    """
    if n_frames < 0 or max_frames < 1:
        raise QueryError(f"need n_frames >= 0 and max_frames >= 1, got {n_frames}, {max_frames}")
    if n_frames <= max_frames:
        return np.arange(n_frames)
    if mode == 0:
        return np.arange(max_frames)
    if mode == 1:
        return np.arange(n_frames - max_frames, n_frames)
    if mode == 2:
        return np.linspace(0, n_frames - 1, num=max_frames, dtype=int)
    raise QueryError(f"unknown slice_framepos mode {mode}; choose 0 (head), 1 (tail) or 2 (uniform)")


def mean_pool_frames(frames: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """CLIP4Clip meanP video embedding (Luo et al. 2022, ``_mean_pooling_for_similarity_visual``).

        f_t <- f_t / ||f_t||;   v = sum_t m_t f_t / max(sum_t m_t, 1);   v <- v / ||v||

    ``frames`` (T, d), optional ``mask`` (T,) of valid frames. A zero vector is returned as is.
    """
    f = _tokens("frames", frames)
    m = np.ones(f.shape[0]) if mask is None else np.asarray(mask, dtype=np.float64)
    if m.shape != (f.shape[0],):
        raise QueryError(f"mask must have shape ({f.shape[0]},) to match the frames, got {m.shape}")
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    f = f / np.where(norms > 0, norms, 1.0)
    v = (m[:, None] * f).sum(axis=0) / max(float(m.sum()), 1.0)
    n = np.linalg.norm(v)
    return v / n if n > 0 else v
