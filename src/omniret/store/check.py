"""``omniret check`` for the embedded store: what is damaged, what ``--repair`` can rebuild, what it cannot.

Checks, in order:

1. SQLite's ``integrity_check`` (page-level damage). Damage confined to indexes (``items_uri``...) is
   derived: ``REINDEX`` rebuilds them. Damage in the FTS5 text index is derived: it is rebuilt from the
   items. Damage in a table that holds data (``items``, ``vectors``, ``sources``, ``meta``...) is not:
   the user must restore a backup or rebuild the index.
2. The commit marker (:mod:`omniret.store.db_files`): commits lost with a ``-wal`` file.
3. Consistency (only on an intact database): vectors of missing items, vectors of the wrong size, child
   items whose parent is gone, source states without items (``add`` would skip those files forever), FTS
   rows that do not match the items.
4. FAISS files: each saved index must load and cover exactly the stored vectors of its space.

Each finding is a :class:`Problem`: one line saying what was found and what to do; ``--repair`` fixes the
derived ones and says so.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from omniret.errors import StoreError
from omniret.store import db_files, rebuild, sql
from omniret.store.base import Problem, WriteBatch

#: an :class:`omniret.store.embedded.EmbeddedStore` (not imported: the store imports this module)
EmbeddedStore = Any

_RESTORE = "restore the index folder from a backup, or build a new index (omniret add into a new folder)"


def _integrity_lines(conn: sqlite3.Connection) -> list[str]:
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(100)")]
    except sqlite3.DatabaseError as e:  # some damage stops the check itself
        rows = [str(e)]
    lines = " ".join(rows).replace("*** in database main ***", "\n").splitlines()
    return [" ".join(x.split()) for x in lines if x.strip()]


def check_integrity(store: EmbeddedStore, repair: bool, salvage: bool = False) -> tuple[list[Problem], bool]:
    """SQLite's page-level check, each damaged table and index found by reading it in full. Damage only in
    indexes or the text index is derived (``repair`` writes a new database file from the tables); damage in
    a data table is not (``salvage`` copies its readable rows). Returns the problems and whether the data
    tables are now intact (and later checks can run)."""
    db = store.path / db_files.DB_NAME
    conn = store._conn()
    lines = _integrity_lines(conn)
    if lines == ["ok"]:
        return [], True
    try:
        damaged = rebuild.damaged_objects(conn)
    except sqlite3.DatabaseError as e:
        return [Problem(f"{db}: SQLite cannot read the database ({e})", _RESTORE, derived=False)], False
    data = sorted(name for kind, name in damaged if kind == "table" and name in rebuild.TABLES)
    derived = sorted(name for kind, name in damaged if name not in data)
    detail = lines[0] + (f" (and {len(lines) - 1} more)" if len(lines) > 1 else "")
    if data:
        found = f"{db}: damaged pages in table(s) {', '.join(data)} ({detail})"
        action = (f"not derived data: {_RESTORE}; or run `omniret check --repair --salvage` to copy every readable row "
                  "into a new database (rows on damaged pages are lost: re-run `omniret add` to index their files "
                  "again)")
    else:
        what = ", ".join(derived) if derived else "the database file"
        found = f"{db}: damaged pages in {what} ({detail})"
        action = "writes a new database file from the intact tables (the damaged one is kept beside it)"
    if not repair or (data and not salvage):  # later checks would read through the damaged pages: skipped
        return [Problem(found, action, derived=not data)], False
    try:
        kept, lost, files = store.rebuild_database(salvage=bool(data))
    except (sqlite3.Error, StoreError, OSError) as e:
        return [Problem(found, f"rebuilding failed ({e}): {_RESTORE}", derived=False)], False
    done = f"wrote a new database; the damaged file is kept as {kept.name}"
    if lost:
        done += (f"; unreadable rows skipped in {', '.join(f'{t} ({n} gaps)' for t, n in lost.items())}, "
                 f"{len(files)} file(s) lost items and were forgotten: re-run `omniret add` on your folders to "
                 "index them again")
    return [Problem(found, done, derived=not data, repaired=True)], True


def _repair_fts(store: EmbeddedStore, repair: bool, found: str) -> Problem:
    """Empty the FTS5 table and fill it again from the items (text and file-name words)."""
    if not repair:
        return Problem(found, "rebuilds it from the items", derived=True)
    w = store._writer
    with store._write_lock:
        store._begin_write(w)
        try:
            w.execute("DELETE FROM fts")
            rows = w.execute("SELECT rowid, uri, text FROM items").fetchall()
            w.executemany("INSERT INTO fts(rowid, text, name) VALUES (?, ?, ?)",
                          ((r[0], r[2] or "", sql.file_name_words(sql.uri_value(r[1]))) for r in rows))
            w.execute("COMMIT")
        except sqlite3.Error as e:
            if w.in_transaction:
                w.execute("ROLLBACK")
            return Problem(found, f"rebuilding it failed ({e}): run `omniret check --repair` again", derived=False)
    return Problem(found, "rebuilt from the items", derived=True, repaired=True)


def check_marker(store: EmbeddedStore) -> list[Problem]:
    lost = store.lost_commits()
    if lost is None:
        return []
    seq, marked = lost
    return [Problem(f"{store.path / db_files.DB_NAME}: commits {seq + 1}..{marked} are missing (their -wal file "
                    "was lost)", "restore the -wal file if you still have it, else re-run `omniret add` on your "
                    "folders to index their files again", derived=False)]


def _count(conn: sqlite3.Connection, query: str) -> int:
    return int(conn.execute(query).fetchone()[0])


def _ids(conn: sqlite3.Connection, query: str) -> list[str]:
    return [str(r[0]) for r in conn.execute(query)]


def check_consistency(store: EmbeddedStore, repair: bool) -> list[Problem]:
    """Rows that disagree with each other (each fixed by deleting what cannot be right and forgetting the
    change-detection state of the files involved, so the next ``add`` embeds them again)."""
    conn = store._conn()
    db = store.path / db_files.DB_NAME
    out: list[Problem] = []
    orphans = _ids(conn, "SELECT DISTINCT v.item FROM vectors v LEFT JOIN items i ON i.id = v.item WHERE i.id IS NULL")
    if orphans:
        out.append(_fix(store, repair, f"{db}: {len(orphans)} item(s) have vectors but no record", orphans, [],
                        "deletes the stray vectors"))
    bad = _ids(conn, "SELECT DISTINCT v.item FROM vectors v JOIN spaces s ON s.space = v.space "
                     "WHERE length(v.vec) != 2 * s.dim")
    if bad:
        out.append(_fix(store, repair, f"{db}: {len(bad)} item(s) have vectors of the wrong size", bad,
                        _uris_of(conn, bad), "removes them and forgets their files; then re-run `omniret add`"))
    lost_parent = _ids(conn, "SELECT c.id FROM items c LEFT JOIN items p ON p.id = c.parent_id "
                             "WHERE c.parent_id IS NOT NULL AND p.id IS NULL")
    if lost_parent:
        out.append(_fix(store, repair, f"{db}: {len(lost_parent)} item(s) belong to a file record that is gone",
                        lost_parent, _uris_of(conn, lost_parent),
                        "removes them and forgets their files; then re-run `omniret add`"))
    empty = [sql.uri_value(r[0]) for r in conn.execute(
        "SELECT s.uri FROM sources s WHERE s.error IS NULL AND NOT EXISTS (SELECT 1 FROM items i WHERE i.uri = s.uri)")]
    if empty:
        out.append(_fix(store, repair, f"{db}: {len(empty)} file(s) are marked indexed but have no items", [],
                        empty, "forgets them; then re-run `omniret add` to index them"))
    out += _check_fts(store, conn)
    return out


def _uris_of(conn: sqlite3.Connection, ids: list[str]) -> list[str]:
    rows = conn.execute("SELECT DISTINCT i.uri FROM items i JOIN sources s ON s.uri = i.uri "
                        "WHERE i.id IN (SELECT value FROM json_each(?))", (json.dumps(ids),))
    return [sql.uri_value(r[0]) for r in rows]


def _fix(store: EmbeddedStore, repair: bool, found: str, ids: list[str], uris: list[str], action: str) -> Problem:
    if not repair:
        return Problem(found, action, derived=True)
    store.commit(WriteBatch(delete_ids=ids, delete_uris=uris))
    return Problem(found, action.replace("deletes", "deleted").replace("removes", "removed")
                   .replace("forgets", "forgot"), derived=True, repaired=True)


def _check_fts(store: EmbeddedStore, conn: sqlite3.Connection) -> list[Problem]:
    db = store.path / db_files.DB_NAME
    missing = _count(conn, "SELECT count(*) FROM items WHERE rowid NOT IN (SELECT rowid FROM fts)")
    extra = _count(conn, "SELECT count(*) FROM fts WHERE rowid NOT IN (SELECT rowid FROM items)")
    found = []
    if missing or extra:
        found.append(f"{db}: the text index (FTS5) misses {missing} item(s) and has {extra} stray row(s)")
    if not store.read_only:  # the check is written as an INSERT, which a read-only connection refuses
        try:
            conn.execute("INSERT INTO fts(fts, rank) VALUES ('integrity-check', 0)")
        except sqlite3.DatabaseError as e:
            found.append(f"{db}: the text index (FTS5) fails its integrity check ({e})")
    return [Problem(f, "rebuilds it from the items", derived=True) for f in found[:1]]


def check_faiss(store: EmbeddedStore, repair: bool) -> list[Problem]:
    """Each space's FAISS index (saved file, then caught up) must hold exactly the stored vectors."""
    out: list[Problem] = []
    conn = store._conn()
    for space in store.spaces():
        stored = {int(r[0]) for r in conn.execute("SELECT vid FROM vectors WHERE space = ?", (space,))}
        try:
            idx = store._fresh_index(space)
            idx.lock.acquire_read()
            try:
                live = set(idx.vids.tolist()) - set(idx.vids[idx.masked].tolist())
            finally:
                idx.lock.release_read()
            problem = None if live == stored else (
                f"the FAISS index of space {space!r} holds {len(live)} vectors, the database {len(stored)}")
        except Exception as e:  # noqa: BLE001 - any failure of derived data is reported as such
            problem = f"the FAISS index of space {space!r} cannot be built or loaded ({type(e).__name__}: {e})"
        if problem is None:
            continue
        if not repair:
            out.append(Problem(f"{store.path}: {problem}", "rebuilds it from the stored vectors", derived=True))
            continue
        try:
            store.rebuild_index(space)
            out.append(Problem(f"{store.path}: {problem}", "rebuilt from the stored vectors", derived=True,
                               repaired=True))
        except Exception as e:  # noqa: BLE001
            out.append(Problem(f"{store.path}: {problem}", f"rebuilding it failed too ({e}): the stored vectors are "
                               "damaged; restore a backup or build a new index", derived=False))
    return out


def check_store(store: EmbeddedStore, *, repair: bool = False, salvage: bool = False) -> list[Problem]:
    """Every check above, in order (later ones only on a database whose data tables are intact)."""
    problems, intact = check_integrity(store, repair, salvage)
    problems += check_marker(store)
    if not intact:
        return problems
    problems += check_consistency(store, repair)
    fts = [p for p in problems if "FTS5" in p.found and not p.repaired]
    if repair and fts:
        problems = [p for p in problems if p not in fts] + [_repair_fts(store, True, fts[0].found)]
    problems += check_faiss(store, repair)
    return problems
