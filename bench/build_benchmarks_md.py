"""Regenerate BENCHMARKS.md: the hand-written summary (bench/SUMMARY.md) followed by every
bench/RESULTS_*.md that the benchmark scripts write, in a fixed order.

    python bench/build_benchmarks_md.py
"""

from __future__ import annotations

from pathlib import Path

ORDER = ["ingest", "ingest_callers", "cli", "load", "search", "offline", "methods", "documents", "stages_e2e", "stage_choices",
         "stages", "muvera", "gpu", "media", "server", "scale", "ondisk"]


def main() -> None:
    bench = Path(__file__).parent
    parts = [(bench / "SUMMARY.md").read_text().rstrip()]
    files = sorted(bench.glob("RESULTS_*.md"), key=lambda p: (
        ORDER.index(p.stem[8:]) if p.stem[8:] in ORDER else len(ORDER), p.name))
    for f in files:
        body = f.read_text().strip()
        if not body.startswith("#"):
            body = f"## {f.stem[8:]}\n\n{body}"
        # shift headings so each results file's top heading is a level-2 section of this document
        levels = [len(line) - len(line.lstrip("#")) for line in body.splitlines() if line.startswith("#")]
        shift = 2 - min(levels)
        body = "\n".join(("#" * shift + line if shift > 0 else line[-shift:]) if line.startswith("#") else line
                         for line in body.splitlines())
        parts.append(f"<!-- from bench/{f.name} -->\n{body}")
    (bench.parent / "BENCHMARKS.md").write_text("\n\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
