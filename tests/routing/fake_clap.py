"""A fake CLAP: the fake audio encoder plus a text tower, registered under the prefix ``fake-clap``.

Text "<N> hz ..." embeds as a 1 s sine at N Hz through the audio tower, so a text query can find a
tone through the audio space; other texts get a fixed pseudo-random vector (blake2b-seeded).
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent.parent / "media2"))

from fake_audio import BANDS, FakeAudioEncoder  # noqa: E402

from omniret.encoders.base import l2_normalize  # noqa: E402
from omniret.items import Modality, Role  # noqa: E402


class FakeClap(FakeAudioEncoder):
    name = "fake-clap"
    space = "fake-clap-32"
    modalities = frozenset({Modality.AUDIO, Modality.TEXT})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()

    def encode_text(self, texts: Sequence[str], *, role: Role = Role.QUERY) -> np.ndarray:
        out = np.zeros((len(texts), BANDS), dtype=np.float32)
        for i, t in enumerate(texts):
            m = re.search(r"(\d+)\s*hz", t.lower())
            if m:
                wave = np.sin(2 * np.pi * float(m.group(1)) * np.arange(self.audio_rate) / self.audio_rate)
                out[i] = self.encode_audio([wave], self.audio_rate)[0]
            else:
                seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=4).digest(), "little")
                out[i] = np.random.default_rng(seed).standard_normal(BANDS)
        return l2_normalize(out)


def create(rest: str = "", **kwargs: Any) -> FakeClap:
    return FakeClap(**kwargs)
