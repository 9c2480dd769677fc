"""Issue 13.1: extreme aspect ratios (a 475-byte 1×100000 PNG) must not exhaust memory anywhere an image is
resized: every encoder's preprocessing, the GPU path, PDF page renders, ColPali pages and thumbnails.

Each test runs the real preprocessing with this process's address space capped at +2 GiB, and most under
a guard that refuses (before allocating) any PIL resize or torch interpolation bigger than
``size² × MAX_ASPECT`` pixels, so the bug fails the test without taking the machine's memory; the
output shape proves the result is still a sane model input.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from omniret.media.image import MAX_ASPECT, aspect_window, bound_aspect

SIZE = 224
LIMIT = SIZE * SIZE * MAX_ASPECT * 1.05  # pixels a bounded short-side resize may ask for


@pytest.fixture(autouse=True)
def memory_cap() -> Iterator[None]:
    """Cap this process's address space at its current size + 2 GiB for the test: a regression then fails
    with a MemoryError here instead of driving the machine into the OOM killer (the bug asked for 19 GB)."""
    resource = pytest.importorskip("resource")
    for heavy in ("torch", "torchvision.transforms.v2", "open_clip", "transformers.models.clip", "pypdfium2"):
        try:  # shared libraries are mapped at import: load them before the cap
            __import__(heavy)
        except ImportError:
            pass
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        vm = int(f.read().split()[0]) * resource.getpagesize()
    cap = vm + (2 << 30)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.fixture
def resize_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int]]]:
    """Record every PIL resize; refuse one over ``LIMIT`` pixels (the bug would ask for 5 billion)."""
    seen: list[tuple[int, int]] = []
    real = Image.Image.resize

    def guarded(self: Image.Image, size: Any, *args: Any, **kwargs: Any) -> Image.Image:
        w, h = int(size[0]), int(size[1])
        seen.append((w, h))
        assert w * h <= LIMIT, f"unbounded resize {self.size} -> {(w, h)}"
        return real(self, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", guarded)
    yield seen


def tall_thin_png(width: int = 1, height: int = 100_000) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_aspect_window_centres_and_bounds() -> None:
    assert aspect_window(640, 480) is None and aspect_window(16, 1) is None
    assert aspect_window(1, 100_000) == (0, 49_992, 1, 50_008)  # 16 px kept, the cut split evenly
    assert aspect_window(100_000, 3) == (49_976, 0, 50_024, 3)
    left, top, right, bottom = aspect_window(101, 2001)  # an odd cut: one more pixel kept, centred
    assert (right - left, bottom - top, top, 2001 - bottom) == (101, 101 * 16 + 1, 192, 192)
    with pytest.raises(ValueError, match="at least 1"):
        aspect_window(10, 10, 0.5)


def test_bound_aspect_keeps_ordinary_images_and_centres_extreme_ones() -> None:
    photo = Image.new("RGB", (4000, 300))
    assert bound_aspect(photo) is photo  # 13:1 panorama untouched
    strip = Image.fromarray(np.arange(100_000, dtype=np.uint32).reshape(-1, 1).astype(np.float32), "F")
    cut = bound_aspect(strip)
    assert cut.size == (1, 16)
    assert np.asarray(cut)[:, 0].tolist() == list(range(49_992, 50_008))


def test_tall_thin_png_offline_preprocessing_is_bounded(resize_guard: list[tuple[int, int]]) -> None:
    from omniret.encoders.offline import EfficientNetLitePreprocess

    pre = EfficientNetLitePreprocess()
    for im in (Image.open(io.BytesIO(tall_thin_png())), Image.new("RGB", (100_000, 1)), Image.new("L", (3, 60_000))):
        assert pre(im).shape == (3, SIZE, SIZE)
    assert resize_guard and max(w * h for w, h in resize_guard) <= LIMIT


def test_bounded_preprocessing_output_is_unchanged_for_long_images() -> None:
    """The centre window feeds a short-side resize + centre crop the same pixels: a 30:1 photo strip gives
    the same model input whether it is cut first or not."""
    from omniret.encoders.offline import EfficientNetLitePreprocess

    rng = np.random.default_rng(0)
    strip = Image.fromarray(rng.integers(0, 255, (3000, 100, 3), dtype=np.uint8).repeat(2, 0))  # 100 × 6000
    pre = EfficientNetLitePreprocess()
    cut = pre(strip)
    s = SIZE / 100
    full = strip.resize((SIZE, round(6000 * s)), Image.Resampling.BICUBIC)
    top = (full.height - SIZE) // 2
    ref = (np.asarray(full.crop((0, top, SIZE, top + SIZE)), dtype=np.float32) - 127.0) / 128.0
    # cut vs uncut differ by at most the sub-pixel rounding of the crop origin
    assert np.abs(cut.transpose(1, 2, 0) - ref).mean() < 0.05


def test_tall_thin_png_openclip_preprocessing_is_bounded(resize_guard: list[tuple[int, int]]) -> None:
    pytest.importorskip("open_clip")
    from omniret.encoders.openclip import OpenClipPreprocess

    cfg = {"size": SIZE, "mode": "RGB", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
           "interpolation": "bicubic", "resize_mode": "shortest"}
    out = OpenClipPreprocess(cfg)(Image.open(io.BytesIO(tall_thin_png())).convert("RGB"))
    assert out.shape == (3, SIZE, SIZE) and resize_guard


def test_tall_thin_png_hf_clip_preprocessing_is_bounded(tmp_path: Path, resize_guard: list[tuple[int, int]]) -> None:
    pytest.importorskip("transformers")
    from transformers import CLIPImageProcessor

    from omniret.encoders.hf import HFImagePreprocess

    CLIPImageProcessor(size={"shortest_edge": SIZE}, crop_size=SIZE).save_pretrained(tmp_path)
    out = HFImagePreprocess(str(tmp_path))(Image.open(io.BytesIO(tall_thin_png())))
    assert out.shape == (3, SIZE, SIZE)


def test_tall_thin_jpeg_gpu_resize_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F  # noqa: N812

    from omniret.ingest.gpu import GpuPreprocess

    real = F.interpolate
    asked: list[tuple[int, int]] = []

    def guarded(x: Any, size: Any = None, **kw: Any) -> Any:
        asked.append(tuple(size))
        assert size[0] * size[1] <= LIMIT, f"unbounded interpolation to {size}"
        return real(x, size=size, **kw)

    monkeypatch.setattr(F, "interpolate", guarded)
    pre = GpuPreprocess(SIZE, (0.5,) * 3, (0.5,) * 3, device="cpu", dtype=torch.float32)
    out = pre([torch.zeros((3, 60_000, 2), dtype=torch.uint8), torch.zeros((3, 300, 400), dtype=torch.uint8)])
    assert tuple(out.shape) == (2, 3, SIZE, SIZE) and asked[-1] == (SIZE, round(400 * SIZE / 300))


def test_extreme_pdf_page_render_is_bounded() -> None:
    pdfium = pytest.importorskip("pypdfium2")
    from omniret.media.pdf import MAX_OCR_PIXELS, _ocr_scale, render_page

    doc = pdfium.PdfDocument.new()
    try:
        doc.new_page(3, 14_400)  # a 3 × 14400 pt page: 448 × 2,150,400 px at a 448 short side
        doc.new_page(612, 792)
        tall, letter = render_page(doc[0], 448), render_page(doc[1], 448)
    finally:
        doc.close()
    assert max(tall.size) <= 448 * MAX_ASPECT + 1
    assert min(letter.size) == 448  # ordinary pages unchanged
    assert _ocr_scale(150, 14_400, 14_400) ** 2 * 14_400**2 <= MAX_OCR_PIXELS * 1.001
    assert _ocr_scale(150, 612, 792) == pytest.approx(150 / 72)


def test_tall_thin_png_thumbnail_is_bounded(tmp_path: Path, resize_guard: list[tuple[int, int]]) -> None:
    from omniret.items import Item, Modality
    from omniret.server.thumbs import thumbnail

    src = tmp_path / "strip.png"
    src.write_bytes(tall_thin_png(20, 100_000))
    out = thumbnail(Item(id="x1", uri=str(src), modality=Modality.IMAGE), tmp_path / "thumbs", size=256)
    with Image.open(out) as im:
        assert max(im.size) <= 256 and max(im.size) / min(im.size) <= MAX_ASPECT

