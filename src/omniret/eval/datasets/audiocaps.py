"""AudioCaps (Kim et al., NAACL 2019) caption ↔ audio retrieval.

Layout of the official CSVs (``cdjkim/audiocaps``: ``train.csv``, ``val.csv``, ``test.csv``)::

    audiocap_id,youtube_id,start_time,caption
    103549,7fmOlUlwoNg,20,Constant rattling noise and sharp vibrations

The test split has five captions per clip. Clips are identified as ``<youtube_id>_<start_time>``;
their files are found in ``audio`` (default: ``<csv folder>/<split>/``, then ``audio/``, then the CSV's
folder) by stem: ``<youtube_id>_<start_time>``, ``Y<youtube_id>_<start_time>``, ``<youtube_id>``,
``Y<youtube_id>``, the ``audiocap_id``, or the AudioSet style ``Y<youtube_id>_<start>.000_<end>.000``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omniret.errors import OmniretError
from omniret.eval.datasets.base import (
    AUDIO_SUFFIXES,
    EvalDataset,
    EvalDoc,
    EvalQuery,
    check_media,
    first_dir,
    index_stems,
    read_csv,
    require_file,
)
from omniret.items import Modality


def _csv(path: Path, split: str) -> Path:
    if path.is_dir():
        return require_file(path / f"{split}.csv", "AudioCaps CSV", "pass the CSV itself or its folder")
    return require_file(path, "AudioCaps CSV")


def _start(value: str) -> str:
    try:
        return str(int(float(value)))
    except ValueError:
        return value


def _find(stems: dict[str, Path], yid: str, start: str, cap_ids: list[str]) -> Path | None:
    for stem in (f"{yid}_{start}", f"Y{yid}_{start}", yid, f"Y{yid}", *cap_ids):
        if stem in stems:
            return stems[stem]
    prefix = (f"Y{yid}_{start}.", f"{yid}_{start}.")
    return next((p for s, p in stems.items() if s.startswith(prefix)), None)


def load(
    path: Path, *, split: str = "test", audio: Path | None = None, check_files: bool = True, **_: Any
) -> EvalDataset:
    """Load an AudioCaps CSV: captions are queries, clips are the corpus (text → audio)."""
    csv_path = _csv(Path(path), split)
    rows = read_csv(csv_path, ["audiocap_id", "youtube_id", "start_time", "caption"])
    if not rows:
        raise OmniretError(f"{csv_path}: no rows")
    folder = Path(audio) if audio is not None else first_dir(
        [csv_path.parent / csv_path.stem, csv_path.parent / "audio", csv_path.parent])
    stems = index_stems(folder, AUDIO_SUFFIXES) if folder is not None else {}
    clips: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        clips.setdefault(f"{row['youtube_id']}_{_start(row['start_time'])}", []).append(row)
    corpus: list[EvalDoc] = []
    for clip_id, clip_rows in clips.items():
        yid, start = clip_rows[0]["youtube_id"], _start(clip_rows[0]["start_time"])
        found = _find(stems, yid, start, [r["audiocap_id"] for r in clip_rows])
        uri = found if found is not None else (folder or csv_path.parent) / f"{clip_id}.wav"
        corpus.append(EvalDoc(clip_id, str(uri), Modality.AUDIO, {"youtube_id": yid, "start_time": start}))
    if check_files:
        check_media("audiocaps", [Path(d.content) for d in corpus],
                    "pass audio=<folder of the clips, named <youtube_id>_<start_time>.wav or similar>")
    queries = []
    qrels: dict[str, dict[str, float]] = {}
    for row in rows:
        clip_id = f"{row['youtube_id']}_{_start(row['start_time'])}"
        queries.append(EvalQuery(row["audiocap_id"], row["caption"], Modality.TEXT))
        qrels[row["audiocap_id"]] = {clip_id: 1.0}
    return EvalDataset(f"audiocaps-{split}", tuple(corpus), tuple(queries), qrels, "retrieval",
                       metadata={"format": "audiocaps", "source": str(csv_path)})
