"""Export an index to Parquet and import it back: items, metadata and vectors, so an index moves to
LanceDB, Milvus, pandas or a colleague.

One row per item with the item's columns (``id``, ``uri``, ``modality``, ``parent_id``, ``span_start``,
``span_end``, ``text``, ``metadata`` as a JSON string, ``content_hash``, ``mtime``) and one
``fixed_size_list<float32>`` column per vector space: ``vector`` for the model's own space (the name
LanceDB and most vector databases look for), ``vector_<space>`` for the others, null where an item
has no vector there (a file's parent record). The schema metadata carries the manifest
(``omniret.manifest``) and which column holds which space (``omniret.spaces``), so an import knows the
model and checks dimensions. Written and read a row group at a time (``pyarrow``): memory stays at
one chunk whatever the index size.

Vectors are exported as stored (the embedded store keeps float16; the export widens them to float32),
so a round trip gives back the same vectors bit for bit. Source states (what ``add`` uses to skip
unchanged files) are not exported: they describe files on the exporting machine.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from omniret.errors import ModelMismatchError, OmniretError
from omniret.ingest.work import AddReport
from omniret.items import Item, Modality, json_metadata
from omniret.store.base import Store, WriteBatch

ITEM_COLUMNS = ("id", "uri", "modality", "parent_id", "span_start", "span_end", "text", "metadata",
                "content_hash", "mtime")
MANIFEST_KEY = b"omniret.manifest"
SPACES_KEY = b"omniret.spaces"


@dataclass(frozen=True)
class ExportReport:
    path: str
    items: int
    vectors: dict[str, int]  # per space
    columns: dict[str, str]  # vector column -> space
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "items": self.items, "vectors": self.vectors, "columns": self.columns,
                "seconds": round(self.seconds, 3)}


def _pa() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet  # noqa: F401 - registers pa.parquet
    except ImportError as e:
        raise OmniretError("export and import need pyarrow: pip install pyarrow") from e
    return pa


def vector_columns(spaces: Sequence[str], main_space: str) -> dict[str, str]:
    """Column name → space: ``vector`` for the model's space, ``vector_<space>`` (made safe) for others."""
    out: dict[str, str] = {}
    for space in sorted(spaces, key=lambda s: (s != main_space, s)):
        name = "vector" if space == main_space else "vector_" + (re.sub(r"[^0-9A-Za-z_]+", "_", space).strip("_") or "x")
        base, n = name, 2
        while name in out:
            name, n = f"{base}_{n}", n + 1
        out[name] = space
    return out


def _schema(pa: Any, columns: Mapping[str, str], dims: Mapping[str, int], manifest: Mapping[str, Any]) -> Any:
    fields = [pa.field("id", pa.string(), nullable=False), pa.field("uri", pa.string()), pa.field("modality", pa.string()),
              pa.field("parent_id", pa.string()), pa.field("span_start", pa.float64()),
              pa.field("span_end", pa.float64()), pa.field("text", pa.string()), pa.field("metadata", pa.string()),
              pa.field("content_hash", pa.string()), pa.field("mtime", pa.float64())]
    fields += [pa.field(col, pa.list_(pa.float32(), dims[space])) for col, space in columns.items()]
    meta = {MANIFEST_KEY: json.dumps(dict(manifest), sort_keys=True).encode(),
            SPACES_KEY: json.dumps(dict(columns)).encode()}
    return pa.schema(fields, metadata=meta)


def chunks(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    chunk: list[Item] = []
    for it in items:
        chunk.append(it)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def export_parquet(store: Store, main_space: str, path: str | os.PathLike[str], *,
                   spaces: Sequence[str] | None = None, chunk: int = 10_000) -> ExportReport:
    """Write every item of ``store`` with its vectors in ``spaces`` (default: all) to the Parquet file ``path``."""
    pa = _pa()
    t0 = time.perf_counter()
    dims = store.spaces()
    chosen = list(dims) if spaces is None else list(spaces)
    unknown = [s for s in chosen if s not in dims]
    if unknown:
        raise OmniretError(f"unknown space(s) {', '.join(unknown)}; this index has: {', '.join(sorted(dims)) or 'none'}")
    columns = vector_columns(chosen, main_space)
    schema = _schema(pa, columns, dims, store.manifest())
    out, tmp = os.fspath(path), os.fspath(path) + ".part"
    n, counts = 0, dict.fromkeys(chosen, 0)
    try:
        with pa.parquet.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for part in chunks(store.iter_items(), chunk):
                writer.write_table(_table(pa, schema, store, part, columns, dims, counts))
                n += len(part)
        os.replace(tmp, out)  # a half-written export never sits under the final name
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return ExportReport(out, n, counts, columns, time.perf_counter() - t0)


def _table(pa: Any, schema: Any, store: Store, items: list[Item], columns: Mapping[str, str],
           dims: Mapping[str, int], counts: dict[str, int]) -> Any:
    cols: dict[str, Any] = {
        "id": [it.id for it in items], "uri": [it.uri for it in items],
        "modality": [it.modality.value for it in items], "parent_id": [it.parent_id for it in items],
        "span_start": [None if it.span is None else it.span[0] for it in items],
        "span_end": [None if it.span is None else it.span[1] for it in items],
        "text": [it.text for it in items],
        "metadata": [json.dumps(it.metadata, sort_keys=True, ensure_ascii=False) for it in items],
        "content_hash": [it.content_hash for it in items], "mtime": [it.mtime for it in items],
    }
    ids = cols["id"]
    for col, space in columns.items():
        mat = store.vectors(space, ids)
        have = ~np.isnan(mat).any(axis=1)
        counts[space] += int(have.sum())
        flat = pa.array(np.where(have[:, None], mat, 0.0).astype(np.float32).ravel(), type=pa.float32())
        cols[col] = pa.FixedSizeListArray.from_arrays(flat, dims[space], mask=pa.array(~have))
    return pa.Table.from_pydict(cols, schema=schema)


# -- import -----------------------------------------------------------------------------------------
def read_header(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, str], Any]:
    """The exported manifest, the vector columns (column → space) and the Parquet file of an export."""
    pa = _pa()
    try:
        pf = pa.parquet.ParquetFile(os.fspath(path))
    except (OSError, pa.ArrowInvalid) as e:
        raise OmniretError(f"{path}: cannot read it as Parquet ({e})") from e
    meta = pf.schema_arrow.metadata or {}
    if MANIFEST_KEY not in meta or SPACES_KEY not in meta:
        raise OmniretError(f"{path}: not an omniret export (no omniret.manifest in its schema metadata); for "
                           "vectors from elsewhere use Index.add_vectors, for rows Index.add_records")
    missing = [c for c in ITEM_COLUMNS if c not in pf.schema_arrow.names]
    if missing:
        raise OmniretError(f"{path}: the export lacks column(s) {', '.join(missing)}")
    return json.loads(meta[MANIFEST_KEY]), json.loads(meta[SPACES_KEY]), pf


