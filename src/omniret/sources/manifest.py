"""Rows from elsewhere as records: Parquet / CSV / TSV / JSONL manifests (the img2dataset and
clip-retrieval convention: one row per image, a URL or path column and a caption column), WebDataset
``.tar`` shards, and any iterable of dicts such as a Hugging Face ``datasets.Dataset``.

:class:`Columns` says which column is what; :func:`map_rows` turns rows into record dicts for
``Index.add_records`` (every other column becomes metadata unless ``metadata`` lists the ones to keep).
Files are read by their libraries, a batch at a time (``pyarrow`` for Parquet and CSV, ``json`` per
line, ``tarfile`` in stream mode), so a manifest of millions of rows never sits in memory. Relative
paths in a manifest are taken relative to the manifest's folder.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from omniret.errors import OmniretError

#: manifest file types by extension
TABLE_EXTS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl",
              ".ndjson": "jsonl"}
#: WebDataset member extensions by role (a key's members are ``<key>.<ext>``)
WDS_IMAGE = frozenset({"jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"})
WDS_AUDIO = frozenset({"flac", "wav", "mp3", "ogg", "opus", "m4a"})
WDS_TEXT = frozenset({"txt", "text", "caption"})


@dataclass(frozen=True)
class RowError:
    """A row that could not be read (bad JSON line, missing column, unreadable shard): reported by the
    ingest as ``(id, reason)`` like any other bad row."""

    id: str
    reason: str


@dataclass(frozen=True)
class Columns:
    """Which column holds what. ``image``/``audio``: a path, URL or bytes; ``text``: the caption or text;
    ``id``: your ids (default ``<source name>#<row number>``); ``uri``: where the content lives;
    ``metadata``: the columns kept as metadata (``None``: every column not named above)."""

    id: str | None = None
    image: str | None = None
    text: str | None = None
    audio: str | None = None
    uri: str | None = None
    metadata: tuple[str, ...] | None = None

    def named(self) -> dict[str, str]:
        """Record field → column, for the columns given."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "metadata" and getattr(self, f.name) is not None}

    def check(self) -> None:
        if self.image is None and self.text is None and self.audio is None:
            raise OmniretError("say which column holds the content: image (--image-col), text (--text-col) "
                               "or audio (--audio-col)")


def is_manifest(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a manifest (Parquet, CSV, TSV, JSONL) or a WebDataset ``.tar`` shard."""
    p = os.fspath(path).lower()
    return p.endswith(".tar") or os.path.splitext(p)[1] in TABLE_EXTS


def map_rows(rows: Iterable[Mapping[str, Any] | RowError], columns: Columns, *, name: str = "rows",
             base: str | None = None) -> Iterator[dict[str, Any] | RowError]:
    """Record dicts from ``rows``; ``base``: the folder relative image/audio paths are taken from."""
    columns.check()
    named = columns.named()
    taken = set(named.values())
    for n, row in enumerate(rows):
        if isinstance(row, RowError):
            yield row
            continue
        missing = [c for c in named.values() if c not in row]
        if missing:
            yield RowError(f"{name}#{n}", f"no column(s) {', '.join(missing)}; this row has "
                                          f"{', '.join(map(str, row)) or 'none'}")
            continue
        rec: dict[str, Any] = {field: row[col] for field, col in named.items() if row[col] is not None}
        rec.setdefault("id", f"{name}#{n}")
        for key in ("image", "audio"):
            if base is not None and isinstance(rec.get(key), str) and _relative_path(rec[key]):
                rec[key] = os.path.join(base, rec[key])
        keep = columns.metadata if columns.metadata is not None else [c for c in row if c not in taken]
        meta = {c: row[c] for c in keep if c in row and row[c] is not None and not isinstance(row[c], bytes)}
        if meta:
            rec["metadata"] = meta
        yield rec


def _relative_path(value: str) -> bool:
    return "://" not in value and not os.path.isabs(value)


class ManifestRows:
    """The rows of one manifest file as record dicts (sized: the row count is read from the file)."""

    def __init__(self, path: str | os.PathLike[str], columns: Columns, *, batch_rows: int = 8192) -> None:
        self.path = os.fspath(path)
        self.kind = "webdataset" if self.path.lower().endswith(".tar") else TABLE_EXTS.get(
            os.path.splitext(self.path)[1].lower())
        if self.kind is None:
            raise OmniretError(f"{self.path}: not a manifest; give a .parquet, .csv, .tsv, .jsonl file or a "
                               "WebDataset .tar shard")
        if not os.path.isfile(self.path):
            raise OmniretError(f"{self.path}: no such manifest file")
        if self.kind != "webdataset":
            columns.check()
        self.columns = columns
        self.batch_rows = batch_rows
        self._len: int | None = None

    def __len__(self) -> int:
        if self._len is None:
            self._len = _count_rows(self.path, self.kind)  # type: ignore[arg-type]
        return self._len

    def __iter__(self) -> Iterator[dict[str, Any] | RowError]:
        name, base = os.path.basename(self.path), os.path.dirname(os.path.abspath(self.path))
        if self.kind == "webdataset":
            return webdataset_records(self.path)
        return map_rows(_table_rows(self.path, self.kind, self.batch_rows), self.columns,  # type: ignore[arg-type]
                        name=name, base=base)


def _count_rows(path: str, kind: str) -> int:
    if kind == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    if kind == "webdataset":
        return 0  # unknown without reading the shard
    with open(path, "rb") as f:
        n = sum(1 for line in f if line.strip())
    return n - 1 if kind in ("csv", "tsv") else n


def _table_rows(path: str, kind: str, batch_rows: int) -> Iterator[dict[str, Any] | RowError]:
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            for rb in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
                yield from rb.to_pylist()
        elif kind in ("csv", "tsv"):
            import pyarrow.csv as pcsv

            parse = pcsv.ParseOptions(delimiter="\t" if kind == "tsv" else ",")
            # every column as text: ids like 00012 keep their zeros; metadata stays what the file says
            with pcsv.open_csv(path, parse_options=parse, convert_options=_text_columns(path, parse)) as reader:
                for rb in reader:
                    yield from rb.to_pylist()
        else:
            yield from _jsonl_rows(path)
    except OSError as e:
        raise OmniretError(f"{path}: cannot read the manifest ({e})") from e
    except Exception as e:
        if type(e).__module__.startswith("pyarrow"):
            raise OmniretError(f"{path}: cannot read it as {kind} ({e})") from e
        raise


def _text_columns(path: str, parse: Any) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    with pcsv.open_csv(path, parse_options=parse) as probe:
        names = probe.schema.names
    return pcsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=True)


def _jsonl_rows(path: str) -> Iterator[dict[str, Any] | RowError]:
    name = os.path.basename(path)
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                yield RowError(f"{name}:{n}", f"line {n} is not JSON ({e.msg})")
                continue
            yield row if isinstance(row, dict) else RowError(f"{name}:{n}", f"line {n} is not a JSON object")


# -- WebDataset shards --------------------------------------------------------------------------------
def webdataset_records(path: str) -> Iterator[dict[str, Any] | RowError]:
    """Records from a WebDataset shard: members grouped by key (``<key>.<ext>``: the name up to the first
    dot of the file name); ``jpg``/``png``/… → image bytes, ``txt`` → text, ``json`` → metadata (its
    ``caption``/``text`` also the text if there is no ``txt``), ``flac``/``wav``/… → audio bytes, other
    small members (``cls``) → metadata. The record id is the key; its uri ``file://<shard>#<key>``."""
    uri = Path(os.path.abspath(path)).as_uri()
    key, parts = None, {}
    try:
        with tarfile.open(path, mode="r|*") as tar:  # stream mode: one pass, no index of the archive
            for member in tar:
                if not member.isfile():
                    continue
                k, _, ext = _split_member(member.name)
                if key is not None and k != key:
                    yield _wds_record(key, parts, uri)
                    parts = {}
                key = k
                f = tar.extractfile(member)
                parts[ext.lower()] = f.read() if f is not None else b""
    except (tarfile.TarError, OSError, EOFError) as e:
        yield RowError(os.path.basename(path), f"cannot read the shard ({e}); rows before the damage were read")
        return
    if key is not None:
        yield _wds_record(key, parts, uri)


def _split_member(name: str) -> tuple[str, str, str]:
    folder, base = os.path.split(name)
    stem, dot, ext = base.partition(".")
    return (os.path.join(folder, stem) if folder else stem), dot, ext


def _wds_record(key: str, parts: Mapping[str, bytes], uri: str) -> dict[str, Any] | RowError:
    rec: dict[str, Any] = {"id": key, "uri": f"{uri}#{key}"}
    meta: dict[str, Any] = {}
    for ext, data in parts.items():
        last = ext.rsplit(".", 1)[-1]
        if last in WDS_IMAGE and "image" not in rec:
            rec["image"] = data
        elif last in WDS_AUDIO and "audio" not in rec:
            rec["audio"] = data
        elif last in WDS_TEXT:
            rec["text"] = data.decode("utf-8", errors="replace").strip()
        elif last == "json":
            try:
                obj = json.loads(data)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return RowError(key, f"{key}.{ext} is not JSON")
            meta.update(obj if isinstance(obj, dict) else {"json": obj})
        elif len(data) <= 1024:
            meta[ext] = data.decode("utf-8", errors="replace").strip()
    if "text" not in rec:
        cap = meta.get("caption", meta.get("text"))
        if isinstance(cap, str) and cap.strip():
            rec["text"] = cap
    if meta:
        rec["metadata"] = meta
    return rec


def rows_of(source: Any, columns: Columns | None, *, name: str | None = None) -> Iterable[Any]:
    """What ``Index.add_records`` iterates: ``source`` itself (records), or, with ``columns``, its rows
    mapped by them (a sized wrapper when ``source`` has a length, e.g. a ``datasets.Dataset``)."""
    if columns is None:
        return source  # type: ignore[no-any-return]
    label = name or _dataset_name(source)
    mapped = _Mapped(source, columns, label)
    return mapped if hasattr(source, "__len__") else iter(mapped)


def _dataset_name(source: Any) -> str:
    info = getattr(source, "info", None)
    for attr in ("dataset_name", "builder_name", "config_name"):
        v = getattr(info, attr, None)
        if isinstance(v, str) and v:
            return v
    return "rows"


class _Mapped:
    def __init__(self, source: Any, columns: Columns, name: str) -> None:
        self.source, self.columns, self.name = source, columns, name

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self) -> Iterator[dict[str, Any] | RowError]:
        return map_rows(self.source, self.columns, name=self.name)


def parse_columns(id_col: str | None = None, image_col: str | None = None, text_col: str | None = None,
                  audio_col: str | None = None, uri_col: str | None = None,
                  metadata_cols: Sequence[str] | str | None = None) -> Columns | None:
    """:class:`Columns` from the keyword form (``None`` when no column is named)."""
    meta = tuple(metadata_cols.split(",")) if isinstance(metadata_cols, str) else (
        tuple(metadata_cols) if metadata_cols is not None else None)
    if all(x is None for x in (id_col, image_col, text_col, audio_col, uri_col, meta)):
        return None
    return Columns(id=id_col, image=image_col, text=text_col, audio=audio_col, uri=uri_col, metadata=meta)


def chain_rows(parts: Sequence[Any]) -> Iterable[Any]:
    """Several sized row sources read one after the other (their lengths add up)."""
    return _Chain(parts)


class _Chain:
    def __init__(self, parts: Sequence[Any]) -> None:
        self.parts = parts

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def __iter__(self) -> Iterator[Any]:
        for p in self.parts:
            yield from p
