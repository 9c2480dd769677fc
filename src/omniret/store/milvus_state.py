"""The Milvus backend's side state: a small local SQLite file (the commit log of the index).

Milvus has no multi-collection transactions, so what must change atomically with a batch lives here:
the commit counter (rows in Milvus with ``seq`` above it are invisible), the one *pending* batch
(its number and the URIs it touches, written before any Milvus write), source states, the error
log, the manifest, space dimensions, per-commit tombstone counts (for ``deleted_since``) and the rows
written to each collection since its last flush (for :mod:`omniret.store.milvus_flush`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import Any

from omniret.store import sql
from omniret.store.base import SourceState
from omniret.store.sql import uri_param, uri_value

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS spaces (space TEXT PRIMARY KEY, dim INTEGER NOT NULL, collection TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tombstones (space TEXT NOT NULL, seq INTEGER NOT NULL, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    uri TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, content_hash TEXT NOT NULL, error TEXT
);
CREATE TABLE IF NOT EXISTS errors (
    n INTEGER PRIMARY KEY AUTOINCREMENT, uri TEXT NOT NULL, reason TEXT NOT NULL, t REAL NOT NULL
);
"""


class SideState:
    """Thread-safe access to the side-state SQLite file (one writer connection, serialised)."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sql.connect(path, busy_timeout_s=30.0)
        self._conn.execute("PRAGMA journal_mode = WAL")
        with self.transaction() as c:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    c.execute(statement)
            for key, value in (("seq", "0"), ("manifest", "{}"), ("pending", ""), ("unflushed", "{}")):
                c.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def transaction(self) -> _Tx:
        return _Tx(self)

    def get(self, key: str) -> str:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return "" if row is None else str(row[0])

    def seq(self) -> int:
        return int(self.get("seq") or 0)

    def pending(self) -> tuple[int, list[str]] | None:
        text = self.get("pending")
        if not text:
            return None
        data = json.loads(text)
        return int(data["seq"]), list(data["uris"])

    def spaces(self) -> dict[str, tuple[int, str]]:
        with self._lock:
            rows = self._conn.execute("SELECT space, dim, collection FROM spaces ORDER BY space").fetchall()
        return {r[0]: (int(r[1]), str(r[2])) for r in rows}

    def sources(self) -> dict[str, SourceState]:
        with self._lock:
            rows = self._conn.execute("SELECT uri, size, mtime_ns, content_hash, error FROM sources").fetchall()
        states = (SourceState(uri_value(r[0]), int(r[1]), int(r[2]), r[3], r[4]) for r in rows)
        return {s.uri: s for s in states}

    def errors(self, limit: int) -> list[tuple[str, str, float]]:
        with self._lock:
            rows = self._conn.execute("SELECT uri, reason, t FROM errors ORDER BY n DESC LIMIT ?", (int(limit),))
            return [(uri_value(r[0]), r[1], float(r[2])) for r in rows.fetchall()]

    def deleted_since(self, space: str, since: int) -> int:
        with self._lock:
            row = self._conn.execute("SELECT coalesce(sum(n), 0) FROM tombstones WHERE space = ? AND seq > ?",
                                     (space, int(since))).fetchone()
        return int(row[0])

    def begin_batch(self, seq: int, uris: Sequence[str]) -> None:
        """Record the batch about to be written to Milvus (made visible by :meth:`finish_batch`)."""
        with self.transaction() as c:
            c.execute("UPDATE meta SET value = ? WHERE key = 'pending'", (json.dumps({"seq": seq, "uris": list(uris)}),))

    def finish_batch(
        self, seq: int, *, sources: Sequence[SourceState], delete_uris: Sequence[str],
        errors: Sequence[tuple[str, str]], tombstones: dict[str, int], new_spaces: dict[str, tuple[int, str]],
    ) -> None:
        """The commit point: the batch's side effects and the counter move in one SQLite transaction."""
        with self.transaction() as c:
            c.executemany("DELETE FROM sources WHERE uri = ?", [(uri_param(u),) for u in delete_uris])
            c.executemany("INSERT OR REPLACE INTO sources(uri, size, mtime_ns, content_hash, error) VALUES (?, ?, ?, ?, ?)",
                          [(uri_param(s.uri), int(s.size), int(s.mtime_ns), s.content_hash, s.error) for s in sources])
            now = time.time()
            c.executemany("INSERT INTO errors(uri, reason, t) VALUES (?, ?, ?)", [(uri_param(u), r, now) for u, r in errors])
            c.executemany("INSERT INTO tombstones(space, seq, n) VALUES (?, ?, ?)",
                          [(s, seq, n) for s, n in tombstones.items() if n])
            c.executemany("INSERT OR IGNORE INTO spaces(space, dim, collection) VALUES (?, ?, ?)",
                          [(s, d, coll) for s, (d, coll) in new_spaces.items()])
            c.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (str(seq),))
            c.execute("UPDATE meta SET value = '' WHERE key = 'pending'")

    def abandon_batch(self, uris: Sequence[str]) -> None:
        """After a failed or crashed batch: forget the sources it touched (the next ``add`` redoes them)."""
        with self.transaction() as c:
            c.executemany("DELETE FROM sources WHERE uri = ?", [(uri_param(u),) for u in uris])
            c.execute("UPDATE meta SET value = '' WHERE key = 'pending'")

    def unflushed(self) -> dict[str, int]:
        """Rows written (upserted or deleted) to each collection since its last flush; zeros left out."""
        return {k: int(v) for k, v in json.loads(self.get("unflushed") or "{}").items() if int(v) > 0}

    def add_unflushed(self, written: dict[str, int]) -> dict[str, int]:
        """Add ``written`` rows to the per-collection counts; returns the new counts."""
        with self.transaction() as c:
            row = c.execute("SELECT value FROM meta WHERE key = 'unflushed'").fetchone()
            counts = {k: int(v) for k, v in json.loads(row[0] if row and row[0] else "{}").items()}
            for name, n in written.items():
                counts[name] = counts.get(name, 0) + int(n)
            counts = {k: v for k, v in counts.items() if v > 0}
            c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('unflushed', ?)", (json.dumps(counts),))
        return counts

    def clear_unflushed(self, names: Sequence[str]) -> None:
        """After a flush of ``names``: their counts go back to zero."""
        with self.transaction() as c:
            row = c.execute("SELECT value FROM meta WHERE key = 'unflushed'").fetchone()
            counts = json.loads(row[0] if row and row[0] else "{}")
            for name in names:
                counts.pop(name, None)
            c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('unflushed', ?)", (json.dumps(counts),))

    def set(self, key: str, value: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _Tx:
    """``with state.transaction() as conn:`` — BEGIN IMMEDIATE … COMMIT (ROLLBACK on error)."""

    def __init__(self, state: SideState) -> None:
        self._state = state

    def __enter__(self) -> sqlite3.Connection:
        self._state._lock.acquire()
        self._state._conn.execute("BEGIN IMMEDIATE")
        return self._state._conn

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            self._state._conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._state._lock.release()
