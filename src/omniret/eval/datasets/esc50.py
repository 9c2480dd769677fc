"""ESC-50 (Piczak, ACM MM 2015) zero-shot environmental-sound classification.

Layout of the official repository (``karolpiczak/ESC-50``)::

    meta/esc50.csv   filename,fold,target,category,esc10,src_file,take
    audio/<filename> (5-second 44.1 kHz WAV clips)

``labels`` are the 50 categories in ``target`` order; each clip's class is ``metadata["label"]``.
The queries are the class names (``dog``, ``chirping birds``…), each relevant to its clips, so the same
set also scores label → sound retrieval. ``folds`` picks folds (the usual zero-shot protocol uses all
five); ``esc10=True`` keeps the ESC-10 subset.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omniret.errors import OmniretError
from omniret.eval.datasets.base import (
    EvalDataset,
    EvalDoc,
    EvalQuery,
    check_media,
    read_csv,
    require_file,
)
from omniret.items import Modality


def _int(value: str, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise OmniretError(f"{where}: expected an integer, got {value!r}") from None


def load(
    path: Path,
    *,
    folds: Sequence[int] | None = None,
    esc10: bool = False,
    audio: Path | None = None,
    check_files: bool = True,
    **_: Any,
) -> EvalDataset:
    """Load ESC-50 from its repository folder (the one holding ``meta/`` and ``audio/``)."""
    root = Path(path)
    csv_path = require_file(root / "meta" / "esc50.csv", "ESC-50 metadata",
                            "pass the ESC-50 folder that holds meta/esc50.csv and audio/")
    rows = read_csv(csv_path, ["filename", "fold", "target", "category"])
    folder = Path(audio) if audio is not None else root / "audio"
    names: dict[int, str] = {}
    corpus: list[EvalDoc] = []
    for n, row in enumerate(rows, 2):
        where = f"{csv_path}:{n}"
        target, fold = _int(row["target"], where), _int(row["fold"], where)
        if names.setdefault(target, row["category"]) != row["category"]:
            raise OmniretError(f"{where}: target {target} is {row['category']!r} here but {names[target]!r} before")
        if (folds is not None and fold not in folds) or (esc10 and row.get("esc10", "").lower() != "true"):
            continue
        meta = {"label": row["category"], "target": target, "fold": fold}
        corpus.append(EvalDoc(row["filename"], str(folder / row["filename"]), Modality.AUDIO, meta))
    if not corpus:
        raise OmniretError(f"{csv_path}: no clips left after filtering (folds={folds}, esc10={esc10})")
    if check_files:
        check_media("esc50", [Path(d.content) for d in corpus], "pass audio=<folder of the .wav clips>")
    present = {d.metadata["label"] for d in corpus}
    labels = tuple(names[t] for t in sorted(names) if names[t] in present)
    queries = tuple(EvalQuery(lab, lab.replace("_", " "), Modality.TEXT, {"label": lab}) for lab in labels)
    qrels: dict[str, dict[str, float]] = {lab: {} for lab in labels}
    for doc in corpus:
        qrels[doc.metadata["label"]][doc.id] = 1.0
    return EvalDataset("esc50" if not esc10 else "esc10", tuple(corpus), queries, qrels, "classification",
                       labels=labels, metadata={"format": "esc50", "source": str(root), "folds": folds})
