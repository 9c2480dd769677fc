"""Ingest throughput: ``Index.add`` against the raw encoder forward pass on the same decoded batches.

    python bench/ingest_bench.py --n 256 --model offline [--workers N] [--size 800]

Writes JPEG photos (random crops of the scikit-image / scikit-learn samples, resized to about
``--size`` px) to a temp folder, then, in one run and on the same warm encoder:

1. raw: decode + preprocess every image up front (not timed), then time ``encode_pixels`` over
   batches of ``--batch-size`` — the encoder's ceiling;
2. add: time ``Index.add(folder)`` into a fresh index (walk, hash, decode in worker processes,
   encode, commit to SQLite/FAISS).

Reports items/s for both, the ratio, and the median over ``--repeat`` runs. The model is loaded
and warmed before any timing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_photos(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    from skimage import data
    from sklearn.datasets import load_sample_images

    sources = [np.asarray(getattr(data, k)()) for k in ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field")]
    sources += list(load_sample_images().images)
    sources = [s if s.ndim == 3 else np.stack([s] * 3, -1) for s in sources]
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        src = sources[i % len(sources)]
        h, w = src.shape[:2]
        ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        im = Image.fromarray(src[y : y + ch, x : x + cw, :3]).resize((size, int(size * 0.75)), Image.BICUBIC)
        p = folder / f"photo{i:05d}.jpg"
        im.save(p, quality=90)
        paths.append(p)
    return paths


def raw_forward(encoder, paths: list[Path], batch_size: int) -> float:
    from omniret.media.image import load_image

    pre = encoder.image_preprocessor()
    pixels = np.stack([pre(load_image(str(p), target_size=encoder.image_size)) for p in paths])
    t0 = time.perf_counter()
    for i in range(0, len(pixels), batch_size):
        encoder.encode_pixels(pixels[i : i + batch_size])
    return len(paths) / (time.perf_counter() - t0)


def index_add(folder: Path, workdir: Path, workers: int | None, batch_size: int, encoder) -> float:
    from omniret.index import Index
    from omniret.store import open_store

    idx = Index(open_store(str(workdir)), encoder, str(workdir))
    idx.store.set_manifest({"encoder": {"name": encoder.name, "config": encoder.config()}})
    t0 = time.perf_counter()
    report = idx.add(str(folder), workers=workers, batch_size=batch_size)
    dt = time.perf_counter() - t0
    assert not report.failed, report.failed[:3]
    idx.close()
    return report.items / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--size", type=int, default=800)
    ap.add_argument("--model", default="offline")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from omniret.encoders import registry

    encoder = registry.create(args.model, batch_size=args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        paths = make_photos(folder, args.n, args.size)
        raw_forward(encoder, paths[: args.batch_size], args.batch_size)  # load + warm up
        raws, adds = [], []
        for r in range(args.repeat):
            raws.append(raw_forward(encoder, paths, args.batch_size))
            adds.append(index_add(folder, Path(tmp) / f"idx{r}", args.workers, args.batch_size, encoder))
            print(f"run {r}: raw {raws[-1]:.1f} img/s, add {adds[-1]:.1f} img/s, ratio {adds[-1] / raws[-1]:.2f}")
    raw, add = statistics.median(raws), statistics.median(adds)
    ratio = statistics.median(a / r for a, r in zip(adds, raws, strict=True))  # paired: each run's own ratio
    print("\n| model | images | size | workers | raw encoder img/s (median) | omniret add img/s (median) "
          "| add / raw (median of per-run ratios) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {encoder.name} | {args.n} | {args.size}x{int(args.size * 0.75)} JPEG | "
          f"{args.workers if args.workers is not None else 'auto'} | {raw:.1f} | {add:.1f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
