"""``Index``: the facade users hold. ``omniret.open(path, model=...)`` → add / remove / search / info.

The index is self-describing: its manifest records the encoder (registry name and constructor
arguments), the space, the dimension and the versions, so reopening needs no flags and opening
with a different model is an error that names both. No algorithm math lives here: it calls the
ingest pipeline, the store and the pure ranking stages in :mod:`omniret.search`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omniret.encoders.base import Encoder
from omniret.errors import ModelMismatchError, OmniretError, QueryError, StoreError
from omniret.ingest import AddReport, IngestOptions, run_add
from omniret.items import Hit, Item, Modality, Role
from omniret.store.base import Filter, Store, WriteBatch

SCHEMA_VERSION = 1
ImageLike = Any  # a path, or a PIL image


def _version() -> str:
    from omniret import __version__

    return __version__


class Index:
    """An omniret index: a store plus the encoder that fills it. Build with :meth:`Index.open`."""

    def __init__(self, store: Store, encoder: Encoder, path: str) -> None:
        self.store = store
        self.encoder = encoder
        self.path = path

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] = ".omniret",
        model: str | None = "auto",
        *,
        device: str | None = None,
        batch_size: int | None = None,
        store: Store | None = None,
        **store_options: Any,
    ) -> Index:
        """Open the index at ``path``, creating it if needed.

        ``model``: a registry name (``offline``, ``openclip:...``, ``st:...``) or ``auto``/``None``.
        On an existing index, ``auto``/``None`` means "the model recorded in the manifest"; any
        other name must match it, or :class:`ModelMismatchError` names both.
        """
        from omniret.encoders import registry
        from omniret.store import open_store

        path = os.fspath(path)
        st = store if store is not None else open_store(path, **store_options)
        try:
            manifest = st.manifest()
            enc_kwargs: dict[str, Any] = {}
            if device:
                enc_kwargs["device"] = device
            if batch_size:
                enc_kwargs["batch_size"] = batch_size
            recorded = manifest.get("encoder")
            if recorded:
                if model not in (None, "auto") and model != recorded["name"]:
                    raise ModelMismatchError(
                        f"the index at {path} was built with model {recorded['name']!r}, not {model!r}; "
                        f"open it with model={recorded['name']!r} (or 'auto'), or use another index folder"
                    )
                encoder = registry.create(recorded["name"], **{**recorded.get("config", {}), **enc_kwargs})
            else:
                encoder = registry.create(model or "auto", **enc_kwargs)
                st.set_manifest(_manifest_for(encoder))
        except BaseException:
            if store is None:
                st.close()
            raise
        return cls(st, encoder, path)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------
    def add(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        options: IngestOptions | None = None,
        progress: Callable[[int, int], None] | None = None,
        **option_kwargs: Any,
    ) -> AddReport:
        """Index files, folders and globs; unchanged files are skipped, changed ones re-embedded.

        Keyword arguments are :class:`IngestOptions` fields (``prune=True``, ``workers=0``...).
        Bad files are skipped, counted and listed in the report; nothing stored is lost.
        """
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        opts = options or IngestOptions(**option_kwargs)
        return run_add([os.fspath(p) for p in paths], self.store, self.encoder, opts, progress)

    def remove(self, ids_or_paths: Sequence[str]) -> int:
        """Remove items by id, or every item of a source file by its path. Returns how many went."""
        known = self.store.source_states()
        uris, ids = [], []
        for x in ids_or_paths:
            real = os.path.realpath(x) if os.path.exists(x) or os.path.isabs(x) else None
            if real is not None and real in known:
                uris.append(real)
            else:
                ids.append(x)
        before = self.store.count()
        self.store.commit(WriteBatch(delete_ids=ids, delete_uris=uris))
        return before - self.store.count()

    # -- searching -----------------------------------------------------------------------------
    def embed_query(self, text: str | None = None, image: ImageLike | None = None) -> np.ndarray:
        """The query vector ``(dim,)`` of a text or an image (a path or a PIL image)."""
        if (text is None) == (image is None):
            raise QueryError("give exactly one of text= or image= to embed a query")
        if text is not None:
            if not isinstance(text, str) or not text.strip():
                raise QueryError(f"query text must be a non-empty string, got {text!r}")
            return self.encoder.encode_text([text], role=Role.QUERY)[0]
        if not self.encoder.supports(Modality.IMAGE):
            raise QueryError(f"model {self.encoder.name!r} cannot embed images; query with text instead")
        return self.encoder.encode_images([_load_query_image(image, self.encoder.image_size)], role=Role.QUERY)[0]

    def search(
        self,
        text: str | None = None,
        *,
        image: ImageLike | None = None,
        k: int = 10,
        modality: str | Modality | Sequence[str | Modality] | None = None,
        where: Filter | Mapping[str, Any] | None = None,
        path_glob: str | None = None,
        mtime_min: float | None = None,
        mtime_max: float | None = None,
        rollup: bool = False,
    ) -> list[Hit]:
        """Search by text or by an example image. Always returns ``list[Hit]``, best first.

        ``modality`` restricts the kinds of items returned; ``where`` is equality on item metadata
        (or a full :class:`Filter`); ``rollup=True`` returns parents (files) instead of children
        (text chunks), each scored by its best child.
        """
        if not isinstance(k, int) or k < 1:
            raise QueryError(f"k must be a positive integer, got {k!r}")
        flt = make_filter(modality, where, path_glob, mtime_min, mtime_max)
        q = self.embed_query(text=text, image=image)
        depth = k * 4 if rollup else k
        scores, ids = self.store.search(self.encoder.space, q[None, :], depth, flt)
        pairs = [(i, float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i is not None]
        hits = self._hits(pairs)
        return (_rollup(hits, self.store) if rollup else hits)[:k]

    def _hits(self, pairs: Sequence[tuple[str, float]]) -> list[Hit]:
        items = self.store.get([i for i, _ in pairs])
        return [_hit(it, s) for it, (_, s) in zip(items, pairs, strict=True) if it is not None]

    def get(self, item_id: str) -> Item | None:
        return self.store.get([item_id])[0]

    # -- describing ----------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Counts, model, size on disk and the most recent ingest errors."""
        manifest = self.store.manifest()
        out = {"path": os.path.abspath(self.path), "model": self.encoder.name, "space": self.encoder.space,
               "dim": self.encoder.dim, "manifest": manifest}
        out.update(self.store.info())
        out["last_errors"] = [{"uri": u, "reason": r, "time": t} for u, r, t in self.store.errors(20)]
        return out


