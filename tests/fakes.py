"""Deterministic fake encoder for tier-1 tests: a pure function of its input (no ``hash()``).

Text: bag of character trigrams, each bucketed by blake2b, L2-normalised. Images: a coarse colour
layout (8×8 thumbnail of mean RGB per cell, centred), so the same picture always embeds the same
and similar pictures land close. Registered under the prefix ``fake`` by the test conftest.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from omniret.encoders.base import Encoder, l2_normalize
from omniret.items import Modality, Role

DIM = 64


_PROJ = np.random.default_rng(0).standard_normal((192, DIM)).astype(np.float32)


def _bucket(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=4).digest(), "little") % DIM


class FakePreprocess:
    """PIL image → (3, 8, 8) float32 cell means in [0, 1] (picklable, no model)."""

    def __call__(self, image: Any) -> np.ndarray:
        small = image.convert("RGB").resize((8, 8))
        return (np.asarray(small, dtype=np.float32) / 255.0).transpose(2, 0, 1).copy()


class FakeEncoder(Encoder):
    name = "fake"
    space = "fake-64"
    dim = DIM
    modalities = frozenset({Modality.TEXT, Modality.IMAGE})
    image_size = 8

    def __init__(self, **kwargs: Any) -> None:
        self.calls = 0

    def encode_text(self, texts: Sequence[str], *, role: Role = Role.QUERY) -> np.ndarray:
        self.calls += 1
        delay = float(os.environ.get("OMNIRET_FAKE_TEXT_DELAY", "0"))  # seconds per text: crash tests
        if delay:
            time.sleep(delay * len(texts))
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, t in enumerate(texts):
            t = f"  {t.lower()}  "
            for j in range(len(t) - 2):
                out[i, _bucket(t[j : j + 3])] += 1.0
        return l2_normalize(out)

    def image_preprocessor(self) -> FakePreprocess:
        return FakePreprocess()

    def encode_pixels(self, pixels: np.ndarray, *, role: Role = Role.DOCUMENT) -> np.ndarray:
        self.calls += 1
        delay = float(os.environ.get("OMNIRET_FAKE_DELAY", "0"))  # lets crash tests kill mid-encode
        if delay:
            time.sleep(delay)
        flat = pixels.reshape(len(pixels), -1) - 0.5  # 192 values, centred on mid-grey
        return l2_normalize(flat @ _PROJ)


def create(rest: str = "", **kwargs: Any) -> FakeEncoder:
    return FakeEncoder(**kwargs)
