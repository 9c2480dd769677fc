"""Rebuilding a damaged ``omniret.db`` from what is still readable in it.

SQLite cannot rebuild a damaged index b-tree in place (``REINDEX`` and ``DROP`` must walk the damaged
pages to free them, and fail). So a repair writes a new database file: the schema, then every data table
copied from the old file by full table scans (which never touch index pages), then the FTS5 text index
filled again from the items; the ``AUTOINCREMENT`` counters are carried over so no vector id is reused
(saved FAISS indexes stay valid). The new file replaces the old one, which is kept beside it as
``omniret.db.damaged-<time>``.

With ``salvage=True`` a data table with damaged pages is copied row by row, skipping the row ids that
cannot be read (a damaged leaf page loses the rows on it); without it such a table stops the rebuild.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from omniret.errors import StoreError
from omniret.store import db_files, sql

#: the data tables, in copy order, with their columns (FTS5 is derived: rebuilt from ``items``)
TABLES: dict[str, str] = {
    "meta": "key, value",
    "items": "rowid, id, uri, modality, parent_id, span_start, span_end, text, metadata, content_hash, mtime",
    "spaces": "space, dim",
    "vectors": "vid, space, item, seq, vec",
    "tombstones": "vid, space, seq",
    "sources": "uri, size, mtime_ns, content_hash, error",
    "errors": "n, uri, reason, t",
}


def _copy_table(conn: sqlite3.Connection, reader: sqlite3.Connection, table: str, salvage: bool) -> int:
    """Copy ``old.table`` into ``main.table``; returns how many read errors were skipped (salvage only).

    A table that reads in full is copied in one statement through the attached old file; a damaged one
    (salvage) row by row through ``reader``, a separate connection, so the read errors never touch the
    transaction that writes the new file."""
    cols = TABLES[table]
    if not salvage or _scan(reader, f"SELECT {cols} FROM {table} NOT INDEXED"):
        conn.execute(f"INSERT OR IGNORE INTO main.{table}({cols}) SELECT {cols} FROM old.{table}")
        return 0
    lost, after, step = 0, -(2**63), 1
    marks = ", ".join("?" * len(cols.split(",")))
    while after < 2**62:
        try:
            row = reader.execute(f"SELECT rowid, {cols} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT 1",
                                 (after,)).fetchone()
        except sqlite3.DatabaseError:  # on a damaged page: skip ahead 1, 2, 4... row ids past it
            after, step, lost = after + step, step * 2, lost + 1
            continue
        if row is None:
            break
        step, after = 1, int(row[0])
        conn.execute(f"INSERT OR IGNORE INTO main.{table}({cols}) VALUES ({marks})", row[1:])
    return lost


def _rows(reader: sqlite3.Connection, query: str) -> list[tuple]:
    try:
        return reader.execute(query).fetchall()
    except sqlite3.DatabaseError:
        return []


def lost_files(reader: sqlite3.Connection, conn: sqlite3.Connection) -> list[str]:
    """URIs of the files that lost item or vector rows in a salvage, learned from the old file's *indexes*
    (separate b-trees that usually survive damage to the table): ``items_uri`` maps row → URI,
    ``vectors_item`` lists the items that had vectors. Their remaining items and change-detection state
    must go, so that the next ``add`` indexes them again instead of calling them unchanged."""
    old_uri = dict(_rows(reader, "SELECT rowid, uri FROM items INDEXED BY items_uri"))
    old_id = dict(_rows(reader, "SELECT rowid, id FROM items INDEXED BY sqlite_autoindex_items_1"))
    kept = {r[0] for r in conn.execute("SELECT rowid FROM main.items")}
    uris = {old_uri[r] for r in old_uri.keys() - kept}
    had = {r[0] for r in _rows(reader, "SELECT item FROM vectors INDEXED BY vectors_item")}
    has = {r[0] for r in conn.execute("SELECT DISTINCT item FROM main.vectors")}
    by_id = {i: old_uri.get(r) for r, i in old_id.items()}
    by_id.update(conn.execute("SELECT id, uri FROM main.items").fetchall())
    uris |= {by_id[i] for i in had - has if by_id.get(i) is not None}
    return sorted(sql.uri_value(u) for u in uris)


def _fill_fts(conn: sqlite3.Connection) -> None:
    rows = conn.execute("SELECT rowid, uri, text FROM main.items").fetchall()
    conn.executemany("INSERT INTO main.fts(rowid, text, name) VALUES (?, ?, ?)",
                     ((r[0], r[2] or "", sql.file_name_words(sql.uri_value(r[1]))) for r in rows))


def build_copy(old: Path, new: Path, *, salvage: bool) -> tuple[dict[str, int], list[str]]:
    """Write ``new``: ``old``'s data tables and a fresh FTS index. Returns the read errors skipped per table
    and the files that lost rows (:func:`lost_files`; only when something was skipped)."""
    new.unlink(missing_ok=True)
    conn = sqlite3.connect(new.absolute().as_uri(), isolation_level=None, uri=True)  # uri: ATTACH takes file: URIs
    lost: dict[str, int] = {}
    try:
        for statement in sql.SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("ATTACH DATABASE ? AS old", (f"{old.absolute().as_uri()}?mode=ro",))
        reader = sqlite3.connect(f"{old.absolute().as_uri()}?mode=ro", uri=True)
        conn.execute("BEGIN")
        try:
            for table in TABLES:
                n = _copy_table(conn, reader, table, salvage)
                if n:
                    lost[table] = n
            files = lost_files(reader, conn) if lost else []
        finally:
            reader.close()
        _fill_fts(conn)
        try:
            counters = conn.execute("SELECT name, seq FROM old.sqlite_sequence").fetchall()
        except sqlite3.DatabaseError:
            counters = []
        for name, seq in counters:
            conn.execute("UPDATE main.sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (seq, name))
            conn.execute("INSERT INTO main.sqlite_sequence(name, seq) SELECT ?, ? WHERE NOT EXISTS "
                         "(SELECT 1 FROM main.sqlite_sequence WHERE name = ?)", (name, seq, name))
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE old")
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise StoreError(f"{new}: the rebuilt database fails its own integrity check")
        conn.execute("PRAGMA journal_mode = WAL")
    except BaseException:
        conn.close()
        new.unlink(missing_ok=True)
        raise
    conn.close()
    return lost, files


def swap_in(folder: Path, new: Path) -> Path:
    """Replace ``folder/omniret.db`` by ``new`` (all connections to it must be closed); the old file and its
    WAL files are kept as ``omniret.db.damaged-<time>[-wal|-shm]``. Returns the kept file."""
    db = folder / db_files.DB_NAME
    kept = folder / f"{db_files.DB_NAME}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
    for suffix in ("-wal", "-shm"):
        side = db_files.sidecar(folder, suffix)
        if side.exists():
            os.replace(side, f"{kept}{suffix}")
    os.replace(db, kept)
    os.replace(new, db)
    return kept


def _scan(conn: sqlite3.Connection, query: str) -> bool:
    """Whether every row of ``query`` can be read (rows are read and dropped)."""
    try:
        for _ in conn.execute(query):
            pass
    except sqlite3.DatabaseError as e:
        if db_files.is_damage(e):
            return False
        raise
    return True


def damaged_objects(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """``(type, name)`` of every table and index that cannot be read in full: tables by a full scan (no index
    used), indexes by a scan of the index alone (a covering ``INDEXED BY`` read of its columns)."""
    out = []
    objects = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE type IN ('table', 'index')").fetchall()
    for kind, name, table, ddl in objects:
        if kind == "table" and not (ddl or "").upper().startswith("CREATE VIRTUAL"):
            ok = _scan(conn, f'SELECT * FROM "{name}" NOT INDEXED' if "WITHOUT ROWID" not in (ddl or "").upper()
                       else f'SELECT * FROM "{name}"')
        elif kind == "index":
            cols = [r[2] for r in conn.execute(f'PRAGMA index_info("{name}")') if r[2]]
            ok = not cols or _scan(conn, f'SELECT {", ".join(cols)} FROM "{table}" INDEXED BY "{name}" '
                                         f'ORDER BY {", ".join(cols)}')
        else:
            continue
        if not ok:
            out.append((kind, name))
    return out
