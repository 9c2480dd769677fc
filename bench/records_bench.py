"""Manifest ingest against folder ingest on the same images: ``Index.add_manifest(manifest.parquet)`` vs
``Index.add(folder)``.

    python bench/records_bench.py --n 100000 --model fake --reps 2 --markdown bench/RESULTS_records.md

Writes ``--n`` small JPEGs (``--size`` px, random crops of the scikit-image / scikit-learn samples, so
no two are alike) into one folder and a Parquet manifest of the same files (img2dataset / clip-retrieval
layout: ``image_path``, ``caption``, ``key``). Then, in one process and alternating A B B A…, times each
path into a fresh index with the same encoder object and the same ingest options (decode workers,
batch size, commit size). The point is the pipeline's own cost — planning, decoding, committing — so
the default model is ``fake`` (tests/fakes.py: an 8x8 colour layout projected to 64-d, nearly free);
``--model offline`` measures the same with the real offline model, where the encoder dominates.

Reports the median rows/s of each path over the repetitions and their ratio (manifest / folder).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent


def make_images(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    from skimage import data
    from sklearn.datasets import load_sample_images

    sources = [np.asarray(getattr(data, k)()) for k in ("astronaut", "chelsea", "coffee", "rocket")]
    sources += list(load_sample_images().images)
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        src = sources[i % len(sources)]
        h, w = src.shape[:2]
        ch, cw = int(h * rng.uniform(0.3, 1.0)), int(w * rng.uniform(0.3, 1.0))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        p = folder / f"{i // 1000:03d}" / f"img{i:06d}.jpg"
        if not p.exists():
            p.parent.mkdir(exist_ok=True)
            Image.fromarray(src[y : y + ch, x : x + cw, :3]).resize((size, size * 3 // 4), Image.BILINEAR).save(p, quality=85)
        paths.append(p)
    return paths


def write_manifest(paths: list[Path], out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"key": [p.stem for p in paths], "image_path": [str(p) for p in paths],
                             "caption": [f"sample picture {p.stem}" for p in paths]}), out)


def encoder_for(model: str):  # noqa: ANN201 - an Encoder
    from omniret.encoders import registry

    if model == "fake":
        sys.path.insert(0, str(HERE.parent / "tests"))
        registry.register(registry.EncoderEntry("fake", "fakes:create", "deterministic test encoder", "fake"))
    return registry.create(model)


def run_once(kind: str, src: Path, workdir: Path, encoder, options) -> tuple[float, int]:  # noqa: ANN001
    from omniret.index import Index
    from omniret.store import open_store

    idx = Index(open_store(str(workdir)), encoder, str(workdir))
    idx.store.set_manifest({"encoder": {"name": encoder.name, "config": encoder.config()}})
    t0 = time.perf_counter()
    if kind == "folder":
        report = idx.add(str(src), options=options)
    else:
        report = idx.add_manifest(src, image_col="image_path", text_col="caption", id_col="key", options=options)
    dt = time.perf_counter() - t0
    assert not report.failed, report.failed[:3]
    idx.close()
    return dt, report.items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--model", default="fake")
    ap.add_argument("--reps", type=int, default=2, help="runs of each path (alternating A B B A ...)")
    ap.add_argument("--workers", type=int, default=None, help="decode workers (default: omniret's)")
    ap.add_argument("--data", type=Path, default=None, help="where the images go (default: a temp folder)")
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args()

    from omniret.ingest.work import IngestOptions

    data = args.data or Path(tempfile.mkdtemp(prefix="records-bench-"))
    t0 = time.perf_counter()
    paths = make_images(data / "images", args.n, args.size)
    write_manifest(paths, data / "manifest.parquet")
    print(f"{len(paths)} images ready in {time.perf_counter() - t0:.0f}s under {data}", flush=True)
    encoder = encoder_for(args.model)
    options = IngestOptions(workers=args.workers)
    encoder.encode_text(["warm up"])
    times: dict[str, list[float]] = {"folder": [], "manifest": []}
    order = [k for r in range(args.reps) for k in (("folder", "manifest") if r % 2 == 0 else ("manifest", "folder"))]
    for i, kind in enumerate(order):
        src = data / "images" if kind == "folder" else data / "manifest.parquet"
        with tempfile.TemporaryDirectory(dir=data) as work:
            load = os.getloadavg()[0]
            dt, items = run_once(kind, src, Path(work) / "idx", encoder, options)
        assert items == args.n, (kind, items)
        times[kind].append(dt)
        print(f"run {i + 1}/{len(order)} {kind:8s}: {dt:7.1f}s  {args.n / dt:7.0f} rows/s  (load {load:.1f})",
              flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: args.n / med[k] for k in med}
    ratio = rate["manifest"] / rate["folder"]
    print(f"median: folder {rate['folder']:.0f} rows/s, manifest {rate['manifest']:.0f} rows/s, ratio {ratio:.2f}")
    if args.markdown:
        write_markdown(args, times, rate, ratio)


def write_markdown(args: argparse.Namespace, times: dict[str, list[float]], rate: dict[str, float],
                   ratio: float) -> None:
    import omniret.ingest.run as run

    cmd = f"python bench/records_bench.py --n {args.n} --size {args.size} --model {args.model} --reps {args.reps}"
    runs = "; ".join(f"{k}: " + ", ".join(f"{t:.0f} s" for t in v) for k, v in times.items())
    text = f"""# Records: a Parquet manifest against a folder, same images

`Index.add_manifest(manifest.parquet, image_col="image_path", text_col="caption", id_col="key")` against
`Index.add(folder)` on the same {args.n:,} JPEGs ({args.size}x{args.size * 3 // 4} px, random crops of the
scikit-image / scikit-learn samples), each into a fresh index, same encoder object and ingest options
(decode workers: {args.workers if args.workers is not None else run.default_workers()}, batch 32, commits of 256
items), alternating the two paths. Model: `{args.model}`{" (tests/fakes.py: an 8x8 colour layout projected to 64-d, nearly free, so the numbers are the pipeline's own cost: planning, decoding, hashing, committing)" if args.model == "fake" else ""}.

**Command:** `{cmd}`

| path | median rows/s | runs |
|---|---:|---|
| folder (`add`) | {rate['folder']:.0f} | {", ".join(f"{t:.0f} s" for t in times['folder'])} |
| manifest (`add_manifest`) | {rate['manifest']:.0f} | {", ".join(f"{t:.0f} s" for t in times['manifest'])} |

**Manifest / folder: {ratio:.2f}** (target ≥ 0.80). Runs: {runs}.

Machine: {platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs (load average
{os.getloadavg()[0]:.0f} at the end), Python {platform.python_version()}. Date {time.strftime("%Y-%m-%d")}.
"""
    args.markdown.write_text(text)


if __name__ == "__main__":
    main()
