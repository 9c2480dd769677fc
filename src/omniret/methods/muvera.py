"""MUVERA Fixed Dimensional Encodings (Dhulipala et al., NeurIPS 2024, arXiv 2405.19504).

A multi-vector set X in R^d becomes one vector F(X) with ``<F_q(Q), F_doc(P)>`` approximating
Chamfer / MaxSim ``sum_{q in Q} max_{p in P} <q, p>``. For each repetition r:

1. SimHash: ``bits = 1[X G_r > 0]`` with Gaussian ``G_r`` (d, k_sim); the partition index folds the
   bits as in the official C++ ``AppendToGrayCode``: ``g <- (g << 1) + (b XOR (g & 1))``.
2. Inner projection: identity, or AMS ``X S_r`` with ``S_r`` (d, d_proj) holding one random +-1 per
   row (no ``1/sqrt(d_proj)`` factor, as in the C++ code; ranking is unaffected).
3. Block of partition k: query = sum of its projected points; document = their mean.
4. Documents with ``fill_empty_partitions``: an empty partition takes the projected point whose
   sign bits are nearest in Hamming distance to the partition's bits (first minimum wins); the
   partition's bits are ``k ^ (k >> 1)``, as the C++ ``GrayCodeToBinary`` (the sionic-ai/muvera-py
   port does a true Gray->binary loop there, which differs for k_sim >= 3; we follow the C++).
5. Concatenate ``[rep][partition][coord]``; optional Count-Sketch to ``final_dimension``.

Reference: google/graph-mining ``sketching/point_cloud/fixed_dimensional_encoding.cc``. Random
matrices come from numpy's PCG64 (seeded by ``seed``, repetition and purpose), so FDEs are not
bit-identical to the C++ (mt19937) ones; the ``simhash`` / ``ams`` arguments accept explicit
matrices for testing against known vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from omniret.errors import QueryError
from omniret.methods.late_interaction import maxsim

_CHUNK_POINTS = 1 << 15  # points encoded at once by document_fde_batch (bounds the float64 temporaries)

__all__ = [
    "FDEConfig",
    "document_fde",
    "document_fde_batch",
    "muvera_search",
    "partition_bits",
    "query_fde",
    "simhash_partition",
]


@dataclass(frozen=True)
class FDEConfig:
    """FDE parameters (proto defaults: R = 1, seed = 1, identity projection, no fill).

    Paper's main setting: R = 20, k_sim = 5, d_proj = 16 (10240 dims), fill on for documents only.
    ``projection_dimension=None`` means identity (d_proj = d); ``final_dimension=None`` means no
    Count-Sketch.
    """

    dimension: int
    num_simhash_projections: int
    num_repetitions: int = 1
    seed: int = 1
    projection_dimension: int | None = None
    fill_empty_partitions: bool = False
    final_dimension: int | None = None

    def __post_init__(self) -> None:
        if self.dimension < 1:
            raise QueryError(f"FDEConfig.dimension must be >= 1, got {self.dimension}")
        if not 0 <= self.num_simhash_projections <= 30:
            raise QueryError(f"num_simhash_projections must be in [0, 30], got {self.num_simhash_projections}")
        if self.num_repetitions < 1:
            raise QueryError(f"num_repetitions must be >= 1, got {self.num_repetitions}")
        for name in ("projection_dimension", "final_dimension"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise QueryError(f"FDEConfig.{name} must be a positive int or None, got {v}")

    @property
    def num_partitions(self) -> int:
        return 1 << self.num_simhash_projections

    @property
    def proj_dim(self) -> int:
        return self.dimension if self.projection_dimension is None else self.projection_dimension

    @property
    def fde_dim(self) -> int:
        """Length of an FDE before the final projection: ``R * 2^k_sim * d_proj``."""
        return self.num_repetitions * self.num_partitions * self.proj_dim


def simhash_partition(bits: np.ndarray) -> np.ndarray:
    """Partition index of each row of sign bits (n, k) via the C++ ``AppendToGrayCode`` fold."""
    b = np.asarray(bits, dtype=np.int64)
    g = np.zeros(b.shape[0], dtype=np.int64)
    for i in range(b.shape[1]):
        g = (g << 1) + (b[:, i] ^ (g & 1))
    return g


def partition_bits(index: np.ndarray | int) -> np.ndarray | int:
    """Sign-bit string (as an int, first bit most significant) of partition ``index``: ``n ^ (n >> 1)``."""
    return index ^ (index >> 1)


def _matrices(
    cfg: FDEConfig, rep: int, simhash: Sequence[np.ndarray] | None, ams: Sequence[np.ndarray] | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    d, k = cfg.dimension, cfg.num_simhash_projections
    g = None
    if k > 0:
        g = np.asarray(simhash[rep], np.float64) if simhash is not None else (
            np.random.default_rng([cfg.seed, rep, 0]).standard_normal((d, k)))
        if g.shape != (d, k):
            raise QueryError(f"simhash matrix {rep} must have shape {(d, k)}, got {g.shape}")
    s = None
    if cfg.projection_dimension is not None:
        if ams is not None:
            s = np.asarray(ams[rep], np.float64)
        else:
            rng = np.random.default_rng([cfg.seed, rep, 1])
            s = np.zeros((d, cfg.proj_dim))
            s[np.arange(d), rng.integers(0, cfg.proj_dim, d)] = rng.choice([-1.0, 1.0], d)
        if s.shape != (d, cfg.proj_dim):
            raise QueryError(f"AMS matrix {rep} must have shape {(d, cfg.proj_dim)}, got {s.shape}")
    return g, s


def _count_sketch(fdes: np.ndarray, cfg: FDEConfig) -> np.ndarray:
    if cfg.final_dimension is None:
        return fdes
    rng = np.random.default_rng([cfg.seed, 2])
    idx = rng.integers(0, cfg.final_dimension, fdes.shape[1])
    sign = rng.choice([-1.0, 1.0], fdes.shape[1])
    out = np.zeros((fdes.shape[0], cfg.final_dimension))
    np.add.at(out.T, idx, (fdes * sign).T)
    return out


def _cell_sums(cell: np.ndarray, points: np.ndarray, n_cells: int) -> np.ndarray:
    """``out[c] = sum of points[i] with cell[i] == c`` -> (n_cells, d).

    A one-hot sparse matrix product: scipy adds the rows in point order, as ``np.add.at`` would,
    and an order of magnitude faster.
    """
    n = len(cell)
    from scipy import sparse  # loaded on first use (import omniret stays light)

    onehot = sparse.csr_matrix((np.ones(n), cell, np.arange(n + 1)), shape=(n, n_cells))
    return np.asarray(onehot.T @ points)


def _first_points(cell: np.ndarray, n_cells: int) -> np.ndarray:
    """Index of the first point of every cell (``len(cell)`` for an empty cell)."""
    first = np.full(n_cells, len(cell), dtype=np.int64)
    np.minimum.at(first, cell, np.arange(len(cell), dtype=np.int64))
    return first


def _encode(
    points: np.ndarray, doc_of: np.ndarray, n_docs: int, cfg: FDEConfig, average: bool, fill: bool,
    mats: Sequence[tuple[np.ndarray | None, np.ndarray | None]],
) -> np.ndarray:
    """FDEs (before Count-Sketch) of ``n_docs`` point sets stored row-wise in ``points`` with owner ``doc_of`` (sorted).

    The AMS projection is linear, so each partition's sum (or mean) is taken over the raw points and
    projected once: ``sum_i (x_i S) = (sum_i x_i) S``; every repetition's SimHash in one BLAS product.
    """
    nb, k = cfg.num_partitions, cfg.num_simhash_projections
    out = np.empty((n_docs, cfg.num_repetitions, nb, cfg.proj_dim))
    gs = [g for g, _ in mats if g is not None]
    sketch = points @ np.hstack(gs) if gs else None
    for rep, (_, s) in enumerate(mats):
        bits = None if sketch is None else sketch[:, rep * k : (rep + 1) * k] > 0
        part = np.zeros(len(points), dtype=np.int64) if bits is None else simhash_partition(bits)
        cell = doc_of * nb + part
        sums = _cell_sums(cell, points, n_docs * nb)
        counts = np.bincount(cell, minlength=n_docs * nb) if average else None
        if counts is not None:
            sums /= np.maximum(counts, 1)[:, None]
        from scipy import sparse

        proj = None if s is None else sparse.csr_matrix(s)  # AMS: one nonzero a row; no BLAS call
        block = sums if proj is None else np.asarray(sums @ proj)
        if counts is not None and fill and bits is not None and (counts == 0).any():
            empty = np.flatnonzero(counts == 0)
            first = _first_points(cell, n_docs * nb)
            near = _nearest_points(first, bits, doc_of, n_docs, nb).reshape(-1)[empty]
            block[empty] = points[near] if proj is None else np.asarray(points[near] @ proj)
        out[:, rep] = block.reshape(n_docs, nb, -1)
    return out.reshape(n_docs, -1)


def _nearest_points(first: np.ndarray, bits: np.ndarray, doc_of: np.ndarray, n_docs: int, nb: int) -> np.ndarray:
    """(n_docs, nb) index of each document's point whose sign bits are Hamming-nearest to each partition's.

    Ties go to the first point of the document (C++ ``fill_empty_partitions``). Works per occupied
    partition when documents have more points than partitions, else per point; both give the same.
    """
    if n_docs * nb <= len(bits):
        return _nearest_by_cell(first, len(bits), n_docs, nb)
    return _nearest_by_point(bits, np.searchsorted(doc_of, np.arange(n_docs)), nb)


def _nearest_by_cell(first: np.ndarray, n: int, n_docs: int, nb: int) -> np.ndarray:
    """Nearest point via occupied partitions: the first point of a partition stands for all its points.

    ``first`` (n_docs * nb,) is each cell's first point (``n`` when empty);
    ``key[doc, c, p] = hamming(bits(c), bits(p)) * (n + 1) + first[doc, p]``, min over occupied p.
    """
    first_at = first.reshape(n_docs, 1, nb)
    codes = np.asarray(partition_bits(np.arange(nb, dtype=np.int64)))
    ham = np.bitwise_count(codes[:, None] ^ codes[None, :]).astype(np.int64)  # (c, p)
    key = np.where(first_at < n, ham[None] * (n + 1) + first_at, np.iinfo(np.int64).max)
    return key.min(axis=2) % (n + 1)


def _nearest_by_point(bits: np.ndarray, starts: np.ndarray, nb: int) -> np.ndarray:
    """Reference nearest point: Hamming distance of every point to every partition, min per document."""
    n, k = bits.shape
    codes = np.asarray(partition_bits(np.arange(nb, dtype=np.int64)))
    point_codes = bits.astype(np.int64) @ (np.int64(1) << np.arange(k - 1, -1, -1, dtype=np.int64))
    ham = np.bitwise_count(point_codes[:, None] ^ codes[None, :]).astype(np.int64)
    # min over (hamming, point index) in one pass: smallest distance, first point on ties
    return np.minimum.reduceat(ham * n + np.arange(n, dtype=np.int64)[:, None], starts, axis=0) % n


def _shape(name: str, X: np.ndarray, cfg: FDEConfig) -> tuple[int, ...]:
    shape = np.shape(X)
    if len(shape) != 2 or shape[0] == 0 or shape[1] != cfg.dimension:
        raise QueryError(f"{name} must be a non-empty (points, {cfg.dimension}) array, got shape {shape}")
    return shape


def _points(name: str, X: np.ndarray, cfg: FDEConfig) -> np.ndarray:
    _shape(name, X, cfg)
    return np.asarray(X, dtype=np.float64)


def query_fde(
    Q: np.ndarray, cfg: FDEConfig, simhash: Sequence[np.ndarray] | None = None, ams: Sequence[np.ndarray] | None = None
) -> np.ndarray:
    """Query FDE (sum per partition) of ``Q`` (Lq, d) -> (fde_dim or final_dimension,)."""
    if cfg.fill_empty_partitions:
        raise QueryError("query FDEs do not support fill_empty_partitions; use a config without it for queries")
    q = _points("Q", Q, cfg)
    mats = [_matrices(cfg, rep, simhash, ams) for rep in range(cfg.num_repetitions)]
    return _count_sketch(_encode(q, np.zeros(len(q), np.int64), 1, cfg, False, False, mats), cfg)[0]


def document_fde(
    P: np.ndarray, cfg: FDEConfig, simhash: Sequence[np.ndarray] | None = None, ams: Sequence[np.ndarray] | None = None
) -> np.ndarray:
    """Document FDE (mean per partition, optional fill) of ``P`` (Ld, d) -> (fde_dim or final_dimension,)."""
    return document_fde_batch([P], cfg, simhash, ams)[0]


def document_fde_batch(
    docs: Sequence[np.ndarray], cfg: FDEConfig, simhash: Sequence[np.ndarray] | None = None,
    ams: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """Document FDEs of many point sets at once -> (N, fde_dim or final_dimension); same as one by one."""
    if len(docs) == 0:
        raise QueryError("no documents to encode; pass at least one (points, dim) array")
    sizes = np.array([_shape(f"document {i}", d, cfg)[0] for i, d in enumerate(docs)])
    mats = [_matrices(cfg, rep, simhash, ams) for rep in range(cfg.num_repetitions)]
    out = np.empty((len(docs), cfg.fde_dim))
    start = 0
    while start < len(docs):  # chunks of about _CHUNK_POINTS points bound the float64 temporaries
        stop = max(start + 1, int(np.searchsorted(np.cumsum(sizes[start:]), _CHUNK_POINTS, side="right")) + start)
        points = np.concatenate([np.asarray(d, dtype=np.float64) for d in docs[start:stop]])
        doc_of = np.repeat(np.arange(stop - start), sizes[start:stop])
        out[start:stop] = _encode(points, doc_of, stop - start, cfg, True, cfg.fill_empty_partitions, mats)
        start = stop
    return _count_sketch(out, cfg)


def muvera_search(
    Q: np.ndarray, doc_fdes: np.ndarray, docs: Sequence[np.ndarray], cfg: FDEConfig, k: int = 10,
    candidates: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` documents for ``Q``: exact MIPS over document FDEs for ``candidates``, then MaxSim re-rank.

    ``cfg`` is the document config; the query FDE uses it with ``fill_empty_partitions=False``.
    Returns ``(doc indices, MaxSim scores)`` best first; ties go to the lower index.
    """
    fdes = np.asarray(doc_fdes, dtype=np.float64)
    if fdes.ndim != 2 or fdes.shape[0] != len(docs):
        raise QueryError(f"doc_fdes must be (N, dim) with N = len(docs) = {len(docs)}, got shape {fdes.shape}")
    if k < 1 or candidates < 1:
        raise QueryError(f"k and candidates must be >= 1, got k={k}, candidates={candidates}")
    qcfg = FDEConfig(**{**cfg.__dict__, "fill_empty_partitions": False})
    approx = fdes @ query_fde(Q, qcfg)
    cand = np.lexsort((np.arange(len(approx)), -approx))[: min(candidates, len(approx))]
    exact = maxsim(Q, [docs[i] for i in cand])
    order = np.lexsort((cand, -exact))[:k]
    return cand[order], exact[order]
