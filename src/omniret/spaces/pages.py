"""The index's optional page space: a multi-vector page model (ColPali/ColQwen2) over PDF pages.

``omniret.open(path, model=..., page_model="colpali:<hub id or folder>")`` (CLI: ``omniret add
--page-model ...``). The choice is recorded in the manifest (``manifest["page_encoder"]``: name,
config, space, dim) and restored on reopening; another name raises
:class:`~omniret.errors.ModelMismatchError` naming both. A page model given when opening an
existing index without one is attached: PDFs added or changed from then on get page matrices
(earlier ones do once they change; rebuild the index to embed them all). Both ingest engines
(``Index.add`` and ``--engine ray``) fill the page space.

- **Ingest**: every PDF page is rendered (short side ``page_size`` px) in the decode worker,
  travels as PNG bytes (bounded memory for long PDFs), and is embedded by ``encode_pages`` into a
  token matrix stored under the page item's id in the :class:`~omniret.spaces.multivector.MultiVectorIndex`
  at ``<index>/multivector/pages/`` (derived data: written *before* the store commit of the same
  files, so a crash leaves at most orphan matrices, which :meth:`PageSpace.sync` drops and a re-run
  of ``add`` supersedes). Removing pages or documents (``remove``, changed files, ``prune``)
  drops their matrices through :meth:`PageSpace.sync`. The Ray engine
  (:mod:`omniret.ingest.ray`) runs the same ingest code in its encoder actors with a
  :class:`PageCollector` (the page model embeds, the matrices travel back with the write batch)
  and the driver stores them (:meth:`PageSpace.store_pages`) before committing the batch.
- **Search**: a text query is embedded with ``encode_queries``, candidates come from MUVERA FDEs
  (Dhulipala et al. 2024) and are re-ranked by exact MaxSim (Khattab & Zaharia 2020). When other
  spaces contribute too, the page scores are T-normed against a fixed cohort of stored pages
  (:func:`omniret.methods.gap.cohort_tnorm`) so they merge with the other spaces' calibrated scores.
- **Matched region**: a returned page hit carries the page number (``span``, ``metadata["page"]``)
  and, when its image-token layout was recorded at encode time, ``metadata["region"]`` = the box
  of the page region that matched (:func:`matched_region`), computed for the returned hits only.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from omniret.errors import ModelError, ModelMismatchError, QueryError
from omniret.items import Hit, Item, Modality
from omniret.spaces.multivector import DEFAULT_CANDIDATES, PageLayout
from omniret.store.base import Filter, Store

#: how many stored pages (evenly spread in storage order) form the T-norm cohort of a query
COHORT = 256
#: a cell is part of the matched region when its MaxSim contribution is at least this share of the best cell's
REGION_KEEP = 0.5
Box = tuple[float, float, float, float]


def cell_box(row: int, col: int, rows: int, cols: int) -> Box:
    """Cell ``(row, col)`` of a ``rows × cols`` grid over the page as ``(x0, y0, x1, y1)`` fractions of the
    page, origin top-left (the convention of the layout blocks' ``bbox``, :mod:`omniret.media.pdf`)."""
    if not (0 <= row < rows and 0 <= col < cols):
        raise QueryError(f"cell ({row}, {col}) is outside a {rows}x{cols} grid")
    return col / cols, row / rows, (col + 1) / cols, (row + 1) / rows


def matched_region(query: np.ndarray, page: np.ndarray, layout: PageLayout,
                   keep: float = REGION_KEEP) -> dict[str, Any] | None:
    """The page region a MaxSim match came from, or ``None`` when no image token won.

    MaxSim (Khattab & Zaharia 2020) scores ``sum_i max_j <q_i, d_j>``: query token ``i`` is matched
    by its winning page row ``j*(i) = argmax_j <q_i, d_j>``. Winners among the image-patch rows
    (``layout``) are mapped to their grid cells; a cell's contribution is
    ``w(c) = sum_{i : cell(j*(i)) = c} <q_i, d_{j*(i)}>``, the part of the page's score it
    explains. The region is the bounding box of the cells with ``w(c) >= keep * max_c w(c)``
    (``keep`` = :data:`REGION_KEEP`), in page fractions, origin top-left (:func:`cell_box`).

    Returns ``{"bbox": [x0, y0, x1, y1], "cells": kept cells, "grid": [rows, cols], "tokens": query
    tokens whose winning row lies in a kept cell}``.
    """
    if not 0.0 < keep <= 1.0:
        raise QueryError(f"keep must be in (0, 1], got {keep}")
    q, d = np.asarray(query, dtype=np.float32), np.asarray(page, dtype=np.float32)
    sims = q @ d.T
    win = np.argmax(sims, axis=1)
    best = sims[np.arange(len(q)), win]
    n_cells = layout.rows * layout.cols
    cell = win - layout.start
    inside = (cell >= 0) & (cell < n_cells)
    if not inside.any():
        return None
    weight = np.bincount(cell[inside], weights=best[inside], minlength=n_cells)
    top = float(weight.max())
    if top <= 0:
        return None
    kept = np.flatnonzero(weight >= keep * top)
    r, c = kept // layout.cols, kept % layout.cols
    x0, y0, _, _ = cell_box(int(r.min()), int(c.min()), layout.rows, layout.cols)
    _, _, x1, y1 = cell_box(int(r.max()), int(c.max()), layout.rows, layout.cols)
    return {"bbox": [x0, y0, x1, y1], "cells": int(len(kept)),
            "grid": [layout.rows, layout.cols], "tokens": int(np.isin(cell[inside], kept).sum())}


def resolve(page_model: str | None, recorded: dict[str, Any] | None, path: str, **enc_kwargs: Any) -> Any:
    """The page model of an index: the recorded one, else the one asked for, else ``None``."""
    from omniret.encoders.registry import create_page_model

    if recorded:
        if page_model not in (None, "auto", recorded["name"]):
            raise ModelMismatchError(
                f"the index at {path} records page model {recorded['name']!r}, not {page_model!r}; open it with "
                f"page_model={recorded['name']!r} (or leave it out), or use another index folder")
        return create_page_model(recorded["name"], **{**recorded.get("config", {}), **enc_kwargs})
    if page_model in (None, "auto"):
        return None
    if "://" in path:
        raise ModelError(f"page_model needs a folder index (its token matrices live in <index>/multivector); "
                         f"{path!r} is a store URI: index PDFs there without a page model")
    return create_page_model(page_model, **enc_kwargs)


def manifest_entry(enc: Any) -> dict[str, Any]:
    return {"name": enc.name, "config": enc.config(), "space": enc.space, "dim": enc.dim,
            "metric": "maxsim", "storage": f"multivector/{enc.space}"}


def page_png(image: Any) -> bytes:
    """A rendered page as PNG bytes (lossless, ~10x smaller than raw pixels for text pages)."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _image(page: Any) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(page)).convert("RGB") if isinstance(page, bytes | bytearray) else page


def matches(item: Item, where: Filter | None) -> bool:
    """Whether a stored item passes ``where`` (the store's filter semantics, checked in Python)."""
    from omniret.store.milvus_expr import item_matches

    if where is None:
        return True
    if where.modalities is not None and item.modality not in where.modalities:
        return False
    if where.parent_id is not None and item.parent_id != where.parent_id:
        return False
    if where.ids is not None and item.id not in where.ids:
        return False
    if (where.mtime_min is not None or where.mtime_max is not None) and item.mtime is None:
        return False
    if where.mtime_min is not None and item.mtime is not None and item.mtime < where.mtime_min:
        return False
    if where.mtime_max is not None and item.mtime is not None and item.mtime > where.mtime_max:
        return False
    return item_matches(item, where)


class PageSpace:
    """A page model plus the multi-vector index of its page matrices (opened lazily)."""

    def __init__(self, encoder: Any, index_root: str) -> None:
        self.encoder = encoder
        self.root = index_root
        self._mv: Any = None

    @property
    def space(self) -> str:
        return str(self.encoder.space)

    @property
    def mv(self) -> Any:
        """The :class:`~omniret.spaces.multivector.MultiVectorIndex` at ``<index>/multivector/<space>``."""
        if self._mv is None:
            from omniret.spaces.multivector import MultiVectorIndex

            self._mv = MultiVectorIndex(self.root, self.encoder.space, self.encoder.dim)
        return self._mv

    def __len__(self) -> int:
        return len(self.mv)

    def add_pages(self, pages: Sequence[tuple[str, Any]]) -> int:
        """Embed ``(page id, PNG bytes or PIL image)`` pairs and store their token matrices (one segment per call)."""
        if not pages:
            return 0
        mats, layouts = self.embed_pages(pages)
        self.store_pages([i for i, _ in pages], mats, layouts)
        return len(pages)

    def store_pages(self, ids: Sequence[str], mats: Sequence[np.ndarray],
                    layouts: Sequence[PageLayout | None] | None = None) -> None:
        """Write already embedded pages (one segment); see :class:`PageCollector`."""
        if ids:
            self.mv.add(list(ids), list(mats), layouts)

    def embed_pages(self, pages: Sequence[tuple[str, Any]]) -> tuple[list[np.ndarray], list[PageLayout | None]]:
        """The page model's token matrices and image-token layouts of ``(page id, PNG or image)`` pairs."""
        images = [_image(p) for _, p in pages]
        if hasattr(self.encoder, "encode_pages_with_layout"):
            mats, layouts = self.encoder.encode_pages_with_layout(images)
            return list(mats), list(layouts)
        return list(self.encoder.encode_pages(images)), [None] * len(images)

    def sync(self, store: Store) -> int:
        """Drop the matrices of pages the store no longer holds; returns how many went."""
        ids = self.mv.ids()
        if not ids:
            return 0
        gone = [i for i, it in zip(ids, store.get(ids), strict=True) if it is None]
        return int(self.mv.remove(gone)) if gone else 0

    def query_tokens(self, text: str) -> np.ndarray:
        if not isinstance(text, str) or not text.strip():
            raise QueryError(f"query text must be a non-empty string, got {text!r}")
        return np.asarray(self.encoder.encode_queries([text])[0], dtype=np.float32)

    def search(self, tokens: np.ndarray, k: int, candidates: int | None = None) -> tuple[list[str], np.ndarray]:
        """Top-``k`` pages by exact MaxSim among the top MUVERA ``candidates`` (raw MaxSim scores)."""
        cand = max(candidates or DEFAULT_CANDIDATES, k)
        ids, scores = self.mv.search(tokens, k=k, candidates=cand)
        return list(ids), np.asarray(scores, dtype=np.float64)

    def cohort(self, tokens: np.ndarray, size: int = COHORT) -> np.ndarray:
        """Exact MaxSim of the query against up to ``size`` stored pages evenly spread in storage order."""
        from omniret.methods.late_interaction import maxsim

        ids = self.mv.ids()
        if not ids:
            return np.zeros(0)
        pick = np.unique(np.linspace(0, len(ids) - 1, num=min(size, len(ids))).astype(int))
        return maxsim(np.asarray(tokens, dtype=np.float32), [self.mv.tokens(ids[i]) for i in pick])

    # -- taking part in Index.search ----------------------------------------------------------------
    def query_for(self, text: str | None, opts: Any) -> np.ndarray | None:
        """The token matrix of a plain text query, or None when the page space sits this search out.

        It takes part when the search has no hubness or hybrid stage (the page space has neither),
        its modalities include documents, and pages are stored. ``opts`` is a
        :class:`~omniret.query.pipeline.StageOptions`; the caller checks that the query is plain text.
        """
        mods = opts.where.modalities if opts.where is not None else None
        if (text is None or opts.hubness != "none" or opts.hybrid != "none"
                or (mods is not None and Modality.DOCUMENT not in mods) or not len(self)):
            return None
        return self.query_tokens(text)

    def run(self, tokens: np.ndarray, opts: Any, store: Store, calibrate: bool) -> tuple[list[str], np.ndarray]:
        """Pages by MUVERA candidates + exact MaxSim, filtered like the other spaces' runs; T-normed against a
        cohort of stored pages when merged with other spaces (:func:`omniret.methods.gap.cohort_tnorm`)."""
        from omniret.methods.gap import cohort_tnorm

        filtered = opts.where is not None and not opts.where.is_empty()
        depth = opts.depth() * (4 if filtered else 1)  # the filter is applied after the search
        ids, scores = self.search(tokens, k=depth, candidates=opts.candidates)
        if filtered or opts.exclude:
            keep = [j for j, it in enumerate(store.get(ids)) if it is not None
                    and it.id not in opts.exclude and matches(it, opts.where)]
            ids, scores = [ids[j] for j in keep], scores[keep]
        if calibrate:
            scores = cohort_tnorm(scores, self.cohort(tokens))
        return ids, scores

    def mark_hits(self, hits: Sequence[Hit], run: tuple[Sequence[str], np.ndarray],
                  tokens: np.ndarray | None = None, limit: int | None = None) -> list[Hit]:
        """Hits whose merged score is their page-space score get ``metadata["matched_by"]`` = the page model,
        and with the query ``tokens``, the first ``limit`` of them (all: ``None``) their matched region."""
        page = dict(zip(run[0], np.asarray(run[1], dtype=np.float64).tolist(), strict=True))
        out = [replace(h, metadata={**h.metadata, "matched_by": self.encoder.name}) if page.get(h.id) == h.score
               else h for h in hits]
        if tokens is None:
            return out
        n = len(out) if limit is None else limit
        return self.with_regions([h for h in out[:n] if "matched_by" in h.metadata], tokens, out)

    def with_regions(self, hits: Sequence[Hit], tokens: np.ndarray, within: Sequence[Hit] | None = None) -> list[Hit]:
        """``within`` (default: ``hits``) with ``metadata["region"]`` (:func:`matched_region`) on each of ``hits``
        that is a stored page with a recorded layout and whose region is known."""
        regions: dict[str, dict[str, Any]] = {}
        for h in hits:
            if h.id in regions or h.id not in self.mv:
                continue
            layout = self.mv.layout(h.id)
            region = matched_region(tokens, self.mv.tokens(h.id), layout) if layout is not None else None
            if region is not None:
                regions[h.id] = region
        return [replace(h, metadata={**h.metadata, "region": regions[h.id]}) if h.id in regions else h
                for h in (hits if within is None else within)]


#: embedded pages in transit: ids, float16 token matrices (what the index stores), layouts
EmbeddedPages = tuple[list[str], list[np.ndarray], list[PageLayout | None]]


class PageCollector(PageSpace):
    """A page space that embeds pages but keeps their matrices instead of writing them.

    For ingest workers that must not write the index folder (Ray encoder actors, possibly on other
    machines): :func:`omniret.ingest.run.encode_files` calls :meth:`add_pages` as on one machine,
    :meth:`take` hands the result to the driver, which calls :meth:`PageSpace.store_pages`.
    """

    def __init__(self, encoder: Any) -> None:
        super().__init__(encoder, "")
        self._pending: EmbeddedPages = ([], [], [])

    def add_pages(self, pages: Sequence[tuple[str, Any]]) -> int:
        if not pages:
            return 0
        mats, layouts = self.embed_pages(pages)
        self._pending[0].extend(i for i, _ in pages)
        self._pending[1].extend(np.asarray(m, dtype=np.float32).astype(np.float16) for m in mats)
        self._pending[2].extend(layouts)
        return len(pages)

    def take(self) -> EmbeddedPages:
        """The pages embedded since the last call (and forget them)."""
        out, self._pending = self._pending, ([], [], [])
        return out

    @property
    def mv(self) -> Any:
        raise ModelError("a PageCollector only embeds pages; store them with PageSpace.store_pages on the index")
