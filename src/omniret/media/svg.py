"""SVG drawings rasterised with CairoSVG (Kozea's renderer, on the cairo library), then treated as images.

Why rasterise rather than skip: vector art (icons, clip art, diagrams — Open Clip Art alone ships
8,000 SVGs) is a common part of a pile of pictures, and an image model sees it fine once drawn.
CairoSVG is pure Python over cairo (``apt-get install libcairo2``; it ships with most desktops and
with Chromium); without either, an SVG fails with a reason that says what to install.

Safety: the file is read by us (at most :data:`MAX_SVG_BYTES`) and parsed with ``unsafe=False``:
no XML entities, no external files or URLs (CairoSVG's ``safe_fetch`` only resolves ``data:``
URLs). The size the drawing declares is read first by a probe surface that stops before cairo
allocates anything; the drawing is then rendered with its longer side at ``side`` pixels (each side
at least 1), so a drawing that declares a huge or extreme size cannot exhaust memory.
"""

from __future__ import annotations

import io
import os
from typing import Any

from PIL import Image

from omniret.errors import MediaError
from omniret.media._io import open_binary

#: the largest SVG file read (bytes)
MAX_SVG_BYTES = 32 * 1024 * 1024
#: the longer side of the rendered picture when no target size is given
DEFAULT_SIDE = 512
INSTALL_HINT = "SVG drawings need CairoSVG and the cairo library: pip install cairosvg; apt-get install libcairo2"


class _Size(Exception):
    """The size a drawing asks for (raised by the probe surface instead of allocating it)."""

    def __init__(self, width: float, height: float) -> None:
        super().__init__(f"{width:.0f}x{height:.0f}")
        self.width, self.height = width, height


def _cairosvg() -> Any:
    try:
        import cairosvg
        import cairosvg.surface
    except (ImportError, OSError) as e:  # OSError: the cairo shared library is missing
        raise ImportError(INSTALL_HINT) from e
    return cairosvg


def rasterize(path: str | os.PathLike[str], *, target_size: int | None = None) -> Image.Image:
    """Draw the SVG (or gzipped ``.svgz``) at ``path`` into an RGBA image whose longer side is
    ``max(2 * target_size, 512)`` pixels (at most 2048). Raises :class:`MediaError` with the reason."""
    uri = os.fspath(path)
    try:
        cairosvg = _cairosvg()
    except ImportError as e:
        raise MediaError(uri, str(e)) from e
    data = _read(uri)
    side = min(max(2 * (target_size or 0), DEFAULT_SIDE), 2048)

    class Probe(cairosvg.surface.PNGSurface):  # type: ignore[misc, name-defined]
        """Stops at the surface's size, before cairo allocates anything."""

        def _create_surface(self, width: float, height: float) -> Any:
            raise _Size(width, height)

    try:
        try:
            Probe.convert(bytestring=data, unsafe=False)
            raise MediaError(uri, "the SVG has no size")  # pragma: no cover - Probe always raises
        except _Size as natural:
            if not (natural.width > 0 and natural.height > 0):
                raise MediaError(uri, "the SVG has no size (width, height or viewBox)") from None
            scale = side / max(natural.width, natural.height)
            width, height = max(1, round(natural.width * scale)), max(1, round(natural.height * scale))
        png = cairosvg.svg2png(bytestring=data, unsafe=False, output_width=width, output_height=height)
    except MediaError:
        raise
    except Exception as e:  # CairoSVG raises many kinds on bad input (XML, CSS, geometry)
        raise MediaError(uri, f"cannot draw this SVG ({type(e).__name__}: {str(e)[:200]})") from e
    im = Image.open(io.BytesIO(png))
    im.load()
    return im


def _read(uri: str) -> bytes:
    try:
        with open_binary(uri) as f:  # a regular file only (a FIFO named .svg would block forever)
            data = f.read(MAX_SVG_BYTES + 1)
    except OSError as e:
        raise MediaError(uri, f"cannot read ({e.strerror or e})") from e
    if not data:
        raise MediaError(uri, "empty file (0 bytes)")
    if len(data) > MAX_SVG_BYTES:
        raise MediaError(uri, f"SVG larger than {MAX_SVG_BYTES // (1024 * 1024)} MB")
    if data[:2] == b"\x1f\x8b":  # .svgz
        import gzip

        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as g:
                data = g.read(MAX_SVG_BYTES + 1)
        except (OSError, EOFError) as e:
            raise MediaError(uri, f"corrupt gzip in .svgz ({e})") from e
        if len(data) > MAX_SVG_BYTES:
            raise MediaError(uri, f"SVG larger than {MAX_SVG_BYTES // (1024 * 1024)} MB once unzipped")
    return data