def check_model(exported: Mapping[str, Any], manifest: Mapping[str, Any], path: str) -> None:
    """Refuse an export whose model differs from the index's (their vectors would not meet)."""
    theirs, ours = exported.get("encoder") or {}, manifest.get("encoder") or {}
    if theirs.get("space") and ours.get("space") and theirs["space"] != ours["space"]:
        raise ModelMismatchError(
            f"{path} was exported from an index of model {theirs.get('name')!r} (space {theirs['space']!r}); this "
            f"index uses {ours.get('name')!r} (space {ours['space']!r}): import it into a new index folder "
            f"(its model is taken from the file), or open this one with model={theirs.get('name')!r}")


def import_rows(store: Store, pf: Any, columns: Mapping[str, str], *, batch_rows: int = 4096) -> AddReport:
    """Upsert every row of the export ``pf`` (items and their vectors) into ``store``, a row group at a time."""
    t0 = time.perf_counter()
    report = AddReport()
    for rb in pf.iter_batches(batch_size=batch_rows):
        batch = _write_batch(rb, columns, report)
        ids = [it.id for it in batch.items]
        old = store.get(ids)
        report.new += sum(o is None for o in old)
        report.changed += sum(o is not None for o in old)
        store.commit(batch)
        report.items += len(batch.items)
    report.seconds = time.perf_counter() - t0
    return report


def _write_batch(rb: Any, columns: Mapping[str, str], report: AddReport) -> WriteBatch:
    rows = rb.to_pydict()
    batch = WriteBatch()
    keep: list[int] = []
    for i, rid in enumerate(rows["id"]):
        try:
            batch.items.append(_item(rows, i))
            keep.append(i)
        except OmniretError as e:
            report.failed.append((str(rid) if rid else f"row {i}", str(e)))
    for col, space in columns.items():
        if col not in rb.schema.names:
            continue
        arr = rb.column(col)
        valid = [i for i in keep if arr[i].is_valid]
        if valid:
            mat = np.stack([np.asarray(arr[i].values, dtype=np.float32) for i in valid])
            batch.vectors[space] = ([rows["id"][i] for i in valid], mat)
    return batch


def _item(rows: Mapping[str, list[Any]], i: int) -> Item:
    rid = rows["id"][i]
    if not isinstance(rid, str) or not rid:
        raise OmniretError("row without an id")
    try:
        meta = json.loads(rows["metadata"][i] or "{}")
    except json.JSONDecodeError as e:
        raise OmniretError(f"metadata is not JSON ({e})") from e
    start, end = rows["span_start"][i], rows["span_end"][i]
    return Item(rid, rows["uri"][i] or f"record:{rid}", Modality.parse(rows["modality"][i] or "text"),
                parent_id=rows["parent_id"][i], span=None if start is None else (float(start), float(end)),
                text=rows["text"][i], metadata=json_metadata(rid, meta), content_hash=rows["content_hash"][i],
                mtime=rows["mtime"][i])


def merge_spaces(exported: Mapping[str, Any], manifest: Mapping[str, Any], columns: Mapping[str, str],
                 path: str) -> dict[str, Any] | None:
    """The index's manifest with the export's vector spaces added (``None`` when nothing is new);
    a space both know must have the same dimension."""
    theirs, ours = dict(exported.get("spaces") or {}), dict(manifest.get("spaces") or {})
    added = {}
    for space in columns.values():
        entry = theirs.get(space)
        if entry is None:
            raise OmniretError(f"{path}: vector space {space!r} is not described in the export's manifest")
        if space in ours:
            if int(ours[space]["dim"]) != int(entry["dim"]):
                raise OmniretError(f"{path}: space {space!r} holds {entry['dim']}-d vectors there, "
                                   f"{ours[space]['dim']}-d here")
        else:
            added[space] = entry
    return {**manifest, "spaces": {**ours, **added}} if added else None
