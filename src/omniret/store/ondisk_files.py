"""File formats of the ``ondisk`` index kind: growable ``.npy`` columns, an item-id column, compact lists.

Everything here is plain files read through ``numpy`` memory maps, so that an on-disk index holds
O(1) Python memory per vector:

- ``.npy`` columns (``vectors.npy`` float16 ``(n, d)``, ``vids.npy`` int64 ``(n,)``,
  ``ids_off.npy`` int64 ``(n + 1,)``) are written sequentially and grow along axis 0 in place
  (numpy pads the header so that the shape can grow, :func:`append_npy`).
- :class:`IdColumn`: item ids as UTF-8 bytes concatenated in ``ids.bin``, row ``p`` being
  ``ids.bin[off[p]:off[p+1]]``.
- Compact inverted lists (:func:`write_compact_lists`): the layout of ``faiss.OnDiskInvertedLists``
  (per list, ``capacity`` PQ codes then ``capacity`` int64 ids, lists back to back) with
  ``capacity == size`` for every list, i.e. exactly ``code_size + 8`` bytes a vector. FAISS's own
  growth path doubles a list's capacity on every overflow and never returns freed slots (measured
  ~360 B/vector for 64-byte codes), and ``merge_from_multiple`` leaves the whole merged file in the
  free-slot list, so that a later append overwrites live lists. The compact file is therefore only
  ever read (opened ``read_only``); new vectors go to a small in-memory delta that a compaction
  folds into a fresh compact file. Writing the file here, rather than through FAISS, also keeps
  FAISS from printing to the process's standard output (it ``printf``s on every file resize).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import faiss
import numpy as np

from omniret.errors import StoreError

ID_BYTES = 8  # FAISS ``idx_t``


def create_npy(path: Path, dtype: np.dtype[Any] | type, shape: tuple[int, ...]) -> BinaryIO:
    """Open a new ``.npy`` file whose header announces ``shape``; the caller writes the rows in order."""
    f = open(path, "wb")  # noqa: SIM115  # returned to the caller, who closes it
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(f, header)
    return f


def write_rows(f: BinaryIO, rows: np.ndarray, dtype: np.dtype[Any] | type) -> None:
    """Append ``rows`` (converted to ``dtype``) to an open ``.npy`` body."""
    f.write(np.ascontiguousarray(rows, dtype=dtype).data)


def data_offset(path: Path) -> int:
    """The byte offset of the array data in a ``.npy`` file (the header's length)."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        read(f)
        return f.tell()


def append_npy(path: Path, rows: np.ndarray) -> None:
    """Append ``rows`` along axis 0 of a C-order ``.npy`` file in place (its dtype and trailing shape)."""
    with open(path, "r+b") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
        offset = f.tell()
        row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        f.seek(offset + shape[0] * row_bytes)
        f.truncate()
        f.write(np.ascontiguousarray(rows, dtype=dtype).data)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran,
                  "shape": (shape[0] + len(rows), *shape[1:])}
        f.seek(0)
        write = np.lib.format.write_array_header_1_0 if version == (1, 0) else np.lib.format.write_array_header_2_0
        write(f, header)
        if f.tell() != offset:
            raise StoreError(f"{path}: header grew on append; delete the folder to rebuild the index")


def encode_ids(ids: Sequence[str], start: int) -> tuple[bytes, np.ndarray]:
    """UTF-8 bytes of ``ids`` back to back and their end offsets (starting after byte ``start``)."""
    raw = [str(s).encode() for s in ids]
    ends = start + np.cumsum(np.fromiter(map(len, raw), dtype=np.int64, count=len(raw)))
    return b"".join(raw), ends


def append_ids(folder: Path, ids: Sequence[str]) -> None:
    """Append item ids to ``ids.bin`` and their end offsets to ``ids_off.npy``."""
    off = np.load(folder / "ids_off.npy", mmap_mode="r")
    blob, ends = encode_ids(ids, int(off[-1]))
    del off
    with open(folder / "ids.bin", "ab") as f:
        f.write(blob)
    append_npy(folder / "ids_off.npy", ends)


