"""Small file builders shared by tests (importable: tests/ is on sys.path via the root conftest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def make_image(path: Path, color: tuple[int, int, int], size: int = 64, stripe: bool = False) -> Path:
    arr = np.zeros((size, size, 3), dtype=np.uint8)
    arr[:] = color
    if stripe:
        arr[: size // 2, :, :] = 255 - np.asarray(color, dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path
