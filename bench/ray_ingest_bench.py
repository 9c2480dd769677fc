"""Ray ingest throughput vs the single-process path on the same machine.

Generates N JPEG photos (default 600 × 640×480 noise-textured gradients), then indexes them into
fresh embedded stores with (a) ``run_add`` decoding in this process (``workers=0``), (b) ``run_add``
with its default decode pool, (c) :func:`omniret.scale.ray_ingest.ray_add` on a local Ray with
all cores (Ray start-up timed separately). The encoder is the deterministic fake of the test suite
(an 8×8 colour layout), so the numbers measure decode + pipeline overhead, not a neural network.

Usage::

    .venv/bin/python bench/ray_ingest_bench.py --n 600 --out bench/RESULTS_scale.md
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fakes import FakeEncoder  # noqa: E402

from omniret.index import Index  # noqa: E402
from omniret.ingest import IngestOptions, run_add  # noqa: E402
from omniret.store.embedded import EmbeddedStore  # noqa: E402


def make_images(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640]
    for i in range(n):
        base = (xx * rng.uniform(0.1, 0.4) + yy * rng.uniform(0.1, 0.4)) % 255
        img = np.stack([base, base[::-1], base[:, ::-1]], axis=-1) + rng.integers(0, 40, (480, 640, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"p{i:05d}.jpg", quality=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import ray

    from omniret.scale.ray_ingest import RayOptions, ray_add

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        make_images(src, args.n)
        for name, workers in (("run_add, decode in-process (workers=0)", 0), ("run_add, default decode pool", None)):
            store = EmbeddedStore(Path(tmp) / f"s{workers}")
            rep = run_add([str(src)], store, FakeEncoder(), IngestOptions(workers=workers))
            store.close()
            rows.append((name, rep.seconds, rep.items))
        t0 = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "tests")}})
        start = time.perf_counter() - t0
        index = Index(EmbeddedStore(Path(tmp) / "ray"), FakeEncoder(), str(Path(tmp) / "ray"))
        rep = ray_add([str(src)], index, IngestOptions(), ray_options=RayOptions(files_per_batch=64, decode_batch=16))
        index.close()
        ray.shutdown()
        rows.append((f"ray_add, local Ray ({os.cpu_count()} CPUs; + {start:.1f} s ray.init not included)",
                     rep.seconds, rep.items))
    lines = [f"Ray ingest vs single process: {args.n} JPEGs 640×480, fake encoder, {os.cpu_count()} cores", "",
             "| path | seconds | items | images/s |", "|---|---|---|---|"]
    lines += [f"| {n} | {s:.1f} | {k} | {k / s:.0f} |" for n, s, k in rows]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