class IdColumn:
    """Item ids by position, read on demand from ``ids.bin`` / ``ids_off.npy`` (both memory-mapped)."""

    def __init__(self, folder: Path, n: int) -> None:
        self.off = np.load(folder / "ids_off.npy", mmap_mode="r")[: n + 1]
        size = (folder / "ids.bin").stat().st_size
        self.blob = np.memmap(folder / "ids.bin", dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)
        if len(self.off) != n + 1 or int(self.off[-1]) > size:
            raise ValueError(f"{folder}: the item-id column is shorter than the index")

    def __len__(self) -> int:
        return len(self.off) - 1

    def __getitem__(self, pos: np.ndarray | int) -> np.ndarray:
        """The ids at ``pos`` (any shape) as an object array of ``str`` of the same shape."""
        p = np.asarray(pos, dtype=np.int64)
        flat = p.ravel()
        starts, ends = self.off[flat].tolist(), self.off[flat + 1].tolist()
        out = np.empty(len(flat), dtype=object)
        for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
            out[i] = self.blob[a:b].tobytes().decode()
        return out.reshape(p.shape)


def write_shard(index: Any, path: Path) -> None:
    """Write the in-memory inverted lists of ``index`` (an empty-but-trained IVF plus one shard) to ``path``."""
    writer = faiss.FileIOWriter(str(path))
    try:
        faiss.write_InvertedLists(faiss.extract_index_ivf(index).invlists, writer)
    finally:
        del writer  # flushes and closes the file


def read_shard(path: Path, mmap: bool = True) -> Any:
    """Inverted lists written by :func:`write_shard`: memory-mapped (read-only), or read into RAM."""
    return faiss.read_InvertedLists(faiss.FileIOReader(str(path)), faiss.IO_FLAG_MMAP if mmap else 0)


def write_compact_lists(path: Path, nlist: int, code_size: int, sources: Sequence[Any]) -> Any:
    """Concatenate the lists of ``sources`` (FAISS ``InvertedLists``, same ``nlist`` / ``code_size``)
    list by list into one compact file and open it as a read-only ``OnDiskInvertedLists``.

    Entry order inside list ``j`` is source order, then each source's own order, exactly what
    ``OnDiskInvertedLists.merge_from_multiple`` produces; the file takes ``n·(code_size + 8)`` bytes.
    """
    sizes = np.zeros(nlist, dtype=np.uint64)
    for il in sources:
        if il.nlist != nlist or il.code_size != code_size:
            raise StoreError(f"{path}: inverted lists of different shapes cannot be merged")
        sizes += np.fromiter((il.list_size(j) for j in range(nlist)), dtype=np.uint64, count=nlist)
    total = int(sizes.sum()) * (code_size + ID_BYTES)
    if total == 0:
        raise StoreError(f"{path}: no vectors to write (an on-disk index needs at least one)")
    with open(path, "wb") as f:
        for j in range(nlist):
            parts = [(il, il.list_size(j)) for il in sources]
            for il, s in parts:
                if s:
                    f.write(faiss.rev_swig_ptr(il.get_codes(j), s * code_size).data)
            for il, s in parts:
                if s:
                    f.write(faiss.rev_swig_ptr(il.get_ids(j), s).data)
        f.flush()
        os.fsync(f.fileno())
    return open_compact_lists(path, nlist, code_size, sizes)


def open_compact_lists(path: Path, nlist: int, code_size: int, sizes: np.ndarray) -> Any:
    """A read-only ``OnDiskInvertedLists`` over a compact file with list sizes ``sizes``."""
    sizes = np.ascontiguousarray(sizes, dtype=np.uint64)
    total = int(sizes.sum()) * (code_size + ID_BYTES)
    if path.stat().st_size != total:
        raise ValueError(f"{path}: {path.stat().st_size} bytes, expected {total}")
    lists = faiss.OnDiskInvertedLists(nlist, code_size, str(path))
    lists.set_all_lists_sizes(faiss.swig_ptr(sizes))
    lists.totsize = total
    lists.read_only = True
    lists.prefetch_nthread = 0  # FAISS would start threads per search to pre-read lists; the page cache does
    lists.do_mmap()
    return lists


def list_sizes(lists: Any) -> np.ndarray:
    """The size of every inverted list (uint64)."""
    return np.fromiter((lists.list_size(j) for j in range(lists.nlist)), dtype=np.uint64, count=lists.nlist)
