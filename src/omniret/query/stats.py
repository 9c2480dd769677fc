"""Per-space statistics that the ranking stages need, kept current as the index changes.

For one vector space this holds, aligned with the items that have a vector there:

- per-modality moments (sum, sum of outer products, count) → means for modality-gap centring
  and covariances for per-modality score calibration (T-norm);
- hubness statistics from the banks: for the query bank ``log Zq`` and QB-Norm's activation set,
  for the gallery bank (a sample of the index's own items) ``log Zg`` and its activation set,
  and each bank row's current top-k (what keeps the activation set exact under additions).

The banks are the source of truth (vectors + the texts they came from, in ``<index>/banks/``);
the statistics are derived (``<index>/stats/``, rebuilt when missing or stale) and refreshed
after every add/remove: additions cost O(bank size × new items) (moments and log Z are sums,
top-k lists merge); a removal or a replaced item recomputes everything from the stored vectors.
The math is in :mod:`omniret.methods.hubness` and :mod:`omniret.methods.gap`; this module only
keeps state and does IO.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from omniret.errors import QueryError
from omniret.items import Modality
from omniret.methods import gap as gapm
from omniret.methods import hubness as hub
from omniret.store.base import Store

MODALITIES: tuple[Modality, ...] = tuple(Modality)
MOD_CODE = {m.value: i for i, m in enumerate(MODALITIES)}
QB_BETA = 20.0  # QB-Norm's default inverse temperature (Bogolin et al. 2022)
DB_BETA1, DB_BETA2 = 1 / 1.99, 3.0  # DBNorm's official defaults
BANK_K = 1
GALLERY_BANK_SIZE = 2000
_CHUNK = 20_000


@functools.cache
def _ssymv() -> Any:
    """BLAS ``ssymv``, imported on first use (scipy.linalg costs ~0.5 s to import; a plain search never needs it)."""
    from scipy.linalg.blas import ssymv  # type: ignore[import-untyped]

    return ssymv


@dataclass
class Bank:
    """A bank of vectors in one space (queries, or a sample of gallery items), with provenance."""

    vectors: np.ndarray  # (n, d) float32, L2-normalised
    texts: list[str] = field(default_factory=list)
    source: str = ""

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, vectors=self.vectors.astype(np.float16), texts=np.array(self.texts, dtype=object),
                 source=np.array(self.source))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Bank | None:
        if not path.exists():
            return None
        with np.load(path, allow_pickle=True) as z:
            return cls(z["vectors"].astype(np.float32), list(z["texts"]), str(z["source"]))


@dataclass
class _BankStats:
    log_z: dict[float, np.ndarray]  # beta → (Ng,) log Σ_b exp(beta · s_bj)
    top_ids: np.ndarray  # (Nb, k) item row positions
    top_scores: np.ndarray  # (Nb, k)
    _active: np.ndarray | None = None
    _neutral: dict[float, float] = field(default_factory=dict)
    _finite: dict[float, bool] = field(default_factory=dict)

    def active(self, n: int) -> np.ndarray:
        """QB-Norm's activation set as an (n,) mask, computed once (O(n)) and reused by every query."""
        if self._active is None or len(self._active) != n:
            self._active = hub.activation_mask(self.top_ids, n)
        return self._active

    def finite(self, beta: float) -> bool:
        """Whether every log Z at ``beta`` is finite (computed once)."""
        if beta not in self._finite:
            self._finite[beta] = bool(np.isfinite(self.log_z[beta]).all())
        return self._finite[beta]

    def neutral(self, beta: float) -> float:
        """The median log Z, given to candidates newer than the statistics (computed once)."""
        if beta not in self._neutral:
            self._neutral[beta] = float(np.median(self.log_z[beta]))
        return self._neutral[beta]


