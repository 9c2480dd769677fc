"""A fake encoder that kills its own process on its first image batch, once (a marker file remembers)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from fakes import FakeEncoder

from omniret.items import Role


class CrashOnceEncoder(FakeEncoder):
    def __init__(self, marker: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.marker = marker

    def encode_pixels(self, pixels: np.ndarray, *, role: Role = Role.DOCUMENT) -> np.ndarray:
        if not os.path.exists(self.marker):
            with open(self.marker, "w") as f:
                f.write(str(os.getpid()))
            os._exit(17)  # the worker process dies mid-job, without cleanup
        return super().encode_pixels(pixels, role=role)
