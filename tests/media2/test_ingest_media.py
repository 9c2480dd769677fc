"""Audio, video and PDF files through the ingest pipeline: items, spans, vectors, per-file errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fake_audio import FakeAudioEncoder
from mediagen import truncated_copy

import omniret
from omniret.encoders.registry import create
from omniret.ingest.run import run_add
from omniret.ingest.work import IngestOptions
from omniret.items import Modality, make_id
from omniret.methods.late_interaction import mean_pool_frames
from omniret.store import open_store
from omniret.store.base import Filter


@pytest.fixture
def mixed(media_dir: Path, animals: Path, speech: Path, tmp_path: Path) -> Path:
    root = tmp_path / "mixed"
    root.mkdir()
    for name in ("scenes.mp4", "short.mp4", "book.pdf", "locked.pdf"):
        shutil.copy(media_dir / name, root / name)
    shutil.copy(animals / "cat.mp3", root / "cat.mp3")
    long = np.concatenate([np.sin(2 * np.pi * f * np.arange(8 * 16000) / 16000) for f in (300, 3000)])
    import soundfile as sf

    sf.write(root / "tones.wav", (0.3 * long).astype(np.float32), 16000)
    shutil.copy(speech, root / "speech.wav")
    truncated_copy(media_dir / "scenes.mkv", root / "cut.mkv", 0.5)
    truncated_copy(animals / "dog.mp3", root / "cut.mp3", 0.3)
    (root / "junk.pdf").write_bytes(b"%PDF-1.4\n1 0 obj garbage")
    return root


def _by_uri(store, name: str) -> list:  # type: ignore[no-untyped-def]
    return sorted((it for it in store.iter_items() if it.uri.endswith("/" + name)), key=lambda i: (i.parent_id is not None, i.span or (0, 0)))


def test_mixed_folder_with_fake_model(mixed: Path, tmp_path: Path) -> None:
    with omniret.open(tmp_path / "idx", model="fake") as index:
        report = index.add(mixed, workers=0, pdf_blocks=True, video_frames_per_segment=3)
        failed = dict(report.failed)
        assert {Path(u).name for u in failed} == {"locked.pdf", "cut.mkv", "cut.mp3", "junk.pdf"}
        assert "encrypted" in failed[str(mixed / "locked.pdf")] and "truncated" in failed[str(mixed / "cut.mkv")]
        assert report.unembedded == 3  # three audio files, no audio model
        store = index.store
        video = _by_uri(store, "scenes.mp4")
        parent, segs = video[0], video[1:]
        assert parent.parent_id is None and parent.span == (0.0, 30.0) and parent.metadata["segments"] == 3
        assert [s.span for s in segs] == [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)]
        assert segs[1].metadata["label"] == "scenes.mp4 @ 00:10–00:20" and segs[1].metadata["frame_times"] == [10.0, 14.0, 19.0]
        seg_vecs = store.vectors("fake-64", [s.id for s in segs])
        np.testing.assert_allclose(store.vectors("fake-64", [parent.id])[0], mean_pool_frames(seg_vecs), atol=2e-3)
        (short,) = _by_uri(store, "short.mp4")  # one segment: no children, the file carries the vector
        assert short.span == (0.0, 3.0) and not np.isnan(store.vectors("fake-64", [short.id])).any()
        audio = _by_uri(store, "cat.mp3")
        assert len(audio) == 1 and audio[0].metadata["embedded"] is False and audio[0].metadata["sample_rate"] == 48000
        assert audio[0].metadata["duration"] == pytest.approx(3.05, abs=0.01)
        _check_pdf(store)


def _check_pdf(store) -> None:  # type: ignore[no-untyped-def]
    items = [it for it in store.iter_items() if it.uri.endswith("book.pdf")]
    doc = next(it for it in items if it.parent_id is None)
    pages = sorted((it for it in items if it.parent_id == doc.id), key=lambda i: i.span)
    assert doc.modality is Modality.DOCUMENT and doc.metadata["pages"] == 3
    assert [p.span for p in pages] == [(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)] and pages[1].metadata["page"] == 2
    assert pages[1].text.startswith("Chapter Two")
    children = [it for it in items if it.parent_id == pages[1].id]
    blocks = [it for it in children if "heading" not in it.metadata]
    (section,) = [it for it in children if "heading" in it.metadata]  # no outline: found by its 22 pt font
    assert [b.text for b in blocks] == ["Chapter Two: Penguins of Antarctica",
                                        "Flightless birds that swim in the cold southern ocean."]
    assert all(len(b.metadata["bbox"]) == 4 and b.metadata["page"] == 2 for b in blocks)
    assert section.metadata["section"] == ["Chapter Two: Penguins of Antarctica"] == blocks[1].metadata["section"]
    assert section.metadata["bbox"] == blocks[0].metadata["bbox"] and section.metadata["level"] == 0
    assert pages[1].metadata["section"] == ["Chapter Two: Penguins of Antarctica"] and doc.metadata["structure"] == "fonts"
    assert not np.isnan(store.vectors("fake-64", [pages[1].id, blocks[0].id, section.id])).any()


def test_audio_windows_with_an_audio_model(mixed: Path, tmp_path: Path) -> None:
    enc = create("fake")
    audio = FakeAudioEncoder()
    with open_store(tmp_path / "idx") as store:
        report = run_add([str(mixed / "tones.wav"), str(mixed / "scenes.mp4"), str(mixed / "cat.mp3")], store, enc,
                         IngestOptions(workers=0, audio_window=4.0, audio_hop=2.0), audio_encoder=audio)
        assert report.failed == [] and report.unembedded == 0
        rec = _by_uri(store, "tones.wav")
        parent, windows = rec[0], rec[1:]
        assert [w.span for w in windows] == [(a, a + 4.0) for a in (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0)]
        assert windows[0].metadata["label"] == "tones.wav @ 00:00–00:04"
        vecs = store.vectors(audio.space, [w.id for w in windows])
        low, high = audio.encode_audio([np.sin(2 * np.pi * f * np.arange(64000) / 16000) for f in (300, 3000)], 16000)
        # windows 0-2 (0-8 s) hold only the 300 Hz tone, windows 4-6 (8-16 s) only the 3 kHz one
        assert np.argmax(vecs @ low) in (0, 1, 2) and np.argmax(vecs @ high) in (4, 5, 6)
        assert (vecs @ low)[:3].min() > (vecs @ low)[3] > (vecs @ low)[4:].max()
        np.testing.assert_allclose(store.vectors(audio.space, [parent.id])[0], mean_pool_frames(vecs), atol=2e-3)
        segs = _by_uri(store, "scenes.mp4")[1:]  # the soundtrack of each segment, on the segment items
        assert not np.isnan(store.vectors(audio.space, [s.id for s in segs])).any()
        assert set(store.spaces()) == {"fake-64", audio.space}
        assert max(audio.seen) <= 10 * 16000 + 1  # windows and segments, never a whole file at once


def test_changed_media_replaces_children(media_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    shutil.copy(media_dir / "scenes.mp4", folder / "v.mp4")
    with omniret.open(tmp_path / "idx", model="fake") as index:
        index.add(folder, workers=0)
        assert index.store.count() == 4
        shutil.copy(media_dir / "short.mp4", folder / "v.mp4")
        report = index.add(folder, workers=0)
        assert report.changed == 1 and index.store.count() == 1
        assert index.store.get([make_id(str(folder / "v.mp4"), part="s1")]) == [None]


def test_pdfs_and_videos_in_worker_processes(media_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mix"
    folder.mkdir()
    for i in range(3):
        shutil.copy(media_dir / "book.pdf", folder / f"b{i}.pdf")
        shutil.copy(media_dir / "scenes.mp4", folder / f"v{i}.mp4")
    with omniret.open(tmp_path / "idx", model="fake") as index:
        report = index.add(folder, workers=2, pdf_blocks=False)
        assert report.failed == [] and report.items == 3 * 4 + 3 * 4
        assert index.store.count(Filter(modalities=frozenset({Modality.DOCUMENT}))) == 12
        v0 = index.store.vectors("fake-64", [make_id(str(folder / "v0.mp4"), part="s1")])
        v2 = index.store.vectors("fake-64", [make_id(str(folder / "v2.mp4"), part="s1")])
        np.testing.assert_allclose(v0, v2, atol=1e-3)  # same frames, same vector, whichever worker decoded
