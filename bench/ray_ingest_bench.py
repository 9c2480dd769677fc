"""Ray ingest throughput vs the single-process path on the same machine, start-up separated.

Generates ``--n`` JPEG photos (640×480 noise-textured gradients) and indexes them into fresh
embedded stores with (a) ``run_add`` and its default decode pool (what ``omniret add`` runs) and (b)
:func:`omniret.ingest.ray.ray_add` on a local Ray with all cores. ``ray.init`` is timed on
its own. Each path runs on the first ``--n-small`` photos and on all ``--n``; the difference gives
the steady-state (marginal) rate ``(n - n_small) / (t_n - t_small)`` with the fixed per-run cost
(decode pool / Ray Data pipeline and encoder actors starting, model loading) cancelled out, and
``t_small - n_small / marginal`` estimates that fixed cost. Discarded warm-up runs of both paths come first
(model loading in this process, Ray worker processes), and the two paths then alternate (small,
small, all, all) so that both see the same machine load.

``--model offline`` (default) is the built-in offline model (``OFFLINE.md``; Ray actors load their
own copy); ``--model fake`` the deterministic 8×8 colour-layout encoder of the test suite, which
measures decode + pipeline overhead alone.

Usage::

    .venv/bin/python bench/ray_ingest_bench.py --n 400 --out bench/RESULTS_scale_ray.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))

from fakes import FakeEncoder  # noqa: E402

from omniret.encoders import registry  # noqa: E402
from omniret.encoders.base import Encoder  # noqa: E402
from omniret.index import Index  # noqa: E402
from omniret.ingest.run import run_add  # noqa: E402
from omniret.ingest.work import IngestOptions  # noqa: E402
from omniret.store.embedded import EmbeddedStore  # noqa: E402


def make_images(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640]
    for i in range(n):
        base = (xx * rng.uniform(0.1, 0.4) + yy * rng.uniform(0.1, 0.4)) % 255
        img = np.stack([base, base[::-1], base[:, ::-1]], axis=-1) + rng.integers(0, 40, (480, 640, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"p{i:05d}.jpg", quality=90)


def subset(src: Path, dst: Path, n: int) -> Path:
    dst.mkdir(parents=True)
    for p in sorted(src.iterdir())[:n]:
        shutil.copy(p, dst / p.name)
    return dst


def factory(model: str) -> Callable[[], Encoder]:
    return FakeEncoder if model == "fake" else (lambda: registry.create("offline"))


def single(src: Path, store_dir: Path, encoder: Encoder) -> tuple[float, int]:
    store = EmbeddedStore(store_dir)
    rep = run_add([str(src)], store, encoder, IngestOptions())
    store.close()
    return rep.seconds, rep.items


def with_ray(src: Path, store_dir: Path, encoder: Encoder, model: str) -> tuple[float, int]:
    from omniret.ingest.ray import RayOptions, ray_add

    index = Index(EmbeddedStore(store_dir), encoder, str(store_dir))
    rep = ray_add([str(src)], index, IngestOptions(), encoder_factory=factory(model),
                  ray_options=RayOptions(files_per_batch=64, decode_batch=16))
    index.close()
    return rep.seconds, rep.items


def rates(small: tuple[float, int], full: tuple[float, int]) -> dict[str, float]:
    (ts, ns), (tf, nf) = small, full
    marginal = (nf - ns) / (tf - ts) if tf > ts else float("nan")
    return {"t_small": ts, "t_full": tf, "items": nf, "overall": nf / tf, "marginal": marginal,
            "fixed": ts - ns / marginal if marginal == marginal else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--n-small", type=int, default=32)
    ap.add_argument("--model", choices=("offline", "fake"), default="offline")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import ray

    cores = os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        make_images(tmp / "all", args.n)
        small = subset(tmp / "all", tmp / "small", args.n_small)
        warm_set = subset(tmp / "all", tmp / "warm", 8)
        encoder = factory(args.model)()
        t0 = time.perf_counter()
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(TESTS)}})
        start = time.perf_counter() - t0
        single(warm_set, tmp / "s-warm", encoder)  # loads the model in this process
        with_ray(warm_set, tmp / "r-warm", encoder, args.model)  # starts Ray's worker processes
        load0 = os.getloadavg()[0]
        runs: dict[str, list[tuple[float, int]]] = {"single": [], "ray": []}
        for name, src in (("small", small), ("all", tmp / "all")):  # interleaved: both paths see the same load
            runs["single"].append(single(src, tmp / f"s-{name}", encoder))
            runs["ray"].append(with_ray(src, tmp / f"r-{name}", encoder, args.model))
        one, rr = rates(*runs["single"]), rates(*runs["ray"])
        ray.shutdown()
        load1 = os.getloadavg()[0]
    head = (f"Ray ingest vs single process: {args.n} JPEGs 640×480 (small run {args.n_small}), model "
            f"`{args.model}`, {cores} shared cores, load average (1 min) {load0:.1f} before, {load1:.1f} after. "
            f"`ray.init`: {start:.1f} s (not in any row).")
    lines = [head, "", "| path | s (small) | s (all) | items | items/s overall | items/s steady | fixed s per run |",
             "|---|---|---|---|---|---|---|"]
    for name, r in (("run_add (default decode pool)", one), (f"ray_add (local Ray, {cores} CPUs)", rr)):
        lines.append(f"| {name} | {r['t_small']:.1f} | {r['t_full']:.1f} | {r['items']:.0f} | {r['overall']:.1f} "
                     f"| {r['marginal']:.1f} | {r['fixed']:.1f} |")
    lines += ["", f"Ray / single process: overall {rr['overall'] / one['overall']:.2f}×, "
              f"steady state {rr['marginal'] / one['marginal']:.2f}× the items/s."]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
