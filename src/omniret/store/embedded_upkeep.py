"""The embedded store's upkeep of its folder: read-only mode, WAL checkpoints, the commit marker, the
check-before-write, ``omniret check`` and rebuilding a damaged database (see :mod:`omniret.store.db_files`,
:mod:`omniret.store.check`, :mod:`omniret.store.rebuild`).

:class:`FolderUpkeep` is a mixin of :class:`omniret.store.embedded.EmbeddedStore`, kept apart so the store's
module holds its reads, writes and FAISS upkeep only.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from omniret.errors import StoreError, StoreWarning
from omniret.store import db_files
from omniret.store.base import Problem, WriteBatch

DB_NAME = db_files.DB_NAME


class FolderUpkeep:
    """Mixin: the parts of the embedded store that look after its files rather than its data."""

    path: Path
    read_only_reason: str | None
    _uuid: str
    _closed: bool
    _writer: sqlite3.Connection
    _watch: sqlite3.Connection
    _write_lock: Any
    _index_lock: Any
    _conns_lock: Any
    _conns: list[sqlite3.Connection]
    _local: threading.local
    _data_version: int | None

    # the store's own methods these rely on
    def _meta(self, conn: sqlite3.Connection, key: str) -> str: ...  # pragma: no cover
    def _conn(self) -> sqlite3.Connection: ...  # pragma: no cover
    def _new_conn(self) -> sqlite3.Connection: ...  # pragma: no cover
    def commit(self, batch: WriteBatch) -> None: ...  # pragma: no cover

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    def _check_marker(self) -> None:
        """Warn when the database holds fewer commits than were made (its -wal file was lost)."""
        marked = db_files.read_marker(self.path, self._uuid)
        seq = int(self._meta(self._watch, "seq") or 0)
        if marked is not None and marked > seq:
            warnings.warn(db_files.lost_commits_message(self.path, seq, marked), StoreWarning, stacklevel=3)

    def lost_commits(self) -> tuple[int, int] | None:
        """``(commit in the database, commit last made)`` when commits were lost with the -wal file, else None."""
        marked = db_files.read_marker(self.path, self._uuid)
        seq = int(self._meta(self._conn(), "seq") or 0)
        return (seq, marked) if marked is not None and marked > seq else None

    def _check_writable(self) -> None:
        if self.read_only_reason is not None:
            raise StoreError(f"{self.path}: the index is read-only ({self.read_only_reason}); add, remove and "
                             "bank need write access: copy the folder to writable storage, or fix its permissions")

    def checkpoint(self, *, resync_marker: bool = False) -> None:
        """Fold the write-ahead log into ``omniret.db`` and truncate it (``PRAGMA wal_checkpoint(TRUNCATE)``),
        so committed data no longer depends on the ``-wal`` file. Best effort: readers in other processes
        can keep part of the log alive until they finish (it stays valid; nothing is lost).

        ``resync_marker`` (the end of an ``add`` run): record the current commit as the latest made, which
        ends the lost-commits warning once the user has re-run ``add`` as it asks."""
        if self.read_only or self._closed:
            return
        with self._write_lock:
            if resync_marker:
                db_files.write_marker(self.path, self._uuid, int(self._meta(self._writer, "seq")))
            try:
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.Error as e:
                if db_files.is_damage(e):
                    raise db_files.damage_error(self.path / DB_NAME, e, "checkpointing") from e
                warnings.warn(f"{self.path}: WAL checkpoint failed ({e}); the data stays in {DB_NAME}-wal",
                              StoreWarning, stacklevel=2)

    _verified_at: float = -1e18

    def verify_before_write(self) -> None:
        """Run SQLite's ``quick_check`` before an ``add``/``remove`` run writes (on databases up to
        :data:`~omniret.store.db_files.PRECHECK_MAX_BYTES`), so a damaged file is reported, not written into.

        A long-lived store (the server, one ``add`` per upload) checks at its first write and then at most
        every :data:`~omniret.store.db_files.PRECHECK_EVERY_S` seconds; damage SQLite meets in between is
        reported by the write itself."""
        self._check_writable()
        db = self.path / DB_NAME
        now = time.monotonic()
        if db.stat().st_size > db_files.PRECHECK_MAX_BYTES or now - self._verified_at < db_files.PRECHECK_EVERY_S:
            return
        try:
            rows = [r[0] for r in self._conn().execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError as e:
            raise db_files.damage_error(db, e, "checking it before writing") from e
        if rows != ["ok"]:
            raise db_files.damage_error(db, "; ".join(map(str, rows)), "checking it before writing")
        self._verified_at = now  # (only a passed check counts)

    def rebuild_database(self, *, salvage: bool = False) -> tuple[Path, dict[str, int], list[str]]:
        """Write a new ``omniret.db`` from the readable tables of this one and swap it in (see
        :mod:`omniret.store.rebuild`); returns the kept damaged file, the read errors skipped per table and
        the files that lost rows (salvage: their items and state are removed, so ``add`` indexes them again).
        Run it while no other process uses the index: they would keep writing to the old file."""
        from omniret.store.rebuild import build_copy, swap_in

        self._check_writable()
        with self._write_lock, self._index_lock:
            new = self.path / f".{DB_NAME}.rebuild-{os.getpid()}"
            lost, files = build_copy(self.path / DB_NAME, new, salvage=salvage)
            with self._conns_lock:
                for conn in self._conns:
                    conn.close()
                self._conns.clear()
            self._local = threading.local()
            kept = swap_in(self.path, new)
            self._watch = self._new_conn()
            self._writer = self._new_conn()
            self._data_version = None
        if files:
            self.commit(WriteBatch(delete_uris=files))
        return kept, lost, files

    def check(self, *, repair: bool = False, salvage: bool = False) -> list[Problem]:
        """See :mod:`omniret.store.check` (a read-only store can be checked, not repaired)."""
        from omniret.store.check import check_store

        if repair:
            self._check_writable()
        return check_store(self, repair=repair, salvage=salvage)

    def _derived_folder(self) -> Path | None:
        """Where derived FAISS files go: ``<index>/faiss``, or for a read-only store a cache folder (None: none
        is writable, they stay in memory)."""
        if not self.read_only:
            return self.path / "faiss"
        return db_files.cache_folder(self._uuid)

