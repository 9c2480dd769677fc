"""A deterministic fake audio encoder: log energies of 32 frequency bands (a pure function of the wave)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from omniret.encoders.base import Encoder, l2_normalize
from omniret.errors import ModelError
from omniret.items import Modality, Role

BANDS = 32


class FakeAudioEncoder(Encoder):
    name = "fake-audio"
    space = "fake-audio-32"
    dim = BANDS
    modalities = frozenset({Modality.AUDIO})
    audio_rate = 16_000

    def __init__(self) -> None:
        self.seen: list[int] = []  # lengths of the waves it was given

    def encode_text(self, texts: Sequence[str], *, role: Role = Role.QUERY) -> np.ndarray:
        raise ModelError("fake-audio embeds audio only")

    def encode_audio(self, waves: Sequence[np.ndarray], sample_rate: int, *, role: Role = Role.DOCUMENT) -> np.ndarray:
        if sample_rate != self.audio_rate:
            raise ModelError(f"fake-audio wants {self.audio_rate} Hz, got {sample_rate}")
        out = np.zeros((len(waves), BANDS), dtype=np.float32)
        for i, w in enumerate(waves):
            self.seen.append(len(w))
            spec = np.abs(np.fft.rfft(np.asarray(w, dtype=np.float64))) / max(len(w), 1)
            out[i] = np.log1p(np.array([b.sum() for b in np.array_split(spec, BANDS)]))
        return l2_normalize(out - out.mean(axis=1, keepdims=True))
