"""Clotho (Drossos et al., ICASSP 2020) caption ↔ audio retrieval.

Layout of the Zenodo release::

    clotho_captions_evaluation.csv   file_name,caption_1,caption_2,caption_3,caption_4,caption_5
    evaluation/<file_name>           (the audio, e.g. from clotho_audio_evaluation.7z)

The audio folder defaults to ``<csv folder>/<split>/`` (split taken from the CSV name: development,
validation or evaluation), then ``<csv folder>/audio/``, then the CSV's folder.
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
    first_dir,
    read_csv,
    require_file,
)
from omniret.items import Modality

CAPTIONS = tuple(f"caption_{i}" for i in range(1, 6))


def _csv(path: Path, split: str) -> Path:
    if path.is_dir():
        return require_file(path / f"clotho_captions_{split}.csv", "Clotho captions CSV",
                            "pass the CSV itself or the folder that holds it")
    return require_file(path, "Clotho captions CSV")


def load(
    path: Path, *, split: str = "evaluation", audio: Path | None = None, check_files: bool = True, **_: Any
) -> EvalDataset:
    """Load a Clotho captions CSV: each caption is a query relevant to its one audio file."""
    csv_path = _csv(Path(path), split)
    rows = read_csv(csv_path, ["file_name", *CAPTIONS])
    if not rows:
        raise OmniretError(f"{csv_path}: no rows")
    split_name = csv_path.stem.removeprefix("clotho_captions_")
    folder = Path(audio) if audio is not None else first_dir(
        [csv_path.parent / split_name, csv_path.parent / "audio", csv_path.parent]) or csv_path.parent
    corpus = tuple(EvalDoc(r["file_name"], str(folder / r["file_name"]), Modality.AUDIO) for r in rows)
    if check_files:
        check_media("clotho", [Path(d.content) for d in corpus], "pass audio=<folder of the .wav files>")
    queries: list[EvalQuery] = []
    qrels: dict[str, dict[str, float]] = {}
    for row in rows:
        for col in CAPTIONS:
            if row[col]:
                qid = f"{row['file_name']}#{col[-1]}"
                queries.append(EvalQuery(qid, row[col], Modality.TEXT))
                qrels[qid] = {row["file_name"]: 1.0}
    return EvalDataset(f"clotho-{split_name}", corpus, tuple(queries), qrels, "retrieval",
                       metadata={"format": "clotho", "source": str(csv_path)})
