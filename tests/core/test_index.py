"""Index facade end to end with the deterministic fake encoder (tier 1)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from builders import make_image  # type: ignore[import-not-found]

import omniret
from omniret.errors import ModelMismatchError, QueryError, StoreError
from omniret.items import Modality


def _open(tmp_path: Path) -> omniret.Index:
    return omniret.open(str(tmp_path / "idx"), model="fake")


def test_add_then_search_text_and_image(tmp_path: Path, corpus: Path) -> None:
    with _open(tmp_path) as idx:
        report = idx.add(str(corpus), workers=0)
        assert report.new == 7 and report.failed == [] and report.changed == 0
        # 4 images + 3 text parents + 3 chunks
        assert idx.store.count() == 10
        hits = idx.search("a rocket launch sends satellites", k=3)
        assert hits[0].uri.endswith("rockets.md") and hits[0].modality is Modality.TEXT
        assert hits[0].parent_id is not None and hits[0].span is not None
        img = corpus / "green.jpg"
        hits = idx.search(image=str(img), k=2)
        assert hits[0].uri == str(img.resolve())
        assert hits[0].score == pytest.approx(1.0, abs=1e-2)
        assert all(isinstance(h, omniret.Hit) for h in hits)


def test_rerun_skips_unchanged_and_reembeds_changed(tmp_path: Path, corpus: Path) -> None:
    with _open(tmp_path) as idx:
        idx.add(str(corpus), workers=0)
        again = idx.add(str(corpus), workers=0)
        assert (again.new, again.changed, again.unchanged, again.items) == (0, 0, 7, 0)
        note = corpus / "sub" / "cooking.txt"
        note.write_text("Completely different: notes about astronomy and telescopes.\n" * 40)
        os.utime(note, (time.time() + 5, time.time() + 5))
        third = idx.add(str(corpus), workers=0)
        assert third.changed == 1 and third.new == 0
        hits = idx.search("telescopes astronomy", k=1, modality="text")
        assert hits[0].uri.endswith("cooking.txt")
        # the old chunk is gone, not duplicated
        chunks = [it for it in idx.store.iter_items() if it.uri.endswith("cooking.txt") and it.parent_id]
        assert all("pasta" not in (c.text or "") for c in chunks)
        assert len({c.id for c in chunks}) == len(chunks)


def test_prune_removes_gone_files_only_when_asked(tmp_path: Path, corpus: Path) -> None:
    with _open(tmp_path) as idx:
        idx.add(str(corpus), workers=0)
        (corpus / "red.png").unlink()
        kept = idx.add(str(corpus), workers=0)
        assert kept.removed == 0 and idx.store.count(None) == 10
        pruned = idx.add(str(corpus), workers=0, prune=True)
        assert pruned.removed == 1 and idx.store.count() == 9
        assert not any(it.uri.endswith("red.png") for it in idx.store.iter_items())


def test_filters_modality_glob_metadata_and_rollup(tmp_path: Path, corpus: Path) -> None:
    with _open(tmp_path) as idx:
        idx.add(str(corpus), workers=0)
        imgs = idx.search("cats", k=10, modality="image")
        assert imgs and all(h.modality is Modality.IMAGE for h in imgs)
        md = idx.search("cats", k=10, path_glob="*.md")
        assert md and all(h.uri.endswith(".md") for h in md)
        named = idx.search("cats", k=10, where={"name": "yellow.jpg"})
        assert [os.path.basename(h.uri) for h in named] == ["yellow.jpg"]
        rolled = idx.search("cats sleep in the sun", k=3, modality="text", rollup=True)
        assert rolled[0].parent_id is None and rolled[0].uri.endswith("cats.txt")
        with pytest.raises(QueryError):
            idx.search("x", k=0)
        with pytest.raises(QueryError):
            idx.search("   ")


def test_reopen_uses_manifest_and_mismatch_is_an_error(tmp_path: Path, corpus: Path) -> None:
    with _open(tmp_path) as idx:
        idx.add(str(corpus / "sub"), workers=0)
    with omniret.open(str(tmp_path / "idx"), model="auto") as idx:  # auto → the recorded model
        assert idx.encoder.name == "fake"
        assert idx.search("rocket", k=1)[0].uri.endswith("rockets.md")
    with pytest.raises(ModelMismatchError, match="'fake'.*'offline'|'offline'.*'fake'"):
        omniret.open(str(tmp_path / "idx"), model="offline")


def test_remove_by_id_and_by_path(tmp_path: Path, corpus: Path) -> None:
    with _open(tmp_path) as idx:
        idx.add(str(corpus), workers=0)
        hit = idx.search(image=str(corpus / "red.png"), k=1)[0]
        assert idx.remove([hit.id]) == 1
        assert idx.remove([str(corpus / "sub" / "cats.txt")]) == 2  # parent + 1 chunk
        assert idx.store.count() == 7
        parent = next(it for it in idx.store.iter_items() if it.uri.endswith("rockets.md") and it.parent_id is None)
        assert idx.remove([parent.id]) == 2  # removing a parent by id takes its chunks along
        assert idx.store.count() == 5


def test_bad_files_are_reported_and_nothing_is_lost(tmp_path: Path, corpus: Path) -> None:
    with _open(tmp_path) as idx:
        idx.add(str(corpus), workers=0)
        before = idx.store.count()
        bad = tmp_path / "bad"
        bad.mkdir()
        (bad / "empty.jpg").write_bytes(b"")
        (bad / "text.png").write_text("this is not a png")
        good = make_image(bad / "ok.png", (1, 2, 3))
        data = (corpus / "red.png").read_bytes()
        (bad / "truncated.png").write_bytes(data[: len(data) // 2])
        (bad / "binary.txt").write_bytes(bytes(range(256)) * 20)
        report = idx.add(str(bad), workers=0)
        failed = {os.path.basename(u): r for u, r in report.failed}
        assert set(failed) == {"empty.jpg", "text.png", "truncated.png", "binary.txt"}
        assert idx.store.count() == before + 1
        assert idx.search(image=str(good), k=1)[0].uri == str(good.resolve())
        errs = {os.path.basename(e["uri"]) for e in idx.info()["last_errors"]}
        assert set(failed) <= errs
        # failures are remembered: an unchanged bad file is not retried unless asked, and the report says so
        again = idx.add(str(bad), workers=0)
        assert again.failed == [] and again.not_retried == 4 and "--retry-failed" in again.notes()[-1]
        assert len(idx.add(str(bad), workers=0, retry_failed=True).failed) == 4


def test_a_file_that_failed_for_a_missing_library_is_tried_again(tmp_path: Path, corpus: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure the installation caused (an optional library missing: the reason names its pip install)
    is not remembered against the file: once the library is there, the next plain ``add`` indexes it."""
    import builtins
    import shutil

    from skimage.data import data_dir

    real_import = builtins.__import__

    def no_tifffile(name: str, *args: object, **kwargs: object) -> object:
        if name == "tifffile":
            raise ModuleNotFoundError("No module named 'tifffile'", name="tifffile")
        return real_import(name, *args, **kwargs)

    folder = tmp_path / "tiffs"
    folder.mkdir()
    shutil.copy(os.path.join(data_dir, "multipage_rgb.tif"), folder / "pages.tif")  # Pillow cannot read it
    with _open(tmp_path) as idx:
        monkeypatch.setattr(builtins, "__import__", no_tifffile)
        first = idx.add(str(folder), workers=0)
        ((uri, reason),) = first.failed
        assert "pip install tifffile" in reason, reason
        monkeypatch.setattr(builtins, "__import__", real_import)
        second = idx.add(str(folder), workers=0)
        assert second.failed == [] and second.changed == 1 and second.not_retried == 0
        assert [it.uri for it in idx.store.iter_items()] == [uri]


def test_worker_processes_give_the_same_index(tmp_path: Path, corpus: Path) -> None:
    for i in range(12):
        make_image(corpus / f"extra{i}.png", (i * 20, 255 - i * 20, 100))
    a = omniret.open(str(tmp_path / "a"), model="fake")
    b = omniret.open(str(tmp_path / "b"), model="fake")
    ra = a.add(str(corpus), workers=0)
    rb = b.add(str(corpus), workers=2, commit_every=5)
    assert ra.items == rb.items and rb.failed == []
    q = str(corpus / "extra3.png")
    assert [h.id for h in a.search(image=q, k=5)] == [h.id for h in b.search(image=q, k=5)]
    a.close()
    b.close()


def test_open_errors_are_clear(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(StoreError, match="folder"):
        omniret.open(str(f), model="fake")
    with pytest.raises(omniret.ModelError, match="unknown model"):
        omniret.open(str(tmp_path / "new"), model="nope:thing")