class SpaceStats:
    """Statistics of one space of one index. Thread-safe; refresh with :meth:`refresh`."""

    def __init__(self, store: Store, space: str, folder: str | os.PathLike[str]) -> None:
        self.store = store
        self.space = space
        self.folder = Path(folder)
        self.lock = threading.RLock()
        self.version = -1
        self.ids: list[str] = []
        self.row: dict[str, int] = {}
        #: each row's vector key (store.search_keyed), increasing; None when the store has none
        self.keys: np.ndarray | None = np.zeros(0, np.int64)
        self._table: np.ndarray | None = None
        self.mod = np.zeros(0, dtype=np.int64)
        self.dim = 0
        self.moments: list[tuple[np.ndarray, np.ndarray, int]] = []
        self.qstats: _BankStats | None = None
        self.gstats: _BankStats | None = None
        self._gbank: np.ndarray | None = None
        self._means: np.ndarray | None = None
        self._covs: np.ndarray | None = None
        self._means32: np.ndarray | None = None
        self.center_means = np.zeros((len(MODALITIES), 0))
        self.center_means32 = np.zeros((len(MODALITIES), 0), np.float32)
        self.center_mumu = np.zeros((len(MODALITIES), len(MODALITIES)))
        #: per item: ``g.mu_a - mu_a.mu_b`` for each query modality ``a`` (columns 0..M-1; ``b`` the
        #: item's own modality), then ``|g - mu_b|`` (column M): one row gather serves a query
        self.center_rec = np.zeros((0, len(MODALITIES) + 1))
        self._present: tuple[int, ...] | None = None

    # -- banks ---------------------------------------------------------------------------------
    def _bank_path(self, kind: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.space)
        return self.folder / "banks" / f"{safe}-{kind}.npz"

    def query_bank(self) -> Bank | None:
        return Bank.load(self._bank_path("query"))

    def set_query_bank(self, bank: Bank, *, append: bool = False) -> None:
        with self.lock:
            old = self.query_bank() if append else None
            if old is not None:
                bank = Bank(np.concatenate([old.vectors, bank.vectors]), old.texts + bank.texts,
                            f"{old.source}+{bank.source}")
            bank.save(self._bank_path("query"))
            self.version = -1  # recompute hubness stats on next refresh

    # -- refresh ---------------------------------------------------------------------------------
    def refresh(self, *, force: bool = False, seen: int | None = None) -> None:
        """Bring the statistics up to the store's latest commit. ``seen``: a commit number the caller
        already read (:meth:`Store.seen_version`); when it equals the statistics' own, nothing is read."""
        if seen is not None and seen == self.version and not force:
            return  # (a racy read of an int: a stale answer only means one more check below)
        with self.lock:
            v = self.store.version()
            if v == self.version and not force:
                return
            if not force and self.version >= 0 and self.store.deleted_since(self.space, self.version) == 0:
                ids, mods, vecs, keys = self._read(since=self.version)
                if not any(i in self.row for i in ids):
                    self._append(ids, mods, vecs)
                    self._add_keys(keys)
                    self.version = v
                    return
            ids, mods, vecs, keys = self._read(since=0)
            self._rebuild(ids, mods, vecs)
            self.keys = np.zeros(0, np.int64)
            self._add_keys(keys)
            self.version = v

    def _read(self, since: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray | None]:
        ids: list[str] = []
        mods: list[int] = []
        parts: list[np.ndarray] = []
        keys: list[np.ndarray] | None = []
        for chunk_ids, chunk_mods, mat, chunk_keys in self.store.iter_vectors_keyed(self.space, since=since,
                                                                                    chunk=_CHUNK):
            ids.extend(chunk_ids)
            mods.extend(MOD_CODE[m] for m in chunk_mods)
            parts.append(mat.astype(np.float32))
            keys = None if keys is None or chunk_keys is None else [*keys, chunk_keys]
        dim = self.store.spaces().get(self.space, 0)
        vecs = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
        all_keys = None if keys is None else (np.concatenate(keys) if keys else np.zeros(0, np.int64))
        return ids, np.asarray(mods, dtype=np.int64), vecs, all_keys

    def _add_keys(self, keys: np.ndarray | None) -> None:
        """Extend the row → vector key column; dropped (lookups fall back to ids) when the store has no
        keys or they do not keep increasing (rows must stay in key order for a binary search)."""
        if self.keys is None or keys is None or (len(keys) and (np.any(np.diff(keys) <= 0) or (
                len(self.keys) and keys[0] <= self.keys[-1]))):
            self.keys = None
            return
        self.keys = np.concatenate([self.keys, keys.astype(np.int64)])
        self._table = None

    def _rebuild(self, ids: list[str], mods: np.ndarray, vecs: np.ndarray) -> None:
        self._means = self._covs = self._present = self._means32 = None
        self.ids, self.mod, self.dim = ids, mods, vecs.shape[1]
        self.row = {i: n for n, i in enumerate(ids)}
        self.moments = [gapm.moments(vecs[mods == c]) if (mods == c).any() else
                        (np.zeros(self.dim), np.zeros((self.dim, self.dim)), 0) for c in range(len(MODALITIES))]
        qbank = self.query_bank()
        self.qstats = (_bank_stats(qbank.vectors, vecs, (QB_BETA, DB_BETA1))
                       if qbank is not None and len(ids) else None)
        self.gstats = None
        self._gbank = None
        if len(ids):  # DBNorm's gallery bank: a fixed-seed sample of the index's own items
            rng = np.random.default_rng(0)
            sample = rng.choice(len(ids), size=min(GALLERY_BANK_SIZE, len(ids)), replace=False)
            self._gbank = vecs[np.sort(sample)].astype(np.float32)
            self.gstats = _bank_stats(self._gbank, vecs, (DB_BETA2,))
        # modality-gap centring without reading candidate vectors: the means are frozen at this full
        # build, and every item keeps its dot product with each of them (see center_scores)
        self.center_means = self._compute_means()
        self.center_mumu = self.center_means @ self.center_means.T
        self.center_means32 = self.center_means.astype(np.float32)
        self.center_rec = np.zeros((0, len(MODALITIES) + 1))
        self._center_terms(vecs, mods)

    def _append(self, ids: list[str], mods: np.ndarray, vecs: np.ndarray) -> None:
        """Fold newly added items in: moments add up, log Z and top-k lists merge column-wise."""
        if not ids:
            return
        self._means = self._covs = self._present = self._means32 = None
        if not self.ids:
            self._rebuild(ids, mods, vecs)
            return
        first = len(self.ids)
        self.ids = self.ids + ids
        self.row.update({i: first + n for n, i in enumerate(ids)})
        self.mod = np.concatenate([self.mod, mods])
        for c in range(len(MODALITIES)):
            sel = vecs[mods == c]
            if len(sel):
                self.moments[c] = gapm.moments_update(self.moments[c], sel)
        self._center_terms(vecs, mods)
        qbank = self.query_bank()
        if self.qstats is not None and qbank is not None:
            self.qstats = _extend(self.qstats, qbank.vectors, vecs, first)
        if self.gstats is not None and self._gbank is not None:
            self.gstats = _extend(self.gstats, self._gbank, vecs, first)

    def _center_terms(self, vecs: np.ndarray, mods: np.ndarray) -> None:
        """Append each new item's centring record (see ``center_rec``): its dots with the frozen
        modality means less ``mu_a.mu_b``, and its centred norm ``|g - mu_b| = sqrt(|g|^2 - 2 g.mu_b +
        |mu_b|^2)`` (``b`` its own modality; ``|g|`` is taken as stored: float16 storage leaves it 1 ± 1e-4)."""
        dots = ((vecs @ self.center_means.T.astype(vecs.dtype)).astype(np.float64) if len(vecs)
                else np.zeros((0, len(MODALITIES))))  # in the vectors' dtype: no float64 copy of N x d
        sq = np.einsum("ij,ij->i", vecs, vecs).astype(np.float64)
        g2 = sq - 2.0 * dots[np.arange(len(dots)), mods] + np.diag(self.center_mumu)[mods]
        rec = np.empty((len(dots), len(MODALITIES) + 1))
        rec[:, :-1] = dots - self.center_mumu[:, mods].T
        rec[:, -1] = np.sqrt(np.maximum(g2, 0.0))
        self.center_rec = np.concatenate([self.center_rec, rec])

    @property
    def center_gnorm(self) -> np.ndarray:
        """Each item's centred norm ``|g - mu_b|``."""
        return self.center_rec[:, -1]

    def only_modality(self) -> int | None:
        """The code of the one modality every item has, or None when several (or none) are present."""
        if self._present is None:
            self._present = tuple(int(c) for c in np.flatnonzero(self.counts()))
        return self._present[0] if len(self._present) == 1 else None

    # -- accessors used by the search stages ------------------------------------------------------
    def means(self) -> np.ndarray:
        """(M, d) mean vector of each modality (zeros where the modality has no item); cached per refresh."""
        if self._means is None:
            self._means = self._compute_means()
        return self._means

    def means32(self) -> np.ndarray:
        """:meth:`means` in float32 (what a float32 query multiplies without a conversion); cached per refresh."""
        if self._means32 is None or self._means is None:
            self._means32 = self.means().astype(np.float32)
        return self._means32

    def _compute_means(self) -> np.ndarray:
        out = np.zeros((len(MODALITIES), self.dim))
        for c, (s, _, n) in enumerate(self.moments):
            if n:
                out[c] = s / n
        return out

    def counts(self) -> np.ndarray:
        return np.array([n for _, _, n in self.moments])

    def covs(self) -> np.ndarray:
        """(M, d, d) covariance of each modality; cached per refresh."""
        if self._covs is None:
            out = np.zeros((len(MODALITIES), self.dim, self.dim), np.float32)  # float32: half the bytes a query reads
            for c, m in enumerate(self.moments):
                if m[2] > 1:
                    out[c] = gapm.moments_mean_cov(m)[1]
            self._covs = out
        return self._covs

    def query_variance(self, q: np.ndarray, m: int) -> float:
        """``q^T Sigma_m q`` (T-norm's variance of a query's scores over modality ``m``).

        BLAS ``ssymv`` reads one triangle of the float32 covariance, half the bytes of a dense gemv
        (at 384-d, ~300 of 590 KB a query, which the ANN scan has just pushed out of the CPU
        caches): 21 vs 42 us cold, 7 vs 8 us hot on the development machine (packed ``sspmv``,
        which reads the same bytes, computes slower: 23 / 15 us).
        """
        q32 = np.ascontiguousarray(q, dtype=np.float32)
        # the transpose of a C-ordered symmetric matrix is the same matrix, Fortran-ordered: no copy
        return float(q32 @ _ssymv()(1.0, self.covs()[m].T, q32, lower=1))

    def rows_for(self, ids: Sequence[str], keys: np.ndarray | None) -> np.ndarray:
        """Row positions of candidates from their vector keys (one binary search per candidate, all in
        numpy), or from their ids when either side has no keys; -1 for unseen candidates."""
        have = self.keys
        if keys is None or have is None or len(have) != len(self.ids):
            return self.rows_of(ids)
        if not len(have):
            return np.full(len(ids), -1, dtype=np.int64)
        table = self._key_table()
        if table is not None:  # one gather: keys past the table (newer ones) clip to its -1 sentinel,
            # negative ones (padding) to slot 0, also -1 while no key is 0 (SQLite row ids start at 1)
            return table.take(keys, mode="clip") if have[0] > 0 else table[np.minimum(keys, len(table) - 1)]
        pos = np.minimum(np.searchsorted(have, keys), len(have) - 1)
        return np.where((have[pos] == keys) & (keys >= 0), pos, -1)

    def _key_table(self) -> np.ndarray | None:
        """key → row as a dense int32 array (-1 = none) while keys are dense enough (at most 4 slots per
        row: deletions and re-adds leave holes); built once per refresh, else None (binary search).
        Its last slot, one past the largest key, is a -1 sentinel (also what index -1 reads)."""
        have = self.keys
        if have is None or not len(have) or have[-1] >= 4 * len(have) + 1024 or len(have) >= 2**31:
            return None
        if self._table is None or len(self._table) != int(have[-1]) + 2:
            table = np.full(int(have[-1]) + 2, -1, dtype=np.int32)
            table[have] = np.arange(len(have), dtype=np.int32)
            self._table = table
        return self._table

    def rows_of(self, ids: Sequence[str]) -> np.ndarray:
        """Row positions of candidate ids (-1 for ids this refresh has not seen)."""
        return np.fromiter(map(self.row.get, ids, repeat(-1)), dtype=np.int64, count=len(ids))

    def hubness_arrays(self, rows: np.ndarray, method: str) -> dict[str, np.ndarray]:
        """Per-candidate statistics for ``method`` (rows: (nq, K') positions, -1 = unknown)."""
        need_q = method in ("is", "qbnorm", "dbnorm", "dualdis")
        if need_q and self.qstats is None:
            raise QueryError(
                f"hubness={method!r} needs a query bank for space {self.space!r}: set one with "
                "`omniret bank --queries FILE` or Index.set_query_bank(texts)")
        out: dict[str, np.ndarray] = {}
        n = len(self.ids)
        qbeta = QB_BETA if method in ("is", "qbnorm") else DB_BETA1
        for key, st, beta in (("q", self.qstats, qbeta), ("g", self.gstats, DB_BETA2)):
            if st is None or not n:
                continue
            safe = np.maximum(rows, 0)
            # a candidate the statistics have not seen yet (committed by another process since the
            # last refresh) is inactive and gets the median log Z, so it is neither lost nor boosted
            out[f"log_z{key}"] = np.where(rows >= 0, st.log_z[beta][safe], st.neutral(beta))
            out[f"active_{key}"] = np.where(rows >= 0, st.active(n)[safe], False)
        return out

    def candidate_log_z(self, rows: np.ndarray, bank: str, beta: float) -> np.ndarray:
        """One query's candidates (``rows``, -1 = unseen): their ``log Z`` over the ``bank`` ("q" or "g")
        at ``beta``, the median log Z for unseen ones (single-query fast path of :meth:`hubness_arrays`)."""
        st = self._bank(bank)
        if not len(rows) or rows.min() >= 0:
            return st.log_z[beta][rows]
        known = rows >= 0
        return np.where(known, st.log_z[beta][np.where(known, rows, 0)], st.neutral(beta))

    def log_z_finite(self, bank: str, beta: float) -> bool:
        """Whether every item's log Z over ``bank`` at ``beta`` is finite (then so is each candidate's)."""
        return self._bank(bank).finite(beta)

    def is_active(self, row: int, bank: str) -> bool:
        """Whether item ``row`` is in the bank's activation set (QB-Norm); an unseen row (-1) is not."""
        return row >= 0 and bool(self._bank(bank).active(len(self.ids))[row])

    def _bank(self, bank: str) -> _BankStats:
        st = self.qstats if bank == "q" else self.gstats
        if self.qstats is None:
            raise QueryError(
                f"this hubness correction needs a query bank for space {self.space!r}: set one with "
                "`omniret bank --queries FILE` or Index.set_query_bank(texts)")
        if st is None or not self.ids:
            raise QueryError(f"the {'gallery' if bank == 'g' else 'query'} bank statistics of space "
                             f"{self.space!r} are empty; add items first")
        return st

    def info(self) -> dict[str, Any]:
        qb = self.query_bank()
        return {"items": len(self.ids), "query_bank": 0 if qb is None else len(qb.vectors),
                "query_bank_source": None if qb is None else qb.source,
                "per_modality": {m.value: int(n) for m, n in zip(MODALITIES, self.counts(), strict=True) if n}}


