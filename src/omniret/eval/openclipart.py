"""The Open Clip Art Library as a retrieval set (8,121 public-domain clip-art images).

Debian packages it as ``openclipart-png`` and ``openclipart-svg``. Each SVG carries RDF metadata:
``dc:title`` (a short caption), ``dc:subject`` keywords and sometimes ``dc:description``. This module
turns the packages into two judged sets:

- ``title``: one query per distinct (case-folded) title shared by at most 5 images; relevant = the
  images carrying that title (almost always one), i.e. the classic caption→image task;
- ``keyword``: one query per keyword shared by ``min_keyword_images`` to ``max_keyword_images`` images;
  relevant = every image tagged with it (multi-relevant).

Files written to ``out_dir``: ``corpus.jsonl`` (``id``, ``path`` of the PNG, ``title``, ``subjects``,
``description``), ``queries_<task>.jsonl`` (``qid``, ``text``) and ``qrels_<task>.jsonl``
(``qid``, ``doc_id``, ``rel``). Only ``apt-get`` needs the network, and only to fetch the packages.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from omniret.errors import OmniretError

PACKAGES = ("openclipart-png", "openclipart-svg")
TASKS = ("title", "keyword")
_SHARE = Path("usr/share/openclipart")
_RDF_BLOCK = re.compile(r"<rdf:RDF\b.*?</rdf:RDF>", re.DOTALL)
_WORK_TITLE = re.compile(r"<cc:Work\b.*?<dc:title>(.*?)</dc:title>", re.DOTALL)
_NS_WRAPPER = (
    '<root xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:cc="http://web.resource.org/cc/">{}</root>'
)
#: placeholder keywords that say nothing about the picture
_STOP_KEYWORDS = frozenset({"unsorted", "clip art", "clipart", "image", "media", "png", "svg", "public domain"})


@dataclass(frozen=True)
class ClipArt:
    """One clip-art image and its metadata."""

    id: str  # path relative to the package root, without extension: "animals/cat_01"
    path: str  # absolute path of the PNG
    title: str
    subjects: tuple[str, ...] = field(default_factory=tuple)
    description: str = ""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(el: ET.Element | None) -> str:
    return " ".join("".join(el.itertext()).split()) if el is not None else ""


def parse_svg_metadata(svg_text: str) -> tuple[str, tuple[str, ...], str]:
    """``(title, subjects, description)`` of the ``cc:Work`` in an SVG's RDF metadata (empty if absent).

    Only the Work's own ``dc:title`` counts (publisher/creator agents carry ``dc:title`` too).
    """
    m = _RDF_BLOCK.search(svg_text)
    if not m:
        return "", (), ""
    try:
        root = ET.fromstring(_NS_WRAPPER.format(m.group(0)))
    except ET.ParseError:
        t = _WORK_TITLE.search(m.group(0))
        return (" ".join(t.group(1).split()) if t else ""), (), ""
    work = next((el for el in root.iter() if _local(el.tag) == "Work"), None)
    if work is None:
        return "", (), ""
    children = {_local(c.tag): c for c in work}
    subjects: tuple[str, ...] = ()
    subj = children.get("subject")
    if subj is not None:
        items = [_text(li) for li in subj.iter() if _local(li.tag) == "li"]
        subjects = tuple(s for s in items if s) or tuple(s.strip() for s in _text(subj).split(",") if s.strip())
    return _text(children.get("title")), subjects, _text(children.get("description"))


def download_debs(dest: Path) -> list[Path]:
    """``apt-get download`` the two packages into ``dest`` (run ``apt-get update`` once before)."""
    dest.mkdir(parents=True, exist_ok=True)
    if shutil.which("apt-get") is None:
        raise OmniretError("apt-get not found; download openclipart-png and openclipart-svg .deb files by hand")
    proc = subprocess.run(["apt-get", "download", *PACKAGES], cwd=dest, capture_output=True, text=True)
    if proc.returncode != 0:
        raise OmniretError(f"apt-get download {' '.join(PACKAGES)} failed: {proc.stderr.strip()}; "
                           "run 'apt-get update' first")
    return sorted(dest.glob("openclipart-*.deb"))


def extract_debs(debs: Sequence[Path], dest: Path) -> Path:
    """``dpkg-deb -x`` each package into ``dest``; returns the ``usr/share/openclipart`` folder."""
    if shutil.which("dpkg-deb") is None:
        raise OmniretError("dpkg-deb not found; extract the .deb files with 'ar x' + 'tar xf data.tar.*'")
    for deb in debs:
        proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise OmniretError(f"dpkg-deb -x {deb} failed: {proc.stderr.strip()}")
    return dest / _SHARE


def _resolve_root(source: Path, work: Path) -> Path:
    """Find the folder holding ``png/`` and ``svg/``: ``source`` itself, below it, or extracted from .debs."""
    for cand in (source, source / _SHARE, source / "openclipart"):
        if (cand / "png").is_dir() and (cand / "svg").is_dir():
            return cand
    debs = sorted(source.glob("openclipart-*.deb")) if source.is_dir() else []
    if source.is_file() and source.suffix == ".deb":
        debs = sorted(source.parent.glob("openclipart-*.deb"))
    if len(debs) >= 2:
        return extract_debs(debs, work / "extracted")
    raise OmniretError(
        f"no Open Clip Art files under {source}: pass the folder holding png/ and svg/, or one with the "
        f"openclipart-png and openclipart-svg .deb files (apt-get download {' '.join(PACKAGES)})"
    )


def scan(root: Path) -> list[ClipArt]:
    """Every PNG that has an SVG twin with a non-empty title, in sorted path order."""
    out = []
    for svg in sorted((root / "svg").rglob("*.svg")):
        rel = svg.relative_to(root / "svg").with_suffix("")
        png = root / "png" / rel.with_suffix(".png")
        if not png.is_file():
            continue
        title, subjects, desc = parse_svg_metadata(svg.read_text(encoding="utf-8", errors="replace"))
        if title:
            out.append(ClipArt(rel.as_posix(), str(png.resolve()), title, subjects, desc))
    return out


def title_task(
    items: Sequence[ClipArt], max_images: int = 5
) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Queries (one per case-folded title) and qrels (the images with that title).

    Titles shared by more than ``max_images`` images are collection names ("Lemon SVG theme",
    "gramastar"), not captions: they make no query (their images stay in the corpus as distractors).
    """
    groups: dict[str, list[ClipArt]] = defaultdict(list)
    for it in items:
        groups[" ".join(it.title.lower().split())].append(it)
    queries, qrels = {}, {}
    kept = sorted((k, m) for k, m in groups.items() if len(m) <= max_images)
    for i, (_key, members) in enumerate(kept):
        qid = f"t{i:05d}"
        queries[qid] = members[0].title
        qrels[qid] = {m.id for m in members}
    return queries, qrels


