"""The index's optional second vector space: an audio model (CLAP) next to the main encoder.

``omniret.open(path, model=..., audio_model=None|"auto"|name)``. ``auto`` is the default CLAP
(``hf:laion/clap-htsat-unfused``) when its weights are already on this machine (the local Hugging
Face cache; no network probe, so it never hangs), else no audio model. The choice is recorded in
the manifest (``manifest["audio_encoder"]``: name, config, space, dim) and restored on reopening.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import numpy as np

from omniret.encoders.base import Encoder, l2_normalize
from omniret.encoders.hf import DEFAULT_AUDIO_MODEL
from omniret.errors import ModelError, ModelMismatchError, QueryError
from omniret.items import Modality, Role

log = logging.getLogger(__name__)

#: how a query recording is cut before embedding: the ingest defaults, so a file matches its own item
QUERY_WINDOW, QUERY_HOP = 10.0, 5.0
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def clap_cached(model: str = DEFAULT_AUDIO_MODEL) -> bool:
    """Whether ``model`` (``hf:<repo or folder>``) can load without the network: a local folder
    with a config, or a config plus weights in the local Hugging Face cache."""
    ref = model.partition(":")[2] if model.startswith("hf:") else model
    if os.path.isdir(ref):
        return os.path.isfile(os.path.join(ref, "config.json"))
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        if not isinstance(try_to_load_from_cache(ref, "config.json"), str):
            return False
        return any(isinstance(try_to_load_from_cache(ref, f), str) for f in _WEIGHT_FILES)
    except Exception as e:  # a malformed cache must not stop opening the index
        log.info("audio model probe of %s failed: %s", ref, e)
        return False


def resolve(audio_model: str | None, recorded: dict[str, Any] | None, path: str,
            create: Any, **enc_kwargs: Any) -> Encoder | None:
    """The audio encoder of an index: the recorded one, else the one asked for (``auto``: CLAP if cached).

    ``create`` is :func:`omniret.encoders.registry.create`. A name other than the recorded one
    raises :class:`ModelMismatchError` naming both.
    """
    if recorded:
        if audio_model not in (None, "auto", recorded["name"]):
            raise ModelMismatchError(
                f"the index at {path} records audio model {recorded['name']!r}, not {audio_model!r}; "
                f"open it with audio_model={recorded['name']!r} (or 'auto'), or use another index folder")
        return create(recorded["name"], **{**recorded.get("config", {}), **enc_kwargs})  # type: ignore[no-any-return]
    if audio_model is None:
        return None
    if audio_model == "auto":
        if not clap_cached():
            print(f"omniret: audio model 'auto': {DEFAULT_AUDIO_MODEL} is not on this machine; audio files are "
                  "indexed by metadata only (give --audio-model hf:<local CLAP folder> to embed them)",
                  file=sys.stderr)
            return None
        audio_model = DEFAULT_AUDIO_MODEL
    enc: Encoder = create(audio_model, **enc_kwargs)
    if not enc.supports(Modality.AUDIO):
        raise ModelError(f"audio model {audio_model!r} does not embed audio; use a CLAP model such as "
                         f"{DEFAULT_AUDIO_MODEL!r} or hf:<local CLAP folder>")
    return enc


def manifest_entry(enc: Encoder) -> dict[str, Any]:
    return {"name": enc.name, "config": enc.config(), "space": enc.space, "dim": enc.dim,
            "modalities": sorted(m.value for m in enc.modalities)}


def missing(what: str) -> ModelError:
    """The error for a search that needs the audio space in an index without an audio model."""
    return ModelError(
        f"{what} needs an audio model (CLAP), and this index has none; audio files are stored by metadata "
        f"only. Create the index with one: `omniret add --audio-model hf:<local CLAP folder> ...` "
        f"(or audio_model='hf:<folder>' in omniret.open; {DEFAULT_AUDIO_MODEL} when its weights are cached)")


def embed_audio_query(enc: Encoder, path: Any) -> np.ndarray:
    """A query recording → one vector: windows as at ingest (10 s, 5 s hop), each embedded, mean-pooled."""
    from omniret.errors import MediaError
    from omniret.media.audio import load_audio, slice_window, window_spans

    if not isinstance(path, str | os.PathLike):
        raise QueryError(f"audio must be a file path, got {type(path).__name__}")
    try:
        clip = load_audio(os.fspath(path), sample_rate=enc.audio_rate)
    except MediaError as e:
        raise QueryError(f"query audio {e}") from e
    wave = clip.samples if clip.samples is not None else np.zeros(0, np.float32)
    if not len(wave):
        raise QueryError(f"query audio {os.fspath(path)!r} holds no samples")
    spans = window_spans(clip.duration, QUERY_WINDOW, QUERY_HOP)
    rate = enc.audio_rate
    parts = [slice_window(wave, rate, s) for s in spans] if len(spans) > 1 else [wave]
    mat = enc.encode_audio(parts, rate, role=Role.QUERY)
    return l2_normalize(mat.mean(axis=0, keepdims=True))[0].astype(np.float32)
