"""ImageNet-style class-per-folder images for zero-shot image classification.

Layout (torchvision ``ImageFolder``)::

    <root>/<class folder>/<image>.jpg

Class names are the folder names unless ``class_index`` names a JSON file:

* ``{"0": ["n01440764", "tench"], …}`` (Keras/PyTorch ``imagenet_class_index.json``): class order by
  index, folder = WordNet id, name = the second element;
* ``{"n01440764": "tench", …}``: folder → name, order by sorted folder;
* ``["tench", …]``: names aligned with the sorted folders.

Documents are the images (id = ``<folder>/<file>``), ``labels`` the class names in class order, and
the queries the class names (label → images retrieval).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omniret.errors import OmniretError
from omniret.eval.datasets.base import (
    IMAGE_SUFFIXES,
    EvalDataset,
    EvalDoc,
    EvalQuery,
    read_json,
    require_dir,
    require_file,
)
from omniret.items import Modality


def _class_names(folders: list[str], index_path: Path | None) -> list[tuple[str, str]]:
    """(folder, class name) in class order."""
    if index_path is None:
        return [(f, f) for f in folders]
    data = read_json(require_file(index_path, "class-index JSON"))
    if isinstance(data, list):
        if len(data) != len(folders):
            raise OmniretError(f"{index_path}: {len(data)} names for {len(folders)} class folders")
        return [(f, str(n)) for f, n in zip(folders, data, strict=True)]
    if not isinstance(data, dict):
        raise OmniretError(f"{index_path}: expected a list or an object of class names")
    if all(isinstance(v, list) and len(v) == 2 for v in data.values()):
        pairs = sorted(((int(k), str(v[0]), str(v[1])) for k, v in data.items()))
        mapping = {wnid: name for _, wnid, name in pairs}
        order = [wnid for _, wnid, _ in pairs if wnid in set(folders)]
    else:
        mapping = {str(k): str(v) for k, v in data.items()}
        order = [f for f in folders if f in mapping]
    unnamed = [f for f in folders if f not in mapping]
    if unnamed:
        raise OmniretError(f"{index_path}: no name for class folder(s) {unnamed[:5]}; add them to the index")
    return [(f, mapping[f]) for f in order]


def load(path: Path, *, class_index: Path | None = None, **_: Any) -> EvalDataset:
    """Load every image under ``path/<class>/``; ``class_index`` optionally names the classes."""
    root = require_dir(Path(path), "image folder", "pass a folder with one sub-folder per class")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise OmniretError(f"{root}: no class sub-folders; expected <root>/<class>/<image>")
    classes = _class_names(folders, Path(class_index) if class_index is not None else None)
    labels = tuple(name for _, name in classes)
    if len(set(labels)) != len(labels):
        raise OmniretError(f"{root}: two class folders share a name; class names must be unique")
    corpus: list[EvalDoc] = []
    qrels: dict[str, dict[str, float]] = {name: {} for name in labels}
    for target, (folder, name) in enumerate(classes):
        for img in sorted((root / folder).rglob("*")):
            if img.is_file() and img.suffix.lower() in IMAGE_SUFFIXES:
                doc_id = img.relative_to(root).as_posix()
                corpus.append(EvalDoc(doc_id, str(img), Modality.IMAGE,
                                      {"label": name, "target": target, "folder": folder}))
                qrels[name][doc_id] = 1.0
    if not corpus:
        raise OmniretError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) in the class folders")
    queries = tuple(EvalQuery(name, name.replace("_", " "), Modality.TEXT, {"label": name}) for name in labels)
    return EvalDataset(root.name, tuple(corpus), queries, qrels, "classification", labels=labels,
                       metadata={"format": "imagefolder", "source": str(root)})