def keyword_task(
    items: Sequence[ClipArt], min_images: int = 5, max_images: int = 100
) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Queries (one per keyword used by ``min_images``..``max_images`` images) and their images."""
    groups: dict[str, set[str]] = defaultdict(set)
    for it in items:
        for s in it.subjects:
            key = " ".join(s.lower().split())
            if key and key not in _STOP_KEYWORDS:
                groups[key].add(it.id)
    queries, qrels = {}, {}
    for i, (kw, ids) in enumerate(sorted((k, v) for k, v in groups.items() if min_images <= len(v) <= max_images)):
        qid = f"k{i:05d}"
        queries[qid], qrels[qid] = kw, ids
    return queries, qrels


def _write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def build(source: Path | str, out_dir: Path | str) -> dict[str, int]:
    """Build the set from ``source`` (extracted packages or the .deb files) into ``out_dir``.

    Returns counts: ``images``, ``title_queries``, ``keyword_queries``.
    """
    source, out_dir = Path(source), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = scan(_resolve_root(source, out_dir))
    if not items:
        raise OmniretError(f"found no titled clip-art images under {source}")
    _write_jsonl(out_dir / "corpus.jsonl", [asdict(it) for it in items])
    counts = {"images": len(items)}
    for task, (queries, qrels) in (("title", title_task(items)), ("keyword", keyword_task(items))):
        _write_jsonl(out_dir / f"queries_{task}.jsonl", [{"qid": q, "text": t} for q, t in queries.items()])
        _write_jsonl(
            out_dir / f"qrels_{task}.jsonl",
            [{"qid": q, "doc_id": d, "rel": 1} for q, ds in qrels.items() for d in sorted(ds)],
        )
        counts[f"{task}_queries"] = len(queries)
    return counts


def load(out_dir: Path | str, task: str = "title") -> tuple[list[ClipArt], dict[str, str], dict[str, set[str]]]:
    """Read a built set back: ``(corpus, queries, qrels)``."""
    if task not in TASKS:
        raise OmniretError(f"unknown Open Clip Art task {task!r}; choose from {', '.join(TASKS)}")
    out_dir = Path(out_dir)
    if not (out_dir / "corpus.jsonl").is_file():
        raise OmniretError(f"{out_dir} holds no built Open Clip Art set; run omniret.eval.openclipart.build first")
    with (out_dir / "corpus.jsonl").open(encoding="utf-8") as f:
        corpus = [ClipArt(**{**r, "subjects": tuple(r["subjects"])}) for r in map(json.loads, f)]
    with (out_dir / f"queries_{task}.jsonl").open(encoding="utf-8") as f:
        queries = {r["qid"]: r["text"] for r in map(json.loads, f)}
    qrels: dict[str, set[str]] = defaultdict(set)
    with (out_dir / f"qrels_{task}.jsonl").open(encoding="utf-8") as f:
        for r in map(json.loads, f):
            qrels[r["qid"]].add(r["doc_id"])
    return corpus, queries, dict(qrels)
