"""``omniret eval prepare manuals``: heading → page judgements from the outlines of real PDF manuals.

The manuals ship in Debian packages (``apt-get download`` + ``dpkg-deb -x``). A judged query is a
section heading from a manual's outline (bookmarks) with its numbering stripped ("2.7.3 Apt pinning"
→ "Apt pinning"); the relevant documents are the *pages* the outline points to for that title
(``"<manual id>#p<page>"``, 1-based; a title used by several sections judges all their pages). The
outline is the ground truth only: the system under test reads the same PDF, and with
``strip_outline=True`` the corpus is a copy of each manual *without* its outline (pages copied by
PDFium into a new document), so what the system finds must come from the pages themselves (heading
detection from fonts) while the judgements still come from the original outline.

Two package sets are named here: :data:`DEV_PACKAGES`, used while developing and tuning, and
:data:`HELD_OUT_PACKAGES`, kept for the final measurement only (see ``bench/RESULTS_documents.md``).
Other manuals (``asymptote-doc``'s 196-page asymptote.pdf, ``gnuplot-doc``'s 311-page gnuplot.pdf,
``octave-doc``'s 1158-page octave.pdf) are a ``packages=`` away.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from omniret.errors import OmniretError

#: (package, PDF file name) pairs of the development set; None = every PDF of the package that qualifies
DEV_PACKAGES: tuple[tuple[str, str | None], ...] = (  # 244 pages: index builds fit a shared 2-core machine
    ("octave-doc", "liboctave.pdf"),
    ("texlive-latex-base-doc", "fancyhdr.pdf"),
    ("texlive-latex-base-doc", "amsldoc.pdf"),
    ("texlive-latex-base-doc", "hyperref-doc.pdf"),
)
#: never used while developing: the final, held-back measurement
HELD_OUT_PACKAGES: tuple[tuple[str, str | None], ...] = (
    ("debian-reference-en", "debian-reference.en.pdf"),  # the 261-page manual of the issue
)
SETS = {"dev": DEV_PACKAGES, "heldout": HELD_OUT_PACKAGES}

_NUMBERING = re.compile(r"^(?:(?:chapter|appendix|section|part)\s+)?(?:\d+(?:\.\d+)*|[A-Z](?:\.\d+)+)\.?\s+",
                        re.IGNORECASE)


def heading_query(title: str) -> str | None:
    """The query for an outline title: numbering stripped, whitespace normalised; ``None`` when what is
    left is too short to be a heading query (under 4 characters or no run of 3 letters)."""
    t = _NUMBERING.sub("", " ".join(title.split()))
    return t if len(t) >= 4 and re.search(r"[A-Za-z]{3}", t) else None


def manual_judgements(outlines: dict[str, Sequence[tuple[str, int]]]) -> tuple[list[dict], dict[str, int]]:
    """Queries from outlines ``{manual id: [(title, 1-based page)]}``: one per distinct heading query
    (over every manual), relevant = every ``"<manual>#p<page>"`` where a section of that title starts."""
    pages: dict[str, set[str]] = defaultdict(set)
    for doc, entries in outlines.items():
        for title, page in entries:
            q = heading_query(title)
            if q is not None:
                pages[q].add(f"{doc}#p{page}")
    queries = [{"id": f"h{n:05d}", "text": q, "relevant": sorted(pages[q])} for n, q in enumerate(sorted(pages))]
    return queries, {"headings": sum(len(e) for e in outlines.values()), "queries": len(queries)}


def _extract(package: str, debs: Path, root: Path) -> Path:
    from omniret.eval.prepare import _apt_download, _run

    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        found = _apt_download(package, debs)
    if not found:
        raise OmniretError(f"apt-get download {package} gave no .deb; run 'apt-get update' first")
    target = root / package
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        _run(["dpkg-deb", "-x", str(found[-1]), str(target)], f"dpkg-deb -x {found[-1]}")
    return target


def _pdfs(root: Path, name: str | None) -> list[Path]:
    """The PDFs of an extracted package (by name, or all), one per content (symlinks and copies collapse)."""
    seen: set[str] = set()
    out = []
    for p in sorted(root.rglob(name or "*.pdf")):
        if not p.is_file() or p.stat().st_size == 0:
            continue
        digest = hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest()
        if digest not in seen:
            seen.add(digest)
            out.append(p)
    return out


def strip_outline(src: Path, dest: Path) -> Path:
    """A copy of ``src`` with the same pages and no outline (PDFium imports the pages into a new document)."""
    import pypdfium2 as pdfium

    dest.parent.mkdir(parents=True, exist_ok=True)
    doc, new = pdfium.PdfDocument(str(src)), pdfium.PdfDocument.new()
    try:
        new.import_pages(doc)
        new.save(str(dest))
    finally:
        new.close()
        doc.close()
    return dest


def prepare_manuals(out_dir: Path | str, source: Path | None = None, which: str = "dev",
                    packages: Sequence[str] | None = None, strip: bool = False, min_entries: int = 10,
                    max_pages: int = 400) -> dict[str, int]:
    """Build the manuals set into ``out_dir`` (``corpus.jsonl`` + ``queries.jsonl``).

    ``which``: ``dev`` or ``heldout`` (:data:`SETS`); ``packages`` replaces it with these packages'
    PDFs (every PDF with at least ``min_entries`` outline entries and at most ``max_pages`` pages).
    ``source``: a folder holding the ``.deb`` files (else they are downloaded into ``out_dir/debs``).
    ``strip``: index outline-less copies (see the module docstring).
    """
    from omniret.eval.prepare import write_jsonl_set
    from omniret.media.pdf import open_pdf

    if which not in SETS and not packages:
        raise OmniretError(f"unknown manuals set {which!r}; choose from {', '.join(SETS)} or pass packages")
    out = Path(out_dir)
    wanted = [(p, None) for p in packages] if packages else list(SETS[which])
    debs = source if source is not None else out / "debs"
    outlines: dict[str, list[tuple[str, int]]] = {}
    corpus = []
    for package, name in wanted:
        root = _extract(package, debs, out / "extracted")
        for pdf in _pdfs(root, name):
            info = open_pdf(pdf)
            if len(info.outline) < min_entries or info.pages > max_pages:
                continue
            doc_id = f"{package}/{pdf.name}"
            if doc_id in outlines:
                continue
            outlines[doc_id] = [(e.title, e.page) for e in info.outline]
            path = strip_outline(pdf, out / "stripped" / package / pdf.name) if strip else pdf
            corpus.append({"id": doc_id, "document": str(path.resolve()), "metadata": {"pages": info.pages}})
    if not corpus:
        raise OmniretError(f"no PDF with an outline of at least {min_entries} entries found in {[p for p, _ in wanted]}")
    queries, counts = manual_judgements(outlines)
    write_jsonl_set(out, corpus, queries)
    return {"manuals": len(corpus), "pages": sum(c["metadata"]["pages"] for c in corpus), **counts}
