"""``offline+aligned``: the offline model with a learned image projector (``omniret align``).

``omniret align --pairs pairs.jsonl`` (:mod:`omniret.tasks.align`) learns a linear map ``W, b`` from
EfficientNet-Lite0's pooled penultimate features into the offline model's text space from a few thousand
(image, text) pairs, with STRUCTURE's neighbourhood-preserving regulariser
(:mod:`omniret.methods.alignment`), stores it in the index (``align/projector.npz``) and switches the
index to this encoder. An image then embeds as

    a(x)   = normalize( (normalize(f(x)) − μ) W + b )          (the aligned projection)
    e(x)   = normalize( α · conse(x) + (1 − α) · a(x) )        (mixed with today's ConSE embedding)

with ``f(x)`` the 1280-d features, ``μ`` their training mean, ``conse(x)`` the offline model's ConSE
embedding (:func:`omniret.encoders.offline.conse_combine`) and ``α = mix`` chosen on held-out training
pairs. Text embeds exactly as the offline model's text side, so the space — and every stored text
vector — is unchanged; only images are re-embedded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from omniret.encoders.base import l2_normalize
from omniret.encoders.offline import FEAT_DIM, OfflineEncoder, conse_combine
from omniret.errors import ModelError

NAME = "offline+aligned"


class Projector:
    """``W`` (1280, d), ``b`` (d,), ``mu`` (1280,): the learned image map, loaded from or saved to ``.npz``."""

    def __init__(self, W: np.ndarray, b: np.ndarray, mu: np.ndarray) -> None:
        self.W, self.b, self.mu = (np.asarray(a, dtype=np.float32) for a in (W, b, mu))
        if self.W.ndim != 2 or self.W.shape[0] != FEAT_DIM or self.b.shape != (self.W.shape[1],) \
                or self.mu.shape != (FEAT_DIM,):
            raise ModelError(f"a projector needs W ({FEAT_DIM}, d), b (d,), mu ({FEAT_DIM},); got "
                             f"{self.W.shape}, {self.b.shape}, {self.mu.shape}")

    @property
    def dim(self) -> int:
        return int(self.W.shape[1])

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        """The aligned projection ``normalize((normalize(f) − μ) W + b)`` of (n, 1280) features."""
        return l2_normalize((l2_normalize(feats) - self.mu) @ self.W + self.b)

    def save(self, path: str | Path) -> str:
        """Write ``path`` (.npz); returns a short digest of the weights (it names the projector)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(f"{path}.tmp.npz")
        np.savez(tmp, W=self.W, b=self.b, mu=self.mu)
        tmp.replace(path)
        return self.digest()

    def digest(self) -> str:
        h = hashlib.blake2b(digest_size=6)
        for a in (self.W, self.b, self.mu):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    @classmethod
    def load(cls, path: str | Path) -> Projector:
        try:
            with np.load(path) as z:
                return cls(z["W"], z["b"], z["mu"])
        except (OSError, KeyError, ValueError) as e:
            raise ModelError(f"cannot read the alignment projector {path}: {e}; run `omniret align --pairs ...` "
                             "again to retrain it") from e


class AlignedOfflineEncoder(OfflineEncoder):
    """The offline model whose images also go through a learned projector (see the module docstring)."""

    def __init__(self, *, projector: str | Projector, mix: float = 0.5, **offline: Any) -> None:
        super().__init__(**offline)
        if self.blend != 1.0:
            raise ModelError("offline+aligned does not combine with blend; leave blend at 1")
        if not 0.0 <= float(mix) <= 1.0:
            raise ModelError(f"offline+aligned: mix (the ConSE weight) must be in [0, 1], got {mix}")
        self.projector_path = None if isinstance(projector, Projector) else str(projector)
        self.projector = projector if isinstance(projector, Projector) else Projector.load(projector)
        if self.projector.dim != self.dim:
            raise ModelError(f"the projector maps into {self.projector.dim} dimensions, the text space has {self.dim}")
        self.mix = float(mix)
        self.name = NAME  # the text model, when not MiniLM, is in the config

    def config(self) -> dict[str, Any]:
        cfg = {**super().config(), "mix": self.mix, "projector_digest": self.projector.digest()}
        if self.text != "minilm":
            cfg["text"] = self.text
        return cfg

    def embed_classified(self, probs: np.ndarray, feats: np.ndarray, class_emb: np.ndarray | None = None) -> np.ndarray:
        """Image vectors from the classifier's outputs: the projection, mixed with ConSE by ``mix``."""
        aligned = self.projector(feats)
        if self.mix == 0.0:
            return aligned
        conse = conse_combine(probs, class_emb if class_emb is not None else self.class_embeddings(), self.top_k)
        return l2_normalize(self.mix * conse + (1.0 - self.mix) * aligned)

    def query_towers(self) -> None:
        return None  # image queries need the projector: they load the model (text queries are unchanged)


def create(rest: str = "", *, projector: str | None = None, projector_digest: str | None = None,
           **kwargs: Any) -> AlignedOfflineEncoder:
    """``offline+aligned``: the offline model with the image projector ``omniret align`` trained for the index."""
    if rest:
        raise ModelError(f"'{NAME}' takes no ':...' suffix (got '{NAME}:{rest}')")
    if not projector:
        raise ModelError(f"{NAME} needs its projector: run `omniret align --pairs pairs.jsonl` on an index built "
                         "with the offline model (it trains one, stores it in the index and switches to it)")
    enc = AlignedOfflineEncoder(projector=projector, **kwargs)
    if projector_digest and enc.projector.digest() != projector_digest:
        raise ModelError(f"the projector at {projector} is not the one this index was aligned with "
                         f"(digest {enc.projector.digest()} != {projector_digest}); run `omniret align` again")
    return enc
