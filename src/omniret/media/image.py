"""Image decoding with Pillow: always RGB, oriented, fully decoded, or a :class:`MediaError`.

:func:`load_image` opens any format Pillow reads (JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF…, and HEIC
through the pillow-heif plugin, registered on first use) and returns an 8-bit RGB image:

- JPEG with ``target_size``: DCT-domain downscaling (``Image.draft``), which decodes at 1/2, 1/4
  or 1/8 scale for a large speed-up, choosing the smallest scale whose short side is still
  ``>= target_size``;
- animated GIF/WebP/PNG and multi-page TIFF: the first frame (page), like a file browser's preview;
- TIFF layouts Pillow cannot read (planar RGB, floating point, several samples per pixel — e.g.
  scikit-image's ``multipage_rgb.tif``) through ``tifffile`` (a dependency of scikit-image): the first
  page, samples moved last, scaled to 8 bits;
- palette, alpha, CMYK, 16-bit and grayscale modes converted to RGB; transparency composited
  on white (what a viewer shows on a white page, and what the models saw in web data);
- SVG drawings (``.svg``, ``.svgz``): drawn by :mod:`omniret.media.svg` (CairoSVG), on white;
- EXIF orientation applied (``ImageOps.exif_transpose``);
- decompression bombs refused: above ``max_pixels`` (default 178,956,970, Pillow's own error
  level, ``2 * Image.MAX_IMAGE_PIXELS``), checked on the header before any pixel is decoded.
  Pillow's ``DecompressionBombWarning`` is turned into an error inside this call, so a bomb
  never slips through as a mere warning; ``max_pixels`` is the one policy;
- ``.load()`` is forced, so truncated and corrupt files fail here, not later in a batch.

:func:`bound_aspect` is the one bound on extreme aspect ratios, shared by every encoder's image
preprocessing, the GPU ingest path, PDF page renders and the thumbnailer: a short-side resize of a
1×100000 PNG to 224 would make a 224×22,400,000 image (15 GB). Cropping the long side to the centred
``MAX_ASPECT × short side`` window first gives a short-side-resize-then-centre-crop preprocessor the
same pixels (it only ever keeps the centre square) and bounds its intermediate image at
``size² × MAX_ASPECT``.
"""

from __future__ import annotations

import io
import math
import os
import threading
import warnings
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError, features

from omniret.errors import MediaError
from omniret.media._io import describe, file_size, open_binary

#: Default pixel limit (width × height): Pillow's decompression-bomb error level.
DEFAULT_MAX_PIXELS = 178_956_970

#: The longest side an image keeps before a short-side resize, as a multiple of its short side.
MAX_ASPECT = 16

_HEIF_REGISTERED = False
_HEIF_LOCK = threading.Lock()
#: ``warnings.catch_warnings`` swaps the process-wide filter list and puts back what it saw on entry:
#: two decode threads inside it at once could leave the other's filter behind for good. Header reads
#: (no pixel data) take turns under this lock.
_WARNINGS_LOCK = threading.Lock()
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


