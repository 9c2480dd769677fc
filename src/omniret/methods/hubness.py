"""Hubness reduction: inverted softmax, QB-Norm (DIS), DBNorm (DualIS / DualDIS) and a hubness measure.

Notation: ``S`` (Nq, Ng) query x gallery similarities; ``bank_sims`` (Nb, Ng) similarities of a
*query bank* (e.g. training captions) to the same gallery. All functions are pure: arrays in, new
arrays out (float64), inputs never written.

Engine split (pay O(K') per query): :func:`gallery_stats` computes, once, per gallery item ``j``

    log Z_j = logsumexp_b (beta * bank_sims[b, j])            active_j = j in top-k of some bank row

and :func:`apply_qbnorm` / :func:`apply_inverted_softmax` / :func:`apply_dual_is` /
:func:`apply_dual_dis` apply them to a query's K' candidates. Updating the stats incrementally:

* new gallery items: their ``log Z`` needs only their own column ``bank_sims[:, new]``
  (a logsumexp over bank rows); the activation set needs each bank row's current top-k, kept by
  :func:`bank_topk` and merged with the new columns by :func:`merge_bank_topk`.
* new bank rows: ``log Z <- logaddexp(log Z, logsumexp(beta * new_rows, axis=0))`` and
  ``active |= topk(new_rows)`` (:func:`add_bank_rows`).
* removed gallery items: drop their entries; bank rows whose top-k held a removed item must
  recompute their top-k (the other rows and every other ``log Z`` are unaffected).
"""

from __future__ import annotations

import numpy as np

from omniret.errors import QueryError

__all__ = [
    "activation_mask",
    "add_bank_rows",
    "apply_dual_dis",
    "apply_dual_is",
    "apply_inverted_softmax",
    "apply_qbnorm",
    "bank_topk",
    "dual_dis",
    "dual_dis_log",
    "dual_is",
    "dual_is_log",
    "gallery_stats",
    "inverted_softmax",
    "inverted_softmax_log",
    "log_partition",
    "merge_bank_topk",
    "merge_chunk_topk",
    "qb_norm",
    "qb_norm_log",
    "skewness_k_occurrence",
    "smith_inverted_softmax",
]


def _matrix(name: str, a: np.ndarray) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2:
        raise QueryError(f"{name} must be a 2-D similarity matrix, got shape {arr.shape}; pass (rows, gallery)")
    return arr


