"""walk(): files, folders, globs, hidden names, symlinks (and loops), index folders, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from omniret.errors import OmniretError
from omniret.items import Modality
from omniret.sources.walk import MODALITY_BY_EXTENSION, FileInfo, modality_for, walk


def _touch(root: Path, *names: str) -> None:
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(name.encode())


def _names(files: tuple[FileInfo, ...], root: Path) -> list[str]:
    real = str(root.resolve())
    return [os.path.relpath(f.uri, real) for f in files]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    _touch(
        tmp_path,
        "a.jpg", "B.PNG", "notes.md", "readme.rst", "song.mp3", "clip.mkv", "paper.pdf", "script.py",
        "noext", "sub/c.txt", "sub/deeper/d.webp", "sub/deeper/e.TIFF", ".hidden.txt", ".git/config.txt",
        "sub/.cache/f.jpg", "idx/omniret.db", "idx/vectors.txt",
    )  # fmt: skip
    return tmp_path


def test_folder_walk_is_recursive_sorted_and_typed(tree: Path) -> None:
    r = walk(tree)
    assert _names(r.files, tree) == [
        "B.PNG", "a.jpg", "clip.mkv", "notes.md", "paper.pdf", "readme.rst", "song.mp3",
        "sub/c.txt", "sub/deeper/d.webp", "sub/deeper/e.TIFF",
    ]  # fmt: skip
    mods = {os.path.basename(f.uri): f.modality for f in r.files}
    assert mods["B.PNG"] is Modality.IMAGE and mods["e.TIFF"] is Modality.IMAGE
    assert mods["notes.md"] is Modality.TEXT and mods["song.mp3"] is Modality.AUDIO
    assert mods["clip.mkv"] is Modality.VIDEO and mods["paper.pdf"] is Modality.DOCUMENT
    for f in r.files:
        assert os.path.isabs(f.uri) and f.uri == os.path.realpath(f.uri)
        st = os.stat(f.uri)
        assert (f.size, f.mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_skipped_are_counted_with_reasons(tree: Path) -> None:
    r = walk(tree)
    reasons = {os.path.basename(s.uri): s.reason for s in r.skipped}
    assert reasons == {
        "script.py": "unsupported extension '.py'",
        "noext": "no extension",
        "idx": "omniret index folder",
    }
    assert r.skipped_count == 3
    assert r.hidden == 3  # .hidden.txt, .git, sub/.cache


def test_hidden_included_on_request(tree: Path) -> None:
    names = _names(walk(tree, include_hidden=True).files, tree)
    assert {".hidden.txt", ".git/config.txt", "sub/.cache/f.jpg"} <= set(names)


def test_explicit_hidden_path_is_taken(tree: Path) -> None:
    assert _names(walk(tree / ".hidden.txt").files, tree) == [".hidden.txt"]
    assert _names(walk(tree / "sub" / ".cache").files, tree) == ["sub/.cache/f.jpg"]


def test_deterministic_and_deduplicated(tree: Path) -> None:
    a = walk([tree / "sub", tree, str(tree / "a.jpg")])
    b = walk([tree, tree / "sub"])
    assert a.files == b.files
    assert len({f.uri for f in a.files}) == len(a.files)


def test_globs(tree: Path) -> None:
    assert _names(walk(str(tree / "*.jpg")).files, tree) == ["a.jpg"]
    assert _names(walk(str(tree / "**" / "*.txt")).files, tree) == ["sub/c.txt"]
    assert _names(walk(str(tree / "sub" / "**")).files, tree) == [
        "sub/c.txt",
        "sub/deeper/d.webp",
        "sub/deeper/e.TIFF",
    ]
    assert _names(walk(str(tree / "s*")).files, tree) == [
        "song.mp3",
        "sub/c.txt",
        "sub/deeper/d.webp",
        "sub/deeper/e.TIFF",
    ]
    assert _names(walk(str(tree / "*" / "*" / "?.webp")).files, tree) == ["sub/deeper/d.webp"]
    assert _names(walk(str(tree / "**" / "*.jpg"), include_hidden=True).files, tree) == [
        "a.jpg",
        "sub/.cache/f.jpg",
    ]
    glob_py = walk(str(tree / "*.py"))
    assert glob_py.files == () and [os.path.basename(s.uri) for s in glob_py.skipped] == ["script.py"]


def test_glob_matching_nothing_is_an_error(tree: Path) -> None:
    with pytest.raises(OmniretError, match=r"no file matches the pattern .*\*\.gif"):
        walk(str(tree / "*.gif"))
    with pytest.raises(OmniretError, match="no file matches"):
        walk(str(tree / "missing_dir" / "*.jpg"))


def test_nonexistent_path_is_an_error_naming_it(tree: Path) -> None:
    bad = tree / "nope" / "x.jpg"
    with pytest.raises(OmniretError, match=f"path not found: '{bad}'"):
        walk([tree, bad])


def test_symlink_loop_terminates(tmp_path: Path) -> None:
    _touch(tmp_path, "a/one.txt", "a/b/two.txt")
    os.symlink(tmp_path / "a", tmp_path / "a" / "b" / "back")  # a/b/back -> a (a loop)
    os.symlink(tmp_path / "a" / "b", tmp_path / "a" / "side")  # a second way into b
    r = walk(tmp_path)
    assert _names(r.files, tmp_path) == ["a/b/two.txt", "a/one.txt"]
    r2 = walk(str(tmp_path / "**" / "*.txt"))
    assert _names(r2.files, tmp_path) == ["a/b/two.txt", "a/one.txt"]


def test_symlinks_to_files_resolve_and_broken_links_are_skipped(tmp_path: Path) -> None:
    _touch(tmp_path, "real/pic.jpg")
    (tmp_path / "links").mkdir()
    os.symlink(tmp_path / "real" / "pic.jpg", tmp_path / "links" / "alias.jpg")
    os.symlink(tmp_path / "nowhere.jpg", tmp_path / "links" / "broken.jpg")
    os.symlink(tmp_path / "links" / "self.jpg", tmp_path / "links" / "self.jpg")  # points at itself
    r = walk(tmp_path / "links")
    assert _names(r.files, tmp_path) == ["real/pic.jpg"]
    assert sorted((os.path.basename(s.uri), s.reason) for s in r.skipped) == [
        ("broken.jpg", "broken symlink"),
        ("self.jpg", "broken symlink"),
    ]
    with pytest.raises(OmniretError, match="broken symlink"):
        walk(tmp_path / "links" / "broken.jpg")


def test_special_files_are_skipped(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    r = walk(tmp_path)
    assert r.files == ()
    assert [(os.path.basename(s.uri), s.reason) for s in r.skipped] == [("pipe.txt", "not a regular file")]


def test_single_string_is_not_iterated(tree: Path) -> None:
    assert _names(walk(str(tree / "a.jpg")).files, tree) == ["a.jpg"]
    assert _names(walk(tree / "a.jpg").files, tree) == ["a.jpg"]


def test_covers_limits_scope(tree: Path) -> None:
    real = tree.resolve()
    r = walk(tree / "sub")
    assert r.covers(str(real / "sub" / "old.jpg"))
    assert r.covers(str(real / "sub" / "deeper" / "old.jpg"))
    assert not r.covers(str(real / "a.jpg"))
    assert r.covers(str(real / "sub" / "deleted_folder" / "x" / "old.jpg"))
    assert not r.covers(str(real / "sub" / ".secret.txt"))
    assert not r.covers(str(real / "sub" / ".cache" / "x.jpg"))
    assert walk(tree / "sub", include_hidden=True).covers(str(real / "sub" / ".cache" / "x.jpg"))
    g = walk(str(tree / "*.jpg"))
    assert g.covers(str(real / "gone.jpg"))
    assert not g.covers(str(real / "gone.png"))
    assert not g.covers(str(real / "sub" / "gone.jpg"))
    f = walk(tree / "a.jpg")
    assert f.covers(str(real / "a.jpg")) and not f.covers(str(real / "B.PNG"))


def test_modality_table() -> None:
    assert modality_for("x/y/Photo.JPEG") is Modality.IMAGE
    assert modality_for("talk.m4a") is Modality.AUDIO
    assert modality_for("movie.webm") is Modality.VIDEO
    assert modality_for("notes.markdown") is Modality.TEXT
    assert modality_for("archive.tar.gz") is None
    assert set(MODALITY_BY_EXTENSION.values()) == set(Modality)
    with pytest.raises(TypeError):
        MODALITY_BY_EXTENSION["xyz"] = Modality.TEXT  # type: ignore[index]
