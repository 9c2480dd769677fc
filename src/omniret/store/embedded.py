"""The embedded store: a folder with SQLite (WAL) as the source of truth and FAISS as derived data.

Layout::

    <folder>/omniret.db        records, float16 vectors, FTS5 text index, manifest, sources, errors
    <folder>/faiss/<space>.npz  one FAISS index per space + its position→row arrays and the commit
                                number it covers (safe to delete: rebuilt from SQLite)

Every :meth:`EmbeddedStore.commit` is one ``BEGIN IMMEDIATE … COMMIT`` transaction that bumps the
commit counter, so a crash leaves exactly the finished commits. A search first checks, with one
``PRAGMA data_version`` (a few µs), whether anything was committed since its index was caught up;
if so it adds the rows written after the index's commit and masks the rows deleted after it
(or rebuilds when that is the better deal). The search itself runs no SQL unless a filter is given.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from omniret.errors import QueryError, StoreError, StoreWarning
from omniret.items import Item
from omniret.store import db_files, sql
from omniret.store.base import Filter, SourceState, Store, WriteBatch, check_queries
from omniret.store.embedded_upkeep import FolderUpkeep
from omniret.store.faiss_index import KINDS, IndexConfig, SpaceIndex, saved_kind
from omniret.store.writes import apply_batch, validate_batch

DB_NAME = db_files.DB_NAME


def _space_file(space: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", space)[:60]
    return f"{safe}-{hashlib.blake2b(space.encode(), digest_size=4).hexdigest()}.npz"


class EmbeddedStore(FolderUpkeep, Store):
    """The default store: one folder, SQLite + FAISS. See the module docstring.

    ``index_kind`` is ``auto`` (exact ``flat`` below ``flat_threshold`` live vectors, ``ivfpq``
    from there on, or ``ondisk`` there when ``memory_budget`` bytes is given), ``flat``, ``hnsw``,
    ``ivfpq`` or ``ondisk`` (memory-mapped IVF-PQ, see :mod:`omniret.store.ondisk`). ``busy_timeout_s`` is how long a commit waits
    for another process's write lock before raising :class:`StoreError`.

    ``read_only``: ``None`` (default) opens read-only when the folder, the database or its WAL files cannot
    be written (read-only media, a shared mount, no permission; see :mod:`omniret.store.db_files`), ``True``
    always; a read-only store searches as usual, keeps derived FAISS files in a cache folder
    (``$XDG_CACHE_HOME/omniret/read-only/<store uuid>``, else in memory) and refuses writes with a
    :class:`StoreError` that says why.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        index_kind: str = "auto",
        flat_threshold: int = 100_000,
        nprobe: int = 32,
        busy_timeout_s: float = 30.0,
        memory_budget: int | None = None,
        config: IndexConfig | None = None,
        read_only: bool | None = None,
    ) -> None:
        if index_kind not in KINDS:
            raise StoreError(f"unknown index_kind {index_kind!r}; choose from {', '.join(KINDS)}")
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"{self.path} is a file; an embedded store is a folder: give a folder path")
        db = self.path / DB_NAME
        reason = db_files.read_only_reason(self.path) if db.exists() else None
        if read_only and reason is None:
            reason = "opened with read_only=True"
        if reason is not None and not db.exists():
            raise StoreError(f"no omniret index at {self.path}; a read-only store cannot create one")
        if reason is None:
            self.path.mkdir(parents=True, exist_ok=True)
        #: why this store cannot be written, or None
        self.read_only_reason = reason
        self._mode: str | None = None
        if reason is not None:
            self._mode, unread = db_files.read_only_mode(db, busy_timeout_s)
            if unread:
                warnings.warn(unread, StoreWarning, stacklevel=2)
        self._cfg = config or IndexConfig(kind=index_kind, flat_threshold=flat_threshold, nprobe=nprobe,
                                          memory_budget=memory_budget)
        self._busy = busy_timeout_s
        self._closed = False
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._indexes: dict[str, SpaceIndex] = {}
        self._watch_lock = threading.Lock()
        self._data_version: int | None = None
        self._seq = 0
        try:
            self._watch = self._new_conn()
            self._writer = self._watch if reason is not None else self._new_conn()
            self._init_schema()
            self._uuid = self._meta(self._watch, "uuid")
            self._check_marker()
        except sqlite3.Error as e:
            self.close()
            if db_files.is_damage(e):
                raise db_files.damage_error(db, e, "opening it") from e
            raise StoreError(f"{db}: cannot open the store database ({e})") from e
        except BaseException:
            self.close()
            raise
        for space in self.spaces():
            try:
                self._fresh_index(space)
            except Exception as e:  # noqa: BLE001 - derived data: reported, the store still opens (omniret check)
                warnings.warn(f"{self.path}: the FAISS index of space {space!r} cannot be built ({type(e).__name__}: "
                              f"{e}); run `omniret check`", StoreWarning, stacklevel=2)

    # -- connections ----------------------------------------------------------------------------
    def _new_conn(self) -> sqlite3.Connection:
        conn = sql.connect(self.path / DB_NAME, busy_timeout_s=self._busy, mode=self._mode)
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        """This thread's read connection."""
        if self._closed:
            raise StoreError(f"{self.path}: the store is closed; open it again")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._new_conn()
        return conn

    def _init_schema(self) -> None:
        w = self._writer
        if self.read_only:
            self._check_schema(w)
            return
        w.execute("PRAGMA journal_mode = WAL")
        self._begin_write(w)
        try:
            for statement in sql.SCHEMA.split(";"):
                if statement.strip():
                    w.execute(statement)
            for key, value in (("uuid", uuid.uuid4().hex), ("seq", "0"), ("manifest", "{}"),
                               ("schema_version", str(sql.SCHEMA_VERSION))):
                w.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (key, value))
            w.execute("COMMIT")
        except BaseException:
            w.execute("ROLLBACK")
            raise
        self._check_schema(w)

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        try:
            version = int(self._meta(conn, "schema_version"))
        except ValueError as e:
            raise StoreError(f"{self.path / DB_NAME}: no valid schema version (meta table damaged: {e}); "
                             "run `omniret check`") from e
        if version != sql.SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {version}, this omniret reads "
                             f"{sql.SCHEMA_VERSION}; upgrade omniret or rebuild the index")

    @staticmethod
    def _meta(conn: sqlite3.Connection, key: str) -> str:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return "" if row is None else str(row[0])

    def _begin_write(self, conn: sqlite3.Connection) -> None:
        self._check_writable()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise StoreError(
                f"{self.path}: another process has held the write lock for over {self._busy:g} s ({e}); "
                "wait for its add/remove to finish, or open the store with a larger busy_timeout_s"
            ) from e

    # -- manifest -------------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        text = self._meta(self._conn(), "manifest") or "{}"
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise StoreError(f"{self.path / DB_NAME}: the manifest (table meta, key 'manifest') is damaged: not JSON "
                             f"({e}). Run `omniret check` for how to rewrite it") from e
        if not isinstance(value, dict):
            raise StoreError(f"{self.path / DB_NAME}: the manifest (table meta, key 'manifest') is damaged: a JSON "
                             f"{type(value).__name__}, not an object. Run `omniret check` for how to rewrite it")
        return value

    def set_manifest(self, manifest: Mapping[str, Any]) -> None:
        text = json.dumps(dict(manifest), sort_keys=True)
        with self._write_lock:
            self._check_open()
            self._begin_write(self._writer)
            self._writer.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('manifest', ?)", (text,))
            self._writer.execute("COMMIT")

    # -- writes ---------------------------------------------------------------------------------
    def commit(self, batch: WriteBatch) -> None:
        """Apply ``batch`` in one SQLite transaction and bump the commit counter."""
        prepared = validate_batch(batch)
        with self._write_lock:
            self._check_open()
            w = self._writer
            self._begin_write(w)
            try:
                seq = int(self._meta(w, "seq")) + 1
                apply_batch(w, prepared, seq)
                w.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (str(seq),))
                w.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('commit_time', ?)", (repr(time.time()),))
                w.execute("COMMIT")
            except BaseException as e:
                if w.in_transaction:
                    w.execute("ROLLBACK")
                if db_files.is_damage(e):
                    raise db_files.damage_error(self.path / DB_NAME, e, "committing") from e
                if isinstance(e, sqlite3.Error):
                    raise StoreError(f"{self.path}: commit failed and was rolled back ({e})") from e
                raise
            db_files.write_marker(self.path, self._uuid, seq)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self.path}: the store is closed; open it again")

    # -- FAISS upkeep ---------------------------------------------------------------------------
    def _current_seq(self) -> int:
        """The latest commit number, re-read only when ``PRAGMA data_version`` says it moved."""
        self._check_open()
        with self._watch_lock:
            dv = self._watch.execute("PRAGMA data_version").fetchone()[0]
            if dv != self._data_version:
                self._data_version = dv
                self._seq = int(self._meta(self._watch, "seq"))
            return self._seq

    def _fresh_index(self, space: str) -> SpaceIndex:
        idx = self._indexes.get(space)
        if idx is None or idx.seq < self._current_seq():
            idx = self._catch_up(space)
        return idx

    def _catch_up(self, space: str) -> SpaceIndex:
        with self._index_lock:
            conn = self._conn()
            conn.execute("BEGIN")
            try:
                seq = int(self._meta(conn, "seq"))
                row = conn.execute("SELECT dim FROM spaces WHERE space = ?", (space,)).fetchone()
                if row is None:
                    known = ", ".join(sorted(self.spaces())) or "none yet"
                    raise StoreError(f"unknown vector space {space!r}; this store has: {known}")
                dim = int(row[0])
                idx = self._indexes.get(space) or self._load_saved(space, dim, seq)
                if idx is not None and idx.seq < seq:
                    idx = self._apply_changes(conn, space, idx, seq)
                built = idx is None
                if idx is None:
                    idx = self._build(conn, space, dim, seq)
            finally:
                conn.execute("COMMIT")
            self._indexes[space] = idx
            if built:
                self._save(space, idx)
            return idx

    def rebuild_index(self, space: str) -> None:
        """Throw away the FAISS index of ``space`` (in memory and its saved file) and build it again."""
        with self._index_lock:
            idx = self._indexes.pop(space, None)
            if idx is not None:
                idx.release()
            for folder in {self.path / "faiss", self._derived_folder()} - {None}:
                with contextlib.suppress(OSError):
                    (folder / _space_file(space)).unlink()  # type: ignore[operator]
        self._fresh_index(space)

    def _load_saved(self, space: str, dim: int, seq: int) -> SpaceIndex | None:
        path = self.path / "faiss" / _space_file(space)
        cache = self._derived_folder()
        if self.read_only and cache is not None and (cache / _space_file(space)).exists():
            path = cache / _space_file(space)
        if not path.exists():
            return None
        try:
            if saved_kind(path) == "ondisk":
                from omniret.store.ondisk import OnDiskIndex  # noqa: PLC0415 - FAISS on-disk parts load only when used

                idx: SpaceIndex = OnDiskIndex.load(path, self._cfg, self._uuid, dim)
            else:
                idx = SpaceIndex.load(path, self._cfg, self._uuid, dim)
        except Exception:  # a broken derived file is rebuilt, never trusted
            return None
        return idx if idx.seq <= seq else None

    def _apply_changes(self, conn: sqlite3.Connection, space: str, idx: SpaceIndex, seq: int) -> SpaceIndex | None:
        """Catch ``idx`` up to ``seq`` in place; ``None`` when a rebuild is better."""
        dead = np.array([r[0] for r in conn.execute(
            "SELECT vid FROM tombstones WHERE space = ? AND seq > ?", (space, idx.seq))], dtype=np.int64)
        n_new = conn.execute("SELECT count(*) FROM vectors WHERE space = ? AND seq > ?", (space, idx.seq)).fetchone()[0]
        idx.lock.acquire_write()
        try:
            idx.mask(dead)
            if idx.needs_rebuild(n_new):
                return None
            vids, ids, mat = _read_vectors(conn, space, idx.dim, "AND seq > ?", (idx.seq,))
            if len(vids) and len(idx.vids) and vids[0] <= idx.vids[-1]:
                return None
            idx.add(vids, ids, mat)
            idx.seq = seq
        finally:
            idx.lock.release_write()
        return idx

    def _build(self, conn: sqlite3.Connection, space: str, dim: int, seq: int) -> SpaceIndex:
        n = int(conn.execute("SELECT count(*) FROM vectors WHERE space = ?", (space,)).fetchone()[0])
        if self._cfg.choose(n) == "ondisk":
            from omniret.store.ondisk import OnDiskIndex, sqlite_chunks  # noqa: PLC0415

            folder = self._derived_folder()
            if folder is not None:
                chunks = sqlite_chunks(conn, space, dim, self._cfg.build_chunk)()
                return OnDiskIndex.build_chunks(folder / _space_file(space), dim, self._cfg, n, chunks, seq)
        cfg = self._cfg
        if cfg.choose(n) == "ondisk":  # read-only with no cache folder: the same lists, in memory
            cfg = replace(cfg, kind="ivfpq", memory_budget=None, ondisk_threshold=None)
        vids, ids, mat = _read_vectors(conn, space, dim, "", ())
        return SpaceIndex.build(dim, cfg, vids, ids, mat, seq)

    def _save(self, space: str, idx: SpaceIndex) -> None:
        idx.lock.acquire_read()
        folder = self._derived_folder()
        if folder is None:
            return
        try:
            idx.save(folder / _space_file(space), self._uuid)
        except OSError as e:  # derived data: the store still works, it only rebuilds next time
            warnings.warn(f"{self.path}: could not save the FAISS index of {space!r} ({e})", stacklevel=3)
        finally:
            idx.lock.release_read()

    # -- reads ----------------------------------------------------------------------------------
    def search(
        self, space: str, queries: np.ndarray, k: int, where: Filter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self._search(space, queries, k, where, keyed=False)
        return scores, ids

    def search_keyed(
        self, space: str, queries: np.ndarray, k: int, where: Filter | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Keys are SQLite vector row ids (``vectors.vid``), which the FAISS index maps positions to."""
        scores, ids, keys = self._search(space, queries, k, where, keyed=True)
        return scores, ids, keys

    def _search(self, space: str, queries: np.ndarray, k: int, where: Filter | None, *, keyed: bool
                ) -> tuple[np.ndarray, ...]:
        if not isinstance(k, int | np.integer) or k < 1:  # before any index work
            raise QueryError(f"k must be a positive integer, got {k!r}")
        idx = self._fresh_index(space)
        q = check_queries(queries, k, idx.dim, space)
        filtered = where is not None and not where.is_empty()
        # a modality-only filter recurs (calibrate, --modality): its positions and selector are kept
        key = ("modalities", where.modalities) if filtered and where.only_modalities() else None  # type: ignore[union-attr]
        restriction = idx.cached_restriction(key)
        vids = self._filtered_vids(space, where) if filtered and restriction is None else None  # type: ignore[arg-type]
        idx.lock.acquire_read()
        try:
            if vids is not None:
                restriction = idx.restrict(idx.positions(vids), key)
            return idx.search(q, int(k), keyed=keyed, restriction=restriction)
        finally:
            idx.lock.release_read()

    def _filtered_vids(self, space: str, where: Filter) -> np.ndarray:
        cond, params = sql.filter_sql(where)
        cur = self._conn().execute(
            f"SELECT v.vid FROM vectors v JOIN items i ON i.id = v.item WHERE v.space = ? AND {cond} ORDER BY v.vid",
            [space, *params])
        return np.array([r[0] for r in cur], dtype=np.int64)

    def vectors(self, space: str, ids: Sequence[str]) -> np.ndarray:
        dim = self.spaces().get(space)
        if dim is None:
            raise StoreError(f"unknown vector space {space!r}; this store has: {', '.join(sorted(self.spaces())) or 'none yet'}")
        out = np.full((len(ids), dim), np.nan, dtype=np.float32)
        rows = dict(self._conn().execute(
            "SELECT item, vec FROM vectors WHERE space = ? AND item IN (SELECT value FROM json_each(?))",
            (space, json.dumps(list(ids)))).fetchall())
        for i, item_id in enumerate(ids):
            if item_id in rows:
                out[i] = np.frombuffer(rows[item_id], dtype=np.float16)
        return out

    def lexical(self, text: str, k: int, where: Filter | None = None) -> list[tuple[str, float]]:
        if k < 1:
            raise QueryError(f"k must be a positive integer, got {k!r}")
        match = sql.fts_query(text)
        if match is None:
            return []
        cond, params = sql.filter_sql(where)
        rows = self._conn().execute(
            f"SELECT i.id, bm25(fts) AS s FROM fts JOIN items i ON i.rowid = fts.rowid "
            f"WHERE fts MATCH ? AND {cond} ORDER BY s, i.id LIMIT ?", [match, *params, int(k)])
        return [(r[0], -float(r[1])) for r in rows]

    def get(self, ids: Sequence[str]) -> list[Item | None]:
        rows = self._conn().execute(
            f"SELECT {sql.ITEM_COLUMNS} FROM items i WHERE i.id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(ids)),))
        found = {r[0]: sql.row_to_item(r) for r in rows}
        return [found.get(i) for i in ids]

    def iter_items(self, where: Filter | None = None) -> Iterator[Item]:
        cond, params = sql.filter_sql(where)
        cur = self._conn().execute(f"SELECT {sql.ITEM_COLUMNS} FROM items i WHERE {cond} ORDER BY i.rowid", params)
        while rows := cur.fetchmany(1000):
            yield from (sql.row_to_item(r) for r in rows)

    def count(self, where: Filter | None = None) -> int:
        cond, params = sql.filter_sql(where)
        return int(self._conn().execute(f"SELECT count(*) FROM items i WHERE {cond}", params).fetchone()[0])

    def spaces(self) -> dict[str, int]:
        return {s: int(d) for s, d in self._conn().execute("SELECT space, dim FROM spaces ORDER BY space")}

    def source_states(self) -> dict[str, SourceState]:
        rows = self._conn().execute("SELECT uri, size, mtime_ns, content_hash, error FROM sources")
        states = (SourceState(sql.uri_value(r[0]), int(r[1]), int(r[2]), r[3], r[4]) for r in rows)
        return {s.uri: s for s in states}

    def errors(self, limit: int = 100) -> list[tuple[str, str, float]]:
        rows = self._conn().execute("SELECT uri, reason, t FROM errors ORDER BY n DESC LIMIT ?", (int(limit),))
        return [(sql.uri_value(r[0]), r[1], float(r[2])) for r in rows]

    def info(self) -> dict[str, Any]:
        conn = self._conn()
        modalities = dict(conn.execute("SELECT modality, count(*) FROM items GROUP BY modality").fetchall())
        per_space = dict(conn.execute("SELECT space, count(*) FROM vectors GROUP BY space").fetchall())
        spaces = {}
        for space, dim in self.spaces().items():
            n = int(per_space.get(space, 0))
            idx = self._indexes.get(space)
            spaces[space] = {"dim": dim, "vectors": n, "index_kind": idx.kind if idx else self._cfg.choose(n)}
        commit_time = self._meta(conn, "commit_time")
        return {
            "backend": "embedded",
            "path": str(self.path),
            "items": sum(modalities.values()),
            "modalities": modalities,
            "spaces": spaces,
            "bytes_on_disk": _folder_bytes(self.path),
            "commit": int(self._meta(conn, "seq")),
            "last_commit_time": float(commit_time) if commit_time else None,
        }

    # -- change tracking ----------------------------------------------------------------------------
    def version(self) -> int:
        return self._current_seq()

    def seen_version(self) -> int:
        """The commit number the last freshness check read (every search makes one), no SQL."""
        return self._seq if self._data_version is not None else self._current_seq()

    def iter_vectors(
        self, space: str, *, since: int = 0, chunk: int = 10_000
    ) -> Iterator[tuple[list[str], list[str], np.ndarray]]:
        for ids, mods, mat, _ in self.iter_vectors_keyed(space, since=since, chunk=chunk):
            yield ids, mods, mat

    def iter_vectors_keyed(
        self, space: str, *, since: int = 0, chunk: int = 10_000
    ) -> Iterator[tuple[list[str], list[str], np.ndarray, np.ndarray | None]]:
        dim = self.spaces().get(space)
        if dim is None:
            return
        cur = self._conn().execute(
            "SELECT v.item, i.modality, v.vec, v.vid FROM vectors v JOIN items i ON i.id = v.item "
            "WHERE v.space = ? AND v.seq > ? ORDER BY v.vid", (space, int(since)))
        while rows := cur.fetchmany(chunk):
            mat = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float16).reshape(len(rows), dim)
            yield ([r[0] for r in rows], [r[1] for r in rows], mat.astype(np.float32),
                   np.fromiter((r[3] for r in rows), dtype=np.int64, count=len(rows)))

    def deleted_since(self, space: str, since: int) -> int:
        row = self._conn().execute(
            "SELECT count(*) FROM tombstones WHERE space = ? AND seq > ?", (space, int(since))).fetchone()
        return int(row[0])

    def close(self) -> None:
        """Save indexes that changed since they were saved, fold the WAL into the database, close every connection."""
        if self._closed:
            return
        for space, idx in list(getattr(self, "_indexes", {}).items()):
            if idx.dirty:
                self._save(space, idx)
            idx.release()
        if getattr(self, "_writer", None) is not None:
            with contextlib.suppress(StoreError, sqlite3.Error):
                self.checkpoint()
        self._closed = True
        with self._conns_lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()


def _read_vectors(
    conn: sqlite3.Connection, space: str, dim: int, extra: str, params: tuple[Any, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(vids, item ids, float16 matrix)`` of the stored vectors of ``space``, by increasing vid."""
    cur = conn.execute(f"SELECT vid, item, vec FROM vectors WHERE space = ? {extra} ORDER BY vid", (space, *params))
    vids: list[int] = []
    ids: list[str] = []
    blobs: list[bytes] = []
    while rows := cur.fetchmany(10_000):
        for v, i, b in rows:
            vids.append(v)
            ids.append(i)
            blobs.append(b)
    mat = np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(vids), dim)
    return np.array(vids, dtype=np.int64), np.array(ids, dtype=object), mat


def _folder_bytes(folder: Path) -> int:
    total = 0
    for p in folder.rglob("*"):
        try:
            total += p.stat().st_size if p.is_file() else 0
        except OSError:  # a temp file renamed away meanwhile
            pass
    return total


db_files.guard_damage(EmbeddedStore, DB_NAME, (
    "manifest", "search", "search_keyed", "vectors", "lexical", "get", "iter_items", "count", "spaces", "source_states",
    "errors", "info", "version", "iter_vectors_keyed", "deleted_since", "set_manifest", "lost_commits"))
