"""Shared constants and builders of the task tests (a module, not conftest: test files import it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

ANIMALS = ["cat", "dog", "horse", "parrot", "goldfish"]


def write_image(path: Path, rgb: tuple[int, int, int], size: int = 32) -> Path:
    arr = np.zeros((size, size, 3), dtype=np.uint8)
    arr[:] = rgb
    arr[: size // 3] = 255 - np.asarray(rgb, dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path
