"""Applying a :class:`~omniret.store.base.WriteBatch` to the embedded store's SQLite database.

:func:`validate_batch` checks and normalises a batch *before* the write lock is taken;
:func:`apply_batch` runs inside the caller's transaction, in this order: deletes by URI, deletes by
id, item upserts (a replaced item loses its old vectors in every space), vectors, source states,
errors. Every vector row removed leaves a tombstone stamped with the commit number, which is what
lets a FAISS index that covers an older commit be caught up by masking.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field

import numpy as np

from omniret.errors import StoreError
from omniret.store import sql
from omniret.store.base import WriteBatch


@dataclass
class PreparedBatch:
    """A validated batch: rows ready for SQL, duplicates resolved (the last one wins)."""

    items: list[tuple[object, ...]] = field(default_factory=list)
    fts: list[tuple[str, str, str]] = field(default_factory=list)  # (id, text, file-name words)
    vectors: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)  # float16
    delete_ids: list[str] = field(default_factory=list)
    delete_uris: list[str] = field(default_factory=list)
    sources: list[tuple[object, ...]] = field(default_factory=list)
    errors: list[tuple[str, str, float]] = field(default_factory=list)


def validate_batch(batch: WriteBatch) -> PreparedBatch:
    """Check ids, modalities and vector shapes; convert vectors to float16."""
    out = PreparedBatch()
    items = {}
    for it in batch.items:
        if not isinstance(it.id, str) or not it.id:
            raise StoreError(f"item with uri {it.uri!r} has an empty or non-string id {it.id!r}; give every item an id")
        items[it.id] = it
    for it in items.values():
        out.items.append(sql.item_to_row(it))
        out.fts.append((it.id, it.text or "", sql.file_name_words(it.uri)))
    for space, (ids, mat) in batch.vectors.items():
        m = np.asarray(mat, dtype=np.float32)
        if m.ndim != 2 or m.shape[0] != len(ids) or m.shape[1] == 0:
            raise StoreError(f"space {space!r}: vectors of shape {m.shape} for {len(ids)} ids; pass ({len(ids)}, dim)")
        last = {item_id: row for row, item_id in enumerate(ids)}
        rows = np.fromiter(last.values(), dtype=np.int64, count=len(last))
        half = m[rows].astype(np.float16)
        if not np.all(np.isfinite(half)):
            raise StoreError(f"space {space!r}: vectors hold NaN, infinity or values beyond float16; normalise them")
        out.vectors[space] = (list(last), half)
    out.delete_ids = list(dict.fromkeys(batch.delete_ids))
    out.delete_uris = list(dict.fromkeys(batch.delete_uris))
    out.sources = [(sql.uri_param(s.uri), int(s.size), int(s.mtime_ns), s.content_hash, s.error) for s in batch.sources]
    now = time.time()
    out.errors = [(sql.uri_param(uri), reason, now) for uri, reason in batch.errors]
    return out


def _in_list(values: list[str]) -> str:
    return json.dumps(values)


def delete_items(conn: sqlite3.Connection, ids: list[str], seq: int) -> None:
    """Remove items ``ids`` with their text rows and vectors (tombstoned at ``seq``)."""
    if not ids:
        return
    arg = _in_list(ids)
    remove_vectors(conn, "item IN (SELECT value FROM json_each(?))", [arg], seq)
    conn.execute("DELETE FROM fts WHERE rowid IN (SELECT rowid FROM items WHERE id IN (SELECT value FROM json_each(?)))", (arg,))
    conn.execute("DELETE FROM items WHERE id IN (SELECT value FROM json_each(?))", (arg,))


def remove_vectors(conn: sqlite3.Connection, cond: str, params: list[object], seq: int) -> None:
    """Delete the vector rows matching ``cond``, leaving a tombstone for each."""
    conn.execute(f"INSERT OR REPLACE INTO tombstones(vid, space, seq) SELECT vid, space, ? FROM vectors WHERE {cond}",
                 [seq, *params])
    conn.execute(f"DELETE FROM vectors WHERE {cond}", params)


def _write_vectors(conn: sqlite3.Connection, space: str, ids: list[str], half: np.ndarray, seq: int) -> None:
    dim = half.shape[1]
    row = conn.execute("SELECT dim FROM spaces WHERE space = ?", (space,)).fetchone()
    if row is None:
        conn.execute("INSERT INTO spaces(space, dim) VALUES (?, ?)", (space, dim))
    elif int(row[0]) != dim:
        raise StoreError(f"space {space!r} holds {row[0]}-d vectors; this batch gives {dim}-d: use the same encoder")
    arg = _in_list(ids)
    found = {r[0] for r in conn.execute("SELECT id FROM items WHERE id IN (SELECT value FROM json_each(?))", (arg,))}
    if len(found) != len(ids):
        missing = [i for i in ids if i not in found][:5]
        raise StoreError(f"space {space!r}: vectors for unknown item ids {missing}; add the items in the same batch")
    remove_vectors(conn, "space = ? AND item IN (SELECT value FROM json_each(?))", [space, arg], seq)
    conn.executemany(
        "INSERT INTO vectors(space, item, seq, vec) VALUES (?, ?, ?, ?)",
        ((space, item_id, seq, half[i].tobytes()) for i, item_id in enumerate(ids)),
    )


def apply_batch(conn: sqlite3.Connection, batch: PreparedBatch, seq: int) -> None:
    """Write ``batch`` as commit ``seq`` (inside the caller's open transaction)."""
    if batch.delete_uris:
        cond, params = sql.uri_in("uri", batch.delete_uris)
        ids = [r[0] for r in conn.execute(f"SELECT id FROM items WHERE {cond}", params)]
        delete_items(conn, ids, seq)
        conn.execute(f"DELETE FROM sources WHERE {cond}", params)
    delete_items(conn, batch.delete_ids, seq)
    delete_items(conn, [str(row[0]) for row in batch.items], seq)  # an upsert replaces the whole item
    conn.executemany(
        "INSERT INTO items(id, uri, modality, parent_id, span_start, span_end, text, metadata, content_hash, mtime) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch.items)
    conn.executemany("INSERT INTO fts(rowid, text, name) VALUES ((SELECT rowid FROM items WHERE id = ?), ?, ?)",
                     batch.fts)
    for space, (ids, half) in batch.vectors.items():
        _write_vectors(conn, space, ids, half, seq)
    conn.executemany("INSERT OR REPLACE INTO sources(uri, size, mtime_ns, content_hash, error) VALUES (?, ?, ?, ?, ?)",
                     batch.sources)
    conn.executemany("INSERT INTO errors(uri, reason, t) VALUES (?, ?, ?)", batch.errors)
