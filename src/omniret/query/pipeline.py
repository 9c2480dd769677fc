"""The search pipeline: query terms → query vector → candidates → ranking stages → scored ids.

Stages, each a pure function from :mod:`omniret.methods` applied to the ANN candidate set
(top-K', default ``max(100, 10·k)`` when a stage re-scores candidates; ``k`` per modality for
``gap=calibrate`` alone, see :meth:`StageOptions.depth`), so a search costs one ANN call (one per
modality present when calibrating a mixed index) plus O(K') work:

1. **query**: one or more weighted terms (texts, images, stored items); a reference image plus a
   text is a *composed* query (``sum``, ``weimo`` = WeiMoCIR, ``pdv`` = PDV-F);
2. **candidates**: the store's ANN search (per modality when calibrating a mixed index);
3. **weimo caption branch**: ``(1−β)·s_Q2I + β·s_Q2C`` for candidates that have captions;
4. **gap**: ``center`` (per-modality mean-centring + re-normalising of query and candidates) or
   ``calibrate`` (per-query, per-modality T-norm, so modalities interleave fairly);
5. **hubness**: ``is``, ``qbnorm`` (dynamic inverted softmax), ``dbnorm`` (DualIS), ``dualdis``,
   all log-domain, from statistics precomputed per gallery item (:mod:`omniret.query.stats`);
6. **hybrid**: BM25 (SQLite FTS5) fused with the dense ranking by RRF (k = 60) or weighted
   min-max / z-score sums.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omniret.errors import QueryError
from omniret.items import Modality
from omniret.methods import composed as comp
from omniret.methods import fusion
from omniret.methods import gap as gapm
from omniret.query.names import COMPOSE, GAP, HUBNESS, HYBRID
from omniret.query.stats import DB_BETA1, DB_BETA2, MOD_CODE, MODALITIES, QB_BETA, SpaceStats
from omniret.store.base import Filter, IdRow, Store

#: WeiMoCIR's CLIP-backbone defaults (Wu et al. 2024); PDV's FashionIQ CIReVL ViT-B/32 values
WEIMO_ALPHA, WEIMO_BETA = 0.8, 0.1
PDV_ALPHA, PDV_BETA = 1.4, 0.75
NEGATIVE_WEIGHT = 0.5


@dataclass(frozen=True)
class Term:
    """One query term: a text, an image (path or PIL image) or a stored item id, with a weight."""

    kind: str  # "text" | "image" | "item"
    value: Any
    weight: float = 1.0


@dataclass(frozen=True)
class StageOptions:
    k: int = 10
    where: Filter | None = None
    rollup: bool = False
    hubness: str = "none"
    gap: str = "none"
    compose: str = "sum"
    alpha: float | None = None
    beta: float | None = None
    hybrid: str = "none"
    candidates: int | None = None
    exclude: frozenset[str] = field(default_factory=frozenset)

    def validate(self) -> None:
        for name, value, choices in (("hubness", self.hubness, HUBNESS), ("gap", self.gap, GAP),
                                     ("compose", self.compose, COMPOSE), ("hybrid", self.hybrid, HYBRID)):
            if value not in choices:
                raise QueryError(f"unknown {name} method {value!r}; choose from {', '.join(choices)}")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise QueryError(f"k must be a positive integer, got {self.k!r}")
        c = self.candidates
        if c is not None and (isinstance(c, bool) or not isinstance(c, int) or c < 1):
            raise QueryError(f"candidates must be a positive integer, got {c!r}")
        if self.hubness != "none" and self.gap != "none":
            raise QueryError("hubness and gap corrections are exclusive (the hubness statistics are computed "
                             "on uncorrected scores); pick one of them")

    def depth(self) -> int:
        """K': how many ANN candidates the stages see (per modality when calibrating a mixed index).

        ``max(100, 10·k)`` when a stage re-scores candidates in an order of its own; ``k`` when no
        stage runs, and for ``gap=calibrate`` alone: T-norm is a strictly increasing map within a
        modality, so the top k after it are the best of each modality's own top k, and a deeper list
        would change nothing (it only cost time: an ANN search per modality present).
        """
        staged = self.hubness != "none" or self.gap != "none" or self.hybrid != "none" or self.compose == "weimo"
        monotone = self.gap == "calibrate" and self.hubness == "none" and self.hybrid == "none" \
            and self.compose != "weimo"
        base = self.candidates or (max(100, 10 * self.k) if staged and not monotone else self.k)
        return base * (4 if self.rollup else 1) + len(self.exclude)


@dataclass
class Query:
    """The embedded query: its vector, the modality that dominates it, and what stages need."""

    vector: np.ndarray
    modality: Modality
    text: str | None = None  # for the lexical run and WeiMoCIR's caption branch


_TOKEN = re.compile(r'\s*([+-]?)(?:(\d+(?:\.\d+)?)\*)?(?:"([^"]*)"|(\S+))')


def parse_expression(expr: str, is_file: Callable[[str], bool]) -> list[Term]:
    """Parse query algebra: ``"beach" -"people" +photo.jpg 2*"sunset" @ITEMID``.

    Each term: an optional sign (``-`` subtracts with weight 0.5 unless a weight is given), an
    optional ``W*`` weight, then a "quoted text", an image path (``is_file`` says which bare words
    are files), ``@id`` for a stored item, or a bare word (text). Adjacent bare words form one text.
    """
    terms: list[Term] = []
    pos = 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            raise QueryError(f"cannot parse the query expression at {expr[pos:]!r}")
        pos = m.end()
        sign, weight, quoted, bare = m.groups()
        w = float(weight) if weight else (NEGATIVE_WEIGHT if sign == "-" else 1.0)
        w = -w if sign == "-" else w
        if quoted is not None:
            terms.append(Term("text", quoted, w))
        elif bare.startswith("@") and len(bare) > 1:
            terms.append(Term("item", bare[1:], w))
        elif is_file(bare):
            terms.append(Term("image", bare, w))
        elif terms and not sign and not weight and terms[-1].kind == "text" and terms[-1].weight == 1.0 \
                and not expr[m.start():m.end()].lstrip().startswith('"'):
            terms[-1] = Term("text", f"{terms[-1].value} {bare}", 1.0)
        else:
            terms.append(Term("text", bare, w))
    if not any(t.weight > 0 for t in terms):
        raise QueryError(f"the query expression {expr!r} has no positive term")
    return terms


def combine_terms(vectors: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Query algebra: ``normalize(Σ w_i v_i)`` (negative weights subtract a concept)."""
    acc = np.zeros_like(np.asarray(vectors[0], dtype=np.float64))
    for v, w in zip(vectors, weights, strict=True):
        acc += w * np.asarray(v, dtype=np.float64)
    if not np.linalg.norm(acc) > 1e-9:
        raise QueryError("the query terms cancel out (their weighted sum is zero); change the weights")
    return comp.normalize(acc).astype(np.float32)


