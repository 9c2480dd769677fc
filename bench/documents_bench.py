"""PDF ingest (text layer) against the raw text-encoder rate on the same texts, in one run (issue 15 #4).

For each round: ``Index.add`` of the PDF into a fresh index (decode workers, structure pass, commits
every ``commit_pages`` pages, SQLite + FTS writes) is timed; then the texts it embedded — every
distinct page, block and section-title text, read back from the index — are embedded again by the
same, already loaded encoder in one ``encode_text`` call each (``raw``: the encoder alone, no decode, no
store). Both rates are distinct texts per second; the ratio ingest / raw is the target (≥ 0.70).
Rounds alternate ingest and raw so machine noise hits both; medians are reported.

    python bench/documents_bench.py [--pdf PATH] [--rounds 3] [--out bench/RESULTS_documents_ingest.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

TEXDOC = Path(os.environ.get("OMNIRET_TEXDOC", "/tmp/texdoc/x")) / "usr/share/doc/texlive-doc/latex"


def embedded_texts(idx) -> list[str]:  # type: ignore[no-untyped-def]
    """The distinct texts the index embedded: pages and blocks by their text, sections by their title."""
    out = []
    for it in idx.store.iter_items():
        if it.parent_id is None:
            continue  # the document record has no vector
        md = it.metadata
        out.append(md["heading"] if "heading" in md else (it.text or ""))
    return sorted({t for t in out if t})


def one_round(pdf: Path, model: str, encoder, workers: int | None) -> tuple[float, float, int, int]:  # type: ignore[no-untyped-def]
    import omniret

    with tempfile.TemporaryDirectory() as tmp:
        idx = omniret.open(Path(tmp) / "idx", model=model)
        idx.encoder = encoder  # the same loaded model for both measurements
        t = time.perf_counter()
        report = idx.add(str(pdf), pdf_ocr=False, workers=workers)
        ingest = time.perf_counter() - t
        texts = embedded_texts(idx)
        idx.close()
    t = time.perf_counter()
    encoder.encode_text(texts)
    raw = time.perf_counter() - t
    return ingest, raw, len(texts), report.items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pdf", type=Path, default=TEXDOC / "hyperref" / "hyperref-doc.pdf")
    ap.add_argument("--model", default="offline")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "RESULTS_documents_ingest.json")
    args = ap.parse_args()
    from omniret.encoders import registry

    encoder = registry.create(args.model)
    encoder.encode_text(["warm up"])
    rows = []
    for r in range(args.rounds):
        ingest, raw, n, items = one_round(args.pdf, args.model, encoder, args.workers)
        rows.append({"ingest_s": ingest, "raw_s": raw, "texts": n, "items": items,
                     "ingest_texts_per_s": n / ingest, "raw_texts_per_s": n / raw, "ratio": raw / ingest})
        print(json.dumps({"round": r, **{k: round(v, 3) for k, v in rows[-1].items()}}), flush=True)
    med = {k: statistics.median(x[k] for x in rows) for k in rows[0]}
    out = {"pdf": str(args.pdf), "model": args.model, "rounds": rows, "median": med,
           "load_avg": os.getloadavg(), "cpus": os.cpu_count()}
    args.out.write_text(json.dumps(out, indent=2))
    print(f"median: ingest {med['ingest_texts_per_s']:.1f} texts/s, raw encoder {med['raw_texts_per_s']:.1f} "
          f"texts/s, ratio {med['ratio']:.3f} ({med['texts']:.0f} texts, {med['items']:.0f} items)")


if __name__ == "__main__":
    main()