def _extend(st: _BankStats, bank: np.ndarray, new: np.ndarray, first: int) -> _BankStats:
    sims = bank.astype(np.float32) @ new.T
    log_z = {b: np.concatenate([lz, hub.log_partition(sims, b)]) for b, lz in st.log_z.items()}
    ids, scores = hub.merge_chunk_topk(st.top_ids, st.top_scores, sims, first, BANK_K)
    return _BankStats(log_z, ids, scores)


def _bank_stats(bank: np.ndarray, gallery: np.ndarray, betas: Sequence[float]) -> _BankStats:
    """log Z (per beta) and each bank row's top-k over the gallery, in chunks of gallery columns."""
    log_z = {b: np.full(len(gallery), -np.inf) for b in betas}
    top_ids = np.zeros((len(bank), 0), dtype=np.int64)
    top_scores = np.zeros((len(bank), 0))
    for start in range(0, len(gallery), _CHUNK):
        sims = bank.astype(np.float32) @ gallery[start : start + _CHUNK].T  # (Nb, chunk)
        for b in betas:
            log_z[b][start : start + _CHUNK] = hub.log_partition(sims, b)
        top_ids, top_scores = hub.merge_chunk_topk(top_ids, top_scores, sims, start, BANK_K)
    return _BankStats(log_z, top_ids, top_scores)