def load_image(
    path: str | os.PathLike[str],
    *,
    target_size: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """Decode ``path`` into a fully loaded 8-bit RGB :class:`PIL.Image.Image`.

    ``target_size`` is a hint (the encoder's input side): JPEGs may then decode at a reduced
    scale, never below it on the short side. ``max_pixels=None`` removes omniret's limit (Pillow's
    own hard limit still applies). Raises :class:`MediaError` with a short reason otherwise.
    """
    uri = os.fspath(path)
    if target_size is not None and target_size < 1:
        raise MediaError(uri, f"target_size must be a positive number of pixels, got {target_size}")
    if uri.lower().endswith((".svg", ".svgz")):
        from omniret.media.svg import rasterize

        return to_rgb(rasterize(uri, target_size=target_size), uri)
    with open_binary(uri) as f:
        return _decode(uri, f, file_size(f), target_size, max_pixels)


def load_image_bytes(
    data: bytes,
    *,
    name: str = "<bytes>",
    target_size: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """:func:`load_image` for an encoded image held in memory (``name`` labels errors)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MediaError(name, f"expected encoded image bytes, got {type(data).__name__}")
    return _decode(name, io.BytesIO(bytes(data)), len(data), target_size, max_pixels)


def image_from_array(arr: Any, *, name: str = "<array>", max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """An 8-bit RGB image from an array: ``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, of
    uint8, or of floats in [0, 1] (scaled by 255) — the layouts of PIL, imageio and ``datasets``."""
    a = np.asarray(arr)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)) or 0 in a.shape:
        raise MediaError(name, f"an image array must be (H, W), (H, W, 3) or (H, W, 4); got shape {a.shape}")
    if max_pixels is not None and a.shape[0] * a.shape[1] > max_pixels:
        raise MediaError(name, f"image too large: {a.shape[1]}x{a.shape[0]} exceeds the limit of {max_pixels:,} pixels")
    if a.dtype != np.uint8:
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise MediaError(name, f"an image array must hold numbers, got dtype {a.dtype}")
        f = a.astype(np.float64)
        if not np.all(np.isfinite(f)):
            raise MediaError(name, "image array holds NaN or infinity")
        a = np.clip(f * (255.0 if f.max(initial=0.0) <= 1.0 else 1.0), 0, 255).round().astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    return to_rgb(Image.fromarray(a), name)


def _decode(uri: str, f: BinaryIO, size: int, target_size: int | None, max_pixels: int | None) -> Image.Image:
    """Decode an open image file (or bytes) ``f`` of ``size`` bytes; ``uri`` names it in errors."""
    if target_size is not None and target_size < 1:
        raise MediaError(uri, f"target_size must be a positive number of pixels, got {target_size}")
    if size == 0:
        raise MediaError(uri, "empty file (0 bytes)")
    try:
        im = _open(uri, f, max_pixels)
    except _PillowCannotReadTiff:
        f.seek(0)
        return _tiff_first_page(uri, f, max_pixels)
    try:
        if target_size is not None and im.format == "JPEG":
            im.draft("RGB", (target_size, target_size))
        _load(uri, im)
        out = to_rgb(_orient(im), uri)
    except BaseException:
        im.close()
        raise
    if out is not im:
        im.close()  # release the decoded source; ``out`` owns its own pixels
    return out


def _open(uri: str, f: BinaryIO, max_pixels: int | None) -> ImageFile.ImageFile:
    """Read the header and apply the pixel limit (no pixel data decoded yet)."""
    _plugin_for(uri, f.read(32))
    f.seek(0)
    try:
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                im = Image.open(f)
            except Image.DecompressionBombWarning:
                f.seek(0)  # over Pillow's warning level: open again quietly, our limit decides
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im = Image.open(f)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise MediaError(uri, f"image too large (decompression bomb?): {e}") from e
    except UnidentifiedImageError as e:
        f.seek(0)
        head = f.read(512)
        if head[:4] in _TIFF_MAGIC:
            raise _PillowCannotReadTiff from e
        raise MediaError(uri, f"not an image (looks like {describe(head)})") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise MediaError(uri, f"corrupt image header ({e})") from e
    w, h = im.size
    if max_pixels is not None and w * h > max_pixels:
        im.close()
        raise MediaError(
            uri,
            f"image too large: {w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,} "
            "(decompression bomb?); raise max_pixels if you trust this file",
        )
    return im


_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF


class _PillowCannotReadTiff(Exception):
    """A TIFF whose layout Pillow does not read: tifffile's turn."""


def _tiff_first_page(uri: str, f: BinaryIO, max_pixels: int | None) -> Image.Image:
    """The first page of a TIFF that Pillow cannot open, read by tifffile, as 8-bit RGB."""
    try:
        import tifffile
    except ImportError as e:  # pragma: no cover - scikit-image depends on it
        raise MediaError(uri, "this TIFF layout needs tifffile: pip install tifffile") from e
    try:
        with tifffile.TiffFile(f) as tif:
            page = tif.pages[0]
            axes, shape = page.axes, page.shape
            h, w = shape[axes.index("Y")], shape[axes.index("X")]
            if max_pixels is not None and h * w > max_pixels:
                raise MediaError(uri, f"image too large: {w}x{h} = {w * h:,} pixels exceeds the limit of "
                                      f"{max_pixels:,} (decompression bomb?); raise max_pixels if you trust this file")
            arr = np.asarray(page.asarray())
    except MediaError:
        raise
    except Exception as e:  # tifffile raises many kinds on damaged files
        raise MediaError(uri, f"corrupt TIFF ({type(e).__name__}: {e})") from e
    return _tiff_array_to_rgb(uri, arr, axes)


def _tiff_array_to_rgb(uri: str, arr: np.ndarray, axes: str) -> Image.Image:
    keep = [a for a in axes if a in "YXS"]
    for a in reversed(axes):  # any other axis (a stack inside one page): its first plane
        if a not in "YXS":
            arr = np.take(arr, 0, axis=axes.index(a))
            axes = axes.replace(a, "")
    arr = np.moveaxis(arr, [axes.index(a) for a in keep], range(len(keep)))
    if "S" in keep and keep.index("S") != len(keep) - 1:
        arr = np.moveaxis(arr, keep.index("S"), -1)
    if arr.ndim == 3 and arr.shape[-1] not in (3, 4):
        arr = arr[..., 0]
    if arr.ndim not in (2, 3):
        raise MediaError(uri, f"unsupported TIFF layout (axes {axes!r})")
    out = arr if arr.dtype == np.uint8 else _to_uint8(arr, sixteen_bit=arr.dtype in (np.uint16, np.int16))
    return to_rgb(Image.fromarray(np.ascontiguousarray(out)), uri)


def _plugin_for(uri: str, head: bytes) -> None:
    """Make sure Pillow can open a HEIF/HEIC or AVIF file (by its ``ftyp`` brand, whatever its name).

    HEIC (iPhone photos) needs pillow-heif, registered as a Pillow plugin on first use; AVIF is read by
    Pillow's own AVIF plugin when Pillow was built with libavif (recent wheels are; checked with
    ``PIL.features.check("avif")``), else by pillow-heif where its libheif decodes AVIF (before 1.0).
    """
    brand = heif_brand(head)
    if brand is None:
        return
    if brand == "avif" and features.check("avif"):
        return
    with _HEIF_LOCK:  # decode threads may meet their first HEIC at the same time
        _register_heif(uri, brand)


def _register_heif(uri: str, brand: str) -> None:
    global _HEIF_REGISTERED
    if not _HEIF_REGISTERED:
        try:
            import pillow_heif
        except ImportError as e:
            if brand == "avif":
                raise MediaError(uri, "this Pillow reads no AVIF images (built without libavif): "
                                      "pip install -U pillow") from e
            raise MediaError(uri, "HEIC/HEIF images need the pillow-heif package: pip install pillow-heif "
                                  "(or pip install 'omniret[media]')") from e
        pillow_heif.register_heif_opener()
        _HEIF_REGISTERED = True


def heif_brand(head: bytes) -> str | None:
    """``"heif"`` or ``"avif"`` for the first bytes of an ISO-BMFF still image, else ``None``."""
    if head[4:8] != b"ftyp":
        return None
    brands = {head[8:12]} | {head[i:i + 4] for i in range(16, min(len(head), 32), 4)}
    if brands & {b"avif", b"avis"}:
        return "avif"
    if brands & {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}:
        return "heif"
    return None


def _load(uri: str, im: Image.Image) -> None:
    """Force a full decode of the first frame so truncation and corruption surface now."""
    fmt = im.format or "image"
    try:
        im.load()  # a freshly opened image is at frame 0 (counting frames would read them all)
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as e:
        msg = str(e)
        if "truncated" in msg.lower() or isinstance(e, EOFError):
            raise MediaError(uri, f"truncated {fmt}") from e
        raise MediaError(uri, f"corrupt {fmt} ({msg})") from e


def _orient(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag; a corrupt EXIF block leaves the image as stored."""
    try:
        out = ImageOps.exif_transpose(im)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError):
        return im
    return im if out is None else out


def to_rgb(im: Image.Image, uri: str = "<image>") -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is composited on white.

    High bit-depth modes are rescaled to 0–255: ``I;16*`` by ``255/65535``; ``I`` and ``F`` by
    their value range (kept if within 0–255, ``255/65535`` if within 16 bits, else by the
    maximum; ``F`` within ``[0, 1]`` by 255).
    """
    mode = im.mode
    if mode == "RGB":
        return im
    if mode == "P" or mode == "PA":
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in _ALPHA_MODES:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        arr = _to_uint8(np.asarray(im), sixteen_bit=mode.startswith("I;16"))
        return Image.fromarray(arr).convert("RGB")
    try:
        return im.convert("RGB")
    except (ValueError, OSError) as e:
        raise MediaError(uri, f"unsupported colour mode {mode!r}") from e


def _to_uint8(arr: np.ndarray, *, sixteen_bit: bool) -> np.ndarray:
    """Scale a high bit-depth grayscale array to uint8."""
    a = arr.astype(np.float64)
    if a.size == 0:
        return a.astype(np.uint8)
    top = float(np.nanmax(a))
    if sixteen_bit:
        scale = 255.0 / 65535.0
    elif np.issubdtype(arr.dtype, np.floating) and top <= 1.0:
        scale = 255.0
    elif top <= 255:
        scale = 1.0
    elif top <= 65535:
        scale = 255.0 / 65535.0
    else:
        scale = 255.0 / top
    return np.clip(np.nan_to_num(a * scale), 0, 255).round().astype(np.uint8)


def aspect_window(width: int, height: int, max_aspect: float = MAX_ASPECT) -> tuple[int, int, int, int] | None:
    """The centred box ``(left, top, right, bottom)`` of a ``width × height`` image whose long side is at
    most ``max_aspect`` times its short side; ``None`` when the whole image is within that already.

    The cut is split evenly (the kept length is adjusted by one pixel if needed), so the window's
    centre is the image's centre and a later centre crop lands on the same pixels.
    """
    if max_aspect < 1:
        raise ValueError(f"max_aspect must be at least 1, got {max_aspect}")
    short, long = min(width, height), max(width, height)
    keep = max(short, math.floor(short * max_aspect))
    if long <= keep:
        return None
    keep += (long - keep) % 2
    off = (long - keep) // 2
    return (off, 0, off + keep, height) if width > height else (0, off, width, off + keep)


def bound_aspect(im: Image.Image, max_aspect: float = MAX_ASPECT) -> Image.Image:
    """``im`` itself, or its centred window of at most ``max_aspect`` : 1 (see :func:`aspect_window`).

    Call it before a short-side resize: the resize then costs at most ``size² × max_aspect`` pixels
    whatever the input's shape, and a centre-cropping preprocessor's output does not change.
    """
    box = aspect_window(im.width, im.height, max_aspect)
    return im if box is None else im.crop(box)
