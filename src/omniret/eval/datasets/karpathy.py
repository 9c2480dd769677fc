"""Flickr30k / MS-COCO in Karpathy's split JSON (``dataset_flickr30k.json``, ``dataset_coco.json``).

Layout (Karpathy & Fei-Fei, CVPR 2015, "neuraltalk" release)::

    {"dataset": "coco", "images": [{"filepath": "val2014", "filename": "COCO_val2014_….jpg",
      "imgid": 0, "split": "test", "cocoid": 391895,
      "sentences": [{"raw": "A man …", "sentid": 0, "imgid": 0, "tokens": [...]}, …]}, …]}

Flickr30k entries have no ``filepath``. Images live at ``images / filepath / filename``.
Queries are the captions (text → image); each caption is relevant to its one image. The
image → text direction is :func:`omniret.eval.metrics.transpose_qrels` of the same qrels.
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


def _find_json(path: Path) -> Path:
    if path.is_dir():
        found = sorted(path.glob("dataset_*.json"))
        if not found:
            raise OmniretError(
                f"no Karpathy split file (dataset_coco.json / dataset_flickr30k.json) in {path}; "
                "pass the JSON file itself"
            )
        return found[0]
    return require_file(path, "Karpathy split JSON", "pass dataset_coco.json or dataset_flickr30k.json")


def load(
    path: Path, *, split: str = "test", images: Path | None = None, check_files: bool = True, **_: Any
) -> EvalDataset:
    """Load one split (``"test"``, ``"val"``, ``"train"``, ``"restval"`` or ``"all"``)."""
    json_path = _find_json(Path(path))
    data = read_json(json_path)
    if not isinstance(data, dict) or "images" not in data:
        raise OmniretError(f"{json_path}: expected an object with an 'images' list (Karpathy layout)")
    root = Path(images) if images is not None else json_path.parent
    corpus: list[EvalDoc] = []
    queries: list[EvalQuery] = []
    qrels: dict[str, dict[str, float]] = {}
    for n, img in enumerate(data["images"]):
        where = f"{json_path}: images[{n}]"
        if split != "all" and img.get("split") != split:
            continue
        filename = str(field_of(img, ["filename"], where))
        doc_id = filename
        uri = root / str(img.get("filepath", "")) / filename
        meta = {k: img[k] for k in ("imgid", "cocoid", "split") if k in img}
        corpus.append(EvalDoc(doc_id, str(uri), Modality.IMAGE, meta))
        for sent in field_of(img, ["sentences"], where):
            qid = str(field_of(sent, ["sentid"], where))
            queries.append(EvalQuery(qid, str(field_of(sent, ["raw"], where)).strip(), Modality.TEXT))
            qrels[qid] = {doc_id: 1.0}
    if not corpus:
        splits = sorted({str(i.get("split")) for i in data["images"]})
        raise OmniretError(f"{json_path}: no images in split {split!r}; splits present: {splits}")
    if check_files:
        check_media(str(data.get("dataset", "karpathy")), [Path(d.content) for d in corpus],
                    "pass images=<the folder the filepath/filename entries are relative to>")
    name = f"{data.get('dataset', json_path.stem)}-{split}"
    return EvalDataset(name, tuple(corpus), tuple(queries), qrels, "retrieval",
                       metadata={"format": "karpathy", "source": str(json_path), "split": split})
