"""The derived FAISS index of one vector space, kept in step with SQLite by the embedded store.

Vectors live in the FAISS index at *positions* ``0..n-1`` in the order they were added; the
in-memory arrays ``vids`` (SQLite vector ids, strictly increasing because SQLite ``AUTOINCREMENT``
never reuses or goes back) and ``item_ids`` map positions back to rows and item ids, so a search
needs no SQL at all. ``vid → position`` is a binary search in ``vids``. A copy of every vector
(``mat``: the stored float16 values, held as float32 because numpy converts float16 slowly) serves
exact re-ranking and exact scoring of small filtered sets; it is saved as float16.

Kinds:

- ``flat``: ``IndexFlatIP``, exact.
- ``ivfpq``: ``IVF{nlist},PQ{d/2}x4fs`` (4-bit PQ fast-scan, André et al., "Accelerated nearest
  neighbor search with quick ADC", ICMR 2017) over-fetches PQ candidates
  (:meth:`SpaceIndex.rerank_pool`), then re-ranks them exactly from the float16 vectors.
- ``hnsw``: ``IndexHNSWFlat`` (Malkov & Yashunin, TPAMI 2018), ``M=32``.

Deleted vectors are masked (an ``IDSelectorNot`` over an ``IDSelectorBatch``) until the store
decides to rebuild.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from omniret.store.base import IdRow

#: a flat search of at most this many queries runs on one OpenMP thread (see one_omp_thread)
SMALL_BATCH = 8


@contextmanager
def one_omp_thread(active: bool) -> Iterator[None]:
    """Run FAISS on one OpenMP thread in this block (when ``active``), then restore the setting.

    A flat (exhaustive) search of one query split over OpenMP threads was slower than one thread on
    the 2-core development machine even when quiet (20k x 512: 3.8 vs 2.2 ms p50), and up to 10x
    slower when the other core was busy (threads spin waiting for each other). ``omp_set_num_threads``
    sets the calling thread's own value, so concurrent searches in other threads are unaffected.
    """
    if not active:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)

FORMAT_VERSION = 1
KINDS = ("auto", "flat", "hnsw", "ivfpq", "ondisk")
ONDISK_MIN = 1000  # the ``ondisk`` kind needs at least this many live vectors (else ``flat``)


@dataclass(frozen=True)
class IndexConfig:
    """How the embedded store builds and searches its FAISS indexes."""

    kind: str = "auto"  # auto | flat | hnsw | ivfpq | ondisk
    flat_threshold: int = 100_000  # auto: flat below this many live vectors, ivfpq from it on
    nprobe: int = 32
    rerank: int = 10  # ivfpq: re-rank rerank*k candidates (at least rerank_min) exactly
    rerank_min: int = 200
    hnsw_m: int = 32
    ef_search: int = 128
    exact_filter_max: int = 20_000  # a filter allowing at most this many vectors is scored exactly
    rebuild_masked_fraction: float = 0.1  # rebuild when more than this share of the index is masked
    train_max: int = 100_000  # ivfpq / ondisk: train on at most this many vectors
    memory_budget: int | None = None  # ondisk: bytes for codes (sizing); with auto, ondisk from flat_threshold
    ondisk_threshold: int | None = None  # auto: ondisk from this many live vectors (None: never by size)
    build_chunk: int = 50_000  # ondisk: vectors read and encoded per step of a build

    def choose(self, n_live: int) -> str:
        """The index kind for ``n_live`` vectors (``ivfpq`` needs 64 to train on, ``ondisk`` 1000)."""
        kind = self.kind
        if kind == "auto":
            kind = "flat" if n_live < self.flat_threshold else "ivfpq"
            big = self.ondisk_threshold is not None and n_live >= self.ondisk_threshold
            if big or (kind == "ivfpq" and self.memory_budget is not None):
                kind = "ondisk"
        if kind == "ondisk" and n_live < ONDISK_MIN:
            return "flat"
        return "flat" if kind == "ivfpq" and n_live < 64 else kind


class RWLock:
    """Many readers or one writer (writers wait for readers to drain; new readers wait for writers)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    def acquire_read(self) -> None:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1

    def release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            if not self._readers:
                self._cond.notify_all()

    def acquire_write(self) -> None:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True

    def release_write(self) -> None:
        with self._cond:
            self._writer = False
            self._cond.notify_all()


