"""A small multi-vector (late-interaction) index: MUVERA candidates + exact MaxSim re-ranking.

Everything here is *derived data*: token matrices come from a multi-vector encoder (ColPali-like
page encoders), so the folder ``<index>/multivector/<space>/`` can be deleted and rebuilt from the
items by re-encoding them. Layout::

    meta.json                    dim, FDE config, list of committed segments (the commit point)
    seg-000001.tokens.npy        float16 token rows of every document of the segment, concatenated
    seg-000001.offsets.npy       int64 (n + 1,) row offsets: document i is rows offsets[i]:offsets[i+1]
    seg-000001.fdes.npy          float32 (n, fde_dim) document FDEs (Dhulipala et al. 2024)
    seg-000001.ids.json          the n item ids
    seg-000001.layout.npy        int32 (n, 3) per document: first image-token row, grid rows, grid cols
                                 (-1, 0, 0: unknown); absent in folders written before it (all unknown)
    removed.json                 ids removed since their segment was written (tombstones)

Segments are append-only; ``add`` writes a new one and then ``meta.json`` atomically. Re-adding an
id supersedes its older rows (the newest segment wins). ``compact`` rewrites the live documents as one
segment; ``rebuild`` clears the folder.

Search (Dhulipala et al., NeurIPS 2024, MUVERA): exact MIPS of the query FDE against every
document FDE, the top ``candidates`` re-ranked with exact MaxSim
``score(Q, D) = sum_i max_j <q_i, d_j>`` (Khattab & Zaharia 2020). With ``candidates >= len(index)``
the result is brute-force MaxSim.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from omniret.encoders.base import PageLayout
from omniret.errors import QueryError, StoreError
from omniret.methods.late_interaction import maxsim
from omniret.methods.muvera import FDEConfig, document_fde_batch, query_fde

__all__ = ["DEFAULT_CANDIDATES", "DEFAULT_FDE", "MultiVectorIndex", "PageLayout"]

_FORMAT = 1
_SUFFIXES = ("tokens.npy", "offsets.npy", "fdes.npy", "ids.json", "layout.npy")


#: MUVERA candidates re-ranked by exact MaxSim by default. ``bench/RESULTS_muvera.md`` (10k pages x 1,000
#: tokens, near-tied synthetic pages): with DEFAULT_FDE, C = 200 gives recall@10 0.97 at ~38x the speed of
#: brute-force MaxSim; C = 100 only 0.86.
DEFAULT_CANDIDATES = 200


def DEFAULT_FDE(dim: int) -> FDEConfig:  # noqa: N802 (a config factory read like a constant)
    """Document FDE settings measured in ``bench/RESULTS_muvera.md``: k_sim = 5, d_proj = 16, R = 20, fill on.

    The paper's main 10240-d setting; at 10k pages it kept recall@10 >= 0.9 from C = 200 on, where the
    cheaper 2560-d (k_sim 4, d_proj 8) setting, no faster there, reached 0.91.
    """
    return FDEConfig(dim, 5, 20, 1, 16, True)


def _write_atomic(path: Path, write: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)  # type: ignore[operator]
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class _Segment:
    """One committed segment, token rows memory-mapped."""

    def __init__(self, folder: Path, name: str) -> None:
        try:
            self.tokens = np.load(folder / f"{name}.tokens.npy", mmap_mode="r")
            self.offsets = np.load(folder / f"{name}.offsets.npy")
            self.fdes = np.load(folder / f"{name}.fdes.npy")
            self.ids: list[str] = json.loads((folder / f"{name}.ids.json").read_text())
            lay = folder / f"{name}.layout.npy"
            self.layouts = (np.load(lay) if lay.exists()  # older folders: layouts unknown
                            else np.tile(np.array([-1, 0, 0], np.int32), (len(self.ids), 1)))
        except (OSError, ValueError) as e:
            raise StoreError(f"multi-vector segment {folder / name} is unreadable ({e}); "
                             "delete the folder and rebuild it from the items") from e
        self.name = name

    def doc(self, i: int) -> np.ndarray:
        return np.asarray(self.stored(i), dtype=np.float32)

    def layout(self, i: int) -> PageLayout | None:
        start, rows, cols = (int(x) for x in self.layouts[i])
        return PageLayout(start, rows, cols) if start >= 0 and rows > 0 and cols > 0 else None

    def stored(self, i: int) -> np.ndarray:
        """Document ``i``'s float16 rows as stored (a memory-mapped view, no copy)."""
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]


