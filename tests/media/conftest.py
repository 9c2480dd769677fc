"""A corpus of good and bad media files, generated once per test session in a temp folder.

Good images come from a real photo (scikit-image's astronaut, bundled offline) saved in every
mode and format the decoder must handle; bad files are built to fail in one specific way each.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width x height`` 1-bit pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _save(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _good_images(photo: Image.Image) -> dict[str, bytes]:
    small = photo.resize((128, 128))
    rgba = small.convert("RGBA")
    alpha = np.full((128, 128), 255, np.uint8)
    alpha[:, :64] = 0  # left half fully transparent
    rgba.putalpha(Image.fromarray(alpha))
    pal = small.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    gray16 = Image.fromarray(np.asarray(small.convert("L"), np.uint16) * 257)
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    wide = photo.resize((80, 40))
    return {
        "photo.jpg": _save(photo, "JPEG", quality=90),
        "big.jpg": _save(photo.resize((2048, 1536)), "JPEG", quality=80),
        "cmyk.jpg": _save(small.convert("CMYK"), "JPEG"),
        "gray.jpg": _save(small.convert("L"), "JPEG"),
        "exif_rotated.jpg": _save(wide, "JPEG", exif=exif),
        "rgba.png": _save(rgba, "PNG"),
        "palette.png": _save(pal, "PNG"),
        "palette_transparent.png": _save(pal, "PNG", transparency=0),
        "la.png": _save(small.convert("LA"), "PNG"),
        "bilevel.png": _save(small.convert("1"), "PNG"),
        "gray16.png": _save(gray16, "PNG"),
        "float.tif": _save(Image.fromarray(np.asarray(small.convert("L"), np.float32) / 255.0), "TIFF"),
        "photo.tiff": _save(small, "TIFF"),
        "photo.bmp": _save(small, "BMP"),
        "photo.webp": _save(small, "WEBP"),
        "animated.gif": gif.getvalue(),
    }


def _bad_files(good: dict[str, bytes]) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    jpg, png = good["photo.jpg"], good["rgba.png"]
    return {
        "empty.jpg": b"",
        "truncated.jpg": jpg[: len(jpg) // 2],
        "truncated.png": png[: len(png) // 2],
        "random.png": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "text.jpg": b"Dear diary,\nthis file is text with an image extension.\n" * 5,
        "pdf.png": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
        "bomb.png": bomb_png(100_000, 100_000),
        "binary.txt": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    }


def _texts() -> dict[str, bytes]:
    latin = "Le café crème et la brûlée: naïve façade, garçon, où êtes-vous? Voilà déjà l'été.\n" * 4
    return {
        "utf8.txt": "Plain UTF-8 text: naïve café ✓.\n".encode(),
        "utf8_bom.txt": "\ufeffText with a byte-order mark.\n".encode(),
        "utf16.txt": "UTF-16 text: grüße aus köln, ça va?\r\nSecond line.\r\n".encode("utf-16"),
        "latin1.txt": latin.encode("latin-1"),
        "crlf.txt": b"line one\r\nline two\rline three\n",
        "blank.txt": b"",
        "whitespace.txt": b"  \n\n\t  \r\n ",
        "notes.md": b"Intro line\n\n# The Real Title #\n\nSome *emphasis* and a [link](http://x.y).\n",
        "setext.md": b"Setext Title\n============\n\nBody text.\n",
        "guide.rst": b"=====\nGuide\n=====\n\nIntro.\n\nUsage\n-----\n\nRun it.\n",
    }


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name → path of every generated file (images, bad files, texts, and a folder named x.jpg)."""
    root = tmp_path_factory.mktemp("media_corpus")
    photo = Image.fromarray(data.astronaut())
    good = _good_images(photo)
    files = {**good, **_bad_files(good), **_texts()}
    out: dict[str, Path] = {}
    for name, payload in files.items():
        (root / name).write_bytes(payload)
        out[name] = root / name
    (root / "folder.jpg").mkdir()
    out["folder.jpg"] = root / "folder.jpg"
    return out
