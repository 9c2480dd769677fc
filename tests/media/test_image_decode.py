"""load_image on the generated corpus: every good file decodes to RGB, every bad one fails with its reason."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omniret.errors import MediaError
from omniret.media import image as image_mod
from omniret.media.image import load_image, to_rgb

GOOD = [
    "photo.jpg", "big.jpg", "cmyk.jpg", "gray.jpg", "exif_rotated.jpg", "rgba.png", "palette.png",
    "palette_transparent.png", "la.png", "bilevel.png", "gray16.png", "float.tif", "photo.tiff",
    "photo.bmp", "photo.webp", "animated.gif",
]  # fmt: skip

BAD = [
    ("empty.jpg", "empty file (0 bytes)"),
    ("truncated.jpg", "truncated JPEG"),
    ("truncated.png", "truncated PNG"),
    ("random.png", "not an image (looks like unrecognised binary data)"),
    ("text.jpg", "not an image (looks like text)"),
    ("pdf.png", "not an image (looks like a PDF)"),
    ("bomb.png", "image too large"),
    ("folder.jpg", "is a folder, not a file"),
    ("binary.txt", "not an image"),
]


@pytest.mark.parametrize("name", GOOD)
def test_good_images_decode_to_loaded_rgb(corpus: dict[str, Path], name: str) -> None:
    im = load_image(corpus[name])
    assert im.mode == "RGB"
    assert im.size[0] > 0 and im.size[1] > 0
    arr = np.asarray(im)  # fully decoded: pixel access works after the file is closed
    assert arr.dtype == np.uint8 and arr.shape == (im.size[1], im.size[0], 3)
    assert arr.std() > 0 or name == "animated.gif"


@pytest.mark.parametrize(("name", "reason"), BAD)
def test_bad_files_raise_media_error_with_reason(corpus: dict[str, Path], name: str, reason: str) -> None:
    with pytest.raises(MediaError) as info:
        load_image(corpus[name])
    assert info.value.uri == str(corpus[name])
    assert info.value.reason.startswith(reason), info.value.reason


def test_alpha_is_composited_on_white(corpus: dict[str, Path]) -> None:
    arr = np.asarray(load_image(corpus["rgba.png"]))
    assert (arr[:, :64] == 255).all()  # the transparent half
    assert arr[:, 64:].std() > 10  # the opaque half keeps the photo


def test_palette_transparency_becomes_white(corpus: dict[str, Path]) -> None:
    with Image.open(corpus["palette_transparent.png"]) as raw:
        idx = np.asarray(raw)
    arr = np.asarray(load_image(corpus["palette_transparent.png"]))
    assert (idx == 0).any()
    assert (arr[idx == 0] == 255).all()


def test_animated_gif_gives_first_frame(corpus: dict[str, Path]) -> None:
    arr = np.asarray(load_image(corpus["animated.gif"])).astype(int)
    assert tuple(arr[16, 16]) == (255, 0, 0)


def test_exif_orientation_is_applied(corpus: dict[str, Path]) -> None:
    with Image.open(corpus["exif_rotated.jpg"]) as raw:
        assert raw.size == (80, 40)
    assert load_image(corpus["exif_rotated.jpg"]).size == (40, 80)


def test_sixteen_bit_png_keeps_its_levels(corpus: dict[str, Path]) -> None:
    with Image.open(corpus["gray16.png"]) as raw:
        assert raw.mode.startswith("I")
        ref = (np.asarray(raw).astype(np.float64) / 257).round()
    arr = np.asarray(load_image(corpus["gray16.png"]))
    assert np.abs(arr[..., 0].astype(np.float64) - ref).max() <= 1
    assert (arr[..., 0] == arr[..., 2]).all()


def test_cmyk_jpeg_colours_are_close_to_the_rgb_source(corpus: dict[str, Path]) -> None:
    rgb = np.asarray(load_image(corpus["photo.jpg"]).resize((128, 128))).astype(float)
    cmyk = np.asarray(load_image(corpus["cmyk.jpg"])).astype(float)
    assert np.abs(rgb - cmyk).mean() < 20  # not inverted or garbled (inverted would be ~100)


def test_float_tiff_is_rescaled_to_full_range(corpus: dict[str, Path]) -> None:
    gray = np.asarray(load_image(corpus["gray.jpg"]))[..., 0].astype(float)
    flt = np.asarray(load_image(corpus["float.tif"]))[..., 0].astype(float)
    assert abs(gray.mean() - flt.mean()) < 5


def test_jpeg_draft_never_goes_below_target(corpus: dict[str, Path]) -> None:
    full = load_image(corpus["big.jpg"])
    assert full.size == (2048, 1536)
    for target in (224, 384, 700, 1536):
        im = load_image(corpus["big.jpg"], target_size=target)
        assert min(im.size) >= target
        assert im.size[0] / im.size[1] == pytest.approx(2048 / 1536)
    assert load_image(corpus["big.jpg"], target_size=224).size == (512, 384)  # 1/4 scale, not 1/8
    assert load_image(corpus["rgba.png"], target_size=16).size == (128, 128)


def test_pixel_limit_is_configurable(corpus: dict[str, Path]) -> None:
    with pytest.raises(MediaError, match="exceeds the limit of 10,000"):
        load_image(corpus["photo.jpg"], max_pixels=10_000)
    assert load_image(corpus["photo.jpg"], max_pixels=512 * 512).size == (512, 512)


def test_between_pillow_warning_and_our_limit_no_warning_leaks(
    corpus: dict[str, Path], monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder
) -> None:
    # Pillow warns above MAX_IMAGE_PIXELS and errors above twice that; shrink it so the
    # 512x512 photo (262,144 pixels) lands between the two levels cheaply.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200_000)
    assert load_image(corpus["photo.jpg"], max_pixels=300_000).size == (512, 512)
    assert load_image(corpus["photo.jpg"], max_pixels=None).size == (512, 512)
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]
    with pytest.raises(MediaError, match="exceeds the limit of 250,000"):
        load_image(corpus["photo.jpg"], max_pixels=250_000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)
    with pytest.raises(MediaError, match="image too large"):  # Pillow's own error level (2x) still holds
        load_image(corpus["photo.jpg"], max_pixels=None)


def test_vanished_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError) as info:
        load_image(tmp_path / "gone.jpg")
    assert info.value.reason == "file vanished"


def test_permission_denied_simulated(corpus: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: str, mode: str = "r") -> None:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr("omniret.media._io._open_fd", refuse)
    with pytest.raises(MediaError) as info:
        load_image(corpus["photo.jpg"])
    assert info.value.reason == "permission denied"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores file permissions")
def test_permission_denied_real(tmp_path: Path, corpus: dict[str, Path]) -> None:
    p = tmp_path / "locked.jpg"
    p.write_bytes(corpus["photo.jpg"].read_bytes())
    p.chmod(0)
    try:
        with pytest.raises(MediaError, match="permission denied"):
            load_image(p)
    finally:
        p.chmod(0o600)


def test_bad_target_size(corpus: dict[str, Path]) -> None:
    with pytest.raises(MediaError, match="target_size must be a positive"):
        load_image(corpus["photo.jpg"], target_size=0)


@pytest.mark.parametrize(
    "mode", ["1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "YCbCr", "I", "I;16", "F", "HSV"]
)
def test_to_rgb_handles_every_mode(mode: str) -> None:
    base = Image.new("RGB", (8, 4), (200, 100, 50))
    im = base.convert("L").convert(mode) if mode.startswith("I") or mode == "F" else base.convert(mode)
    out = to_rgb(im)
    assert out.mode == "RGB" and out.size == (8, 4)


def test_module_keeps_pillow_globals_untouched(corpus: dict[str, Path]) -> None:
    before = Image.MAX_IMAGE_PIXELS
    load_image(corpus["photo.jpg"], max_pixels=None)
    assert Image.MAX_IMAGE_PIXELS == before
    assert image_mod.DEFAULT_MAX_PIXELS == 178_956_970


def test_skimage_multipage_tiffs_give_their_first_page(tmp_path: Path) -> None:
    """Regression: scikit-image's planar float ``multipage_rgb.tif`` failed ("not an image")."""
    import skimage
    import tifffile

    data = Path(skimage.__file__).parent / "data"
    rgb = np.asarray(load_image(data / "multipage_rgb.tif"))
    first = tifffile.imread(data / "multipage_rgb.tif").reshape(2, 3, 10, 10)[0].transpose(1, 2, 0)
    assert rgb.shape == (10, 10, 3) and np.abs(rgb - first * 255).max() <= 1.0  # page 0, samples last, 8-bit
    gray = np.asarray(load_image(data / "multipage.tif"))  # Pillow's own path: the first of 2 pages
    assert gray.shape == (15, 10, 3)
    np.testing.assert_array_equal(gray[..., 0], tifffile.imread(data / "multipage.tif", key=0))
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00" + b"\xff" * 60)
    with pytest.raises(MediaError, match="TIFF"):
        load_image(bad)


def test_concurrent_decodes_leave_the_warning_filters_as_they_were(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Decode threads each enter the header read's ``warnings.catch_warnings``; interleaved, one thread could
    restore the filter list another had changed and leave an "error" filter behind for the whole process.
    Pictures over Pillow's warning level (lowered here so that small files reach it) take the path."""
    import threading
    import warnings

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 64)
    files = []
    for side in (40, 80, 100):  # under Pillow's level, over it (its warning), over twice it (its error)
        files.append(tmp_path / f"{side}.png")
        Image.new("RGB", (side, side), (200, 30, 30)).save(files[-1])
    before = list(warnings.filters)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(150):
                uri = str(files[(i + n) % 3])
                try:
                    load_image(uri, max_pixels=10**6)
                except MediaError as e:  # over twice Pillow's level: its DecompressionBombError, as MediaError
                    assert "too large" in str(e)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert warnings.filters == before
