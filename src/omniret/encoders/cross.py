"""``cross:<hub id or folder>``: a sentence-transformers ``CrossEncoder`` that scores (query, text) pairs.

A cross-encoder reads the query and a candidate together (one transformer pass per pair), which is
more accurate than comparing two separately computed vectors and too slow for a whole corpus: it is
a second stage (``Index.search(..., rerank="cross")``, :mod:`omniret.query.rerank`) over the text of
the first stage's top candidates — text chunks and PDF pages.

No PyPI wheel ships cross-encoder weights (checked: flashrank and the rest download at run time), so
the default, :data:`DEFAULT`, is ``cross-encoder/ms-marco-MiniLM-L-6-v2`` (MS MARCO passage ranking,
22M parameters), loaded from the local Hugging Face cache or downloaded once with network; any
``CrossEncoder`` folder works offline as ``cross:/path/to/folder``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omniret.encoders.base import pick_device
from omniret.errors import ModelError

DEFAULT = "cross-encoder/ms-marco-MiniLM-L-6-v2"


class CrossEncoderScorer:
    """Scores ``(query, text)`` pairs with a ``CrossEncoder`` (higher = more relevant); loads lazily."""

    kind = "cross"

    def __init__(self, model: str = "", *, device: str | None = None, batch_size: int = 32,
                 max_length: int = 512) -> None:
        if batch_size < 1:
            raise ModelError(f"cross: batch_size must be >= 1, got {batch_size}")
        self.model_arg = model or DEFAULT
        local = Path(self.model_arg).expanduser()
        self.path = str(local.resolve()) if local.is_dir() else self.model_arg
        self.name = f"cross:{self.model_arg}"
        self._device_arg, self.batch_size, self.max_length = device, int(batch_size), int(max_length)
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def device(self) -> str:
        return pick_device(self._device_arg)

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import CrossEncoder

                try:
                    self._model = CrossEncoder(self.path, device=self.device, max_length=self.max_length,
                                               local_files_only=Path(self.path).is_dir())
                except Exception as e:
                    raise ModelError(
                        f"could not load cross-encoder {self.model_arg!r}: {e}. Fix: run once with network so "
                        f"{DEFAULT!r} is cached, or give a local CrossEncoder folder as rerank='cross:/path'"
                    ) from e
            return self._model

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts),)`` float64 relevance scores of ``texts`` for ``query`` (the model's raw outputs)."""
        if not texts:
            return np.zeros(0)
        import torch

        model = self._load()
        with torch.inference_mode():
            out = model.predict([(query, t) for t in texts], batch_size=self.batch_size,
                                show_progress_bar=False, convert_to_numpy=True)
        out = np.asarray(out, dtype=np.float64)
        return out if out.ndim == 1 else out[:, -1]  # a 2-label model: the "relevant" logit


def create(rest: str = "", **kwargs: Any) -> CrossEncoderScorer:
    """``cross`` (ms-marco-MiniLM-L-6-v2) or ``cross:<hub id or folder>``: a re-ranking cross-encoder."""
    return CrossEncoderScorer(rest, **kwargs)