class MultiVectorIndex:
    """Multi-vector documents of one embedding space, under ``<index_root>/multivector/<space>/``."""

    def __init__(self, index_root: str | Path, space: str, dim: int, fde: FDEConfig | None = None) -> None:
        if not space or "/" in space or space.startswith("."):
            raise QueryError(f"space name {space!r} must be a plain folder name such as 'colpali'")
        self.folder = Path(index_root) / "multivector" / space
        self.dim = dim
        self.fde = fde or DEFAULT_FDE(dim)
        if self.fde.dimension != dim:
            raise QueryError(f"FDE config has dimension {self.fde.dimension} but the space has dim {dim}")
        self._segments: list[_Segment] = []
        self._removed: set[str] = set()
        self._refresh()
        self._load()

    # ----- persistence -------------------------------------------------------------------------
    def _meta(self) -> dict:
        return {"format": _FORMAT, "dim": self.dim, "fde": asdict(self.fde),
                "segments": [s.name for s in self._segments],
                "derived_from": "the multi-vector encoder of this space; delete to rebuild"}

    def _load(self) -> None:
        meta_path = self.folder / "meta.json"
        if not meta_path.exists():
            return
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != _FORMAT or meta.get("dim") != self.dim or meta.get("fde") != asdict(self.fde):
            raise StoreError(f"{self.folder} was built with dim {meta.get('dim')} and FDE {meta.get('fde')}, "
                             f"not dim {self.dim} and {asdict(self.fde)}; call rebuild() and add the documents again")
        self._segments = [_Segment(self.folder, n) for n in meta["segments"]]
        removed = self.folder / "removed.json"
        self._removed = set(json.loads(removed.read_text())) if removed.exists() else set()
        self._refresh()

    def _commit(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = json.dumps(sorted(self._removed)).encode()
        _write_atomic(self.folder / "removed.json", lambda f: f.write(data))
        meta = json.dumps(self._meta(), indent=1).encode()
        _write_atomic(self.folder / "meta.json", lambda f: f.write(meta))
        self._refresh()

    def _refresh(self) -> None:
        """Live (segment, row) per id: the newest segment wins; tombstoned ids are dropped."""
        live: dict[str, tuple[int, int]] = {}
        for si, seg in enumerate(self._segments):
            for row, item_id in enumerate(seg.ids):
                live[item_id] = (si, row)
        for item_id in self._removed:
            live.pop(item_id, None)
        self._live = live
        self._fdes = (np.concatenate([s.fdes for s in self._segments]) if self._segments
                      else np.zeros((0, self.fde.final_dimension or self.fde.fde_dim), np.float32))
        starts = np.cumsum([0] + [len(s.ids) for s in self._segments])
        mask = np.zeros(len(self._fdes), dtype=bool)
        for si, row in live.values():
            mask[starts[si] + row] = True
        self._mask, self._starts = mask, starts

    # ----- public API --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._live

    def ids(self) -> list[str]:
        """Live ids in storage order."""
        return [i for i, _ in sorted(self._live.items(), key=lambda kv: kv[1])]

    def tokens(self, item_id: str) -> np.ndarray:
        """The stored (float16 -> float32) token matrix of ``item_id``."""
        if item_id not in self._live:
            raise QueryError(f"id {item_id!r} is not in the multi-vector index {self.folder}")
        si, row = self._live[item_id]
        return self._segments[si].doc(row)

    def layout(self, item_id: str) -> PageLayout | None:
        """The image-token layout stored with ``item_id``'s matrix, or ``None`` when it is unknown."""
        if item_id not in self._live:
            raise QueryError(f"id {item_id!r} is not in the multi-vector index {self.folder}")
        si, row = self._live[item_id]
        return self._segments[si].layout(row)

    def add(self, ids: Sequence[str], token_matrices: Sequence[np.ndarray],
            layouts: Sequence[PageLayout | None] | None = None) -> None:
        """Append documents as one new segment (re-added ids supersede their older rows).

        ``layouts``: per document, where its image-patch tokens are (``None``: unknown)."""
        mats = self._check_docs(ids, token_matrices)
        if not mats:
            return
        lay = self._check_layouts(ids, mats, layouts)
        fdes = np.asarray(document_fde_batch(mats, self.fde), dtype=np.float32)
        name = f"seg-{self._next_segment():06d}"
        self.folder.mkdir(parents=True, exist_ok=True)
        tokens = np.concatenate(mats).astype(np.float16)  # exact: mats are float16 values already
        offsets = np.concatenate([[0], np.cumsum([len(m) for m in mats])]).astype(np.int64)
        id_bytes = json.dumps(list(ids)).encode()
        for suffix, arr in (("tokens", tokens), ("offsets", offsets), ("fdes", fdes), ("layout", lay)):
            _write_atomic(self.folder / f"{name}.{suffix}.npy", lambda f, a=arr: np.save(f, a))
        _write_atomic(self.folder / f"{name}.ids.json", lambda f: f.write(id_bytes))
        self._segments.append(_Segment(self.folder, name))
        self._removed -= set(ids)
        self._commit()

    def remove(self, ids: Sequence[str]) -> int:
        """Tombstone ``ids``; returns how many were live. Unknown ids are ignored."""
        hit = [i for i in ids if i in self._live]
        if hit:
            self._removed |= set(hit)
            self._commit()
        return len(hit)

    def search(self, query_tokens: np.ndarray, k: int = 10,
               candidates: int = DEFAULT_CANDIDATES) -> tuple[list[str], np.ndarray]:
        """Top-``k`` ids by MaxSim among the top-``candidates`` documents by FDE inner product.

        Returns ``(ids, scores)`` best first; ties go to the earlier-stored document.
        """
        q = np.asarray(query_tokens, dtype=np.float32)
        if q.ndim != 2 or q.shape[0] == 0 or q.shape[1] != self.dim:
            raise QueryError(f"query tokens must be a non-empty (tokens, {self.dim}) array, got shape {q.shape}")
        if k < 1 or candidates < 1:
            raise QueryError(f"k and candidates must be >= 1, got k={k}, candidates={candidates}")
        if not self._live:
            return [], np.zeros(0)
        rows = np.flatnonzero(self._mask)
        qcfg = FDEConfig(**{**asdict(self.fde), "fill_empty_partitions": False})
        approx = (self._fdes @ query_fde(q, qcfg).astype(np.float32))[rows]  # no copy of the FDE matrix
        cand = rows[np.lexsort((rows, -approx))[: min(candidates, len(rows))]]
        exact = maxsim(q, [self._doc_at(r) for r in cand])  # float16 rows, converted once while padding
        order = np.lexsort((cand, -exact))[:k]
        ids = [self._id_at(r) for r in cand[order]]
        return ids, exact[order]

    def compact(self) -> None:
        """Rewrite the live documents as one segment (drops superseded and removed rows)."""
        ids = self.ids()
        mats = [self.tokens(i) for i in ids]
        layouts = [self.layout(i) for i in ids]
        old = list(self._segments)
        self._segments, self._removed = [], set()
        if ids:
            self.add(ids, mats, layouts)
        else:
            self._commit()
        for seg in old:
            for suffix in _SUFFIXES:
                (self.folder / f"{seg.name}.{suffix}").unlink(missing_ok=True)

    def rebuild(self) -> None:
        """Delete all derived data; add the documents again (re-encoded) afterwards."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self._segments, self._removed = [], set()
        self._refresh()

    # ----- helpers -----------------------------------------------------------------------------
    def _check_docs(self, ids: Sequence[str], mats: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(ids) != len(mats):
            raise QueryError(f"got {len(ids)} ids but {len(mats)} token matrices; pass one matrix per id")
        if len(set(ids)) != len(ids):
            raise QueryError("ids passed to add() must be unique within one call")
        out = []
        for item_id, m in zip(ids, mats, strict=True):
            a = np.asarray(m, dtype=np.float32)
            if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] != self.dim:
                raise QueryError(f"document {item_id!r} must be a non-empty (tokens, {self.dim}) array, got {a.shape}")
            stored = a.astype(np.float16).astype(np.float32)  # FDEs are computed from what is stored
            if not np.isfinite(stored).all():
                raise QueryError(f"document {item_id!r} has NaN, infinite or beyond-float16 values; "
                                 "normalise the encoder output")
            out.append(stored)
        return out

    @staticmethod
    def _check_layouts(ids: Sequence[str], mats: Sequence[np.ndarray],
                       layouts: Sequence[PageLayout | None] | None) -> np.ndarray:
        """The ``(n, 3)`` int32 layout rows of a new segment; each known layout must fit its matrix."""
        if layouts is None:
            layouts = [None] * len(mats)
        if len(layouts) != len(mats):
            raise QueryError(f"got {len(mats)} token matrices but {len(layouts)} layouts; pass one per id (or None)")
        out = np.tile(np.array([-1, 0, 0], np.int32), (len(mats), 1))
        for j, (item_id, m, lay) in enumerate(zip(ids, mats, layouts, strict=True)):
            if lay is None:
                continue
            start, rows, cols = (int(x) for x in lay)
            if start < 0 or rows < 1 or cols < 1 or start + rows * cols > len(m):
                raise QueryError(f"document {item_id!r}: layout {tuple(lay)} (start, rows, cols) does not fit its "
                                 f"{len(m)} token rows; give the image tokens' first row and grid, or None")
            out[j] = (start, rows, cols)
        return out

    def _next_segment(self) -> int:
        on_disk = (int(p.name.split(".")[0].split("-")[1]) for p in self.folder.glob("seg-*.ids.json"))
        return 1 + max([*(int(s.name.split("-")[1]) for s in self._segments), *on_disk], default=0)

    def _locate(self, row: int) -> tuple[int, int]:
        si = int(np.searchsorted(self._starts, row, side="right") - 1)
        return si, int(row - self._starts[si])

    def _doc_at(self, row: int) -> np.ndarray:
        si, r = self._locate(row)
        return self._segments[si].stored(r)

    def _id_at(self, row: int) -> str:
        si, r = self._locate(row)
        return self._segments[si].ids[r]
