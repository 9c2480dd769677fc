"""``hf:``: dual encoders through transformers — CLAP (audio + text), CLIP and SigLIP (image + text).

``hf:<hub id or local dir>``: the checkpoint's ``config.json`` says which family it is
(``model_type`` ``clap``, ``clip`` or ``siglip``). A local folder (``save_pretrained``) never
touches the network; a hub id is fetched on a machine with network and fails with a
:class:`ModelError` naming the fix here. ``hf:laion/clap-htsat-unfused`` is the default audio model.

CLAP (Wu et al., "Large-scale Contrastive Language-Audio Pretraining with Feature Fusion and
Keyword-to-Caption Augmentation", ICASSP 2023): text through RoBERTa, audio as a 64-bin log-mel
spectrogram at 48 kHz through HTS-AT, both projected and L2-normalised into one space. The
unfused checkpoints expect ``truncation="rand_trunc"``, fused ones ``"fusion"``; a clip longer than
the extractor's ``max_length_s`` would be cropped at a *random* place, so this encoder crops the
centre itself first and embeddings are deterministic (ingest already cuts 10 s windows).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from omniret.encoders.base import Encoder, ImagePreprocessor, l2_normalize, pick_device
from omniret.errors import ModelError
from omniret.items import Modality, Role

DEFAULT_AUDIO_MODEL = "hf:laion/clap-htsat-unfused"
_FAMILIES = {"clap": frozenset({Modality.TEXT, Modality.AUDIO}),
             "clip": frozenset({Modality.TEXT, Modality.IMAGE}),
             "siglip": frozenset({Modality.TEXT, Modality.IMAGE})}


def _config(path: str, *, scheme: str = "hf", unreachable: str | None = None) -> dict[str, Any]:
    """The checkpoint's config.json (a local folder, or the local cache / hub through transformers).

    ``scheme`` names the registry prefix in errors; ``unreachable`` replaces the message given when the
    config cannot be had from the cache or the hub (the caller's own fix).
    """
    if os.path.isdir(path):
        try:
            with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
                return dict(json.load(f))
        except (OSError, ValueError) as e:
            raise ModelError(f"{scheme}:{path}: no readable config.json in the folder ({e}); save the model "
                             "there with save_pretrained") from e
    try:
        from transformers import AutoConfig

        return dict(AutoConfig.from_pretrained(path).to_dict())
    except Exception as e:
        raise ModelError(unreachable.replace("{error}", type(e).__name__) if unreachable else
                         f"{scheme}:{path}: cannot load the model config ({type(e).__name__}); without network, "
                         f"download it elsewhere, save_pretrained it to a folder and use '{scheme}:<folder>'") from e


def _features(out: Any) -> Any:
    """transformers 4 returns a tensor from ``get_*_features``; 5 returns an output with ``pooler_output``."""
    return out if hasattr(out, "shape") else out.pooler_output


def _shortest_edge(proc: Any) -> bool:
    """Whether an image processor resizes the short side (and so needs the aspect bound)."""
    size = getattr(proc, "size", None)
    get = size.get if isinstance(size, dict) else lambda k: getattr(size, k, None)
    return bool(get("shortest_edge"))


class HFImagePreprocess:
    """Picklable: loads the checkpoint's image processor on first call (in the worker) by path. A
    shortest-edge processor (CLIP) gets images cut to their centre when their aspect ratio is extreme
    (:func:`omniret.media.image.bound_aspect`), so its resize stays bounded."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._proc: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_proc": None}

    def __call__(self, image: Any) -> np.ndarray:
        if self._proc is None:
            from transformers import AutoImageProcessor

            self._proc = AutoImageProcessor.from_pretrained(self.path)
        if _shortest_edge(self._proc):  # CLIP-style: short side to N, centre crop; SigLIP resizes to a fixed size
            from omniret.media.image import bound_aspect

            image = bound_aspect(image)
        out = self._proc(images=image.convert("RGB"), return_tensors="np")
        return np.asarray(out["pixel_values"][0], dtype=np.float32)


