"""SQLite pieces of the embedded store: schema, filter → SQL, FTS5 query sanitising, row codecs.

The database is the source of truth. Tables:

- ``items``: one row per :class:`~omniret.items.Item` (``id`` unique); ``fts`` mirrors its text and
  file name by ``rowid`` for BM25.
- ``vectors``: one float16 blob per (space, item), keyed by ``vid`` (``AUTOINCREMENT``, so a vid is
  never reused) and stamped with the commit ``seq`` that wrote it. FAISS ids come from ``vid``.
- ``tombstones``: ``(vid, space, seq)`` of every vector deleted or replaced, so an index that covers
  commit ``s`` can be caught up by masking the vids deleted after ``s``.
- ``spaces`` (dims), ``meta`` (commit counter, manifest, store uuid), ``sources``, ``errors``.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omniret.errors import QueryError
from omniret.items import Item, Modality, is_utf8, path_bytes
from omniret.store.base import Filter

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    uri TEXT NOT NULL,
    modality TEXT NOT NULL,
    parent_id TEXT,
    span_start REAL,
    span_end REAL,
    text TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    content_hash TEXT,
    mtime REAL
);
CREATE INDEX IF NOT EXISTS items_uri ON items(uri);
CREATE INDEX IF NOT EXISTS items_parent ON items(parent_id);
CREATE INDEX IF NOT EXISTS items_modality ON items(modality);
CREATE INDEX IF NOT EXISTS items_mtime ON items(mtime);
CREATE TABLE IF NOT EXISTS spaces (space TEXT PRIMARY KEY, dim INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vectors (
    vid INTEGER PRIMARY KEY AUTOINCREMENT,
    space TEXT NOT NULL,
    item TEXT NOT NULL,
    seq INTEGER NOT NULL,
    vec BLOB NOT NULL,
    UNIQUE (space, item)
);
CREATE INDEX IF NOT EXISTS vectors_item ON vectors(item);
CREATE INDEX IF NOT EXISTS vectors_space_seq ON vectors(space, seq);
CREATE TABLE IF NOT EXISTS tombstones (
    vid INTEGER PRIMARY KEY, space TEXT NOT NULL, seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tombstones_space_seq ON tombstones(space, seq);
CREATE TABLE IF NOT EXISTS sources (
    uri TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    content_hash TEXT NOT NULL, error TEXT
);
CREATE TABLE IF NOT EXISTS errors (
    n INTEGER PRIMARY KEY AUTOINCREMENT, uri TEXT NOT NULL, reason TEXT NOT NULL, t REAL NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    text, name, tokenize = 'unicode61 remove_diacritics 2'
);
"""

ITEM_COLUMNS = "i.id, i.uri, i.modality, i.parent_id, i.span_start, i.span_end, i.text, i.metadata, i.content_hash, i.mtime"

_WORD = re.compile(r"\w+", re.UNICODE)


def uri_param(uri: str) -> str | bytes:
    """How a URI is stored: as text when it is valid UTF-8 (every URI so far), else as its bytes.

    A file name that is not valid UTF-8 reaches Python as a string with lone surrogates
    (``surrogateescape``), which SQLite text cannot hold; it is stored as a BLOB of the name's bytes
    (:func:`omniret.items.path_bytes`), which SQLite never confuses with text, and
    :func:`uri_value` turns it back into the same string.
    """
    return uri if is_utf8(uri) else path_bytes(uri)


def uri_value(value: str | bytes) -> str:
    """Inverse of :func:`uri_param`."""
    return value if isinstance(value, str) else bytes(value).decode("utf-8", "surrogateescape")


def uri_in(column: str, uris: Sequence[str]) -> tuple[str, list[Any]]:
    """``(sql, params)`` of ``column IN uris``: text URIs as one JSON list, byte URIs (:func:`uri_param`) as parameters."""
    text = [u for u in uris if is_utf8(u)]
    raw = [path_bytes(u) for u in uris if not is_utf8(u)]
    cond = f"{column} IN (SELECT value FROM json_each(?))"
    if raw:
        cond = f"({cond} OR {column} IN ({', '.join('?' * len(raw))}))"
    return cond, [json.dumps(text), *raw]


def item_to_row(item: Item) -> tuple[Any, ...]:
    """The ``items`` columns (after rowid) of ``item``."""
    span = item.span if item.span is not None else (None, None)
    meta = json.dumps(item.metadata, sort_keys=True, separators=(",", ":"), default=str)
    return (
        item.id, uri_param(item.uri), Modality.parse(item.modality).value, item.parent_id, span[0], span[1],
        item.text, meta, item.content_hash, item.mtime,
    )


