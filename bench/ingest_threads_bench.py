"""``Index.add`` items/s with the torch thread policy vs fixed counts, interleaved in one process.

    python bench/ingest_threads_bench.py --n 192 --repeat 3 [--threads 2] [--model offline]

Writes the JPEG photos of ``bench/ingest_bench.py`` once, loads and warms the encoder once, then
runs ``Index.add`` into a fresh index ``--repeat`` times per setting, alternating the settings
(policy, ``--threads``, policy, ...) so that each pair sees the same machine load. The policy is
``max(1, usable cores - decode workers)`` (:mod:`omniret.threads`); the fixed setting passes
``IngestOptions.torch_threads``. Prints every run with the 1-minute load average, then medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from ingest_bench import make_photos, raw_forward  # type: ignore[import-not-found]  # bench/ is on sys.path


def one_add(folder: Path, workdir: Path, encoder, batch_size: int, threads: int | None) -> float:
    from omniret.index import Index
    from omniret.store import open_store

    idx = Index(open_store(str(workdir)), encoder, str(workdir))
    idx.store.set_manifest({"encoder": {"name": encoder.name, "config": encoder.config()}})
    t0 = time.perf_counter()
    report = idx.add(str(folder), batch_size=batch_size, torch_threads=threads)
    dt = time.perf_counter() - t0
    if report.failed:
        raise SystemExit(f"add failed on {report.failed[:3]}")
    idx.close()
    return report.items / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=192)
    ap.add_argument("--size", type=int, default=800)
    ap.add_argument("--model", default="offline")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from omniret.encoders import registry
    from omniret.ingest.run import default_workers
    from omniret.threads import ingest_threads

    encoder = registry.create(args.model, batch_size=args.batch_size)
    policy = ingest_threads(default_workers())
    settings = [(f"policy ({policy})", None), (f"fixed {args.threads}", args.threads)]
    rates: dict[str, list[float]] = {label: [] for label, _ in settings}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        paths = make_photos(folder, args.n, args.size)
        raw_forward(encoder, paths[: args.batch_size], args.batch_size)  # load + warm up
        for r in range(args.repeat):
            for k, (label, threads) in enumerate(settings if r % 2 == 0 else settings[::-1]):
                rate = one_add(folder, Path(tmp) / f"idx{r}-{k}", encoder, args.batch_size, threads)
                rates[label].append(rate)
                print(f"run {r} {label}: {rate:.1f} items/s (load {os.getloadavg()[0]:.2f})", flush=True)
    print(f"\n| setting | images | decode workers | add items/s (median of {args.repeat}) | runs |")
    print("|---|---|---|---|---|")
    for label, xs in rates.items():
        runs = ", ".join(f"{x:.1f}" for x in xs)
        print(f"| {label} | {args.n} | {default_workers()} | {statistics.median(xs):.1f} | {runs} |")


if __name__ == "__main__":
    main()
