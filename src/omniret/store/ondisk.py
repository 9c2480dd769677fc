"""The ``ondisk`` index kind: IVF-PQ with memory-mapped inverted lists and float16 vectors on disk.

For indexes too large for the in-memory kinds (``ivfpq`` keeps a float32 copy of every vector in
RAM: 2 KiB per 512-d vector), in the spirit of clip-retrieval / autofaiss serving LAION from one box.
Everything large lives in one folder next to the store's ``faiss/<space>.npz`` meta file::

    <space>.ondisk-<token>/index.faiss        coarse centroids + PQ codebooks + list directory (small)
    <space>.ondisk-<token>/lists-<gen>.ivfdata compact PQ codes + positions of the base (read-only mmap)
    <space>.ondisk-<token>/delta.ivl          lists of the vectors appended since the last compaction (in RAM)
    <space>.ondisk-<token>/vectors.npy        the stored float16 vectors (``numpy`` memmap, re-ranking)
    <space>.ondisk-<token>/vids.npy           position → store row id (int64 memmap)
    <space>.ondisk-<token>/ids.bin, ids_off.npy  position → item id (UTF-8 bytes + offsets, memmaps)
    <space>.ondisk-<token>/LOCK, DIRTY        ownership (``flock``) and "modified since saved" marker

**Sizing** (autofaiss-style, from an optional memory budget ``B`` bytes for the part a search keeps
hot, i.e. the codes): ``nlist = clamp(round(4·√N), 16, min(N/39, 65536))`` coarse lists (k-means
wants ≥ 39 points per centroid); ``m`` PQ bytes per vector is the largest ``d/2^j`` (an exact
divisor of ``d``, at most ``64``) with ``N·(m + 8) + 4·d·(nlist + 256) ≤ B`` (codes + 8-byte ids +
coarse centroids + codebooks); without a budget ``m`` is the largest such divisor ``≤ 64``. PQ
uses 8-bit codes (``nbits`` drops to ``⌊log2(T/39)⌋`` ≥ 4 when the training sample ``T`` is small).
Jégou, Douze & Schmid, "Product quantization for nearest neighbor search", TPAMI 2011.

**Build in bounded memory, from shards**: vectors arrive in chunks and are streamed to the column
files while a seeded sample of at most ``train_max`` rows (positions drawn before reading) is kept
for training; after training, ``build_chunk`` rows at a time are read back, encoded into an
in-memory shard whose lists go to a shard file, and the shards are concatenated once into a
*compact* lists file of exactly ``m + 8`` bytes a vector (:mod:`omniret.store.ondisk_files` says
why FAISS's own growth path is not used). Peak memory is ``O(build_chunk·d + train_max·d)``; no
array of ``N`` entries is ever held in RAM, and none is after opening (every position-indexed
column is a memory map).

**Appends** go to an in-memory IVF-PQ *delta* sharing the base's quantisers (``m + 8`` bytes a
vector, its lists saved as ``delta.ivl``); once it holds ``max(compact_min, compact_fraction·base)``
vectors a *compaction* writes base + delta into a new compact file (same entries, same order) and
empties the delta. Search over-fetches ``rerank_pool(k)`` candidates by PQ distance
(``nprobe`` lists) from base and delta each and re-ranks their union exactly from the float16 rows
of the memmap; deletes are masked exactly as in the other kinds.
"""

from __future__ import annotations

import fcntl
import io
import json
import math
import os
import shutil
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from omniret.errors import StoreError
from omniret.store import ondisk_files as files
from omniret.store.faiss_index import FORMAT_VERSION, IndexConfig, SpaceIndex, exact_topk

MAX_CODE_BYTES = 64
ID_BYTES = files.ID_BYTES
LAYOUT = 2  # base + delta lists, memory-mapped position columns

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