def _pair(S: np.ndarray, bank_sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s, b = _matrix("S", S), _matrix("bank_sims", bank_sims)
    if s.shape[1] != b.shape[1]:
        raise QueryError(
            f"S has {s.shape[1]} gallery columns but bank_sims has {b.shape[1]}; "
            "both must be scored against the same gallery"
        )
    return s, b


def _log_z(bank_sims: np.ndarray, beta: float) -> np.ndarray:
    """``log Z_j = logsumexp_b(beta * bank[b, j])``; ``-inf`` columns when the bank is empty."""
    if bank_sims.shape[0] == 0:
        return np.full(bank_sims.shape[1], -np.inf)
    from scipy.special import logsumexp  # scipy on first use: a CLI search without hubness never loads it

    return logsumexp(beta * bank_sims, axis=0)


def _top1(rows: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
    """Index of each row's maximum. Ties (equal maxima) go to the lowest gallery index: the column index
    itself, or with ``ids`` (the gallery index of each entry, (n, m); -1 = not in the statistics) the entry
    with the lowest id, as :func:`bank_topk` breaks ties when it builds the activation set.

    One tie rule for both sides is what makes an exact duplicate work: two copies of a picture tie in
    every bank row, which activates only the lower-indexed copy; a query whose top-1 were the *other*
    copy (first in the ANN's candidate order) would never be normalised (issue 13.10).
    """
    if ids is None or rows.shape[1] == 0:
        return np.argmax(rows, axis=1)
    big = np.iinfo(np.int64).max
    key = np.where(np.asarray(ids) < 0, big - 1, np.asarray(ids, dtype=np.int64))  # unseen: after every seen one
    return np.argmin(np.where(rows == rows.max(axis=1, keepdims=True), key, big), axis=1)


def bank_topk(bank_sims: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Each bank row's top-``k`` gallery indices and scores, ``(Nb, k)`` each, best first.

    Ties go to the lowest gallery index (stable sort), as ``np.argsort(-x)`` in the official code
    ioanacroi/qb-norm ``get_retrieved_videos`` would do with a stable sort.
    """
    b = _matrix("bank_sims", bank_sims)
    if k < 1:
        raise QueryError(f"k must be >= 1 (top-k of each bank row), got {k}")
    kk = min(k, b.shape[1])
    ids = np.argsort(-b, axis=1, kind="stable")[:, :kk]
    return ids, np.take_along_axis(b, ids, axis=1)


def merge_bank_topk(
    topk_ids: np.ndarray, topk_scores: np.ndarray, new_cols: np.ndarray, first_new_id: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Merge new gallery columns ``new_cols`` (Nb, Nnew), ids ``first_new_id ..``, into each bank row's top-k.

    Tie rule matches :func:`bank_topk`: on equal scores the lower gallery id wins.
    """
    cols = _matrix("new_cols", new_cols)
    ids = np.concatenate([np.asarray(topk_ids), first_new_id + np.broadcast_to(np.arange(cols.shape[1]), cols.shape)], 1)
    scores = np.concatenate([np.asarray(topk_scores, dtype=np.float64), cols], axis=1)
    order = np.lexsort((ids, -scores), axis=1)[:, :k]
    return np.take_along_axis(ids, order, 1), np.take_along_axis(scores, order, 1)


def log_partition(bank_sims: np.ndarray, beta: float) -> np.ndarray:
    """Per gallery column ``log Z_j = logsumexp_b(beta * bank_sims[b, j])`` (the IS / QB-Norm denominator)."""
    return _log_z(_matrix("bank_sims", bank_sims), beta)


def merge_chunk_topk(
    topk_ids: np.ndarray, topk_scores: np.ndarray, chunk_sims: np.ndarray, offset: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`merge_bank_topk` for a wide chunk of gallery columns ``offset ..``: each row's chunk top-k
    is found by ``argpartition`` (O(chunk)) before the merge, so streaming a large gallery stays linear.
    Same tie rule (equal scores: lower gallery id first)."""
    sims = _matrix("chunk_sims", chunk_sims)
    kk = min(k, sims.shape[1])
    if kk == 0:
        return np.asarray(topk_ids), np.asarray(topk_scores)
    part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk] if kk < sims.shape[1] else \
        np.broadcast_to(np.arange(sims.shape[1]), sims.shape).copy()
    # a tie at the cut could leave out a lower id with the same score: widen to every column equal to the kth
    kth = np.take_along_axis(sims, part, 1).min(axis=1, keepdims=True)
    if (np.sum(sims >= kth, axis=1) > kk).any():
        return merge_bank_topk(topk_ids, topk_scores, sims, offset, k)
    ids = np.concatenate([np.asarray(topk_ids, dtype=np.int64), offset + part], axis=1)
    scores = np.concatenate([np.asarray(topk_scores, dtype=np.float64), np.take_along_axis(sims, part, 1)], axis=1)
    order = np.lexsort((ids, -scores), axis=1)[:, :k]
    return np.take_along_axis(ids, order, 1), np.take_along_axis(scores, order, 1)


def activation_mask(topk_ids: np.ndarray, n_gallery: int) -> np.ndarray:
    """Boolean (Ng,) mask of QB-Norm's activation set ``A = unique(top-k ids of all bank rows)``."""
    mask = np.zeros(n_gallery, dtype=bool)
    mask[np.asarray(topk_ids, dtype=np.int64).ravel()] = True
    return mask


def gallery_stats(bank_sims: np.ndarray, beta: float = 20.0, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per-gallery-item QB-Norm statistics from a query bank: ``(log Z (Ng,), active (Ng,) bool)``.

    ``log Z_j = logsumexp_b(beta * bank_sims[b, j])``; ``active_j`` is true when ``j`` is in the
    top-``k`` of at least one bank row (Bogolin et al., CVPR 2022, "Cross Modal Retrieval with
    Querybank Normalisation"). See the module docstring for incremental updates.
    """
    b = _matrix("bank_sims", bank_sims)
    if b.shape[0] == 0:
        return np.full(b.shape[1], -np.inf), np.zeros(b.shape[1], dtype=bool)
    ids, _ = bank_topk(b, k)
    return _log_z(b, beta), activation_mask(ids, b.shape[1])


def add_bank_rows(
    log_z: np.ndarray, active: np.ndarray, new_rows: np.ndarray, beta: float = 20.0, k: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Fold new bank rows (Nnew, Ng) into stats: ``logaddexp`` on ``log Z``, union on the activation set."""
    rows = _matrix("new_rows", new_rows)
    new_lz, new_active = gallery_stats(rows, beta, k)
    return np.logaddexp(np.asarray(log_z, dtype=np.float64), new_lz), np.asarray(active, bool) | new_active


def inverted_softmax(S: np.ndarray, bank_sims: np.ndarray, beta: float) -> np.ndarray:
    """Inverted softmax (Smith et al., ICLR 2017), exp domain as in the official QB-Norm code.

        IS(q, g_j) = exp(beta s(q, g_j)) / sum_{b in bank} exp(beta s(b, g_j))

    Overflows for ``beta * s > ~709`` (float64); use :func:`inverted_softmax_log` in an engine.
    """
    s, b = _pair(S, bank_sims)
    return np.exp(beta * s) / np.exp(beta * b).sum(axis=0)


def inverted_softmax_log(S: np.ndarray, bank_sims: np.ndarray, beta: float) -> np.ndarray:
    """Log-domain inverted softmax ``beta s(q, g_j) - logsumexp_b(beta s(b, g_j))`` (same per-row order)."""
    s, b = _pair(S, bank_sims)
    return beta * s - _log_z(b, beta)


def smith_inverted_softmax(S: np.ndarray, beta: float) -> np.ndarray:
    """Smith et al. (2017) inverted softmax: the test queries themselves are the bank.

        IS(q_i, g_j) = exp(beta S_ij) / sum_i' exp(beta S_i'j)   (computed in the log domain)
    """
    s = _matrix("S", S)
    return np.exp(beta * s - _log_z(s, beta))


def _dis_rows(s: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Rows whose top-1 gallery item (ties: lowest index) is in the activation set."""
    if s.shape[1] == 0:
        return np.zeros(s.shape[0], dtype=bool)
    return active[_top1(s)]


def qb_norm(S: np.ndarray, bank_sims: np.ndarray, beta: float = 20.0, k: int = 1) -> np.ndarray:
    """QB-Norm with Dynamic Inverted Softmax (Bogolin et al., CVPR 2022), exp domain.

    ``A`` = gallery items in the top-``k`` of some bank row. Row ``i`` becomes
    ``exp(beta S_i) / Z`` (``Z_j = sum_b exp(beta bank[b, j])``) if ``argmax_j S_ij in A``, else it
    keeps its raw similarities. Defaults beta = 20, k = 1 (official argparse). Rows are on
    different scales: rank each row on its own. Deviations from ioanacroi/qb-norm ``qb_norm``:
    the input is not modified in place (the official code aliases and writes ``test_test``); the
    argmax is taken on the raw scores with ties to the lowest index (the official code takes it on
    ``exp(beta S)``, where overflowed ``inf`` values tie). An empty bank leaves ``S`` unchanged.
    """
    s, b = _pair(S, bank_sims)
    if b.shape[0] == 0:
        return s.copy()
    _, active = gallery_stats(b, beta, k)
    rows = _dis_rows(s, active)
    out = s.copy()
    out[rows] = np.exp(beta * s[rows]) / np.exp(beta * b).sum(axis=0)
    return out


def qb_norm_log(S: np.ndarray, bank_sims: np.ndarray, beta: float = 20.0, k: int = 1) -> np.ndarray:
    """Log-domain QB-Norm: activated rows become ``beta S_i - log Z``; other rows stay raw (same ranks)."""
    s, b = _pair(S, bank_sims)
    log_z, active = gallery_stats(b, beta, k)
    return apply_qbnorm(s, np.broadcast_to(log_z, s.shape), np.broadcast_to(active, s.shape), beta)


def apply_inverted_softmax(cand_scores: np.ndarray, cand_log_z: np.ndarray, beta: float) -> np.ndarray:
    """Log-domain IS on candidate sets: ``beta * cand_scores - cand_log_z`` (all (nq, K'))."""
    return beta * _matrix("cand_scores", cand_scores) - _matrix("cand_log_z", cand_log_z)


def apply_qbnorm(
    cand_scores: np.ndarray, cand_log_z: np.ndarray, cand_active: np.ndarray, beta: float = 20.0,
    cand_ids: np.ndarray | None = None,
) -> np.ndarray:
    """Log-domain DIS on each query's K' candidates (arrays (nq, K'), stats gathered per candidate).

    A row is normalised (``beta s - log Z``) when its best candidate is active, else kept raw.
    Equals :func:`qb_norm_log` when the candidates are the whole gallery; in general it needs the
    candidate set to contain the query's true top-1 (true for any top-K' candidate generator).

    Tie rule: among candidates with the same best score, the "best candidate" is the one with the lowest
    gallery index ``cand_ids`` (the candidates' positions in the statistics, -1 = unseen), the rule the
    activation set is built with (:func:`bank_topk`), so exact duplicates are judged alike whatever order
    the ANN returns them in. Without ``cand_ids``: the first in candidate order.
    """
    s = _matrix("cand_scores", cand_scores)
    lz = _matrix("cand_log_z", cand_log_z)
    act = np.asarray(cand_active, dtype=bool)
    if s.shape != lz.shape or s.shape != act.shape:
        raise QueryError(f"candidate arrays differ in shape: scores {s.shape}, log_z {lz.shape}, active {act.shape}")
    out = s.copy()
    if s.shape[1] == 0:
        return out
    rows = act[np.arange(s.shape[0]), _top1(s, cand_ids)] & np.isfinite(lz).all(axis=1)
    out[rows] = beta * s[rows] - lz[rows]
    return out


def dual_is(
    S: np.ndarray, query_bank_sims: np.ndarray, gallery_bank_sims: np.ndarray, beta1: float = 1 / 1.99, beta2: float = 3.0
) -> np.ndarray:
    """DBNorm DualIS (Wang, Jian, Xue, EMNLP 2023, "Balance Act"), exp domain.

        DualIS(q, g_j) = exp(b1 s) / sum_{Bq} exp(b1 Sq[:, j]) * exp(b2 s) / sum_{Bg} exp(b2 Sg[:, j])

    ``query_bank_sims`` (Nbq, Ng): query-modality bank vs gallery; ``gallery_bank_sims`` (Nbg, Ng):
    gallery-modality bank vs gallery. Defaults b1 = 1/1.99, b2 = 3 (official ``db_norm``). The
    official yimuwangcs/Better_Cross_Modal_Retrieval ``db_norm`` passes the gallery-bank matrix
    where the test matrix belongs; here ``S`` is used in both factors (the intended semantics, as
    in ppanzx/DBSN).
    """
    return inverted_softmax(S, query_bank_sims, beta1) * inverted_softmax(S, gallery_bank_sims, beta2)


def dual_is_log(
    S: np.ndarray, query_bank_sims: np.ndarray, gallery_bank_sims: np.ndarray, beta1: float = 1 / 1.99, beta2: float = 3.0
) -> np.ndarray:
    """Log DualIS: ``(b1 + b2) s - logsumexp_Bq(b1 Sq[:, j]) - logsumexp_Bg(b2 Sg[:, j])``."""
    return inverted_softmax_log(S, query_bank_sims, beta1) + inverted_softmax_log(S, gallery_bank_sims, beta2)


def dual_dis(
    S: np.ndarray,
    query_bank_sims: np.ndarray,
    gallery_bank_sims: np.ndarray,
    beta1: float = 1 / 1.99,
    beta2: float = 3.0,
    k: int = 1,
) -> np.ndarray:
    """DBNorm DualDIS, faithful exp domain: ``qb_norm(S, Bq, b1, k) * qb_norm(S, Bg, b2, k)`` element-wise.

    Each factor is normalised only for rows whose top-1 is in that bank's activation set, else raw
    ``S``; a row activated by neither becomes ``S * S``, which flips the order of negative
    similarities (a defect of the method kept for reproduction; prefer :func:`dual_dis_log`).
    Inputs are not mutated (the official code mutates ``S`` inside the first call).
    """
    return qb_norm(S, query_bank_sims, beta1, k) * qb_norm(S, gallery_bank_sims, beta2, k)


def dual_dis_log(
    S: np.ndarray,
    query_bank_sims: np.ndarray,
    gallery_bank_sims: np.ndarray,
    beta1: float = 1 / 1.99,
    beta2: float = 3.0,
    k: int = 1,
) -> np.ndarray:
    """Log-domain DualDIS for an engine: ``(b1 + b2) s - [row active in Bq] log Zq - [row active in Bg] log Zg``.

    Each bank contributes ``log`` of its DIS factor when the row is activated and ``b s`` (the log
    of the unnormalised ``exp(b s)``) otherwise. Equals log DualIS on rows activated by both banks,
    and ranks like raw ``S`` on rows activated by neither (fixing the sign flip of ``S * S``).
    """
    s, bq = _pair(S, query_bank_sims)
    _, bg = _pair(S, gallery_bank_sims)
    lzq, aq = gallery_stats(bq, beta1, k)
    lzg, ag = gallery_stats(bg, beta2, k)
    shape = s.shape
    return apply_dual_dis(
        s, np.broadcast_to(lzq, shape), np.broadcast_to(aq, shape), np.broadcast_to(lzg, shape),
        np.broadcast_to(ag, shape), beta1, beta2,
    )


def apply_dual_is(
    cand_scores: np.ndarray, cand_log_zq: np.ndarray, cand_log_zg: np.ndarray, beta1: float = 1 / 1.99, beta2: float = 3.0
) -> np.ndarray:
    """Log DualIS on candidate sets (all (nq, K')): ``(b1 + b2) s - log Zq - log Zg``."""
    return apply_inverted_softmax(cand_scores, cand_log_zq, beta1) + apply_inverted_softmax(
        cand_scores, cand_log_zg, beta2
    )


def apply_dual_dis(
    cand_scores: np.ndarray,
    cand_log_zq: np.ndarray,
    cand_active_q: np.ndarray,
    cand_log_zg: np.ndarray,
    cand_active_g: np.ndarray,
    beta1: float = 1 / 1.99,
    beta2: float = 3.0,
    cand_ids: np.ndarray | None = None,
) -> np.ndarray:
    """Log DualDIS on candidate sets; see :func:`dual_dis_log` for the rule (arrays (nq, K')). Ties for the
    best candidate: the lowest gallery index ``cand_ids``, as in :func:`apply_qbnorm`."""
    s = _matrix("cand_scores", cand_scores)
    out = (beta1 + beta2) * s
    if s.shape[1] == 0:
        return out
    top = _top1(s, cand_ids)
    rows = np.arange(s.shape[0])
    for log_z, active in ((cand_log_zq, cand_active_q), (cand_log_zg, cand_active_g)):
        lz = _matrix("cand_log_z", log_z)
        hit = np.asarray(active, dtype=bool)[rows, top] & np.isfinite(lz).all(axis=1)
        out[hit] -= lz[hit]
    return out


def skewness_k_occurrence(S: np.ndarray, k: int = 10) -> float:
    """Hubness as the skewness of the k-occurrence distribution (Radovanovic et al., JMLR 2010).

        N_k(j) = #{queries i : j in top-k(S_i)},   S^{N_k} = E[(N_k - mu)^3] / sigma^3

    (population skewness, ``scipy.stats.skew(bias=True)``). 0 for a perfectly even gallery; large
    positive values mean a few hubs appear in many queries' top-k. Ties: lowest index first.
    """
    s = _matrix("S", S)
    if k < 1 or k > s.shape[1]:
        raise QueryError(f"k must be in [1, {s.shape[1]}] (the gallery size), got {k}")
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    counts = np.bincount(top.ravel(), minlength=s.shape[1]).astype(np.float64)
    if np.all(counts == counts[0]):
        return 0.0
    from scipy.stats import skew

    return float(skew(counts, bias=True))
