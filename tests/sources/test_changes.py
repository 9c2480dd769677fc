"""detect_changes and hash_file: new / changed / unchanged / touched / gone, and what gets read."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from omniret.errors import MediaError
from omniret.items import Modality
from omniret.sources import FileInfo, detect_changes, hash_bytes, hash_file, walk
from omniret.store.base import SourceState


class CountingHasher:
    """hash_file that records which URIs it read."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def __call__(self, uri: str) -> str:
        self.read.append(uri)
        return hash_file(uri)


def _state(info: FileInfo, digest: str, error: str | None = None) -> SourceState:
    return SourceState(info.uri, info.size, info.mtime_ns, digest, error)


def _snapshot(root: Path) -> dict[str, SourceState]:
    return {f.uri: _state(f, hash_file(f.uri)) for f in walk(root).files}


def _name(uri: str) -> str:
    return os.path.basename(uri)


def test_hash_file_streams_blake2b(tmp_path: Path) -> None:
    payload = os.urandom(3 * 2**20 + 17)  # several read buffers
    p = tmp_path / "x.bin"
    p.write_bytes(payload)
    expected = hashlib.blake2b(payload, digest_size=16).hexdigest()
    assert hash_file(p) == expected == hash_bytes(payload)
    assert hash_file(tmp_path / "x.bin") != hash_bytes(payload[:-1])


def test_hash_file_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="file vanished"):
        hash_file(tmp_path / "missing.txt")
    with pytest.raises(MediaError, match="is a folder"):
        hash_file(tmp_path)


def test_first_run_everything_is_new(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "b.jpg").write_bytes(b"beta")
    hasher = CountingHasher()
    ch = detect_changes(walk(tmp_path).files, {}, hasher)
    assert [(_name(f.uri), d) for f, d in ch.new] == [
        ("a.txt", hash_bytes(b"alpha")),
        ("b.jpg", hash_bytes(b"beta")),
    ]
    assert ch.changed == ch.unchanged == ch.touched == ch.gone == ()
    assert len(hasher.read) == 2 and ch.to_ingest == ch.new


def test_unchanged_files_are_not_read(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"f{i}.txt").write_text(f"file {i}")
    known = _snapshot(tmp_path)
    hasher = CountingHasher()
    ch = detect_changes(walk(tmp_path).files, known, hasher)
    assert len(ch.unchanged) == 5 and hasher.read == []
    assert ch.to_ingest == () and ch.touched == ()


def test_new_changed_unchanged_gone(tmp_path: Path) -> None:
    for name in ("keep.txt", "edit.txt", "drop.txt"):
        (tmp_path / name).write_text(f"original {name}")
    known = _snapshot(tmp_path)
    (tmp_path / "edit.txt").write_text("edited, and longer than before")
    (tmp_path / "drop.txt").unlink()
    (tmp_path / "fresh.md").write_text("# new")
    hasher = CountingHasher()
    r = walk(tmp_path)
    ch = detect_changes(r.files, known, hasher, covers=r.covers)
    assert [_name(f.uri) for f, _ in ch.new] == ["fresh.md"]
    assert [(_name(f.uri), d) for f, d in ch.changed] == [
        ("edit.txt", hash_bytes(b"edited, and longer than before"))
    ]
    assert [_name(f.uri) for f in ch.unchanged] == ["keep.txt"]
    assert [_name(u) for u in ch.gone] == ["drop.txt"]
    assert sorted(_name(u) for u in hasher.read) == ["edit.txt", "fresh.md"]


