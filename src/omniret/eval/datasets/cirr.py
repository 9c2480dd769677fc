"""CIRR (Liu et al., ICCV 2021, "Image Retrieval on Real-life Images with Pre-trained V+L Models").

Layout of the official release (``Cuberick-Orion/CIRR``)::

    captions/cap.rc2.<split>.json      [{"pairid": 12063, "reference": "dev-245-2-img0",
                                         "target_hard": "dev-850-0-img1", "target_soft": {...},
                                         "caption": "…", "img_set": {"id": 58, "members": [...]}}, …]
    image_splits/split.rc2.<split>.json {"dev-245-2-img0": "./dev/dev-245-2-img0.png", …}

Splits are ``train``, ``val`` and ``test1`` (whose targets are hidden). The corpus is every image of
the split; a query is (reference image, modification text) → ``target_hard``. As in the standard
protocol, each query names its reference in ``extra["exclude"]`` (the runner removes it from the
candidates), and ``extra["subset"]`` holds the ``img_set`` members for Recall_subset@K.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omniret.errors import OmniretError
from omniret.eval.datasets.base import (
    EvalDataset,
    EvalDoc,
    EvalQuery,
    check_media,
    field_of,
    read_json,
    require_file,
)
from omniret.items import Modality

SPLITS = ("train", "val", "test1")


def _image_paths(root: Path, images: Path, split: str) -> dict[str, Path]:
    split_file = require_file(root / "image_splits" / f"split.rc2.{split}.json", "CIRR image split file",
                              "pass the CIRR folder that holds captions/ and image_splits/")
    mapping = read_json(split_file)
    if not isinstance(mapping, dict):
        raise OmniretError(f"{split_file}: expected an object mapping image name → relative path")
    return {str(name): images / str(rel) for name, rel in mapping.items()}


def _query(entry: dict[str, Any], where: str, paths: dict[str, Path]) -> EvalQuery:
    reference = str(field_of(entry, ["reference"], where))
    if reference not in paths:
        raise OmniretError(f"{where}: reference image {reference!r} is not in the split's image list")
    subset = [str(m) for m in entry.get("img_set", {}).get("members", [])]
    extra = {"reference": str(paths[reference]), "reference_id": reference, "exclude": [reference],
             "subset": subset}
    text = str(field_of(entry, ["caption"], where)).strip()
    return EvalQuery(str(field_of(entry, ["pairid"], where)), text, Modality.TEXT, extra)


def load(
    path: Path, *, split: str = "val", images: Path | None = None, check_files: bool = True, **_: Any
) -> EvalDataset:
    """Load a CIRR split; ``images`` is the folder the image_splits paths are relative to."""
    if split not in SPLITS:
        raise OmniretError(f"unknown CIRR split {split!r}; choose from {', '.join(SPLITS)}")
    root = Path(path)
    paths = _image_paths(root, Path(images) if images is not None else root, split)
    cap_file = require_file(root / "captions" / f"cap.rc2.{split}.json", "CIRR caption file",
                            "pass the CIRR folder that holds captions/ and image_splits/")
    entries = read_json(cap_file)
    if not isinstance(entries, list):
        raise OmniretError(f"{cap_file}: expected a list of triplets")
    queries: list[EvalQuery] = []
    qrels: dict[str, dict[str, float]] = {}
    for n, entry in enumerate(entries):
        where = f"{cap_file}: entry {n}"
        query = _query(entry, where, paths)
        target = entry.get("target_hard")
        if target is None:
            raise OmniretError(f"{where}: no 'target_hard' (CIRR {split} targets are hidden); use split='val'")
        if str(target) not in paths:
            raise OmniretError(f"{where}: target image {target!r} is not in the split's image list")
        queries.append(query)
        qrels[query.id] = {str(target): 1.0}
    corpus = tuple(EvalDoc(name, str(p), Modality.IMAGE) for name, p in paths.items())
    if check_files:
        check_media("cirr", list(paths.values()), "pass images=<folder the image_splits paths are relative to>")
    return EvalDataset(f"cirr-{split}", corpus, tuple(queries), qrels, "composed",
                       metadata={"format": "cirr", "source": str(root), "split": split})
