"""The dataset-loader registry: the only source of dataset format names.

A loader is a callable ``(path, **options) -> EvalDataset`` that reads a local copy of a dataset
(nothing is downloaded). Built-ins are named here by ``"module:function"`` and imported only when
used; third parties add formats through the ``omniret.eval_datasets`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from omniret.errors import OmniretError
from omniret.eval.datasets.base import EvalDataset

Loader = Callable[..., EvalDataset]

_PKG = "omniret.eval.datasets"


@dataclass(frozen=True)
class LoaderEntry:
    name: str
    target: str  # "module:function", imported on first use
    description: str


_BUILTINS: tuple[LoaderEntry, ...] = (
    LoaderEntry("karpathy", f"{_PKG}.karpathy:load",
                "Flickr30k / MS-COCO Karpathy split JSON (dataset_*.json): caption ↔ image"),
    LoaderEntry("cirr", f"{_PKG}.cirr:load",
                "CIRR: captions/cap.rc2.<split>.json + image_splits/split.rc2.<split>.json (composed)"),
    LoaderEntry("fashioniq", f"{_PKG}.fashioniq:load",
                "FashionIQ: captions/cap.<category>.<split>.json + image_splits (composed)"),
    LoaderEntry("msrvtt", f"{_PKG}.msrvtt:load",
                "MSR-VTT 1k-A test: MSRVTT_JSFUSION_test.csv or a JSON/JSONL list (caption → video)"),
    LoaderEntry("audiocaps", f"{_PKG}.audiocaps:load",
                "AudioCaps CSV (audiocap_id, youtube_id, start_time, caption): caption ↔ audio"),
    LoaderEntry("clotho", f"{_PKG}.clotho:load",
                "Clotho captions CSV (file_name, caption_1..caption_5): caption ↔ audio"),
    LoaderEntry("esc50", f"{_PKG}.esc50:load",
                "ESC-50: meta/esc50.csv + audio/ (zero-shot audio classification)"),
    LoaderEntry("imagefolder", f"{_PKG}.imagefolder:load",
                "ImageNet-style class-per-folder images, optional class-index JSON (classification)"),
    LoaderEntry("beir", f"{_PKG}.beir:load", "BEIR: corpus.jsonl, queries.jsonl, qrels/<split>.tsv"),
    LoaderEntry("jsonl", f"{_PKG}.jsonl:load",
                "omniret JSONL: judged queries of any modality; corpus as a folder or JSONL"),
)


def entries() -> list[LoaderEntry]:
    """Built-in loaders followed by those registered through entry points."""
    out = list(_BUILTINS)
    seen = {e.name for e in out}
    for ep in entry_points(group="omniret.eval_datasets"):
        if ep.name not in seen:
            out.append(LoaderEntry(ep.name, ep.value, f"plugin from {ep.value}"))
            seen.add(ep.name)
    return out


def formats() -> list[str]:
    """Every registered format name."""
    return [e.name for e in entries()]


def get_loader(name: str) -> Loader:
    """The loader for ``name``; an unknown name raises an error listing the choices."""
    key = name.strip().lower()
    for entry in entries():
        if entry.name == key:
            module, _, attr = entry.target.partition(":")
            try:
                return getattr(import_module(module), attr)
            except (ImportError, AttributeError) as e:
                raise OmniretError(f"dataset format {name!r}: cannot import {entry.target} ({e})") from e
    raise OmniretError(f"unknown dataset format {name!r}; choose from {', '.join(formats())}")


def load_dataset(fmt: str, path: str | Path, **options: Any) -> EvalDataset:
    """Load the dataset at ``path`` (a local folder or file) with the loader registered as ``fmt``."""
    return get_loader(fmt)(Path(path), **options)
