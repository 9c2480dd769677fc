"""MSR-VTT text → video, 1k-A test split (Yu et al., ECCV 2018 "JSFusion"; Xu et al., CVPR 2016).

Layouts read:

* CSV, as shipped with CLIP4Clip/JSFusion: ``MSRVTT_JSFUSION_test.csv`` with columns
  ``key, vid_key, video_id, sentence`` (one caption per video, 1,000 rows).
* JSON list or JSONL, one record per video or caption: the video under ``video_id`` /
  ``clip_name`` / ``video`` (a file name's suffix is dropped) and the caption under ``sentence`` /
  ``caption`` / ``text`` (a string or a list of strings).

Videos are ``<videos>/<video_id>.<mp4|avi|webm|…>``; ``videos`` defaults to the first of
``videos/``, ``MSRVTT_Videos/``, ``TestVideo/`` next to the annotation file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omniret.errors import OmniretError
from omniret.eval.datasets.base import (
    VIDEO_SUFFIXES,
    EvalDataset,
    EvalDoc,
    EvalQuery,
    field_of,
    first_dir,
    read_csv,
    read_json,
    read_jsonl,
    require_file,
    resolve_media,
)
from omniret.items import Modality

_NAMES = ("MSRVTT_JSFUSION_test.csv", "msrvtt_test_1k.json", "msrvtt_test1k.json", "test_1k.json")


def _annotation(path: Path) -> Path:
    if path.is_dir():
        for name in _NAMES:
            if (path / name).is_file():
                return path / name
        raise OmniretError(f"no MSR-VTT annotation file ({', '.join(_NAMES)}) in {path}; pass the file itself")
    return require_file(path, "MSR-VTT annotation file", "pass MSRVTT_JSFUSION_test.csv or a JSON list")


def _records(path: Path) -> list[tuple[str | None, str, list[str]]]:
    """(query key or None, video id, captions) per record."""
    if path.suffix.lower() == ".csv":
        rows = read_csv(path, ["video_id", "sentence"])
        return [(r.get("key") or None, r["video_id"], [r["sentence"]]) for r in rows]
    if path.suffix.lower() == ".jsonl":
        objs = [(f"{path}:{n}", o) for n, o in read_jsonl(path)]
    else:
        data = read_json(path)
        if not isinstance(data, list):
            raise OmniretError(f"{path}: expected a list of {{video_id, sentence}} records")
        objs = [(f"{path}: record {n}", o) for n, o in enumerate(data)]
    out: list[tuple[str | None, str, list[str]]] = []
    for where, obj in objs:
        video = Path(str(field_of(obj, ["video_id", "clip_name", "video"], where))).stem
        caps = field_of(obj, ["sentence", "caption", "text"], where)
        out.append((None, video, [caps] if isinstance(caps, str) else [str(c) for c in caps]))
    return out


def load(path: Path, *, videos: Path | None = None, check_files: bool = True, **_: Any) -> EvalDataset:
    """Load MSR-VTT 1k-A captions (queries) and videos (corpus)."""
    ann = _annotation(Path(path))
    records = _records(ann)
    video_ids = list(dict.fromkeys(v for _, v, _ in records))
    folder = Path(videos) if videos is not None else first_dir(
        [ann.parent / "videos", ann.parent / "MSRVTT_Videos", ann.parent / "TestVideo"])
    paths = resolve_media("msrvtt", video_ids, folder, VIDEO_SUFFIXES, check_files,
                          "pass videos=<folder of video<N>.mp4 files>")
    queries: list[EvalQuery] = []
    qrels: dict[str, dict[str, float]] = {}
    for key, video, captions in records:
        for caption in captions:
            qid = key if key is not None and len(captions) == 1 else f"{video}#{len(queries)}"
            queries.append(EvalQuery(qid, caption.strip(), Modality.TEXT, {"video_id": video}))
            qrels[qid] = {video: 1.0}
    corpus = tuple(EvalDoc(v, str(paths[v]), Modality.VIDEO) for v in video_ids)
    return EvalDataset("msrvtt-1k-a", corpus, tuple(queries), qrels, "retrieval",
                       metadata={"format": "msrvtt", "source": str(ann)})