def row_to_item(row: Sequence[Any]) -> Item:
    """Inverse of :func:`item_to_row` for a row selected with :data:`ITEM_COLUMNS`."""
    span = None if row[4] is None else (float(row[4]), float(row[5]))
    return Item(
        id=row[0], uri=uri_value(row[1]), modality=Modality(row[2]), parent_id=row[3], span=span,
        text=row[6], metadata=json.loads(row[7]), content_hash=row[8], mtime=row[9],
    )


def file_name_words(uri: str) -> str:
    """The file name of ``uri`` split into words (``holiday_photo-02.jpg`` → ``holiday photo 02 jpg``)."""
    name = uri.rstrip("/").replace("\\", "/").rsplit("/", 1)[-1]
    return " ".join(_WORD.findall(name.replace("_", " ")))


def fts_query(text: str) -> str | None:
    """A safe FTS5 MATCH expression for free user text: every word quoted, joined with OR.

    Quoting each ``\\w+`` token means no user character can be read as FTS5 syntax (``AND``, ``*``,
    ``:``, ``"``, ``NEAR``...), so malformed input cannot raise. Returns ``None`` when ``text`` has
    no words at all.
    """
    words = _WORD.findall(text.replace("_", " "))
    if not words:
        return None
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(w.lower() for w in words))


def glob_to_sqlite(pattern: str) -> str:
    """Translate an ``fnmatch`` pattern to SQLite ``GLOB`` (same ``*``/``?``; ``[!x]`` → ``[^x]``).

    Both match case-sensitively and let ``*`` cross ``/``, as :class:`Filter` documents.
    """
    return pattern.replace("[!", "[^")


def _json_path(key: str) -> str:
    if '"' in key or "\\" in key:
        raise QueryError(f"metadata filter key {key!r}: keys with quotes or backslashes are not supported")
    return f'$."{key}"'


def _metadata_condition(key: str, value: Any) -> tuple[str, list[Any]]:
    path = _json_path(key)
    if value is None:
        return "json_type(i.metadata, ?) = 'null'", [path]
    if isinstance(value, bool):
        return "json_type(i.metadata, ?) = ?", [path, "true" if value else "false"]
    if isinstance(value, (int, float, str)):
        return "(json_type(i.metadata, ?) NOT IN ('true', 'false') AND json_extract(i.metadata, ?) = ?)", [
            path, path, value,
        ]
    if isinstance(value, (list, dict)):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
        return "json_extract(i.metadata, ?) = ?", [path, text]
    raise QueryError(
        f"metadata filter {key!r}: cannot compare a {type(value).__name__}; use a string, number, "
        "bool, None, list or dict"
    )


def filter_sql(where: Filter | None) -> tuple[str, list[Any]]:
    """``(sql, params)`` of a boolean SQL expression over ``items AS i`` that is true where ``where`` holds."""
    if where is None or where.is_empty():
        return "1", []
    conds: list[str] = []
    params: list[Any] = []
    if where.modalities is not None:
        conds.append("i.modality IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(Modality.parse(m).value for m in where.modalities)))
    if where.path_glob is not None:
        # a URI stored as bytes (a non-UTF-8 file name) is a BLOB, which GLOB only reads as text
        conds.append("(i.uri GLOB ? OR (typeof(i.uri) = 'blob' AND CAST(i.uri AS TEXT) GLOB ?))")
        params += [uri_param(glob_to_sqlite(where.path_glob))] * 2
    if where.mtime_min is not None:
        conds.append("i.mtime >= ?")
        params.append(float(where.mtime_min))
    if where.mtime_max is not None:
        conds.append("i.mtime <= ?")
        params.append(float(where.mtime_max))
    for key, value in where.metadata.items():
        sql, p = _metadata_condition(str(key), value)
        conds.append(sql)
        params.extend(p)
    if where.parent_id is not None:
        conds.append("i.parent_id = ?")
        params.append(where.parent_id)
    if where.ids is not None:
        conds.append("i.id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(where.ids)))
    return " AND ".join(conds), params


def connect(path: str | os.PathLike[str], *, busy_timeout_s: float, readonly: bool = False,
            mode: str | None = None) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, with a busy timeout.

    ``mode``: ``None`` (read-write, creating the file), ``"ro"`` (SQLite ``mode=ro``: reads, WAL included;
    writes fail) or ``"immutable"`` (``immutable=1``: for read-only media; no locks, the WAL is not read).
    ``readonly`` only forbids writes on this connection (``PRAGMA query_only``).
    """
    if mode is None:
        conn = sqlite3.connect(os.fspath(path), timeout=busy_timeout_s, isolation_level=None,
                               check_same_thread=False)
    else:
        query = {"ro": "mode=ro", "immutable": "mode=ro&immutable=1"}[mode]
        uri = f"{Path(os.path.abspath(os.fspath(path))).as_uri()}?{query}"
        conn = sqlite3.connect(uri, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False,
                               uri=True)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    if mode is None:
        conn.execute("PRAGMA synchronous = FULL")
    if readonly:
        conn.execute("PRAGMA query_only = 1")
    return conn
