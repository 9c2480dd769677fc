"""``Index.add_vectors``: vectors you computed elsewhere (e.g. published CLIP embeddings of a collection),
stored under ids through the same atomic commits and bad-row reporting as ``add``.

A vector lands in a *space*: the index's own (its dimension must match the model, and then text and
image queries reach it too) or a space you name, recorded in the manifest with its dimension on first
use (later calls must match it) and searched with ``Index.search(vector=..., space=...)``.
Ids may be new (a record item is created, ``uri`` ``record:<id>`` unless given) or existing (records,
or files' items in a space of your own: the model's vectors of a file are never overwritten). When an
existing item gets new fields, its vectors in the other spaces are carried into the same commit.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omniret.errors import OmniretError
from omniret.ingest.work import AddReport
from omniret.items import Item, Modality, is_record_uri, json_metadata
from omniret.store.base import Store, WriteBatch

ITEM_FIELDS = ("uri", "text", "metadata", "modality")
_FLOAT16_MAX = 65504.0


@dataclass(frozen=True)
class SpaceSpec:
    """Where vectors go: the space id, its dimension, whether it is the index model's own space."""

    space: str
    dim: int
    main: bool


def resolve_space(manifest: Mapping[str, Any], main_space: str, main_dim: int, space: str | None, dim: int,
                  normalize: bool) -> tuple[SpaceSpec, dict[str, Any] | None]:
    """Check ``dim`` against the space's recorded dimension. Returns the spec and, for a space seen for
    the first time, the manifest to write (the caller writes it before committing vectors)."""
    name = space or main_space
    if not isinstance(name, str) or not name.strip():
        raise OmniretError(f"space must be a non-empty string, got {space!r}")
    known = dict(manifest.get("spaces") or {})
    if name in known:
        want = int(known[name]["dim"])
        if dim != want:
            model = known[name].get("encoder") or "vectors added with add_vectors"
            hint = (f"; to keep {dim}-d vectors from another model, give them a space of their own: space='my-model'"
                    if name == main_space else "")
            raise OmniretError(f"space {name!r} holds {want}-d vectors ({model}), these are {dim}-d{hint}")
        return SpaceSpec(name, want, name == main_space), None
    if name == main_space and dim != main_dim:  # an index created before its manifest listed spaces
        raise OmniretError(f"the index's model embeds {main_dim}-d vectors, these are {dim}-d; "
                           "give them a space of their own: space='my-model'")
    entry = {"dim": dim, "metric": "ip", "normalized": bool(normalize), "encoder": None, "source": "add_vectors"}
    return SpaceSpec(name, dim, name == main_space), {**manifest, "spaces": {**known, name: entry}}


def check_matrix(vectors: Any, n_ids: int) -> np.ndarray:
    """``vectors`` as an ``(n_ids, dim)`` float32 matrix, or an error that says what shape was given."""
    try:
        mat = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise OmniretError(f"vectors must be a numeric (n, dim) array ({e})") from e
    if mat.ndim == 1 and n_ids == 1:
        mat = mat[None, :]
    if mat.ndim != 2 or mat.shape[0] != n_ids or mat.shape[1] == 0:
        raise OmniretError(f"vectors of shape {mat.shape} for {n_ids} ids; pass ({n_ids}, dim)")
    return mat


def _row_problem(row: np.ndarray, normalize: bool) -> str | None:
    if not np.all(np.isfinite(row)):
        return "vector holds NaN or infinity"
    norm = float(np.linalg.norm(row))
    if norm == 0.0:
        return "vector is all zeros"
    if not normalize and float(np.abs(row).max()) > _FLOAT16_MAX:
        return f"vector values beyond ±{_FLOAT16_MAX:g} (stored as float16); scale it or pass normalize=True"
    return None


