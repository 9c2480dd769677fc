"""Shared test data of the records tests (a module with its own name: ``conftest`` is ambiguous
when several test folders are on ``sys.path``)."""

from __future__ import annotations

import numpy as np

COLOURS = {"red": (220, 20, 20), "green": (20, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30)}
RATE = 16_000


def tone(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