def test_touch_without_change_is_unchanged_but_refreshes_state(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_text("same bytes")
    known = _snapshot(tmp_path)
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    hasher = CountingHasher()
    ch = detect_changes(walk(tmp_path).files, known, hasher)
    assert [_name(f.uri) for f in ch.unchanged] == ["a.txt"] and ch.changed == ()
    assert hasher.read == [str(p.resolve())]  # it had to read to know
    (touched,) = ch.touched
    assert touched.mtime_ns == st.st_mtime_ns + 5_000_000_000
    assert touched.content_hash == known[str(p.resolve())].content_hash
    # after writing the refreshed state back, the next run reads nothing
    again = CountingHasher()
    ch2 = detect_changes(walk(tmp_path).files, {touched.uri: touched}, again)
    assert again.read == [] and len(ch2.unchanged) == 1


def test_same_size_different_content_is_changed(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_text("abcd")
    known = _snapshot(tmp_path)
    st = p.stat()
    p.write_text("wxyz")
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # same size, mtime moved by 1 ns
    ch = detect_changes(walk(tmp_path).files, known, hash_file)
    assert [(_name(f.uri), d) for f, d in ch.changed] == [("a.txt", hash_bytes(b"wxyz"))]


def test_same_size_and_mtime_is_trusted(tmp_path: Path) -> None:
    """The documented fast path: size + mtime_ns equal → unchanged without reading."""
    p = tmp_path / "a.txt"
    p.write_text("abcd")
    known = _snapshot(tmp_path)
    st = p.stat()
    p.write_text("wxyz")
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    hasher = CountingHasher()
    ch = detect_changes(walk(tmp_path).files, known, hasher)
    assert len(ch.unchanged) == 1 and hasher.read == []


def test_gone_respects_scope(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "photos" / "p.jpg").write_bytes(b"p")
    (tmp_path / "notes" / "n.txt").write_text("n")
    (tmp_path / "notes" / "old").mkdir()
    (tmp_path / "notes" / "old" / "o.txt").write_text("o")
    known = _snapshot(tmp_path)
    shutil.rmtree(tmp_path / "notes" / "old")
    r = walk(tmp_path / "notes")
    ch = detect_changes(r.files, known, hash_file, covers=r.covers)
    assert [_name(u) for u in ch.gone] == ["o.txt"]  # photos are outside this walk, not gone
    everything = detect_changes(r.files, known, hash_file)
    assert sorted(_name(u) for u in everything.gone) == ["o.txt", "p.jpg"]


def test_failed_sources_with_same_content_are_offered_for_retry(tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"not really a jpeg")
    info = walk(tmp_path).files[0]
    known = {info.uri: _state(info, hash_file(info.uri), error="not an image (looks like text)")}
    ch = detect_changes([info], known, hash_file)
    assert ch.retry == (info,) and ch.unchanged == () and ch.to_ingest == ()


def test_pure_function_on_records() -> None:
    """No file system needed: FileInfo records and a fake hasher."""
    files = [FileInfo("/d/a.txt", 3, 10, Modality.TEXT), FileInfo("/d/b.txt", 4, 20, Modality.TEXT)]
    known = {
        "/d/a.txt": SourceState("/d/a.txt", 3, 10, "h-a"),
        "/d/b.txt": SourceState("/d/b.txt", 4, 19, "h-b"),
        "/d/c.txt": SourceState("/d/c.txt", 1, 1, "h-c"),
    }
    contents = {"/d/b.txt": "h-b2"}
    ch = detect_changes(files, known, contents.__getitem__)
    assert ch.unchanged == (files[0],)
    assert ch.changed == ((files[1], "h-b2"),)
    assert ch.gone == ("/d/c.txt",)


def test_unreadable_files_are_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    files = walk(tmp_path).files
    (tmp_path / "a.txt").unlink()  # vanishes between walk and hashing
    ch = detect_changes(files, {}, hash_file)
    assert [(_name(f.uri), why) for f, why in ch.failed] == [("a.txt", "file vanished")]
    assert [_name(f.uri) for f, _ in ch.new] == ["b.txt"]


def test_other_hasher_errors_propagate() -> None:
    def broken(uri: str) -> str:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        detect_changes([FileInfo("/x.txt", 1, 1, Modality.TEXT)], {}, broken)
