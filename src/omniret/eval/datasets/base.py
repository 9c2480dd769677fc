"""The one in-memory form every dataset loader returns, and small helpers loaders share."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from omniret.errors import OmniretError
from omniret.items import Modality

Task = Literal["retrieval", "composed", "classification"]
TASKS: tuple[str, ...] = ("retrieval", "composed", "classification")


_PAGE_REF = re.compile(r"^(.+)#p(\d+)$")


def page_ref(doc_id: str) -> tuple[str, int] | None:
    """``"manual.pdf#p12"`` → ``("manual.pdf", 12)``: a judgement of one page (1-based) of a document."""
    m = _PAGE_REF.match(doc_id)
    return (m.group(1), int(m.group(2))) if m else None


@dataclass(frozen=True, slots=True)
class EvalDoc:
    """A corpus entry: ``content`` is a file path/URI for media, or the text itself for text."""

    id: str
    content: str
    modality: Modality
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EvalQuery:
    """A query: ``content`` is text or a media path. ``extra`` carries task-specific inputs.

    Composed queries hold the modification text in ``content`` and the reference image path in
    ``extra["reference"]`` (its corpus id, if any, in ``extra["reference_id"]``).
    """

    id: str
    content: str
    modality: Modality
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalDataset:
    """A judged evaluation set. ``qrels[qid][doc_id]`` > 0 means relevant (graded allowed).

    For ``classification``, ``labels`` lists the class names in class-index order, each document's
    class is ``metadata["label"]``, and the queries are the class names (label → items retrieval).
    """

    name: str
    corpus: tuple[EvalDoc, ...]
    queries: tuple[EvalQuery, ...]
    qrels: dict[str, dict[str, float]]
    task: Task = "retrieval"
    labels: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise OmniretError(f"dataset {self.name!r}: unknown task {self.task!r}; choose from {TASKS}")
        _unique(self.name, "document", [d.id for d in self.corpus])
        query_ids = _unique(self.name, "query", [q.id for q in self.queries])
        doc_ids = {d.id for d in self.corpus}
        paged = {d.id for d in self.corpus if d.modality is Modality.DOCUMENT}
        for qid, docs in self.qrels.items():
            if qid not in query_ids:
                raise OmniretError(f"dataset {self.name!r}: qrels name query {qid!r}, which is not a query")
            unknown = [d for d in docs if d not in doc_ids and (page_ref(d) or ("", 0))[0] not in paged]
            if unknown:
                raise OmniretError(
                    f"dataset {self.name!r}: query {qid!r} is judged against documents not in the corpus "
                    f"({unknown[:3]}); check the corpus path or split"
                )

    @property
    def page_level(self) -> bool:
        """Whether the judgements name pages of documents (``"<doc id>#p<page>"``) rather than documents."""
        doc_ids = {d.id for d in self.corpus}
        return any(d not in doc_ids and page_ref(d) is not None for docs in self.qrels.values() for d in docs)

    def __repr__(self) -> str:
        return (
            f"EvalDataset({self.name!r}, task={self.task!r}, {len(self.corpus)} docs, "
            f"{len(self.queries)} queries, {sum(len(v) for v in self.qrels.values())} judgements)"
        )


def _unique(name: str, what: str, ids: Sequence[str]) -> set[str]:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise OmniretError(f"dataset {name!r}: duplicate {what} id {i!r}; ids must be unique")
        seen.add(i)
    return seen


def require_file(path: Path, what: str, hint: str = "") -> Path:
    """Return ``path`` if it is a file, else raise an error naming it (and how to get it)."""
    if not path.is_file():
        extra = f"; {hint}" if hint else ""
        raise OmniretError(f"{what} not found: {path}{extra}")
    return path


def require_dir(path: Path, what: str, hint: str = "") -> Path:
    """Return ``path`` if it is a directory, else raise an error naming it."""
    if not path.is_dir():
        extra = f"; {hint}" if hint else ""
        raise OmniretError(f"{what} not found: {path}{extra}")
    return path


def read_json(path: Path) -> Any:
    """Parse a JSON file; a syntax error names the file and the position."""
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as e:
        raise OmniretError(f"{path}: invalid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from e


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSON-lines file."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise OmniretError(f"{path}:{lineno}: invalid JSON ({e.msg})") from e
            if not isinstance(obj, dict):
                raise OmniretError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def read_csv(path: Path, required: Sequence[str], delimiter: str = ",") -> list[dict[str, str]]:
    """Read a CSV with a header row; missing columns raise an error naming them and the file."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        missing = [c for c in required if c not in header]
        if missing:
            raise OmniretError(f"{path}: missing column(s) {missing}; the header has {header}")
        return [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


def field_of(obj: Mapping[str, Any], keys: Sequence[str], where: str) -> Any:
    """The first of ``keys`` present in ``obj``; else an error naming the keys and the place."""
    for key in keys:
        if key in obj:
            return obj[key]
    raise OmniretError(f"{where}: expected one of the fields {list(keys)}, found {sorted(obj)}")


def index_stems(folder: Path, suffixes: Sequence[str]) -> dict[str, Path]:
    """Map file stem → path for files under ``folder`` (recursively) with one of ``suffixes``."""
    wanted = {s.lower() for s in suffixes}
    return {p.stem: p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix.lower() in wanted}


AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a")
VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def check_media(name: str, paths: Sequence[Path], hint: str) -> None:
    """Raise an error naming the first missing media file (and how many are missing)."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise OmniretError(
            f"dataset {name!r}: {len(missing)} of {len(paths)} media files not found, e.g. {missing[0]}; "
            f"{hint} (or pass check_files=False)"
        )


def resolve_media(
    name: str, ids: Sequence[str], folder: Path | None, suffixes: Sequence[str], check: bool, hint: str
) -> dict[str, Path]:
    """Map each media id to a file in ``folder`` whose stem is the id (any of ``suffixes``).

    Unresolved ids map to ``folder / (id + suffixes[0])``; with ``check`` they raise an error.
    """
    found = index_stems(folder, suffixes) if folder is not None and folder.is_dir() else {}
    base = folder if folder is not None else Path(".")
    out = {i: found.get(i, base / f"{i}{suffixes[0]}") for i in ids}
    if check:
        if folder is None or not folder.is_dir():
            raise OmniretError(f"dataset {name!r}: media folder not found: {folder}; {hint}")
        check_media(name, list(out.values()), hint)
    return out


def first_dir(candidates: Sequence[Path]) -> Path | None:
    """The first existing directory among ``candidates``, else None."""
    return next((c for c in candidates if c.is_dir()), None)
