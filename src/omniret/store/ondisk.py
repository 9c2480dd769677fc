"""The ``ondisk`` index kind: IVF-PQ with memory-mapped inverted lists and float16 vectors on disk.

For indexes too large for the in-memory kinds (``ivfpq`` keeps a float32 copy of every vector in
RAM: 2 KiB per 512-d vector), in the spirit of clip-retrieval / autofaiss serving LAION from one box.
Everything large lives in one folder next to the store's ``faiss/<space>.npz`` meta file::

    <space>.ondisk-<token>/index.faiss     coarse centroids + PQ codebooks + list directory (small)
    <space>.ondisk-<token>/lists.ivfdata   PQ codes and positions (``faiss.OnDiskInvertedLists``, mmapped)
    <space>.ondisk-<token>/vectors.npy     the stored float16 vectors (``numpy`` memmap, re-ranking)
    <space>.ondisk-<token>/LOCK, DIRTY     ownership (``flock``) and "modified since saved" marker

**Sizing** (autofaiss-style, from an optional memory budget ``B`` bytes for the part a search keeps
hot, i.e. the codes): ``nlist = clamp(round(4·√N), 16, min(N/39, 65536))`` coarse lists (k-means
wants ≥ 39 points per centroid); ``m`` PQ bytes per vector is the largest ``d/2^j`` (an exact
divisor of ``d``, at most ``64``) with ``N·(m + 8) + 4·d·(nlist + 256) ≤ B`` (codes + 8-byte ids +
coarse centroids + codebooks); without a budget ``m`` is the largest such divisor ``≤ 64``. PQ
uses 8-bit codes (``nbits`` drops to ``⌊log2(T/39)⌋`` ≥ 4 when the training sample ``T`` is small).
Jégou, Douze & Schmid, "Product quantization for nearest neighbor search", TPAMI 2011.

**Build in bounded memory**: vectors arrive in chunks (shards) and are streamed into
``vectors.npy``; the quantisers train on a seeded sample of at most ``train_max`` rows read back from
the memmap; then each chunk is encoded and appended to the on-disk inverted lists. Peak Python
memory is ``O(chunk·d + train_max·d)``, not ``O(N·d)``. Search over-fetches
``max(rerank·k, rerank_min)`` candidates by PQ distance (nprobe lists) and re-ranks them exactly
from the float16 rows of the memmap; deletes are masked exactly as in the other kinds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import sys
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from omniret.errors import StoreError
from omniret.store.faiss_index import FORMAT_VERSION, IndexConfig, SpaceIndex, exact_topk

MAX_CODE_BYTES = 64
ID_BYTES = 8

Chunk = tuple[np.ndarray, np.ndarray, np.ndarray]  # (vids int64, item ids, float16 (n, d))


def ondisk_shape(n: int, dim: int, budget: int | None = None) -> tuple[int, int]:
    """``(nlist, m)`` for ``n`` vectors of ``dim`` under ``budget`` bytes (see the module docstring).

    Raises :class:`StoreError` when even the smallest code does not fit the budget.
    """
    nlist = int(max(16, min(round(4 * math.sqrt(n)), n / 39, 65536)))
    choices = [dim // 2**j for j in range(1, 12) if dim % 2**j == 0 and dim // 2**j <= MAX_CODE_BYTES]
    if not choices:  # an odd dim: one sub-quantiser per dimension up to the cap, else the whole vector
        choices = [c for c in (dim,) if c <= MAX_CODE_BYTES] or [1]
    if budget is None:
        return nlist, choices[0]
    for m in choices:
        if index_bytes(n, dim, nlist, m) <= budget:
            return nlist, m
    need = index_bytes(n, dim, nlist, choices[-1])
    raise StoreError(f"a memory budget of {budget:,} bytes cannot hold the codes of {n:,} vectors of dim {dim} "
                     f"(the smallest code needs {need:,}); raise memory_budget or use index_kind='ivfpq'")


def index_bytes(n: int, dim: int, nlist: int, m: int) -> int:
    """Bytes a search keeps hot: codes + ids of ``n`` vectors, coarse centroids and PQ codebooks."""
    return n * (m + ID_BYTES) + 4 * dim * (nlist + 256)


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence C-level stdout (``OnDiskInvertedLists`` prints a line every time its file grows).

    Output other threads write to file descriptor 1 meanwhile is lost too; it is only held
    around FAISS calls that may grow the lists file, under the index's write lock.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _lock(folder: Path) -> int:
    """An exclusive ``flock`` on ``folder/LOCK`` (the fd); ``ValueError`` if another opener holds it."""
    fd = os.open(folder / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        raise ValueError(f"{folder}: in use by another open store") from e
    return fd


def _append_npy(path: Path, rows: np.ndarray) -> None:
    """Append ``rows`` to a 2-d ``.npy`` file in place (numpy pads headers so axis 0 can grow)."""
    with open(path, "r+b") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
        offset = f.tell()
        f.seek(offset + shape[0] * shape[1] * dtype.itemsize)
        f.truncate()
        f.write(np.ascontiguousarray(rows, dtype=dtype).tobytes())
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran,
                  "shape": (shape[0] + len(rows), shape[1])}
        f.seek(0)
        write = np.lib.format.write_array_header_1_0 if version == (1, 0) else np.lib.format.write_array_header_2_0
        write(f, header)
        if f.tell() != offset:
            raise StoreError(f"{path}: header grew on append; delete the folder to rebuild the index")


class OnDiskIndex(SpaceIndex):
    """A :class:`SpaceIndex` whose codes and vectors live in a folder (see the module docstring)."""

    def __init__(self, dim: int, cfg: IndexConfig, index: Any, seq: int, trained_n: int, folder: Path) -> None:
        super().__init__(dim, "ondisk", cfg, index, seq, trained_n)
        self.folder = folder
        self._vec = np.zeros((0, dim), dtype=np.float16)
        self._unlock = weakref.finalize(self, os.close, _lock(folder))

    def release(self) -> None:
        """Drop the folder's ``flock`` so that another store can open it (the store is closing)."""
        self._unlock()

    # -- building -----------------------------------------------------------------------------
    @classmethod
    def build_chunks(
        cls, meta_path: Path, dim: int, cfg: IndexConfig, n: int, chunks: Iterable[Chunk], seq: int
    ) -> OnDiskIndex:
        """Build from ``n`` vectors arriving in ``chunks``, in memory bounded by a chunk + the sample."""
        folder = meta_path.with_name(f"{meta_path.stem}.ondisk-{uuid.uuid4().hex[:12]}")
        folder.mkdir(parents=True)
        vec = np.lib.format.open_memmap(folder / "vectors.npy", mode="w+", dtype=np.float16, shape=(n, dim))
        vids = np.zeros(n, dtype=np.int64)
        ids = np.full(n, None, dtype=object)
        at = 0
        for c_vids, c_ids, c_mat in chunks:
            if at + len(c_vids) > n:
                raise StoreError(f"{folder}: more vectors arrived than the {n} announced")
            vec[at : at + len(c_vids)] = c_mat
            vids[at : at + len(c_vids)] = c_vids
            ids[at : at + len(c_vids)] = np.asarray(c_ids, dtype=object)
            at += len(c_vids)
        if at != n:
            raise StoreError(f"{folder}: {at} vectors arrived, {n} announced")
        vec.flush()
        del vec
        index = _trained_index(folder, dim, cfg, n)
        out = cls(dim, cfg, index, seq, n, folder)
        out._vec = np.load(folder / "vectors.npy", mmap_mode="r")
        out._vids, out._ids, out.n = vids, ids, n
        step = max(cfg.build_chunk, 1)
        with _quiet_stdout():
            for a in range(0, n, step):
                block = np.asarray(out._vec[a : a + step], dtype=np.float32)
                index.add_with_ids(block, np.arange(a, a + len(block), dtype=np.int64))
        out.dirty = True
        return out

    def add(self, vids: np.ndarray, item_ids: np.ndarray, mat: np.ndarray) -> None:
        """Append vectors to the on-disk lists and ``vectors.npy`` (callers hold the write lock)."""
        if not len(vids):
            return
        (self.folder / "DIRTY").touch()
        self.dirty = True
        n, m = self.n, len(vids)
        _append_npy(self.folder / "vectors.npy", np.asarray(mat, dtype=np.float16))
        self._vec = np.load(self.folder / "vectors.npy", mmap_mode="r")
        with _quiet_stdout():
            self.index.add_with_ids(np.ascontiguousarray(mat, dtype=np.float32), np.arange(n, n + m, dtype=np.int64))
        if n + m > len(self._vids):
            cap = max(2 * len(self._vids), n + m, 1024)
            self._vids = np.concatenate([self._vids[:n], np.zeros(cap - n, dtype=np.int64)])
            self._ids = np.concatenate([self._ids[:n], np.full(cap - n, None, dtype=object)])
        self._vids[n : n + m] = vids
        self._ids[n : n + m] = np.asarray(item_ids, dtype=object)
        self.n = n + m

    @property
    def mat(self) -> np.ndarray:
        """The float16 vectors by position (a read-only memmap)."""
        return self._vec[: self.n]

    def needs_rebuild(self, n_new: int) -> bool:
        n = len(self.vids) + n_new
        if len(self.masked) > self.cfg.rebuild_masked_fraction * max(n, 1):
            return True
        return self.cfg.choose(n - len(self.masked)) != self.kind or n > 4 * max(self.trained_n, 1)

    # -- searching ----------------------------------------------------------------------------
    def search(self, q: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`SpaceIndex.search`: PQ candidates over ``nprobe`` lists, exact float16 re-rank."""
        sel: Any = None
        if allowed is not None:
            if len(self.masked):
                allowed = np.setdiff1d(allowed, self.masked, assume_unique=True)
            if len(allowed) <= self.cfg.exact_filter_max:
                scores, pos = exact_topk(q, self.mat, np.sort(allowed), k)
                return self._finish(scores, pos, k)
            sel = faiss.IDSelectorBatch(allowed)
        elif self._not_masked is not None:
            sel = self._not_masked[0]
        kk = min(max(k * self.cfg.rerank, self.cfg.rerank_min), len(self.vids))
        if kk == 0:
            return self._finish(np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64), k)
        params = faiss.SearchParametersIVF()
        params.nprobe = self.cfg.nprobe
        params.sel = sel
        _, pos = self.index.search(q, kk, params=params)
        scores, pos = self._rerank_disk(q, pos, k)
        return self._finish(scores, pos, k)

    def _rerank_disk(self, q: np.ndarray, pos: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores of each query's candidates, read once (sorted, unique) from the memmap."""
        out_s = np.full((len(q), min(k, pos.shape[1])), -np.inf, dtype=np.float32)
        out_p = np.full(out_s.shape, -1, dtype=np.int64)
        for i in range(len(q)):
            p = np.unique(pos[i][pos[i] >= 0])
            if not len(p):
                continue
            s = np.asarray(self._vec[p], dtype=np.float32) @ q[i]
            top = np.argsort(-s, kind="stable")[: out_s.shape[1]]
            out_s[i, : len(top)] = s[top]
            out_p[i, : len(top)] = p[top]
        return out_s, out_p

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: Path, store_uuid: str) -> None:
        """Write the index header, flush, then the small meta ``.npz`` atomically; clear ``DIRTY``."""
        faiss.write_index(self.index, str(self.folder / "index.faiss"))
        meta = {"format": FORMAT_VERSION, "uuid": store_uuid, "seq": self.seq, "kind": "ondisk", "dim": self.dim,
                "trained_n": self.trained_n, "folder": self.folder.name, "n": self.n}
        ids = self.item_ids.astype(str) if len(self.item_ids) else np.zeros(0, dtype="U1")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, vids=self.vids, item_ids=ids, masked=self.masked, meta=np.array(json.dumps(meta)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        (self.folder / "DIRTY").unlink(missing_ok=True)
        self.dirty = False
        _remove_stale(path, self.folder)

    @classmethod
    def load(cls, path: Path, cfg: IndexConfig, store_uuid: str, dim: int) -> OnDiskIndex:
        """Open a saved on-disk index (lists and vectors memory-mapped); ``ValueError`` if unusable."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != FORMAT_VERSION or meta.get("uuid") != store_uuid or meta.get("dim") != dim:
                raise ValueError(f"{path}: saved for another store or format")
            vids, ids, masked = z["vids"].astype(np.int64), z["item_ids"].astype(object), z["masked"].astype(np.int64)
        folder = path.with_name(str(meta["folder"]))
        if (folder / "DIRTY").exists() or not (folder / "index.faiss").exists():
            raise ValueError(f"{folder}: changed after its last save")
        with _quiet_stdout():  # FAISS prints the relocated lists path
            index = faiss.read_index(str(folder / "index.faiss"), faiss.IO_FLAG_ONDISK_SAME_DIR)
        out = cls(dim, cfg, index, int(meta["seq"]), int(meta["trained_n"]), folder)
        out._vec = np.load(folder / "vectors.npy", mmap_mode="r")
        out._vids, out._ids, out.n = vids, ids, len(vids)
        if index.ntotal != out.n or len(ids) != out.n or out._vec.shape != (out.n, dim):
            raise ValueError(f"{path}: parts disagree on the number of vectors")
        if len(masked):
            out.mask(out.vids[masked])
        out.dirty = False
        return out


def _trained_index(folder: Path, dim: int, cfg: IndexConfig, n: int) -> Any:
    """An empty ``IVF{nlist},PQ{m}x{nbits}`` with on-disk lists, trained on a seeded sample of the memmap."""
    vec = np.load(folder / "vectors.npy", mmap_mode="r")
    nlist, m = ondisk_shape(n, dim, cfg.memory_budget)
    t = min(n, cfg.train_max)
    pick = np.sort(np.random.default_rng(0).choice(n, t, replace=False)) if t < n else np.arange(n)
    sample = np.asarray(vec[pick], dtype=np.float32)
    nbits = int(min(8, max(4, math.floor(math.log2(max(t / 39, 2))))))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFPQ(quantizer, dim, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()
    index.train(sample)
    lists = faiss.OnDiskInvertedLists(index.nlist, index.code_size, str(folder / "lists.ivfdata"))
    index.replace_invlists(lists, True)
    lists.this.disown()
    return index


def _remove_stale(meta_path: Path, keep: Path) -> None:
    """Delete older on-disk folders of this space that no open store holds."""
    for other in meta_path.parent.glob(f"{meta_path.stem}.ondisk-*"):
        if other == keep or not other.is_dir():
            continue
        try:
            fd = _lock(other)
        except (ValueError, OSError):
            continue
        try:
            shutil.rmtree(other, ignore_errors=True)
        finally:
            os.close(fd)


def sqlite_chunks(conn: Any, space: str, dim: int, chunk: int) -> Callable[[], Iterator[Chunk]]:
    """A factory of ``(vids, item ids, float16)`` chunks of ``space`` read by keyset pagination."""

    def gen() -> Iterator[Chunk]:
        last = -1
        while True:
            rows = conn.execute("SELECT vid, item, vec FROM vectors WHERE space = ? AND vid > ? ORDER BY vid LIMIT ?",
                                (space, last, chunk)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            mat = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float16).reshape(len(rows), dim)
            yield (np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=object), mat)

    return gen