def _new_item(rid: str, fields: Mapping[str, Any], modality: Modality) -> Item:
    unknown = sorted(str(k) for k in fields if k not in ITEM_FIELDS)
    if unknown:
        raise OmniretError(f"unknown item field(s) {', '.join(unknown)}; items take {', '.join(ITEM_FIELDS)}")
    uri = fields.get("uri") or f"record:{rid}"
    if not isinstance(uri, str):
        raise OmniretError(f"uri must be a string, got {uri!r}")
    if not is_record_uri(uri):
        uri = Path(uri).absolute().as_uri()
    text = fields.get("text")
    if text is not None and not isinstance(text, str):
        raise OmniretError(f"text must be a string, got {type(text).__name__}")
    mod = Modality.parse(fields["modality"]) if fields.get("modality") else modality
    return Item(rid, uri, mod, text=text, metadata=json_metadata(rid, fields.get("metadata")))


def write_vectors(store: Store, spec: SpaceSpec, ids: Sequence[Any], mat: np.ndarray,
                  items: Sequence[Mapping[str, Any] | None] | None, *, normalize: bool, modality: Modality,
                  commit_every: int) -> AddReport:
    """Commit ``mat``'s rows under ``ids`` into ``spec.space`` in batches of ``commit_every`` rows."""
    t0 = time.perf_counter()
    report = AddReport()
    if items is not None and len(items) != len(ids):
        raise OmniretError(f"{len(items)} items for {len(ids)} ids; give one item (or None) per id")
    for start in range(0, len(ids), max(1, commit_every)):
        stop = start + max(1, commit_every)
        part = None if items is None else items[start:stop]
        batch = _batch(store, spec, list(ids[start:stop]), mat[start:stop], part, normalize, modality, report)
        if len(batch) or batch.vectors:
            store.commit(batch)
    report.seconds = time.perf_counter() - t0
    return report


def _batch(store: Store, spec: SpaceSpec, ids: list[Any], mat: np.ndarray,
           items: Sequence[Mapping[str, Any] | None] | None, normalize: bool, modality: Modality,
           report: AddReport) -> WriteBatch:
    rows: dict[str, tuple[np.ndarray, Mapping[str, Any] | None]] = {}
    for n, (rid, row) in enumerate(zip(ids, mat, strict=True)):
        key = str(rid) if isinstance(rid, int | np.integer) and not isinstance(rid, bool) else rid
        problem = _row_problem(row, normalize) if isinstance(key, str) and key else "id must be a non-empty string"
        if problem is not None:
            report.failed.append((key if isinstance(key, str) and key else f"row {n}", problem))
            continue
        rows[key] = (row, None if items is None else items[n])  # a repeated id: the last row wins
    batch = WriteBatch()
    keep_ids, keep_rows, carried = [], [], []
    for (rid, (row, fields)), old in zip(rows.items(), store.get(list(rows)), strict=True):
        try:
            if old is not None and spec.main and not is_record_uri(old.uri):
                raise OmniretError(f"{rid!r} is the file item {old.uri!r}: its vector in the model's own space "
                                   "comes from the model; put yours in a space of their own (space='...')")
            if old is None:
                batch.items.append(_new_item(rid, fields or {}, modality))
            elif fields is not None:
                batch.items.append(_new_item(rid, {"uri": old.uri, "modality": old.modality.value, **fields}, modality))
                carried.append(rid)
        except OmniretError as e:
            report.failed.append((rid, str(e)))
            continue
        report.new += old is None
        report.changed += old is not None
        keep_ids.append(rid)
        keep_rows.append(row)
    if keep_ids:
        m = np.stack(keep_rows).astype(np.float32)
        if normalize:
            m /= np.linalg.norm(m, axis=1, keepdims=True)
        batch.vectors[spec.space] = (keep_ids, m)
        _carry_other_spaces(store, spec.space, carried, batch)
    report.items += len(keep_ids)
    return batch


def _carry_other_spaces(store: Store, space: str, ids: list[str], batch: WriteBatch) -> None:
    """An item upsert drops its vectors in every space: re-write those of ``ids`` outside ``space``."""
    if not ids:
        return
    for other in store.spaces():
        if other == space:
            continue
        vecs = store.vectors(other, ids)
        have = ~np.isnan(vecs).any(axis=1)
        if have.any():
            batch.vectors[other] = ([i for i, h in zip(ids, have, strict=True) if h], vecs[have])
