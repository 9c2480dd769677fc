"""Video ingest with scene-cut segments and frame OCR, on and off: seconds of video indexed per second.

Run: ``.venv/bin/python bench/video_scenes_bench.py``. A 60 s 640x360 25 fps H.264 video of six real
photos and two text cards shown for uneven durations, indexed with the offline model (4 frames a
segment, ``workers=0``) four ways: fixed or scene segments, with or without OCR. The offline model
and the OCR engine are warmed first, so the numbers are steady-state ingest. Prints Markdown rows in
the format of ``bench/RESULTS_media.md``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "media2"))

from mediagen import make_video  # noqa: E402

from omniret.encoders.registry import create  # noqa: E402
from omniret.ingest.run import run_add  # noqa: E402
from omniret.ingest.work import IngestOptions
from omniret.store import open_store  # noqa: E402


def card(text: str, size: tuple[int, int] = (640, 360)) -> object:
    from PIL import Image, ImageDraw, ImageFont

    im = Image.new("RGB", size, "white")
    ImageDraw.Draw(im).text((30, 130), text, fill="black", font=ImageFont.load_default(size=56))
    return im


def build_video(path: Path) -> tuple[Path, float]:
    from PIL import Image
    from skimage import data

    photos = [Image.fromarray(x) for x in (data.rocket(), data.chelsea(), data.coffee(), data.astronaut(),
                                           data.stereo_motorcycle()[0], data.chelsea()[::-1])]
    shots = [(photos[0], 7), (card("Volcano eruption"), 5), (photos[1], 13), (photos[2], 4), (photos[3], 9),
             (card("Quarterly report"), 6), (photos[4], 11), (photos[5], 5)]
    return make_video(path, shots, fps=25, size=(640, 360), codec="libx264"), float(sum(s for _, s in shots))


def main() -> None:
    from omniret.media.pdf import ocr_image

    work = Path(tempfile.mkdtemp(prefix="omniret-video-bench-"))
    video, seconds = build_video(work / "v.mp4")
    enc = create("offline")
    enc.encode_text(["warm up"])
    enc.encode_pixels(np.zeros((1, 3, 224, 224), np.float32))
    ocr_image(card("warm up"))  # type: ignore[arg-type]
    rows = []
    for segments in ("fixed", "scenes"):
        for ocr in (False, True):
            idx = work / f"idx-{segments}-{ocr}"
            with open_store(idx) as store:
                t0 = time.perf_counter()
                rep = run_add([str(video)], store, enc, IngestOptions(workers=0, video_frames_per_segment=4,
                                                                     video_segments=segments, video_ocr=ocr))
                dt = time.perf_counter() - t0
                n_segs = sum(1 for it in store.iter_items() if it.parent_id and it.metadata.get("source") != "ocr")
                n_text = sum(1 for it in store.iter_items() if it.text)
            assert not rep.failed, rep.failed
            what = f"video 640x360 25 fps H.264, offline model, 4 frames / segment, {segments} segments, OCR {'on' if ocr else 'off'}"
            rows.append(f"| {what} | {seconds:.0f} s of video, {n_segs} segments ({n_text} with text), {rep.items} items "
                        f"| {dt:.1f} s | **{seconds / dt:.1f} s/s** |")
            print(rows[-1], flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
