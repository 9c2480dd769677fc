"""omniret's own judged-query format, for measuring retrieval on a user's data.

Queries: a JSONL file, one judged query a line::

    {"id": "q1", "text": "a red bicycle", "relevant": ["photos/bike.jpg"]}
    {"id": "q2", "image": "queries/cat.jpg", "relevant": {"photos/cat1.jpg": 2, "photos/cat2.jpg": 1}}
    {"id": "q3", "audio": "queries/bark.wav", "relevant": ["sounds/dog.wav"]}
    {"id": "q4", "image": "queries/dress.jpg", "text": "but in red", "relevant": ["shop/red.jpg"]}

``relevant`` is a list (all relevance 1) or an object ``{doc id: relevance}``. A query with both an
``image`` and ``text`` is composed (reference image + modification). Media paths are relative to
the JSONL file's folder.

Corpus: a folder (every file under it; id = path relative to the folder, ``/``-separated; text
files ``.txt``/``.md`` hold their contents) or a JSONL file of ``{"id", "text" | "image" | "audio" |
"video" | "document"}`` lines (media paths relative to that file). Passing a folder as ``path``
reads ``<path>/queries.jsonl`` and ``<path>/corpus.jsonl`` or ``<path>/corpus/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omniret.errors import OmniretError
from omniret.eval.datasets.base import (
    AUDIO_SUFFIXES,
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    EvalDataset,
    EvalDoc,
    EvalQuery,
    read_jsonl,
    require_file,
)
from omniret.items import Modality

_MEDIA_KEYS = ("image", "audio", "video", "document")
_TEXT_SUFFIXES = (".txt", ".md")


def _modality_of(path: Path) -> Modality | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return Modality.IMAGE
    if suffix in AUDIO_SUFFIXES:
        return Modality.AUDIO
    if suffix in VIDEO_SUFFIXES:
        return Modality.VIDEO
    if suffix == ".pdf":
        return Modality.DOCUMENT
    if suffix in _TEXT_SUFFIXES:
        return Modality.TEXT
    return None


def _folder_corpus(folder: Path) -> list[EvalDoc]:
    docs = []
    for p in sorted(folder.rglob("*")):
        modality = _modality_of(p) if p.is_file() and not p.name.startswith(".") else None
        if modality is None:
            continue
        content = p.read_text(encoding="utf-8", errors="replace") if modality is Modality.TEXT else str(p)
        docs.append(EvalDoc(p.relative_to(folder).as_posix(), content, modality, {"path": str(p)}))
    if not docs:
        raise OmniretError(f"corpus folder {folder} holds no image, audio, video, PDF or text files")
    return docs


def _jsonl_corpus(path: Path) -> list[EvalDoc]:
    docs = []
    for n, obj in read_jsonl(path):
        where = f"{path}:{n}"
        if "id" not in obj:
            raise OmniretError(f"{where}: a corpus line needs an 'id'")
        key = next((k for k in ("text", *_MEDIA_KEYS) if k in obj), None)
        if key is None:
            raise OmniretError(f"{where}: a corpus line needs one of 'text', {', '.join(_MEDIA_KEYS)}")
        content = str(obj[key]) if key == "text" else str(path.parent / str(obj[key]))
        meta = obj.get("metadata") or {}
        docs.append(EvalDoc(str(obj["id"]), content, Modality(key), meta))
    return docs


def _relevant(value: Any, where: str) -> dict[str, float]:
    if isinstance(value, list):
        return {str(d): 1.0 for d in value}
    if isinstance(value, dict):
        try:
            return {str(d): float(r) for d, r in value.items()}
        except (TypeError, ValueError):
            raise OmniretError(f"{where}: 'relevant' values must be numbers") from None
    raise OmniretError(f"{where}: 'relevant' must be a list of doc ids or an object {{doc id: relevance}}")


def _query(obj: dict[str, Any], where: str, base: Path) -> EvalQuery:
    if "id" not in obj:
        raise OmniretError(f"{where}: a query line needs an 'id'")
    media = [k for k in _MEDIA_KEYS if k in obj]
    if len(media) > 1:
        raise OmniretError(f"{where}: a query takes one media field, got {media}")
    qid = str(obj["id"])
    if media and "text" in obj:
        if media[0] != "image":
            raise OmniretError(f"{where}: composed queries pair 'text' with an 'image', not {media[0]!r}")
        return EvalQuery(qid, str(obj["text"]), Modality.TEXT, {"reference": str(base / str(obj["image"]))})
    if media:
        return EvalQuery(qid, str(base / str(obj[media[0]])), Modality(media[0]))
    if "text" in obj:
        return EvalQuery(qid, str(obj["text"]), Modality.TEXT)
    raise OmniretError(f"{where}: a query needs 'text' or one of {', '.join(_MEDIA_KEYS)}")


def _paths(path: Path, corpus: Path | None) -> tuple[Path, Path]:
    if path.is_dir():
        queries = require_file(path / "queries.jsonl", "queries file", "pass the JSONL file itself")
        if corpus is None:
            corpus = path / "corpus.jsonl" if (path / "corpus.jsonl").is_file() else path / "corpus"
        return queries, corpus
    queries = require_file(path, "queries file")
    if corpus is None:
        raise OmniretError(f"{path}: pass corpus=<folder or corpus JSONL> with the judged documents")
    return queries, corpus


def load(path: Path, *, corpus: Path | None = None, name: str | None = None, **_: Any) -> EvalDataset:
    """Load judged queries and their corpus (a folder or a JSONL file)."""
    query_path, corpus_path = _paths(Path(path), Path(corpus) if corpus is not None else None)
    if corpus_path.is_dir():
        docs = _folder_corpus(corpus_path)
    else:
        docs = _jsonl_corpus(require_file(corpus_path, "corpus (folder or JSONL)"))
    queries: list[EvalQuery] = []
    qrels: dict[str, dict[str, float]] = {}
    for n, obj in read_jsonl(query_path):
        where = f"{query_path}:{n}"
        query = _query(obj, where, query_path.parent)
        if "relevant" not in obj:
            raise OmniretError(f"{where}: query {query.id!r} has no 'relevant' judgements")
        queries.append(query)
        qrels[query.id] = _relevant(obj["relevant"], where)
    if not queries:
        raise OmniretError(f"{query_path}: no queries")
    task = "composed" if any("reference" in q.extra for q in queries) else "retrieval"
    return EvalDataset(name or query_path.stem, tuple(docs), tuple(queries), qrels, task,
                       metadata={"format": "jsonl", "source": str(query_path), "corpus": str(corpus_path)})
