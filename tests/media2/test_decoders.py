"""Audio, video and PDF decoders on real files, and every way they must fail cleanly."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from mediagen import truncated_copy, write_text_pdf

from omniret.errors import MediaError
from omniret.media import decode
from omniret.media.audio import load_audio, resample, window_spans
from omniret.media.pdf import PdfOptions, group_blocks, iter_pages, open_pdf
from omniret.media.video import VideoOptions, load_video


# -- audio ----------------------------------------------------------------------------------------
def test_every_animal_sound_decodes_to_mono_48k(animals: Path) -> None:
    files = sorted(animals.glob("*.mp3"))
    assert len(files) == 10
    for f in files:
        clip = load_audio(f, sample_rate=48_000)
        assert clip.samples is not None and clip.samples.dtype == np.float32 and clip.samples.ndim == 1
        assert abs(len(clip.samples) / 48_000 - clip.duration) < 1e-6 and clip.duration > 0.5
        assert 0.0 < float(np.abs(clip.samples).max()) <= 1.5  # real sound, not silence


def test_rate_conversion_keeps_duration_and_pitch(speech: Path) -> None:
    a = load_audio(speech, sample_rate=16_000)  # soundfile fast path (espeak writes 22.05 kHz WAV)
    b = load_audio(speech, sample_rate=48_000)
    assert a.source_rate == 22_050 and a.channels == 1
    assert a.duration == pytest.approx(b.duration) and len(b.samples) == pytest.approx(3 * len(a.samples), abs=3)
    tone = np.sin(2 * np.pi * 1000 * np.arange(22_050) / 22_050).astype(np.float32)
    up = resample(tone, 22_050, 48_000)
    peak = np.argmax(np.abs(np.fft.rfft(up))) * 48_000 / len(up)
    assert peak == pytest.approx(1000, abs=2)


def test_keep_samples_false_measures_without_holding(animals: Path) -> None:
    clip = load_audio(animals / "dog.mp3", keep_samples=False)
    assert clip.samples is None and clip.duration == pytest.approx(5.989, abs=0.01)


def test_bad_audio_fails_with_a_reason(animals: Path, speech: Path, tmp_path: Path) -> None:
    cases = {
        "cut.mp3": (truncated_copy(animals / "cat.mp3", tmp_path / "cut.mp3"), "truncated audio"),
        "cut.wav": (truncated_copy(speech, tmp_path / "cut.wav", 0.5), "truncated WAV"),
        "empty.mp3": (tmp_path / "empty.mp3", "empty file"),
        "noise.mp3": (tmp_path / "noise.mp3", "not audio or video"),
        "silent.wav": (tmp_path / "silent.wav", "zero-length"),
        "long.mp3": (animals / "dog.mp3", "too long"),
    }
    (tmp_path / "empty.mp3").write_bytes(b"")
    (tmp_path / "noise.mp3").write_bytes(np.random.default_rng(0).bytes(4000))
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    (tmp_path / "silent.wav").write_bytes(b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + struct.pack("<I", 16)
                                          + fmt + b"data" + struct.pack("<I", 0))
    for name, (path, reason) in cases.items():
        with pytest.raises(MediaError, match=reason) as info:
            load_audio(path, max_seconds=5.0 if name == "long.mp3" else None)
        assert info.value.uri == str(path), name


def test_window_spans() -> None:
    assert window_spans(3.0) == [(0.0, 3.0)]
    assert window_spans(20.0) == [(0.0, 10.0), (5.0, 15.0), (10.0, 20.0)]
    assert window_spans(23.0) == [(0.0, 10.0), (5.0, 15.0), (10.0, 20.0), (13.0, 23.0)]
    assert window_spans(12.0, window=4.0, hop=4.0) == [(0.0, 4.0), (4.0, 8.0), (8.0, 12.0)]


# -- video ----------------------------------------------------------------------------------------
def test_video_segments_at_one_fps(media_dir: Path) -> None:
    v = load_video(media_dir / "scenes.mp4", VideoOptions(frames_per_segment=4, audio_rate=16_000))
    assert v.duration == pytest.approx(30.0, abs=0.25) and (v.width, v.height) == (320, 240) and v.has_audio
    assert [(s.start, s.end) for s in v.segments] == [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)]
    # ten 1-fps frames per segment thinned to 4 with np.linspace(0, 9, 4, dtype=int) = [0, 3, 6, 9]
    assert v.segments[1].frame_times == [10.0, 13.0, 16.0, 19.0]
    assert all(min(im.size) == 224 for s in v.segments for im in s.frames)  # short side to target_size
    assert v.audio is not None and v.audio.duration == pytest.approx(30.0, abs=0.1)
    spec = np.abs(np.fft.rfft(v.audio.samples[16_000:32_000]))
    assert np.argmax(spec) == pytest.approx(440, abs=2)  # the 440 Hz tone, 1 Hz bins
    short = load_video(media_dir / "short.mp4")
    assert [(s.start, s.end) for s in short.segments] == [(0.0, 3.0)]  # the last segment ends with the video


def test_frame_fn_and_long_video_bound(media_dir: Path) -> None:
    v = load_video(media_dir / "scenes.mp4", VideoOptions(max_segments=2, target_size=32), frame_fn=np.asarray)
    assert len(v.segments) == 2 and v.segments[0].end == 15.0  # 30 s in at most 2 segments
    assert isinstance(v.segments[0].frames[0], np.ndarray) and min(v.segments[0].frames[0].shape[:2]) == 32


def test_bad_video_fails_with_a_reason(media_dir: Path, speech: Path, tmp_path: Path) -> None:
    import av

    empty = tmp_path / "empty.mkv"
    out = av.open(str(empty), "w")
    vs = out.add_stream("mpeg4", rate=5)
    vs.width, vs.height, vs.pix_fmt = 64, 64, "yuv420p"
    out.start_encoding()
    out.close()
    cases = {
        truncated_copy(media_dir / "scenes.mkv", tmp_path / "cut.mkv", 0.5): "truncated video: decoded",
        truncated_copy(media_dir / "scenes.mp4", tmp_path / "cut.mp4", 0.5): "corrupt or truncated MP4",
        empty: "zero-length",
        speech: "no video stream",
    }
    for path, reason in cases.items():
        with pytest.raises(MediaError, match=reason):
            load_video(path)
    with pytest.raises(MediaError, match="too long"):
        load_video(media_dir / "scenes.mp4", VideoOptions(max_seconds=20))


# -- PDF ------------------------------------------------------------------------------------------
def test_text_pdf_pages_and_blocks(media_dir: Path) -> None:
    info = open_pdf(media_dir / "book.pdf")
    assert info.pages == 3
    pages = list(iter_pages(media_dir / "book.pdf"))
    assert [p.number for p in pages] == [1, 2, 3] and all(p.text_source == "layer" for p in pages)
    assert pages[1].text.startswith("Chapter Two: Penguins of Antarctica") and pages[1].image is None
    # heading (22 pt) and paragraph (11 pt) are close enough to join, but set in different sizes: two blocks
    heading, para = pages[1].blocks
    assert heading.text == "Chapter Two: Penguins of Antarctica" and para.text.startswith("Flightless birds")
    assert heading.size == pytest.approx(22, abs=0.5) and para.size == pytest.approx(11, abs=0.5)
    assert heading.weight == para.weight and heading.lines == para.lines == 1
    x0, y0, x1, y1 = heading.bbox
    assert 0.08 < x0 < 0.11 and 0.0 < y0 < y1 < para.bbox[1] < 0.15 and x0 < x1 <= 1.0  # top-left of an A4 page
    rendered = next(iter_pages(media_dir / "book.pdf", PdfOptions(render="always", image_size=100)))
    assert rendered.image is not None and abs(min(rendered.image.size) - 100) <= 1


def test_group_blocks_separates_columns_and_paragraphs() -> None:
    h = 0.01
    runs = [((0.1, 0.10, 0.3, 0.10 + h), "left one"), ((0.31, 0.10, 0.4, 0.10 + h), "tail"),
            ((0.1, 0.112, 0.4, 0.112 + h), "left two"), ((0.6, 0.10, 0.9, 0.10 + h), "right col"),
            ((0.1, 0.2, 0.4, 0.2 + h), "next paragraph")]
    blocks = group_blocks(runs)
    assert [b.text for b in blocks] == ["left one tail left two", "right col", "next paragraph"]
    assert blocks[0].bbox == (0.1, 0.1, 0.4, 0.122)


def test_real_texlive_pdf(texdoc: Path) -> None:
    pages = list(iter_pages(texdoc / "carlisle" / "ltxtable.pdf", PdfOptions(ocr=False)))
    assert len(pages) == 3 and pages[0].text.startswith("ltxtable: longtable meets tabularx")
    assert pages[0].blocks[0].text == "ltxtable: longtable meets tabularx"
    assert any("Since tabularx was put on the archives" in b.text for b in pages[0].blocks)


def test_scanned_pdf_is_read_by_ocr(media_dir: Path) -> None:
    import importlib.util

    if not any(importlib.util.find_spec(m) for m in ("rapidocr_onnxruntime", "rapidocr")):
        pytest.skip("OCR engine missing: pip install rapidocr-onnxruntime")
    (page,) = list(iter_pages(media_dir / "scan.pdf"))
    assert page.text_source == "ocr" and "Penguin sales grew" in page.text
    assert len(page.blocks) == 2 and page.blocks[1].bbox[1] > page.blocks[0].bbox[3]
    (no_ocr,) = list(iter_pages(media_dir / "scan.pdf", PdfOptions(ocr=False)))
    assert no_ocr.text == "" and no_ocr.text_source == "none" and no_ocr.image is not None


def test_bad_pdfs_fail_with_a_reason(media_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "junk.pdf").write_bytes(b"%PDF-1.4\n1 0 obj garbage")
    (tmp_path / "png.pdf").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    truncated_copy(media_dir / "book.pdf", tmp_path / "cut.pdf", 0.3)
    cases = {media_dir / "locked.pdf": "encrypted PDF", tmp_path / "junk.pdf": "malformed PDF",
             tmp_path / "png.pdf": "not a PDF .*PNG", tmp_path / "cut.pdf": "malformed PDF|no pages"}
    for path, reason in cases.items():
        with pytest.raises(MediaError, match=reason):
            open_pdf(path)
        with pytest.raises(MediaError, match=reason):
            decode(path, "document")


def test_thousands_of_pages_stream(tmp_path: Path) -> None:
    """3,000 pages: pages arrive one at a time (a generator), each closed before the next opens."""
    path = write_text_pdf(tmp_path / "big.pdf", [[(f"Page number {i}", 12)] for i in range(3000)])
    it = iter_pages(path, PdfOptions(blocks=False, ocr=False))
    first = next(it)
    assert first.text == "Page number 0"
    texts = [first.text] + [p.text for p in it]
    assert len(texts) == 3000 and texts[-1] == "Page number 2999"
