"""FashionIQ (Wu et al., CVPR 2021, "Fashion IQ").

Layout of the official release (``XiaoxiaoGuo/fashion-iq``)::

    captions/cap.<category>.<split>.json     [{"candidate": "B003FGW7MK", "target": "B008BHCT58",
                                               "captions": ["is solid black …", "is black with straps"]}, …]
    image_splits/split.<category>.<split>.json  ["B00006M009", …]
    images/<name>.png   (some copies use .jpg)

Categories ``dress``, ``shirt``, ``toptee``; splits ``train``, ``val``, ``test``. The query text joins
the two relative captions as in CIReVL/SEARLE/WeiMoCIR (spec §3):
``f"{c1.strip('.?, ').capitalize()} and {c2.strip('.?, ')}"``. The corpus is the split's image list
of the category (the standard validation protocol evaluates each category separately).
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
    check_media,
    field_of,
    read_json,
    require_dir,
    require_file,
)
from omniret.items import Modality

CATEGORIES = ("dress", "shirt", "toptee")
SPLITS = ("train", "val", "test")


def join_captions(captions: list[str]) -> str:
    """``"<cap1 stripped, capitalised> and <cap2 stripped>"`` (stripping ``.?,`` and spaces)."""
    if len(captions) < 2:
        return captions[0].strip(".?, ").capitalize() if captions else ""
    return f"{captions[0].strip('.?, ').capitalize()} and {captions[1].strip('.?, ')}"


def _image_path(folder: Path, name: str) -> Path:
    for suffix in (".png", *IMAGE_SUFFIXES):
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return folder / f"{name}.png"


def load(
    path: Path,
    *,
    category: str = "dress",
    split: str = "val",
    images: Path | None = None,
    check_files: bool = True,
    **_: Any,
) -> EvalDataset:
    """Load one category and split; ``images`` defaults to ``<path>/images``."""
    if category not in CATEGORIES:
        raise OmniretError(f"unknown FashionIQ category {category!r}; choose from {', '.join(CATEGORIES)}")
    if split not in SPLITS:
        raise OmniretError(f"unknown FashionIQ split {split!r}; choose from {', '.join(SPLITS)}")
    root = Path(path)
    hint = "pass the FashionIQ folder that holds captions/, image_splits/ and images/"
    names = read_json(require_file(root / "image_splits" / f"split.{category}.{split}.json",
                                   "FashionIQ image split file", hint))
    triplets = read_json(require_file(root / "captions" / f"cap.{category}.{split}.json",
                                      "FashionIQ caption file", hint))
    folder = Path(images) if images is not None else root / "images"
    if check_files:
        require_dir(folder, "FashionIQ image folder", "pass images=<folder of <asin>.png files>")
    paths = {str(n): _image_path(folder, str(n)) for n in names}
    queries: list[EvalQuery] = []
    qrels: dict[str, dict[str, float]] = {}
    for n, entry in enumerate(triplets):
        where = f"{root / 'captions' / f'cap.{category}.{split}.json'}: entry {n}"
        candidate = str(field_of(entry, ["candidate"], where))
        if candidate not in paths:
            raise OmniretError(f"{where}: candidate {candidate!r} is not in the split's image list")
        text = join_captions([str(c) for c in field_of(entry, ["captions"], where)])
        extra = {"reference": str(paths[candidate]), "reference_id": candidate, "category": category}
        qid = f"{category}-{split}-{n}"
        queries.append(EvalQuery(qid, text, Modality.TEXT, extra))
        target = entry.get("target")
        if target is None:
            raise OmniretError(f"{where}: no 'target' (FashionIQ {split} targets are hidden); use split='val'")
        if str(target) not in paths:
            raise OmniretError(f"{where}: target {target!r} is not in the split's image list")
        qrels[qid] = {str(target): 1.0}
    corpus = tuple(EvalDoc(n, str(p), Modality.IMAGE, {"category": category}) for n, p in paths.items())
    if check_files:
        check_media("fashioniq", list(paths.values()), "pass images=<folder of <asin>.png files>")
    return EvalDataset(f"fashioniq-{category}-{split}", corpus, tuple(queries), qrels, "composed",
                       metadata={"format": "fashioniq", "source": str(root), "split": split,
                                 "category": category})
