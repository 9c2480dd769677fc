"""A second deterministic fake model in another space: the first fake, distorted.

``fake2(x) = normalize( fake(x) R + 0.15 tanh(3 fake(x) S) )`` with fixed random ``R`` (64×48) and
``S`` (64×48): a linear change of space plus a mild non-linearity, so a linear map from fake2
back to fake recovers most, not all, of the geometry, as between two real model generations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from fakes import FakeEncoder

from omniret.encoders.base import l2_normalize
from omniret.items import Modality, Role

DIM2 = 48
_rng = np.random.default_rng(7)
_R = (_rng.standard_normal((64, DIM2)) / 8.0).astype(np.float32)
_S = (_rng.standard_normal((64, DIM2)) / 8.0).astype(np.float32)


def distort(x: np.ndarray) -> np.ndarray:
    return l2_normalize(x @ _R + 0.15 * np.tanh(3.0 * (x @ _S)))


class Fake2Encoder(FakeEncoder):
    name = "fake2"
    space = "fake2-48"
    dim = DIM2

    def encode_text(self, texts: Sequence[str], *, role: Role = Role.QUERY) -> np.ndarray:
        return distort(super().encode_text(texts, role=role))

    def encode_pixels(self, pixels: np.ndarray, *, role: Role = Role.DOCUMENT) -> np.ndarray:
        return distort(super().encode_pixels(pixels, role=role))


def create(rest: str = "", **kwargs: Any) -> Fake2Encoder:
    return Fake2Encoder(**kwargs)


class Fake2TextEncoder(Fake2Encoder):
    """fake2 with the text tower only (like an ``st:`` model): cannot embed images."""

    name = "fake2text"
    space = "fake2text-48"
    modalities = frozenset({Modality.TEXT})


def create_text_only(rest: str = "", **kwargs: Any) -> Fake2TextEncoder:
    return Fake2TextEncoder(**kwargs)