def _lock(folder: Path) -> int:
    """An exclusive ``flock`` on ``folder/LOCK`` (the fd); ``ValueError`` if another opener holds it."""
    fd = os.open(folder / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        raise ValueError(f"{folder}: in use by another open store") from e
    return fd


class OnDiskIndex(SpaceIndex):
    """A :class:`SpaceIndex` whose codes, vectors and position columns live in a folder (module docstring).

    ``index`` is the compact, read-only base (positions ``0..base_n-1``); ``delta`` is an in-memory
    IVF-PQ with the same quantisers holding the positions appended since (``base_n..n-1``).
    """

    compact_fraction = 0.1  # fold the delta into the base once it holds this share of the base ...
    compact_min = 20_000  # ... and at least this many vectors

    def __init__(self, dim: int, cfg: IndexConfig, index: Any, delta: Any, seq: int, trained_n: int,
                 folder: Path) -> None:
        super().__init__(dim, "ondisk", cfg, index, seq, trained_n)
        self.folder = folder
        self.delta = delta
        self.base_n = int(index.ntotal)
        self._unlock = weakref.finalize(self, os.close, _lock(folder))

    def release(self) -> None:
        """Drop the folder's ``flock`` so that another store can open it (the store is closing)."""
        self._unlock()

    def _open_columns(self, n: int) -> None:
        """Memory-map the first ``n`` rows of the vector, vid and item-id columns."""
        self._vec = np.load(self.folder / "vectors.npy", mmap_mode="r")
        self._vids = np.load(self.folder / "vids.npy", mmap_mode="r")
        self._id_col = files.IdColumn(self.folder, n)
        if self._vec.shape[1:] != (self.dim,) or len(self._vec) < n or len(self._vids) < n:
            raise ValueError(f"{self.folder}: its columns are shorter than the index")
        self.n = n

    @property
    def item_ids(self) -> Any:
        """Item ids by position (an :class:`~omniret.store.ondisk_files.IdColumn`, read on demand)."""
        return self._id_col

    @property
    def mat(self) -> np.ndarray:
        """The float16 vectors by position (a read-only memmap)."""
        return self._vec[: self.n]

    # -- building -----------------------------------------------------------------------------
    @classmethod
    def build_chunks(
        cls, meta_path: Path, dim: int, cfg: IndexConfig, n: int, chunks: Iterable[Chunk], seq: int
    ) -> OnDiskIndex:
        """Build from ``n`` vectors arriving in ``chunks``, in memory bounded by a chunk + the training sample.

        Pass 1 streams the chunks to the column files and keeps the seeded training sample; the
        quantisers train on it; pass 2 reads ``build_chunk`` rows at a time back from ``vectors.npy``,
        encodes them into an in-memory shard and writes the shard's lists to a file; the shards are
        then concatenated into one compact lists file.
        """
        if n < 1:
            raise StoreError("an on-disk index needs at least one vector; use index_kind='flat' for empty spaces")
        folder = meta_path.with_name(f"{meta_path.stem}.ondisk-{uuid.uuid4().hex[:12]}")
        folder.mkdir(parents=True)
        nlist, m = ondisk_shape(n, dim, cfg.memory_budget)
        sample = _stream_columns(folder, dim, n, chunks, cfg.train_max)
        index = _trained_index(sample, dim, nlist, m)
        del sample
        delta = faiss.clone_index(index)  # empty, same quantisers
        shards = _encode_shards(folder, index, dim, n, max(cfg.build_chunk, 1))
        try:
            lists = files.write_compact_lists(folder / _lists_name(), nlist, index.code_size,
                                              [files.read_shard(p) for p in shards])
        finally:
            for p in shards:
                p.unlink(missing_ok=True)
        _install_lists(index, lists)
        out = cls(dim, cfg, index, delta, seq, n, folder)
        out._open_columns(n)
        out.dirty = True
        return out

    def add(self, vids: np.ndarray, item_ids: np.ndarray, mat: np.ndarray) -> None:
        """Append vectors to the delta and the column files (callers hold the write lock)."""
        if not len(vids):
            return
        (self.folder / "DIRTY").touch()
        self.dirty = True
        n, m = self.n, len(vids)
        files.append_npy(self.folder / "vectors.npy", np.asarray(mat, dtype=np.float16))
        files.append_npy(self.folder / "vids.npy", np.asarray(vids, dtype=np.int64))
        files.append_ids(self.folder, list(item_ids))
        self.delta.add_with_ids(np.ascontiguousarray(mat, dtype=np.float32), np.arange(n, n + m, dtype=np.int64))
        self._open_columns(n + m)
        if self.delta.ntotal >= max(self.compact_min, self.compact_fraction * self.base_n):
            self.compact()

    def compact(self) -> None:
        """Fold the delta into a fresh compact lists file (callers hold the write lock)."""
        if not self.delta.ntotal:
            return
        (self.folder / "DIRTY").touch()
        self.dirty = True
        ivf = faiss.extract_index_ivf(self.index)
        old = Path(faiss.downcast_InvertedLists(ivf.invlists).filename)
        lists = files.write_compact_lists(self.folder / _lists_name(), ivf.nlist, ivf.code_size,
                                          [ivf.invlists, self.delta.invlists])
        _install_lists(self.index, lists)  # frees (unmaps) the old lists
        old.unlink(missing_ok=True)
        self.delta.reset()
        self.base_n = int(self.index.ntotal)

    def needs_rebuild(self, n_new: int) -> bool:
        n = len(self.vids) + n_new
        if len(self.masked) > self.cfg.rebuild_masked_fraction * max(n, 1):
            return True
        return self.cfg.choose(n - len(self.masked)) != self.kind or n > 4 * max(self.trained_n, 1)

    # -- searching ----------------------------------------------------------------------------
    def search(self, q: np.ndarray, k: int, allowed: np.ndarray | None = None, *, keyed: bool = False,
               restriction: tuple[np.ndarray, Any] | None = None) -> tuple[np.ndarray, ...]:
        """Like :meth:`SpaceIndex.search`: PQ candidates over ``nprobe`` lists of base and delta, exact
        float16 re-rank."""
        sel: Any = None
        if restriction is None and allowed is not None:
            restriction = self.restrict(allowed)
        if restriction is not None:
            allowed, sel = restriction
            if sel is None:
                scores, pos = exact_topk(q, self.mat, np.sort(allowed), k)
                return self._finish(scores, pos, k, keyed)
        elif self._not_masked is not None:
            sel = self._not_masked[0]
        kk = min(self.rerank_pool(k), len(self.vids))
        if kk == 0:
            return self._finish(np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64), k, keyed)
        params = faiss.SearchParametersIVF()
        params.nprobe = self.cfg.nprobe
        params.sel = sel
        parts = [ix.search(q, min(kk, ix.ntotal), params=params)[1] for ix in (self.index, self.delta) if ix.ntotal]
        scores, pos = self._rerank_disk(q, np.concatenate(parts, axis=1), k)
        return self._finish(scores, pos, k, keyed)

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
        """Flush the columns, write base header and delta, then the small meta ``.npz`` atomically; clear ``DIRTY``."""
        for name in ("vectors.npy", "vids.npy", "ids.bin", "ids_off.npy"):
            _fsync(self.folder / name)
        _write_atomic(self.folder / "index.faiss", faiss.serialize_index(self.index))
        tmp = self.folder / f".delta.{os.getpid()}.{threading.get_ident()}.tmp"
        files.write_shard(self.delta, tmp)  # the delta's lists only: its quantisers are the base's
        _fsync(tmp)
        os.replace(tmp, self.folder / "delta.ivl")
        lists = Path(faiss.downcast_InvertedLists(faiss.extract_index_ivf(self.index).invlists).filename)
        meta = {"format": FORMAT_VERSION, "layout": LAYOUT, "uuid": store_uuid, "seq": self.seq, "kind": "ondisk",
                "dim": self.dim, "trained_n": self.trained_n, "folder": self.folder.name, "lists": lists.name,
                "n": self.n, "base_n": self.base_n}
        buf = io.BytesIO()
        np.savez(buf, masked=self.masked, meta=np.array(json.dumps(meta)))
        _write_atomic(path, buf.getvalue())
        (self.folder / "DIRTY").unlink(missing_ok=True)
        self.dirty = False
        _remove_stale(path, self.folder)

    @classmethod
    def load(cls, path: Path, cfg: IndexConfig, store_uuid: str, dim: int) -> OnDiskIndex:
        """Open a saved on-disk index (lists, vectors and columns memory-mapped); ``ValueError`` if unusable."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            masked = z["masked"].astype(np.int64)
        if (meta.get("format") != FORMAT_VERSION or meta.get("layout") != LAYOUT or meta.get("uuid") != store_uuid
                or meta.get("dim") != dim):
            raise ValueError(f"{path}: saved for another store or format")
        folder = path.with_name(str(meta["folder"]))
        if (folder / "DIRTY").exists() or not (folder / "index.faiss").exists():
            raise ValueError(f"{folder}: changed after its last save")
        # the lists header only (no mmap, and no path rewrite: FAISS prints when it relocates a lists file)
        index = faiss.read_index(str(folder / "index.faiss"), faiss.IO_FLAG_SKIP_IVF_DATA | faiss.IO_FLAG_READ_ONLY)
        ivf = faiss.extract_index_ivf(index)
        sizes = files.list_sizes(ivf.invlists)
        _install_lists(index, files.open_compact_lists(folder / str(meta["lists"]), ivf.nlist, ivf.code_size, sizes))
        delta = faiss.read_index(str(folder / "index.faiss"), faiss.IO_FLAG_SKIP_IVF_DATA)  # the quantisers again
        _install_lists(delta, files.read_shard(folder / "delta.ivl", mmap=False))
        out = cls(dim, cfg, index, delta, int(meta["seq"]), int(meta["trained_n"]), folder)
        n = int(meta["n"])
        out._open_columns(n)
        if index.ntotal != meta["base_n"] or index.ntotal + delta.ntotal != n:
            raise ValueError(f"{path}: parts disagree on the number of vectors")
        if len(masked):
            out.mask(out.vids[masked])
        out.dirty = False
        return out


def _lists_name() -> str:
    return f"lists-{uuid.uuid4().hex[:8]}.ivfdata"


def _install_lists(index: Any, lists: Any) -> None:
    """Make ``lists`` the inverted lists of ``index`` (which owns and frees them; the old ones are freed)."""
    faiss.extract_index_ivf(index).replace_invlists(lists, True)
    lists.this.disown()
    index.ntotal = faiss.extract_index_ivf(index).ntotal = int(files.list_sizes(lists).sum())


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _write_atomic(path: Path, data: Any) -> None:
    """Write ``data`` to a temp file next to ``path``, fsync, rename over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        f.write(memoryview(data))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _stream_columns(folder: Path, dim: int, n: int, chunks: Iterable[Chunk], train_max: int) -> np.ndarray:
    """Pass 1: write the chunks to ``vectors.npy`` / ``vids.npy`` / ``ids.bin`` / ``ids_off.npy`` and return
    the float32 training sample (a seeded choice of at most ``train_max`` positions, fixed before reading)."""
    t = min(n, train_max)
    pick = np.sort(np.random.default_rng(0).choice(n, t, replace=False)) if t < n else np.arange(n)
    sample = np.empty((t, dim), dtype=np.float32)
    at = 0
    with (files.create_npy(folder / "vectors.npy", np.float16, (n, dim)) as fv,
          files.create_npy(folder / "vids.npy", np.int64, (n,)) as fi,
          files.create_npy(folder / "ids_off.npy", np.int64, (n + 1,)) as fo,
          open(folder / "ids.bin", "wb") as fb):
        files.write_rows(fo, np.zeros(1), np.int64)
        end = 0
        for c_vids, c_ids, c_mat in chunks:
            b = at + len(c_vids)
            if b > n:
                raise StoreError(f"{folder}: more vectors arrived than the {n} announced")
            files.write_rows(fv, c_mat, np.float16)
            files.write_rows(fi, c_vids, np.int64)
            blob, ends = files.encode_ids(list(c_ids), end)
            fb.write(blob)
            files.write_rows(fo, ends, np.int64)
            end = int(ends[-1]) if len(ends) else end
            lo, hi = np.searchsorted(pick, [at, b])
            sample[lo:hi] = np.asarray(c_mat, dtype=np.float16)[pick[lo:hi] - at]
            at = b
    if at != n:
        raise StoreError(f"{folder}: {at} vectors arrived, {n} announced")
    return sample


def _trained_index(sample: np.ndarray, dim: int, nlist: int, m: int) -> Any:
    """An empty ``IVF{nlist},PQ{m}x{nbits}`` (in-memory lists) trained on ``sample``."""
    nbits = int(min(8, max(4, math.floor(math.log2(max(len(sample) / 39, 2))))))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFPQ(quantizer, dim, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()
    index.train(sample)
    return index


def _encode_shards(folder: Path, index: Any, dim: int, n: int, step: int) -> list[Path]:
    """Pass 2: encode ``step`` rows at a time (positions as ids) into ``index``'s in-memory lists, write
    each shard's lists to a file and empty the index again. Returns the shard files in order."""
    shards: list[Path] = []
    path = folder / "vectors.npy"
    with open(path, "rb") as f:
        f.seek(files.data_offset(path))
        for a in range(0, n, step):
            rows = min(step, n - a)
            block = np.fromfile(f, dtype=np.float16, count=rows * dim).reshape(rows, dim)
            index.add_with_ids(block.astype(np.float32), np.arange(a, a + rows, dtype=np.int64))
            shards.append(folder / f"shard-{len(shards):06d}.ivl")
            files.write_shard(index, shards[-1])
            index.reset()
    return shards

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