def compose_query(method: str, v: np.ndarray, t: np.ndarray, alpha: float | None, beta: float | None,
                  caption_pair: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Reference image ``v`` + modification text ``t`` → one query vector.

    ``pdv`` needs text embeddings of the reference's caption without and with the modification
    (``caption_pair``); without a caption the prompt direction is taken as ``t`` itself
    (Δ = t), the paper's "empty prompt" fallback in spirit.
    """
    if method == "sum":
        return comp.sum_compose(v, t).astype(np.float32)
    if method == "weimo":
        return comp.weighted_compose(comp.normalize(v), comp.normalize(t), WEIMO_ALPHA if alpha is None else alpha
                                     ).astype(np.float32)
    a = PDV_ALPHA if alpha is None else alpha
    b = PDV_BETA if beta is None else beta
    if caption_pair is None:  # f_text = 0, so Δ = t: PDV-F = normalize((1-β)(v + a·t) + β·a·t)
        vn, tn = comp.normalize(v), comp.normalize(t)
        return comp.normalize((1 - b) * (vn + a * tn) + b * a * tn).astype(np.float32)
    return comp.pdv(caption_pair[0], caption_pair[1], v, a, a, b).astype(np.float32)


def candidates(store: Store, stats: SpaceStats | None, space: str, q: np.ndarray, opts: StageOptions
               ) -> tuple[Sequence[str], np.ndarray, np.ndarray | None]:
    """ANN candidates ``(ids, scores, vector keys or None)``; per modality when calibrating so each
    modality is represented. Keys (see :meth:`Store.search_keyed`) are asked for only when a stage
    will look the candidates up in the statistics."""
    depth = opts.depth()
    where = opts.where
    mods: list[Modality | None] = [None]
    if opts.gap == "calibrate" and stats is not None and stats.only_modality() is None and (
            where is None or where.modalities is None or len(where.modalities) > 1):
        present = [m for m, n in zip(MODALITIES, stats.counts(), strict=True) if n
                   and (where is None or where.modalities is None or m in where.modalities)]
        # one search per modality only when several are present (a modality filter costs a SQL pass)
        mods = list(present) if len(present) > 1 else [None]
    keyed = stats is not None and (opts.gap != "none" or opts.hubness != "none")
    ids: list[str] = []
    scores: list[np.ndarray] = []
    keys: list[np.ndarray] | None = []
    for m in mods:
        w = where if m is None else _with_modality(where, m)
        if keyed:
            s, i, kk = store.search_keyed(space, q[None, :], depth, w)
        else:
            (s, i), kk = store.search(space, q[None, :], depth, w), None
        row: Sequence[str | None] = i[0] if isinstance(i[0], IdRow) else i[0].tolist()  # IdRow: ids read lazily
        sc, kr = np.asarray(s[0], dtype=np.float64), None if kk is None else kk[0]
        if opts.exclude or (row.padded() if isinstance(row, IdRow) else None in row):  # padding, excluded out
            listed = list(row)
            keep = [n for n, doc in enumerate(listed) if doc is not None and doc not in opts.exclude]
            row, sc, kr = [listed[n] for n in keep], sc[keep], None if kr is None else kr[keep]
        if len(mods) == 1:
            return row, sc, kr  # type: ignore[return-value]  # (None slots were dropped above)
        ids.extend(row)  # type: ignore[arg-type]
        scores.append(sc)
        keys = None if keys is None or kr is None else [*keys, kr]
    out_keys = np.concatenate(keys) if keys else None
    return ids, (np.concatenate(scores) if scores else np.zeros(0)), out_keys


def _with_modality(where: Filter | None, m: Modality) -> Filter:
    base = where or Filter()
    return Filter(frozenset({m}), base.path_glob, base.mtime_min, base.mtime_max, base.metadata,
                  base.parent_id, base.ids)


def rerank(store: Store, stats: SpaceStats | None, space: str, query: Query, ids: Sequence[str],
           scores: np.ndarray, opts: StageOptions,
           caption_sims: Callable[[list[str]], np.ndarray | None] | None = None,
           keys: np.ndarray | None = None) -> tuple[Sequence[str], np.ndarray]:
    """Apply the stages of ``opts`` to the candidates; returns them re-sorted (best first). ``keys``:
    the candidates' vector keys from :func:`candidates` (faster statistics lookups), or None.
    Refresh ``stats`` to at least the commit the candidates were searched at (a candidate newer than
    the statistics keeps its raw score)."""
    if not ids:
        return ids, scores
    s = scores  # the stages below return new arrays; WeiMoCIR's branch writes into a copy
    if opts.compose == "weimo" and caption_sims is not None:
        s_q2c = caption_sims(list(ids))
        if s_q2c is not None:
            beta = WEIMO_BETA if opts.beta is None else opts.beta
            have = ~np.isnan(s_q2c)
            s = s.copy()
            s[have] = comp.weimocir_from_sims(s[have], s_q2c[have], beta)
    if opts.gap != "none" or opts.hubness != "none":
        if stats is None:
            raise QueryError("this index has no statistics for its space yet; add items first")
        rows = stats.rows_for(ids, keys)
        if opts.gap == "center":
            s = _center(stats, query, rows, s)
        elif opts.gap == "calibrate":
            s = _calibrate(stats, query, rows, s)
        if opts.hubness != "none":
            s = _hubness(stats, rows, s, opts.hubness)
    if opts.hybrid != "none":
        return _hybrid(store, query, ids, s, opts)
    order, ranked = _rank(ids, s)
    if isinstance(ids, IdRow):
        return ids.take(order), ranked  # type: ignore[return-value]  # still lazy: only the ids shown are read
    return [ids[i] for i in order.tolist()], ranked  # (a list of ints indexes faster than numpy scalars)


def rank_order(ids: Sequence[str], s: np.ndarray) -> np.ndarray:
    """Positions sorted by score, best first, ties broken by id (deterministic across runs).

    A sort of ``-s`` settles everything but equal scores; then only the members of tied runs are
    sorted again by (score, id), in the slots they already hold. Ties are not rare where scores
    crowd: over 40 % of the raw K' = 100 candidate lists of the stage bench's clustered data held one
    (float32 scores within 0.001 of each other; bench/RESULTS_stage_choices.md), and duplicate
    items always tie. Sorting every candidate's id for them cost tens of microseconds a search.
    """
    return _rank(ids, s)[0]


def _rank(ids: Sequence[str], s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rank_order` and the scores in that order."""
    order = np.argsort(-s)  # (NaN last)
    ranked = s[order]
    if len(ranked) > 1:
        eq = ranked[1:] == ranked[:-1]
        if eq.any():
            slots = np.flatnonzero(np.r_[eq, False] | np.r_[False, eq])  # every member of a tied run
            tied = order[slots].tolist()
            names = ids.take(order[slots]).tolist() if isinstance(ids, IdRow) else [ids[i] for i in tied]
            ranked_ids = sorted(zip(tied, names, strict=True), key=lambda t: (-s[t[0]], t[1]))
            order[slots] = [i for i, _ in ranked_ids]
            ranked = s[order]
    return order, ranked


# The stage fast paths below work on one query's K' candidates with a handful of numpy calls each
# (the per-call overhead, not arithmetic, is what a 100-candidate stage costs). Each equals its
# reference in omniret.methods (tests/search/test_stage_fast_paths.py). ``rows``: the candidates'
# statistics rows, -1 for a candidate committed after the last refresh (it keeps its raw score).

def _center(stats: SpaceStats, query: Query, rows: np.ndarray, s: np.ndarray) -> np.ndarray:
    """:func:`omniret.methods.gap.center_scores` from per-item precomputed terms (no vector reads):

        cos(q - mu_a, g - mu_b) = (s - q.mu_b - (g.mu_a - mu_a.mu_b)) / (|q - mu_a| |g - mu_b|)

    with ``g.mu_a - mu_a.mu_b`` and ``|g - mu_b|`` read from one row of ``stats.center_rec`` per
    candidate, the means frozen at the last full statistics build.
    """
    if not len(stats.mod) or not len(s):
        return s
    a = MOD_CODE[query.modality]  # (a StrEnum hashes as its value)
    q = np.asarray(query.vector, dtype=np.float32)
    q_mu = stats.center_means32 @ q  # float32 products, float64 arithmetic below
    rec = stats.center_rec[rows]  # rows of -1 read the last item: replaced by the raw score below
    only = stats.only_modality()
    q_mu_b = float(q_mu[only]) if only is not None else q_mu[stats.mod[rows]]
    q_norm = math.sqrt(max(float(q @ q) - 2.0 * float(q_mu[a]) + stats.center_mumu[a, a], 0.0))
    out = (s - q_mu_b - rec[:, a]) / np.maximum(q_norm * rec[:, -1], gapm._EPS)
    return out if rows.min() >= 0 else np.where(rows >= 0, out, s)


def _calibrate(stats: SpaceStats, query: Query, rows: np.ndarray, s: np.ndarray) -> np.ndarray:
    """:func:`omniret.methods.gap.tnorm_scores` for one query: ``(s - q.mu_m) / sqrt(q^T Sigma_m q)``,
    one packed symmetric float32 product per modality present among the candidates."""
    if not len(stats.mod) or not len(s):
        return s
    q = np.asarray(query.vector, dtype=np.float32)
    only = stats.only_modality()
    if only is not None and rows.min() >= 0:  # one modality: two scalars
        loc_m = float(stats.means32()[only] @ q)
        return (s - loc_m) / math.sqrt(max(stats.query_variance(q, only), gapm._EPS))
    loc = stats.means32() @ q
    a = MOD_CODE[query.modality]
    mods = np.where(rows >= 0, stats.mod[rows], a)
    var = np.ones(len(loc))
    for m in np.flatnonzero(np.bincount(mods, minlength=len(loc))):
        var[m] = stats.query_variance(q, int(m))
    return (s - loc[mods]) / np.sqrt(np.maximum(var[mods], gapm._EPS))


def _hubness(stats: SpaceStats, rows: np.ndarray, s: np.ndarray, method: str) -> np.ndarray:
    """One query's log-domain hubness correction (the rules of :func:`omniret.methods.hubness.apply_qbnorm`,
    ``apply_inverted_softmax``, ``apply_dual_is``, ``apply_dual_dis``) from the statistics' per-item log Z
    and activation sets. A candidate the statistics have not seen yet gets the median log Z and is
    inactive, so it is neither lost nor boosted."""
    qbeta = QB_BETA if method in ("is", "qbnorm") else DB_BETA1
    banks = [("q", qbeta)] + ([("g", DB_BETA2)] if method in ("dbnorm", "dualdis") else [])
    out = (qbeta + (DB_BETA2 if len(banks) == 2 else 0.0)) * s
    if len(s) == 0:
        stats.candidate_log_z(rows, "q", qbeta)  # still says so when there is no query bank
        return out
    # QB-Norm / DualDIS test the query's best candidate; of equal maxima the lowest statistics row, the tie
    # rule of the activation set (methods.hubness._top1): duplicates are judged alike in any ANN order
    top = int(np.argmax(s))
    tied = np.flatnonzero(s == s[top])
    if len(tied) > 1:
        top = int(tied[np.argmin(np.where(rows[tied] < 0, np.iinfo(np.int64).max, rows[tied]))])
    if method == "qbnorm" and not stats.is_active(int(rows[top]), "q"):
        return s  # an inactive query keeps its raw scores (the caller's array, not written to)
    finite = True
    for bank, beta in banks:
        log_z = stats.candidate_log_z(rows, bank, beta)
        ok = stats.log_z_finite(bank, beta)
        if method in ("is", "dbnorm") or (stats.is_active(int(rows[top]), bank)
                                          and (ok or bool(np.isfinite(log_z).all()))):
            out -= log_z
            finite = finite and ok
        elif method == "qbnorm":  # an inactive query keeps its raw scores
            out = s.copy()
    # -inf - (-inf) is NaN: an infinite score ranks last (finite log Z and scores need no pass)
    return out if finite and np.isfinite(out.sum()) else np.where(np.isfinite(out), out, -np.inf)


def _hybrid(store: Store, query: Query, ids: Sequence[str], s: np.ndarray, opts: StageOptions
            ) -> tuple[list[str], np.ndarray]:
    if not query.text:
        raise QueryError("hybrid search needs a text in the query (BM25 runs on words)")
    lexical = store.lexical(query.text, opts.depth(), opts.where)
    dense = dict(zip(ids, s.tolist(), strict=True))
    lex = {d: sc for d, sc in lexical if d not in opts.exclude}
    if opts.hybrid == "rrf":
        fused_ids, fused = fusion.rrf([dense, lex]) if lex else fusion.rrf([dense])
    else:
        fused_ids, fused = fusion.weighted_sum([dense, lex] if lex else [dense], norm=opts.hybrid)
    return [str(i) for i in fused_ids], np.asarray(fused)
