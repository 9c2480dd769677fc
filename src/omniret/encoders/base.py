"""The encoder contract.

An encoder maps decoded content (a ``str`` for text, an RGB ``PIL.Image.Image`` for images, a mono
float32 waveform at :attr:`Encoder.audio_rate` for audio) to
L2-normalised float32 vectors in one embedding *space*. Vectors from different spaces never meet.

Batch first: :meth:`Encoder.encode` is the one real method; the single-item helpers wrap it.
Images take a two-step path so that ingest can decode and preprocess in other threads (or processes, e.g. Ray):
:meth:`Encoder.image_preprocessor` returns a picklable function ``PIL image -> float32 array``
(run in workers), and :meth:`Encoder.encode_pixels` runs the model on a stacked batch of those.

Optionally, :meth:`Encoder.query_towers` describes the query side as ONNX towers
(:class:`QueryTowers`), which a new process runs without torch (:mod:`omniret.encoders.onnx`,
cached next to the index by :mod:`omniret.encoders.query_cache`).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from omniret.errors import ModelError
from omniret.items import Modality, Role

ImagePreprocessor = Callable[[Any], np.ndarray]


class Encoder(ABC):
    """Base class of every encoder. Subclasses load their model lazily (on first encode)."""

    #: registry key, e.g. ``"offline"`` or ``"openclip:ViT-B-32/laion2b_s34b_b79k"``; stored in the manifest
    name: str
    #: embedding space id; two encoders with the same space produce comparable vectors
    space: str
    dim: int
    modalities: frozenset[Modality]
    #: edge length the image preprocessor resizes to; lets decoders use JPEG draft mode
    image_size: int = 224
    #: sample rate (Hz) :meth:`encode_audio` expects; decoders resample to it
    audio_rate: int = 48_000
    #: ISO 639-1 codes of the languages the text side was trained on; ``None``: many or unknown.
    #: A query detected in another language gets a warning naming a multilingual model
    #: (:mod:`omniret.query.language`)
    languages: frozenset[str] | None = None

    def config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild an equivalent encoder (recorded in the manifest)."""
        return {}

    def supports(self, modality: Modality) -> bool:
        return modality in self.modalities

    @abstractmethod
    def encode_text(self, texts: Sequence[str], *, role: Role = Role.QUERY) -> np.ndarray:
        """Embed texts: ``(n, dim)`` float32, rows L2-normalised."""

    def image_preprocessor(self) -> ImagePreprocessor:
        """A picklable function that turns one RGB PIL image into the model's input array."""
        raise ModelError(f"encoder {self.name!r} does not embed images")

    def encode_pixels(self, pixels: np.ndarray, *, role: Role = Role.DOCUMENT) -> np.ndarray:
        """Embed a stacked batch of preprocessed images: ``(n, dim)`` float32, L2-normalised."""
        raise ModelError(f"encoder {self.name!r} does not embed images")

    def encode_images(self, images: Sequence[Any], *, role: Role = Role.DOCUMENT) -> np.ndarray:
        """Embed RGB PIL images (preprocess in this process, then :meth:`encode_pixels`)."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        pre = self.image_preprocessor()
        return self.encode_pixels(np.stack([pre(im) for im in images]), role=role)

    def encode_audio(
        self, waves: Sequence[np.ndarray], sample_rate: int, *, role: Role = Role.DOCUMENT
    ) -> np.ndarray:
        """Embed mono float32 waveforms at ``sample_rate`` Hz: ``(n, dim)`` float32, L2-normalised."""
        raise ModelError(
            f"encoder {self.name!r} does not embed audio; use an audio model such as "
            "'hf:laion/clap-htsat-unfused' (or a local CLAP checkpoint as 'hf:<dir>')"
        )

    def query_towers(self) -> QueryTowers | None:
        """The query-side towers this encoder can export to ONNX for torch-free queries, or None (the
        default: queries load the model). See :mod:`omniret.encoders.onnx`."""
        return None

    def encode(self, batch: Sequence[Any], *, modality: Modality, role: Role = Role.DOCUMENT) -> np.ndarray:
        """Embed a batch of decoded items of one modality."""
        if modality not in self.modalities:
            raise ModelError(
                f"encoder {self.name!r} cannot embed {modality.value}; it embeds "
                f"{', '.join(sorted(m.value for m in self.modalities))}"
            )
        if modality is Modality.TEXT:
            return self.encode_text(list(batch), role=role)
        if modality is Modality.IMAGE:
            return self.encode_images(list(batch), role=role)
        if modality is Modality.AUDIO:
            return self.encode_audio(list(batch), self.audio_rate, role=role)
        raise ModelError(f"encoder {self.name!r} has no batch method for {modality.value}")


class TowerFiles(Protocol):
    """Read access to a query cache's files, each verified against its recorded checksum."""

    def read(self, name: str) -> bytes: ...

    def path(self, name: str) -> Path:
        """The file's path, after checking its contents (for runtimes that load a file faster than bytes)."""
        ...


class QueryTowers(ABC):
    """What an encoder can export for torch-free queries; returned by :meth:`Encoder.query_towers`."""

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """What identifies the weights on disk without reading them (:func:`file_fingerprint`): part of
        the cache key, so new weights under the same model name invalidate the cache."""

    @abstractmethod
    def export(self, folder: Path) -> dict[str, Any]:
        """Write the towers' files into ``folder`` (loads the torch model) and return their JSON description."""

    @abstractmethod
    def load(self, files: TowerFiles, spec: Mapping[str, Any]) -> Encoder:
        """A torch-free query encoder over the exported files; towers open on first use."""

    @abstractmethod
    def reference(self) -> Encoder:
        """The encoder an export is checked against: the model on the CPU in float32 (what the export runs)."""


def file_fingerprint(*paths: str | os.PathLike[str]) -> list[list[Any]]:
    """``[path, size, mtime_ns]`` of each file (``[path, None, None]`` when missing), read with ``stat`` only."""
    out: list[list[Any]] = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append([os.fspath(p), st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([os.fspath(p), None, None])
    return out


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows divided by their L2 norm (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(n, eps)).astype(np.float32, copy=False)


def pick_device(device: str | None = None) -> str:
    """``device`` if given (checked by :func:`check_device`), else ``cuda`` when available, else ``cpu``."""
    if device and device != "auto":
        return check_device(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def available_devices() -> list[str]:
    """The torch devices this machine can run encoders on: ``cpu``, each ``cuda:N``, ``mps``, ``xpu:N``."""
    import torch

    out = ["cpu"]
    if torch.cuda.is_available():
        out += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append("mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        out += ["xpu", *(f"xpu:{i}" for i in range(xpu.device_count()))]
    return out


def check_device(device: str) -> str:
    """``device`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``... or ``auto``) if this machine has it, else a
    :class:`~omniret.errors.ModelError` naming the devices it does have (not torch's raw ``RuntimeError``
    at the first encode)."""
    from omniret.errors import ModelError

    if device == "auto":
        return pick_device(None)
    import torch

    here = available_devices()
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise ModelError(f"unknown device {device!r}; choose from auto, {', '.join(here)} (the devices on this "
                         "machine)") from e
    name = str(parsed)
    if name not in here and not (parsed.type == "cpu"):
        raise ModelError(f"device {device!r} is not available on this machine; choose from auto, {', '.join(here)}")
    return device


class PageLayout(NamedTuple):
    """Where a page's image-patch tokens are in its token matrix: rows ``start : start + rows * cols``,
    row-major over a ``rows × cols`` grid of cells covering the page (see :mod:`omniret.encoders.colpali`)."""

    start: int
    rows: int
    cols: int
