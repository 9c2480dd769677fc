"""Validating an index's manifest (its self-description: encoders, spaces, dims, versions).

The manifest is written by :mod:`omniret.index` (``encoder``, ``spaces``, optional ``audio_encoder`` and
``page_encoder``). Opening an index checks it with :func:`manifest_problems` before building any encoder
from it, so a damaged or foreign manifest is a clear error naming the file and the fix, not a
``JSONDecodeError`` or a ``TypeError`` from a model class.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

#: the manifest layout written by this omniret
SCHEMA_VERSION = 1

#: the manifest keys that name an encoder, and what they are for
ENCODER_KEYS = {"encoder": "main model", "audio_encoder": "audio model", "page_encoder": "page model"}


def _encoder_problems(key: str, entry: Any, spaces: Mapping[str, int]) -> list[str]:
    what = f"manifest[{key!r}] ({ENCODER_KEYS[key]})"
    if not isinstance(entry, Mapping):
        return [f"{what} is a {type(entry).__name__}, not an object"]
    out = []
    if not isinstance(entry.get("name"), str) or not entry.get("name"):
        out.append(f"{what} has no model name")
    if not isinstance(entry.get("config", {}), Mapping):
        out.append(f"{what}: its constructor arguments ('config') are a {type(entry.get('config')).__name__}, "
                   "not an object")
    space, dim = entry.get("space"), entry.get("dim")
    if key != "page_encoder":
        if not isinstance(space, str) or not space:
            out.append(f"{what} has no vector space name")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            out.append(f"{what} has no valid dimension (got {dim!r})")
        elif isinstance(space, str) and space in spaces and spaces[space] != dim:
            out.append(f"{what} says space {space!r} is {dim}-d, but its stored vectors are {spaces[space]}-d")
    return out


def manifest_problems(manifest: Any, spaces: Mapping[str, int]) -> list[str]:
    """What is wrong with ``manifest`` (empty when nothing), given the store's spaces and their dims.

    An empty manifest is fine (a new index); otherwise it must name its main model (``encoder``: ``name``,
    ``config`` object, ``space``, ``dim``), every model entry must be well formed, and dims must match the
    vectors stored.
    """
    if not isinstance(manifest, Mapping):
        return [f"the manifest is a {type(manifest).__name__}, not an object"]
    if not manifest:
        return ["the manifest is empty but vectors are stored"] if spaces else []
    out: list[str] = []
    if "encoder" not in manifest:
        out.append("the manifest names no model (no 'encoder' entry)")
    for key in ENCODER_KEYS:
        if key in manifest:
            out += _encoder_problems(key, manifest[key], spaces)
    declared = manifest.get("spaces", {})
    if not isinstance(declared, Mapping):
        out.append(f"manifest['spaces'] is a {type(declared).__name__}, not an object")
    version = manifest.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        out.append(f"manifest['schema_version'] is {version!r}, not a number")
    return out


def omniret_version() -> str:
    """The installed omniret version (package metadata), recorded in every new index's manifest."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("omniret")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def manifest_for(encoder: Any) -> dict[str, Any]:
    """The manifest of a new index whose main model is ``encoder`` (an :class:`~omniret.encoders.base.Encoder`)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "omniret_version": omniret_version(),
        "created": time.time(),
        "encoder": {"name": encoder.name, "config": encoder.config(), "space": encoder.space,
                    "dim": encoder.dim, "modalities": sorted(m.value for m in encoder.modalities)},
        "spaces": {encoder.space: {"dim": encoder.dim, "metric": "ip", "normalized": True,
                                   "encoder": encoder.name}},
    }
