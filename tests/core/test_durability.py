"""Issue 13 (5, 8, 9) and ``omniret check``: a lost ``-wal``, read-only indexes, damaged files.

Every test works on a real index folder (fake encoder) and damages it the way it happens: files copied
without their WAL, a read-only mount, bytes flipped in SQLite B-tree pages, a garbage manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import omniret
from omniret.cli.main import EXIT_USER_ERROR, cli
from omniret.errors import ModelError, StoreError, StoreWarning
from omniret.store.embedded import EmbeddedStore

EXIT_PROBLEMS = 3


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def notes(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"n{i:03d}.txt").write_text(f"note {i} about topic {i % 17}: alpha beta gamma {i}", encoding="utf-8")
    return folder


def built(tmp_path: Path, n: int = 240) -> tuple[str, Path]:
    corpus = notes(tmp_path / "notes", n)
    index = str(tmp_path / "idx")
    with omniret.open(index, model="fake") as idx:
        assert idx.add(str(corpus), workers=0).new == n
        idx.search("topic 3", k=1)  # builds and later saves the FAISS index
    return index, corpus


def digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def copy_without_wal(src: str, dst: Path) -> str:
    dst.mkdir()
    for name in ("omniret.db", "omniret.commit"):
        if Path(src, name).exists():
            shutil.copy(Path(src, name), dst / name)
    return str(dst)


# -- 5: a lost -wal -------------------------------------------------------------------------------
def test_lost_wal_does_not_empty_the_index(tmp_path: Path) -> None:
    """The index stays open (as a server holds it) while an add commits; a copy of the folder without its
    -wal file must still hold every item: the add run ends with a WAL checkpoint."""
    corpus = notes(tmp_path / "notes", 30)
    index = str(tmp_path / "idx")
    with omniret.open(index, model="fake") as idx:
        idx.search("x", k=1)  # readers open, as in a running server
        idx.add(str(corpus), workers=0, commit_every=10)
        assert idx.store.count() == 60
        wal = Path(index, "omniret.db-wal")
        assert not wal.exists() or wal.stat().st_size == 0, "the add left its commits in the WAL"
        copy = copy_without_wal(index, tmp_path / "copy")
        with omniret.open(copy) as c:
            assert c.store.count() == 60
        assert idx.remove([str(corpus / "n000.txt")]) == 2
        shutil.rmtree(copy)
        copy = copy_without_wal(index, tmp_path / "copy")
        with omniret.open(copy) as c:
            assert c.store.count() == 58


def test_lost_wal_is_detected_and_warned(tmp_path: Path) -> None:
    """Commits that lived only in a lost -wal are reported (warning on open, a line in `omniret check`),
    never an index that silently opens with fewer items."""
    index, corpus = built(tmp_path, 20)
    from omniret.store.base import WriteBatch

    store = EmbeddedStore(index)
    try:  # a commit that is still only in the WAL (no run end, no close yet)
        store.commit(WriteBatch(delete_uris=[str(corpus / "n001.txt")]))
        copy = copy_without_wal(index, tmp_path / "copy")
    finally:
        store.close()
    with pytest.warns(StoreWarning, match=r"write-ahead log .* is gone"):
        EmbeddedStore(copy).close()
    code, out, _ = run("--index", copy, "check")
    assert code == EXIT_PROBLEMS and "are missing (their -wal file was lost)" in out and "omniret add" in out
    with pytest.warns(StoreWarning), omniret.open(copy) as idx:
        idx.add(str(corpus), workers=0)
    code, out, _ = run("--index", copy, "check")
    assert code == 0, out


# -- 8: read-only indexes -------------------------------------------------------------------------
@pytest.fixture
def read_only_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """``(read-only view of an index, its writable original)``: a read-only bind mount as root (where the
    kernel allows it), else the folder with its write permissions taken away."""
    index, _ = built(tmp_path, 40)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if os.geteuid() != 0:
        for p in [Path(index), *Path(index).rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
        yield index, index
        for p in [Path(index), *Path(index).rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)
        return
    view = tmp_path / "ro"
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", index, str(view)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"root, and no read-only bind mount here ({mounted.stderr.decode().strip()})")
    subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True)
    try:
        yield str(view), index
    finally:
        if subprocess.run(["umount", str(view)]).returncode != 0:
            subprocess.run(["umount", "-l", str(view)], check=True)


def test_read_only_index_can_be_searched(read_only_folder: tuple[str, str], tmp_path: Path) -> None:
    view, original = read_only_folder
    before = digest(Path(original, "omniret.db"))
    with omniret.open(view) as idx:
        assert idx.store.read_only
        assert idx.search("topic 3", k=1)[0].text.startswith("note 3 ")
        assert idx.search("alpha", k=3, hybrid="rrf")
        with pytest.raises(StoreError, match="read-only.*copy the folder to writable storage"):
            idx.add(str(tmp_path / "notes"), workers=0)
        with pytest.raises(StoreError, match="read-only"):
            idx.remove([str(tmp_path / "notes" / "n001.txt")])
        with pytest.raises(StoreError, match="read-only"):
            idx.set_query_bank(["a cat"])
        assert idx.check() == []
    code, out, _ = run("--index", view, "search", "topic 5", "-k", "1")
    assert code == 0 and "note 5 " in out
    code, _, err = run("--index", view, "add", str(tmp_path / "notes"))
    assert code == EXIT_USER_ERROR and "read-only" in err
    code, out, _ = run("--index", view, "check")
    assert code == 0 and "no problems" in out
    code, _, err = run("--index", view, "check", "--repair")
    assert code == EXIT_USER_ERROR and "read-only" in err
    assert digest(Path(original, "omniret.db")) == before
    assert not Path(original, "omniret.db-wal").exists()


def test_read_only_index_can_be_served(read_only_folder: tuple[str, str]) -> None:
    """The HTTP server searches a read-only index; uploads get a 403 that says why, not a 500."""
    from fastapi.testclient import TestClient

    from omniret.server.app import create_app
    from omniret.server.settings import ServerSettings

    view, _ = read_only_folder
    token = "t" * 24
    with TestClient(create_app(view, ServerSettings(token=token)), raise_server_exceptions=False) as c:
        r = c.post("/search", json={"text": "topic 3", "k": 2})
        assert r.status_code == 200 and r.json()["hits"][0]["text"].startswith("note 3 ")
        assert c.get("/healthz").json()["writes_enabled"] is False
        r = c.post("/items", headers={"Authorization": f"Bearer {token}"},
                   files={"file": ("a.txt", b"hello upload", "text/plain")})
        assert r.status_code == 403 and "read-only" in r.json()["error"]


def test_read_only_flag_opens_without_writing(tmp_path: Path) -> None:
    index, corpus = built(tmp_path, 10)
    before = digest(Path(index, "omniret.db"))
    with omniret.open(index, read_only=True) as idx:
        assert idx.store.read_only and len(idx.search("topic 1", k=3)) == 3
        with pytest.raises(StoreError, match="read_only=True"):
            idx.add(str(corpus), workers=0)
    assert digest(Path(index, "omniret.db")) == before
    with pytest.raises(StoreError, match="no omniret index"):
        EmbeddedStore(tmp_path / "nothing", read_only=True)
    assert not (tmp_path / "nothing").exists()


# -- 9: damage ------------------------------------------------------------------------------------
def flip_pages(db: str, obj: str) -> None:
    """Overwrite the page header of the last two B-tree pages of table or index ``obj`` (as bit rot would)."""
    conn = sqlite3.connect(db)
    pages = [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name = ? ORDER BY pageno", (obj,))]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    assert len(pages) >= 2, f"{obj} has {len(pages)} pages; use a bigger corpus"
    with open(db, "r+b") as f:
        for p in pages[-2:]:
            f.seek((p - 1) * size)
            f.write(b"\xff" * 8)


@pytest.mark.parametrize("obj", ["items_uri", "fts_data", "items", "vectors"])
def test_flipped_btree_pages_are_detected_and_repaired(tmp_path: Path, obj: str) -> None:
    index, corpus = built(tmp_path)
    db = str(Path(index, "omniret.db"))
    flip_pages(db, obj)
    damaged = digest(db)
    with omniret.open(index) as idx, pytest.raises(StoreError, match="database is damaged.*omniret check"):
        idx.add(str(corpus), workers=0)
    assert digest(db) == damaged, "add wrote into a damaged database"
    code, _, err = run("--index", index, "add", str(corpus))
    assert code == EXIT_USER_ERROR and "damaged" in err and "internal error" not in err
    code, out, _ = run("--index", index, "check")
    assert code == EXIT_PROBLEMS and f"damaged pages in {'table(s) ' if obj in ('items', 'vectors') else ''}{obj}" in out
    data = obj in ("items", "vectors")
    code, out, _ = run("--index", index, "check", "--repair")
    assert (code == EXIT_PROBLEMS and "--salvage" in out) if data else (code == 0 and "repaired" in out), out
    if data:
        code, out, _ = run("--index", index, "check", "--repair", "--salvage")
        assert code == 0 and "forgotten" in out, out
    assert list(Path(index).glob("omniret.db.damaged-*")), "the damaged file is kept"
    code, out, _ = run("--index", index, "check")
    assert code == 0, out
    with omniret.open(index) as idx:
        idx.add(str(corpus), workers=0)  # indexes again what the salvage lost
        assert idx.store.count() == 480
        assert idx.search("note 7 about topic 7", k=1)[0].uri.endswith("n007.txt")
        assert idx.store.lexical("gamma", k=500) and len(idx.store.lexical("gamma", k=500)) == 240
    assert run("--index", index, "check")[0] == 0


def test_damaged_pages_give_clear_errors_not_internal_ones(tmp_path: Path) -> None:
    index, _ = built(tmp_path)
    flip_pages(str(Path(index, "omniret.db")), "sources")
    code, _, err = run("--index", index, "info")
    assert "internal error" not in err and (code == 0 or "damaged" in err)
    with omniret.open(index) as idx, pytest.raises(StoreError, match="damaged"):
        idx.store.source_states()


def _set_manifest(index: str, text: str) -> None:
    conn = sqlite3.connect(Path(index, "omniret.db"))
    conn.execute("UPDATE meta SET value = ? WHERE key = 'manifest'", (text,))
    conn.commit()
    conn.close()


def test_garbage_manifest_gives_clear_error(tmp_path: Path) -> None:
    index, _ = built(tmp_path, 10)
    _set_manifest(index, "{garbage")
    with pytest.raises(StoreError, match=r"omniret.db: the manifest \(table meta, key 'manifest'\) is damaged"):
        omniret.open(index)
    code, _, err = run("--index", index, "search", "x")
    assert code == EXIT_USER_ERROR and "manifest" in err and "omniret check" in err and "JSONDecodeError" not in err
    code, out, _ = run("--index", index, "check")
    assert code == EXIT_PROBLEMS and "--repair --model NAME" in out and "'fake-64' (64-d)" in out
    code, out, _ = run("--index", index, "check", "--repair", "--model", "st:all-MiniLM-L6-v2")
    assert code == EXIT_PROBLEMS and "not rewritten" in out  # another space: refused
    code, out, _ = run("--index", index, "check", "--repair", "--model", "fake")
    assert code == 0 and "rewritten for model 'fake'" in out
    with omniret.open(index) as idx:
        assert idx.search("topic 3", k=1)
    _set_manifest(index, json.dumps(["a", "list"]))
    with pytest.raises(StoreError, match="not an object"):
        omniret.open(index)


def test_manifest_naming_another_model_class(tmp_path: Path) -> None:
    """A manifest whose arguments belong to another model class (the offline model's ``labels``, recorded
    under a sentence-transformers name) is an error naming the manifest, not ``TypeError: labels``."""
    index, _ = built(tmp_path, 10)
    manifest = json.loads(sqlite3.connect(Path(index, "omniret.db")).execute(
        "SELECT value FROM meta WHERE key = 'manifest'").fetchone()[0])
    manifest["encoder"].update(name="st:all-MiniLM-L6-v2", config={"labels": "imagenet", "top_k": 5})
    _set_manifest(index, json.dumps(manifest))
    with pytest.raises(ModelError, match=r"omniret.db \(manifest\).*'labels'.*another model class"):
        omniret.open(index)
    code, _, err = run("--index", index, "search", "x")
    assert code == EXIT_USER_ERROR and "TypeError" not in err and "unexpected keyword argument 'labels'" in err
    code, out, _ = run("--index", index, "--json", "check")
    lines = [json.loads(x) for x in out.splitlines()]
    assert code == EXIT_PROBLEMS and lines[-1]["remaining"] == 1 and "'labels'" in lines[0]["found"]


def test_manifest_dims_must_match_the_vectors(tmp_path: Path) -> None:
    index, _ = built(tmp_path, 10)
    manifest = json.loads(sqlite3.connect(Path(index, "omniret.db")).execute(
        "SELECT value FROM meta WHERE key = 'manifest'").fetchone()[0])
    manifest["encoder"]["dim"] = 512
    _set_manifest(index, json.dumps(manifest))
    with pytest.raises(StoreError, match="512-d, but its stored vectors are 64-d"):
        omniret.open(index)


# -- omniret check: consistency and derived data ------------------------------------------------
def test_check_is_clean_on_a_fresh_index(tmp_path: Path, corpus: Path) -> None:
    index = str(tmp_path / "idx")
    with omniret.open(index, model="fake") as idx:
        idx.add(str(corpus), workers=0)
        assert idx.check() == []
    code, out, _ = run("--index", index, "--json", "check")
    assert code == 0 and json.loads(out) == {"event": "check", "index": index, "problems": 0, "repaired": 0,
                                             "remaining": 0}


def test_check_repairs_inconsistent_rows(tmp_path: Path) -> None:
    index, corpus = built(tmp_path, 30)
    conn = sqlite3.connect(Path(index, "omniret.db"))
    conn.execute("DELETE FROM fts WHERE rowid IN (SELECT rowid FROM items WHERE uri LIKE '%n001.txt')")
    conn.execute("DELETE FROM items WHERE uri LIKE '%n002.txt'")  # file marked indexed, items gone, vectors stray
    conn.execute("DELETE FROM items WHERE uri LIKE '%n003.txt' AND parent_id IS NULL")  # chunks without their file
    conn.commit()
    conn.close()
    with omniret.open(index) as idx:
        found = [p.found for p in idx.check()]
        assert any("have vectors but no record" in f for f in found)
        assert any("belong to a file record that is gone" in f for f in found)
        assert any("marked indexed but have no items" in f for f in found)
        assert any("FTS5" in f for f in found)
        assert all(p.derived for p in idx.check())
        repaired = idx.check(repair=True)
        assert repaired and all(p.repaired for p in repaired)
        assert idx.check() == []
        assert idx.add(str(corpus), workers=0).new == 2  # n002 and n003 are indexed again
        assert idx.store.count() == 60 and len(idx.store.lexical("note 1 about", k=100)) >= 1
        assert idx.check() == []


def test_check_rebuilds_a_faiss_index_that_disagrees(tmp_path: Path) -> None:
    index, _ = built(tmp_path, 30)
    with omniret.open(index) as idx:
        space = idx.encoder.space
        live = idx.store._indexes[space]
        live.mask(live.vids[:3])  # the derived index now hides 3 stored vectors
        problems = idx.check()
        assert len(problems) == 1 and "FAISS index" in problems[0].found and problems[0].derived
        assert idx.check(repair=True)[0].repaired
        assert idx.check() == []


def test_a_long_lived_store_checks_before_its_first_write_then_every_few_minutes(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The server adds every upload through one open store: quick_check runs at the first write, not at
    every upload; damage found stays found (a failed check is never remembered as passed)."""
    from omniret.store import db_files

    index, corpus = built(tmp_path, 240)
    calls = []
    with omniret.open(index) as idx:
        real = idx.store._conn
        monkeypatch.setattr(idx.store, "_conn", lambda: calls.append(1) or real())
        idx.store.verify_before_write()
        first = len(calls)
        idx.store.verify_before_write()
        assert len(calls) == first, "checked again at once"
        monkeypatch.setattr(db_files, "PRECHECK_EVERY_S", 0.0)
        idx.store.verify_before_write()
        assert len(calls) > first
    flip_pages(str(Path(index, "omniret.db")), "items_uri")
    with omniret.open(index) as idx:
        for _ in range(2):
            with pytest.raises(StoreError, match="damaged"):
                idx.store.verify_before_write()