def _ivf_shape(n: int, dim: int) -> tuple[int, int]:
    """``(nlist, m)``: about ``2·√n`` lists (at least 16, at most ``n/39`` so k-means has data) and
    ``d/2`` 4-bit sub-quantisers (one byte of code per 4 dimensions; measured at 200k x 512 on
    clustered data, ``d/4`` needed 500 re-ranked candidates for recall@10 0.99, ``d/2`` needs 200)."""
    nlist = int(max(16, min(2 * math.sqrt(n), n / 39, 65536)))
    m = dim // 2 if dim % 2 == 0 else dim
    return max(nlist, 1), m


def _new_faiss(kind: str, dim: int, cfg: IndexConfig, train: np.ndarray) -> Any:
    """An empty FAISS index of ``kind``, trained on (a sample of) ``train`` where it needs training."""
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "hnsw":
        return faiss.IndexHNSWFlat(dim, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    if kind != "ivfpq":
        raise ValueError(f"unknown index kind {kind!r}; choose from {', '.join(KINDS)}")
    nlist, m = _ivf_shape(len(train), dim)
    index = faiss.index_factory(dim, f"IVF{nlist},PQ{m}x4fs", faiss.METRIC_INNER_PRODUCT)
    if len(train) > cfg.train_max:
        pick = np.random.default_rng(0).choice(len(train), cfg.train_max, replace=False)
        train = train[np.sort(pick)]
    index.train(np.ascontiguousarray(train, dtype=np.float32))
    return index


class SpaceIndex:
    """One space's FAISS index plus the arrays that map its positions to store rows and item ids."""

    def __init__(self, dim: int, kind: str, cfg: IndexConfig, index: Any, seq: int, trained_n: int) -> None:
        self.dim = dim
        self.kind = kind
        self.cfg = cfg
        self.index = index
        self.seq = seq  # the last commit this index covers
        self.trained_n = trained_n  # vectors present when it was built (its quantisers fit them)
        self.lock = RWLock()
        self.n = 0  # vectors in the index; the buffers below grow by doubling
        self._vids = np.zeros(0, dtype=np.int64)
        self._ids = np.zeros(0, dtype=object)
        self._mat = np.zeros((0, dim), dtype=np.float32)
        self.masked = np.zeros(0, dtype=np.int64)  # sorted positions
        self._not_masked: tuple[Any, Any] | None = None  # (IDSelectorNot, its inner batch: kept alive)
        #: restrictions of recurring filters: (key, seq, n, masked) → (positions, selector, its bitmap)
        self._restrictions: dict[Any, tuple[np.ndarray, Any, Any]] = {}
        self.dirty = False  # changed since it was last saved

    # -- building -----------------------------------------------------------------------------
    @classmethod
    def build(
        cls, dim: int, cfg: IndexConfig, vids: np.ndarray, item_ids: np.ndarray, mat: np.ndarray, seq: int
    ) -> SpaceIndex:
        """A fresh index over ``mat`` (float16 rows for ``vids``, increasing)."""
        kind = cfg.choose(len(vids))
        index = _new_faiss(kind, dim, cfg, np.asarray(mat, dtype=np.float32))
        out = cls(dim, kind, cfg, index, seq, len(vids))
        out.add(vids, item_ids, mat)
        out.dirty = True
        return out

    def add(self, vids: np.ndarray, item_ids: np.ndarray, mat: np.ndarray) -> None:
        """Append vectors (callers hold the write lock). ``vids`` must exceed every vid present."""
        if not len(vids):
            return
        self.index.add(np.ascontiguousarray(mat, dtype=np.float32))
        n, m = self.n, len(vids)
        if n + m > len(self._vids):
            cap = max(2 * len(self._vids), n + m, 1024)
            self._vids = np.concatenate([self._vids[:n], np.zeros(cap - n, dtype=np.int64)])
            self._ids = np.concatenate([self._ids[:n], np.full(cap - n, None, dtype=object)])
            grown = np.zeros((cap, self.dim), dtype=np.float32)
            grown[:n] = self._mat[:n]
            self._mat = grown
        self._vids[n : n + m] = vids
        self._ids[n : n + m] = np.asarray(item_ids, dtype=object)
        self._mat[n : n + m] = mat
        self.n = n + m
        self.dirty = True

    @property
    def vids(self) -> np.ndarray:
        """Store vector ids by position (increasing)."""
        return self._vids[: self.n]

    @property
    def item_ids(self) -> np.ndarray:
        """Item ids by position."""
        return self._ids[: self.n]

    @property
    def mat(self) -> np.ndarray:
        """Vectors by position (float16 values as float32)."""
        return self._mat[: self.n]

    def positions(self, vids: np.ndarray) -> np.ndarray:
        """Positions of those ``vids`` that are in this index (others dropped)."""
        vids = np.asarray(vids, dtype=np.int64)
        if not len(vids) or not len(self.vids):
            return np.zeros(0, dtype=np.int64)
        pos = np.searchsorted(self.vids, vids)
        inside = pos < len(self.vids)
        pos = pos[inside]
        return pos[self.vids[pos] == vids[inside]]

    def mask(self, vids: np.ndarray) -> None:
        """Hide deleted vectors from every later search (callers hold the write lock)."""
        pos = self.positions(vids)
        if len(pos):
            self.masked = np.union1d(self.masked, pos)
            batch = faiss.IDSelectorBatch(self.masked)
            self._not_masked = (faiss.IDSelectorNot(batch), batch)
            self.dirty = True

    def release(self) -> None:
        """Let go of files and locks held for this index (a no-op for the in-memory kinds)."""

    @property
    def n_live(self) -> int:
        return len(self.vids) - len(self.masked)

    def needs_rebuild(self, n_new: int) -> bool:
        """True when masking or growth has made this index worse than a rebuild."""
        n = len(self.vids) + n_new
        if len(self.masked) > self.cfg.rebuild_masked_fraction * max(n, 1):
            return True
        if self.cfg.choose(n - len(self.masked)) != self.kind:
            return True
        return self.kind == "ivfpq" and n > 4 * max(self.trained_n, 1)

    # -- searching (callers hold the read lock) ---------------------------------------------
    def cached_restriction(self, key: Any) -> tuple[np.ndarray, Any] | None:
        """The :meth:`restrict` result kept under ``key`` for this state of the index, or None."""
        hit = self._restrictions.get((key, self.seq, self.n, len(self.masked))) if key is not None else None
        return None if hit is None else (hit[0], hit[1])

    def restrict(self, allowed: np.ndarray, key: Any = None) -> tuple[np.ndarray, Any]:
        """A filter's allowed positions less masked ones, and a FAISS selector over them (None when there
        are at most ``exact_filter_max``: scored exactly). With a ``key`` (one per filter: the store
        uses modality-only filters) the result is kept for as long as the index does not change, so
        a recurring filter (``gap=calibrate`` searches each modality of a mixed index) costs no SQL
        pass and no selector build: at 100k, 55 ms a modality before.

        The selector is an ``IDSelectorBitmap`` (n bits, constant-time membership) rather than an
        ``IDSelectorBatch`` (a hash set of every allowed position).
        """
        if len(self.masked):
            allowed = np.setdiff1d(allowed, self.masked, assume_unique=True)
        sel = bits = None
        if len(allowed) > self.cfg.exact_filter_max:
            mask = np.zeros(max(self.n, 1), dtype=bool)
            mask[allowed] = True
            bits = np.packbits(mask, bitorder="little")  # FAISS reads bit i as (bits[i >> 3] >> (i & 7)) & 1
            sel = faiss.IDSelectorBitmap(bits)
        if key is not None:
            if len(self._restrictions) >= 8:
                self._restrictions.clear()
            self._restrictions[(key, self.seq, self.n, len(self.masked))] = (allowed, sel, bits)
        return allowed, sel

    def search(self, q: np.ndarray, k: int, allowed: np.ndarray | None = None, *, keyed: bool = False,
               restriction: tuple[np.ndarray, Any] | None = None) -> tuple[np.ndarray, ...]:
        """Top-``k`` by inner product: ``(scores (nq, k) float32, item ids (nq, k) object)``.

        ``allowed`` (positions) or a prepared ``restriction`` (:meth:`restrict`) restricts the search;
        sets of at most ``exact_filter_max`` are scored exactly from the float16 vectors, larger ones
        go through a bitmap selector.
        """
        sel: Any = None
        if restriction is None and allowed is not None:
            restriction = self.restrict(allowed)
        if restriction is not None:
            allowed, sel = restriction
            if sel is None:
                scores, pos = exact_topk(q, self.mat, allowed, k)
                return self._finish(scores, pos, k, keyed)
        elif self._not_masked is not None:
            sel = self._not_masked[0]
        kk = k if self.kind != "ivfpq" else self.rerank_pool(k)
        kk = min(kk, len(self.vids))
        if kk == 0:
            return self._finish(np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64), k, keyed)
        with one_omp_thread(self.kind == "flat" and len(q) <= SMALL_BATCH):
            scores, pos = self.index.search(q, kk, params=self._params(sel, kk))
        if self.kind == "ivfpq":
            scores, pos = self._rerank(q, pos, k)
        return self._finish(scores, pos, k, keyed)

    def rerank_pool(self, k: int) -> int:
        """IVF-PQ over-fetch for a top-``k`` request: ``max(rerank_min, min(rerank·k, k + rerank_min, 2k))``.

        Shallow requests (k <= rerank_min / 2) re-rank ``rerank_min`` PQ candidates; deep ones (the
        K' = 100 candidates of the ranking stages) re-rank twice k, at most ``rerank_min`` beyond k.
        At 100k x 384-d, K' = 100 from 200 rather than 300 candidates: recall@100 0.982 vs 0.987
        against exact search, recall@10 1.000 for both (bench/RESULTS_stages_e2e.md).
        """
        return max(self.cfg.rerank_min, min(k * self.cfg.rerank, k + self.cfg.rerank_min, 2 * k))

    def _params(self, sel: Any, kk: int) -> Any:
        """Search parameters (the caller keeps ``sel`` alive through the search: SWIG holds no ref)."""
        params: Any
        if self.kind == "ivfpq":
            params = faiss.SearchParametersIVF()
            params.nprobe = self.cfg.nprobe
        elif self.kind == "hnsw":
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from faiss's stubs
            params.efSearch = max(self.cfg.ef_search, kk)
        elif sel is None:
            return None
        else:
            params = faiss.SearchParameters()
        params.sel = sel
        return params

    def _rerank(self, q: np.ndarray, pos: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner products of the candidates ``pos`` (-1 = none) with ``mat``; keep the best ``k``.

        One FAISS C++ call (``knn_inner_products_by_idx``: gather, dot and heap in one pass, no copy of
        the candidate rows). The numpy version (a fancy-index copy of the rows, then a gemv and two
        sorts) took 275 vs 96 us per query at 200 candidates x 384-d with cold caches.
        """
        nq, kk = pos.shape
        k = min(k, kk)
        vals = np.empty((nq, k), dtype=np.float32)
        out = np.empty((nq, k), dtype=np.int64)
        if nq and k:
            qc = np.ascontiguousarray(q, dtype=np.float32)
            if pos.size and pos.min() < 0:  # FAISS ends a row at its first -1: move empty slots to the end
                pos = np.take_along_axis(pos, np.argsort(pos < 0, axis=1, kind="stable"), axis=1)
            sub = np.ascontiguousarray(pos, dtype=np.int64)
            knn_by_idx = faiss.knn_inner_products_by_idx  # type: ignore[attr-defined]  # (not in faiss's stubs)
            knn_by_idx(faiss.swig_ptr(qc), faiss.swig_ptr(self.mat), faiss.swig_ptr(sub), self.dim, nq, len(self.mat),
                       kk, k, faiss.swig_ptr(vals), faiss.swig_ptr(out), kk)
        empty = out < 0  # candidates short of k: FAISS leaves -1 and -FLT_MAX
        vals[empty] = -np.inf
        return vals, out

    @staticmethod
    def _pad(scores: np.ndarray, pos: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``k`` columns: ``-inf`` scores and position -1 in empty slots."""
        out_s = np.full((len(scores), k), -np.inf, dtype=np.float32)
        out_p = np.full((len(scores), k), -1, dtype=np.int64)
        w = min(k, scores.shape[1])
        out_p[:, :w] = pos[:, :w]
        out_s[:, :w] = scores[:, :w]
        out_s[out_p < 0] = -np.inf
        return out_s, out_p

    def _finish(self, scores: np.ndarray, pos: np.ndarray, k: int, keyed: bool = False) -> tuple[Any, ...]:
        """Pad to ``k`` columns and map positions to item ids (``-inf`` / ``None`` where empty); with
        ``keyed``, also the hits' vids (the store's vector keys, -1 where empty)."""
        full = scores.shape[1] == k and (not pos.size or pos.min() >= 0)  # k hits a query: no padding
        if keyed and len(self.item_ids):  # ids looked up when read (IdRow); -1 positions are empty slots
            if not full:
                scores, pos = self._pad(scores, pos, k)
            keys = self.vids[pos] if full else np.where(pos < 0, -1, self.vids[np.maximum(pos, 0)])
            return scores, [IdRow(self.item_ids, row) for row in pos], keys
        if full and len(self.item_ids):
            return scores, self.item_ids[pos]
        out_s, out_p = self._pad(scores, pos, k)
        nq = len(out_s)
        empty = out_p < 0
        ids = np.full((nq, k), None, dtype=object)
        if len(self.item_ids):
            ids = self.item_ids[np.where(empty, 0, out_p)]
            ids[empty] = None
        if keyed:
            keys = np.where(empty, -1, self.vids[np.where(empty, 0, out_p)]) if len(self.item_ids) else out_p
            return out_s, ids, keys
        return out_s, ids

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: Path, store_uuid: str) -> None:
        """Write atomically (temp file + rename) as one ``.npz``; callers hold at least the read lock."""
        meta = {"format": FORMAT_VERSION, "uuid": store_uuid, "seq": self.seq, "kind": self.kind,
                "dim": self.dim, "trained_n": self.trained_n}
        ids = self.item_ids.astype(str) if len(self.item_ids) else np.zeros(0, dtype="U1")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(f, index=faiss.serialize_index(self.index), vids=self.vids, item_ids=ids,
                     mat=self.mat.astype(np.float16), masked=self.masked, meta=np.array(json.dumps(meta)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self.dirty = False

    @classmethod
    def load(cls, path: Path, cfg: IndexConfig, store_uuid: str, dim: int) -> SpaceIndex:
        """Read an index saved by :meth:`save`; raises ``ValueError`` if it belongs elsewhere or is broken.

        An on-disk index's file says ``kind: ondisk``; :func:`saved_kind` tells the caller which class
        loads it (:class:`omniret.store.ondisk.OnDiskIndex` subclasses this one, so this module does not
        import it)."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != FORMAT_VERSION or meta.get("uuid") != store_uuid or meta.get("dim") != dim:
                raise ValueError(f"{path}: saved for another store or format")
            index = faiss.deserialize_index(np.ascontiguousarray(z["index"]))
            out = cls(dim, meta["kind"], cfg, index, int(meta["seq"]), int(meta["trained_n"]))
            out._vids = z["vids"].astype(np.int64)
            out._ids = z["item_ids"].astype(object)
            out._mat = z["mat"].astype(np.float32)
            masked = z["masked"].astype(np.int64)
        n = out.n = len(out._vids)
        if index.ntotal != n or len(out._ids) != n or out._mat.shape != (n, dim):
            raise ValueError(f"{path}: parts disagree on the number of vectors")
        if n > 1 and not np.all(np.diff(out.vids) > 0):
            raise ValueError(f"{path}: row ids out of order")
        out.masked = np.zeros(0, dtype=np.int64)
        if len(masked):
            out.mask(out.vids[masked])
        out.dirty = False
        return out


def exact_topk(q: np.ndarray, mat: np.ndarray, allowed: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` of ``q @ mat[allowed].T``: ``(scores, positions)``, best first."""
    if not len(allowed):
        return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
    s = q @ mat[allowed].T  # (nq, m)
    kk = min(k, s.shape[1])
    if kk < s.shape[1]:
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
    else:
        part = np.broadcast_to(np.arange(s.shape[1]), s.shape).copy()
    ps = np.take_along_axis(s, part, axis=1)
    order = np.argsort(-ps, axis=1, kind="stable")
    return np.take_along_axis(ps, order, axis=1).astype(np.float32), allowed[np.take_along_axis(part, order, axis=1)]


def saved_kind(path: Path) -> str | None:
    """The ``kind`` a saved index file records (``flat``, ``hnsw``, ``ivfpq``, ``ondisk``), or ``None``."""
    with np.load(path, allow_pickle=False) as z:
        return json.loads(str(z["meta"])).get("kind") if "meta" in z.files else None