class HFEncoder(Encoder):
    """A transformers dual encoder (CLAP, CLIP, SigLIP). Weights load lazily on first encode."""

    def __init__(self, path: str, *, device: str | None = None, batch_size: int = 16) -> None:
        if not path:
            raise ModelError(f"hf: give a checkpoint, e.g. {DEFAULT_AUDIO_MODEL!r} or 'hf:/path/to/saved/model'")
        if batch_size < 1:
            raise ModelError(f"hf: batch_size must be >= 1, got {batch_size}")
        cfg = _config(path)
        self.family = str(cfg.get("model_type", ""))
        if self.family not in _FAMILIES:
            raise ModelError(f"hf:{path}: model_type {self.family!r} is not supported; choose a "
                             f"{', '.join(sorted(_FAMILIES))} checkpoint")
        self.path = path
        self.name = f"hf:{path}"
        self.space = self.name  # one space per checkpoint
        self.dim = int(cfg.get("projection_dim") or cfg.get("text_config", {}).get("hidden_size") or 0)
        self.modalities = _FAMILIES[self.family]
        audio_cfg = cfg.get("audio_config", {})
        self.fusion = bool(audio_cfg.get("enable_fusion", False))
        self._device_arg, self.batch_size = device, int(batch_size)
        self._model: Any = None
        self._proc: Any = None
        self._lock = threading.Lock()

    def config(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size}

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._model is None:
                self._model, self._proc = _load_model(self.path, self.family, pick_device(self._device_arg))
                self.dim = int(self._model.config.projection_dim) if self.family != "siglip" else self.dim
                fe = getattr(self._proc, "feature_extractor", None)
                if fe is not None:
                    self.audio_rate = int(fe.sampling_rate)
            return self._model, self._proc

    def _run(self, fn_name: str, inputs: Any) -> np.ndarray:
        import torch

        model, _ = self._load()
        param = next(model.parameters())
        moved = {k: v.to(param.device, param.dtype) if v.is_floating_point() else v.to(param.device)
                 for k, v in inputs.items()}  # half precision on GPU: features follow the weights
        with torch.inference_mode():
            out = getattr(model, fn_name)(**moved)
        return l2_normalize(_features(out).float().cpu().numpy())

    def encode_text(self, texts: Sequence[str], *, role: Role = Role.QUERY) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        _, proc = self._load()
        out = []
        for i in range(0, len(texts), self.batch_size):
            kw: dict[str, Any] = {"padding": "max_length" if self.family == "siglip" else True, "truncation": True}
            inputs = proc.tokenizer(list(texts[i : i + self.batch_size]), return_tensors="pt", **kw)
            out.append(self._run("get_text_features", inputs))
        return np.concatenate(out)

    def encode_audio(self, waves: Sequence[np.ndarray], sample_rate: int, *, role: Role = Role.DOCUMENT) -> np.ndarray:
        if Modality.AUDIO not in self.modalities:
            return super().encode_audio(waves, sample_rate, role=role)
        if not len(waves):
            return np.zeros((0, self.dim), dtype=np.float32)
        _, proc = self._load()
        if sample_rate != self.audio_rate:
            raise ModelError(f"{self.name}: audio must be at {self.audio_rate} Hz, got {sample_rate} Hz; "
                             "decode with omniret.media.audio.load_audio(sample_rate=...)")
        fe = proc.feature_extractor
        limit = int(fe.max_length_s * sample_rate) if not self.fusion else None
        out = []
        for i in range(0, len(waves), self.batch_size):
            part = [_centre(np.asarray(w, dtype=np.float32), limit) for w in waves[i : i + self.batch_size]]
            inputs = fe(part, sampling_rate=sample_rate, return_tensors="pt",
                        truncation="fusion" if self.fusion else "rand_trunc")
            out.append(self._run("get_audio_features", inputs))
        return np.concatenate(out)

    def image_preprocessor(self) -> ImagePreprocessor:
        if Modality.IMAGE not in self.modalities:
            return super().image_preprocessor()
        return HFImagePreprocess(self.path)

    def encode_pixels(self, pixels: np.ndarray, *, role: Role = Role.DOCUMENT) -> np.ndarray:
        if Modality.IMAGE not in self.modalities:
            return super().encode_pixels(pixels, role=role)
        import torch

        out = [self._run("get_image_features", {"pixel_values": torch.from_numpy(np.ascontiguousarray(
            pixels[i : i + self.batch_size], dtype=np.float32))}) for i in range(0, len(pixels), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)


def _centre(wave: np.ndarray, limit: int | None) -> np.ndarray:
    """The middle ``limit`` samples of ``wave`` (all of it when shorter or no limit)."""
    if wave.ndim != 1:
        raise ModelError(f"audio must be a mono 1-D waveform, got shape {wave.shape}")
    if limit is None or len(wave) <= limit:
        return wave
    start = (len(wave) - limit) // 2
    return wave[start : start + limit]


def _load_model(path: str, family: str, device: str) -> tuple[Any, Any]:
    try:
        from transformers import AutoProcessor, ClapModel, ClapProcessor, CLIPModel, SiglipModel
    except ImportError as e:
        raise ModelError("hf: models need the 'transformers' package; pip install transformers") from e
    cls = {"clap": ClapModel, "clip": CLIPModel, "siglip": SiglipModel}[family]
    local = os.path.isdir(path)
    try:
        model = cls.from_pretrained(path, local_files_only=local)
        proc = (ClapProcessor if family == "clap" else AutoProcessor).from_pretrained(path, local_files_only=local)
    except Exception as e:
        raise ModelError(f"hf:{path}: cannot load the {family} model or its processor ({type(e).__name__}: {e}); "
                         "a local folder needs both (model.save_pretrained + processor.save_pretrained)") from e
    model = model.to(device).eval()
    return (model.half() if device.startswith("cuda") else model), proc


def create(rest: str = "", **kwargs: Any) -> HFEncoder:
    """``hf:<hub id or folder>``: CLAP (audio + text), CLIP or SigLIP (image + text) through transformers."""
    return HFEncoder(rest, **kwargs)