# -- helpers ------------------------------------------------------------------------------------
def _manifest_for(encoder: Encoder) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "omniret_version": _version(),
        "created": time.time(),
        "encoder": {"name": encoder.name, "config": encoder.config(), "space": encoder.space,
                    "dim": encoder.dim, "modalities": sorted(m.value for m in encoder.modalities)},
        "spaces": {encoder.space: {"dim": encoder.dim, "metric": "ip", "normalized": True,
                                   "encoder": encoder.name}},
    }


def make_filter(
    modality: str | Modality | Sequence[str | Modality] | None = None,
    where: Filter | Mapping[str, Any] | None = None,
    path_glob: str | None = None,
    mtime_min: float | None = None,
    mtime_max: float | None = None,
) -> Filter | None:
    """Build a :class:`Filter` from user-facing arguments (``None`` when nothing filters)."""
    if isinstance(where, Filter):
        base = where
    elif where is None:
        base = Filter()
    elif isinstance(where, Mapping):
        base = Filter(metadata=dict(where))
    else:
        raise QueryError(f"where must be a mapping of metadata key → value, got {type(where).__name__}")
    mods = base.modalities
    if modality is not None:
        seq = [modality] if isinstance(modality, str | Modality) else list(modality)
        mods = frozenset(Modality.parse(m) for m in seq)
    flt = Filter(
        modalities=mods,
        path_glob=path_glob if path_glob is not None else base.path_glob,
        mtime_min=mtime_min if mtime_min is not None else base.mtime_min,
        mtime_max=mtime_max if mtime_max is not None else base.mtime_max,
        metadata=base.metadata,
        parent_id=base.parent_id,
        ids=base.ids,
    )
    return None if flt.is_empty() else flt


def _load_query_image(image: ImageLike, target_size: int) -> Any:
    from PIL import Image

    from omniret.errors import MediaError
    from omniret.media.image import load_image, to_rgb

    if isinstance(image, Image.Image):
        return to_rgb(image)
    if isinstance(image, str | os.PathLike):
        try:
            return load_image(os.fspath(image), target_size=target_size)
        except MediaError as e:
            raise QueryError(f"query image {e}") from e
    raise QueryError(f"image must be a file path or a PIL image, got {type(image).__name__}")


def _hit(it: Item, score: float) -> Hit:
    return Hit(id=it.id, score=score, modality=it.modality, uri=it.uri, parent_id=it.parent_id,
               span=it.span, text=it.text, metadata=it.metadata)


def _rollup(hits: Sequence[Hit], store: Store) -> list[Hit]:
    """Children replaced by their parents, each parent scored by its best child (max-pooling)."""
    best: dict[str, Hit] = {}
    order: list[str] = []
    parent_ids = {h.parent_id for h in hits if h.parent_id}
    parents = {p.id: p for p in store.get(sorted(parent_ids)) if p is not None}
    for h in hits:
        key = h.parent_id if h.parent_id in parents else h.id
        if key in best:
            continue
        best[key] = _hit(parents[key], h.score) if key in parents else h
        order.append(key)
    return [best[key] for key in order]


def default_index_path() -> str:
    """``$OMNIRET_INDEX`` if set, else ``.omniret`` in the working directory (read when called)."""
    return os.environ.get("OMNIRET_INDEX") or ".omniret"


def ensure_index_exists(path: str) -> None:
    """Raise a clear error when a read-only command points at a folder that holds no index."""
    if not (Path(path) / "omniret.db").exists():
        raise StoreError(f"no omniret index at {path!r}; create one with `omniret add PATH` or pass --index DIR")


__all__ = ["Index", "OmniretError", "default_index_path", "ensure_index_exists", "make_filter"]
