"""The embedded store's database files: writability, read-only opening, the commit marker, damage errors.

- **Read-only.** An index on read-only media, a shared mount or without write permission opens read-only:
  SQLite ``mode=ro`` when it can still read the write-ahead log (its ``-shm`` exists or can be made), else
  ``immutable=1`` (no locks, no WAL; a non-empty ``-wal`` it cannot read is warned about). Writes raise
  :class:`~omniret.errors.StoreError` naming the reason and the fix.
- **Commit marker.** ``omniret.commit`` (JSON ``{"uuid", "seq"}``) is rewritten after every commit. It
  can only lag the database, never lead it; so a database whose commit counter is *below* the marker has
  lost commits: its ``-wal`` file was deleted or left behind when the folder was copied. Opening such an
  index warns (:class:`~omniret.errors.StoreWarning`) instead of silently showing fewer items, and
  ``omniret check`` reports it. Every ``add``/``remove`` run and every close end with a WAL checkpoint
  (``TRUNCATE``), so committed data normally lives in ``omniret.db`` itself and a lost ``-wal`` costs
  at most a run in progress.
- **Damage.** SQLite's "database disk image is malformed" (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``) becomes
  a :class:`StoreError` that names the file and ``omniret check``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from omniret.errors import StoreError

DB_NAME = "omniret.db"
MARKER_NAME = "omniret.commit"
#: ``add`` and ``remove`` run SQLite's ``quick_check`` first on databases up to this size (bytes)
PRECHECK_MAX_BYTES = 1 << 30
#: ... and again at most this often on a store that stays open (a server indexing uploads)
PRECHECK_EVERY_S = 600.0


def sidecar(folder: Path, suffix: str) -> Path:
    """``omniret.db-wal``, ``omniret.db-shm``... of the database in ``folder``."""
    return folder / f"{DB_NAME}{suffix}"


def read_only_reason(folder: Path) -> str | None:
    """Why the index in ``folder`` cannot be written (``None`` when it can): a read-only file system, or no
    write permission on the folder, the database or its WAL files. Only for a folder that holds an index."""
    for p in (folder, folder / DB_NAME, sidecar(folder, "-wal"), sidecar(folder, "-shm")):
        if p.exists() and not os.access(p, os.W_OK):
            return f"{p} is not writable: read-only media, a read-only mount, or no write permission"
    return None


def read_only_mode(db: Path, busy_timeout_s: float) -> tuple[str, str | None]:
    """``("ro", None)`` when SQLite can open ``db`` read-only with its WAL, else ``("immutable", warning)``
    (the warning is set when a non-empty ``-wal`` exists that immutable mode cannot read)."""
    from omniret.store import sql

    try:
        conn = sql.connect(db, busy_timeout_s=busy_timeout_s, mode="ro")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return "ro", None
        finally:
            conn.close()
    except sqlite3.OperationalError:
        pass
    wal = sidecar(db.parent, "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        return "immutable", (
            f"{wal}: the index is read-only and its write-ahead log cannot be read without "
            f"{sidecar(db.parent, '-shm').name}; commits in it are not shown. Open the index once on writable "
            "storage (any omniret command) to fold them into omniret.db")
    return "immutable", None


def write_marker(folder: Path, store_uuid: str, seq: int) -> None:
    """Record that commit ``seq`` of store ``store_uuid`` was made (atomic rename; best effort)."""
    tmp = folder / f".{MARKER_NAME}.{os.getpid()}.tmp"
    with contextlib.suppress(OSError):
        tmp.write_text(json.dumps({"uuid": store_uuid, "seq": int(seq)}))
        os.replace(tmp, folder / MARKER_NAME)


def read_marker(folder: Path, store_uuid: str) -> int | None:
    """The commit number the marker records for this store, or ``None`` (no marker, another store's, garbage)."""
    try:
        data = json.loads((folder / MARKER_NAME).read_text())
        return int(data["seq"]) if isinstance(data, dict) and data.get("uuid") == store_uuid else None
    except (OSError, ValueError, TypeError, KeyError):
        return None


def lost_commits_message(folder: Path, seq: int, marked: int) -> str:
    return (f"{folder / DB_NAME} holds commits up to {seq}, but commit {marked} was made: the write-ahead log "
            f"({DB_NAME}-wal) that held commits {seq + 1}..{marked} is gone (deleted, or not copied with the "
            "folder). Their items are missing. Restore the -wal file next to omniret.db if you still have it "
            "(before any other command), or re-run `omniret add` on your folders to index them again")


def is_damage(e: BaseException) -> bool:
    """Whether ``e`` is SQLite reporting a damaged database file (not a lock, a full disk or bad SQL)."""
    if not isinstance(e, sqlite3.DatabaseError):
        return False
    name = str(getattr(e, "sqlite_errorname", "") or "")
    text = str(e).lower()
    return (name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text
            or "not a database" in text or "corrupt" in text)


def damage_error(db: Path, e: BaseException, doing: str = "reading") -> StoreError:
    detail = " ".join(str(e).replace("*** in database main ***", "").split())
    return StoreError(
        f"{db}: the database is damaged ({detail}) while {doing}; nothing was changed. Run `omniret check` to see "
        "what is damaged and `omniret check --repair` to rebuild what can be rebuilt (or restore the index "
        "folder from a backup)")


def cache_folder(store_uuid: str) -> Path | None:
    """A writable folder for the derived files of a read-only index (``$XDG_CACHE_HOME/omniret/read-only/<uuid>``,
    else ``~/.cache/...``), or ``None`` when there is none (they then stay in memory)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base) / "omniret" / "read-only" / "".join(c for c in store_uuid if c.isalnum())[:64]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


def guard_damage(cls: type, db_name: str, names: tuple[str, ...]) -> None:
    """Wrap the methods ``names`` of ``cls`` so that SQLite's "database disk image is malformed" becomes a
    :class:`StoreError` naming the file (``self.path / db_name``) and ``omniret check`` (generators too:
    their rows are read while iterating)."""
    for name in names:
        setattr(cls, name, _guarded(getattr(cls, name), db_name))


def _guarded(method: Callable[..., Any], db_name: str) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def gen(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from method(self, *args, **kwargs)
            except sqlite3.DatabaseError as e:
                if is_damage(e):
                    raise damage_error(self.path / db_name, e) from e
                raise
        return gen

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as e:
            if is_damage(e):
                raise damage_error(self.path / db_name, e) from e
            raise
    return call
