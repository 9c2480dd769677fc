"""GPU ingest at the decode limit: Pillow vs nvjpeg decode, bare nvjpeg+encoder, and ``omniret add``.

Self-contained (random-init ViT-B-32, no download)::

    python bench/gpu_ingest_bench.py --n 2000        # on a CUDA machine, ~2-4 minutes on an H100

Generates N 1600×1200 JPEGs (64 distinct pictures, written N times under distinct names; decode cost
does not depend on the name) and measures, in one run:

(a) Pillow decode (``Image.open(...).convert("RGB")``) on ``--procs`` processes;
(b) nvjpeg batched decode (``torchvision.io.decode_jpeg(list, device="cuda")``), bytes in memory;
(c) the bare pipeline: read + nvjpeg + GPU resize/crop/normalise + ViT-B-32 fp16 ``encode_image``;
(d) ``omniret add`` of the folder with ``openclip:local-dir:`` (the same random-init weights saved
    to a temp dir) on CUDA, which takes the GPU fast path of :mod:`omniret.ingest.gpu`.

Without CUDA, (b)-(d) are skipped with a message. Prints a markdown table and writes it to
``$OUT/gpu_ingest.md`` when ``$OUT`` is set.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
import traceback
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def make_jpegs(folder: Path, n: int, w: int = 1600, h: int = 1200, distinct: int = 64) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    blobs = []
    for _ in range(min(distinct, n)):
        f = rng.uniform(0.002, 0.02, 3)
        img = np.stack([127 + 120 * np.sin(xx * f[c] + yy * f[(c + 1) % 3]) for c in range(3)], axis=-1)
        img += rng.normal(0, 12, img.shape)
        buf = io.BytesIO()
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
        blobs.append(buf.getvalue())
    paths = []
    for i in range(n):
        p = folder / f"photo{i:06d}.jpg"
        p.write_bytes(blobs[i % len(blobs)])
        paths.append(p)
    return paths


def _pil_decode(path: str) -> int:
    with Image.open(path) as im:
        return im.convert("RGB").size[0]


def pillow_rate(paths: list[Path], procs: int) -> float:
    with get_context("spawn").Pool(procs) as pool:
        pool.map(_pil_decode, [str(p) for p in paths[: procs * 2]])  # warm the workers
        t0 = time.perf_counter()
        pool.map(_pil_decode, [str(p) for p in paths], chunksize=8)
        return len(paths) / (time.perf_counter() - t0)


def nvjpeg_rate(paths: list[Path], batch: int) -> float:
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    datas = [read_file(str(p)) for p in paths]
    decode_jpeg(datas[:8], mode=ImageReadMode.RGB, device="cuda")
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for s in range(0, len(datas), batch):
        decode_jpeg(datas[s: s + batch], mode=ImageReadMode.RGB, device="cuda")
    torch.cuda.synchronize()
    return len(datas) / (time.perf_counter() - t0)


def save_random_vitb32(folder: Path) -> None:
    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    cfg = {"model_cfg": open_clip.get_model_config("ViT-B-32"),
           "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}}
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))


def bare_pipeline_rate(paths: list[Path], batch: int) -> tuple[float, float]:
    """(images/s of read+nvjpeg+preprocess+encode, images/s of the encoder alone on ready tensors)."""
    import open_clip
    import torch
    from torchvision.io import read_file

    from omniret.ingest.gpu import GpuPreprocess

    model = open_clip.create_model("ViT-B-32", pretrained=None, precision="fp16", device="cuda").eval()
    pre = GpuPreprocess(224, (0.48, 0.46, 0.41), (0.27, 0.26, 0.28), device="cuda")
    with torch.inference_mode():
        x = torch.randn(batch, 3, 224, 224, device="cuda", dtype=torch.float16)
        model.encode_image(x)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(10):
            model.encode_image(x)
        torch.cuda.synchronize()
        enc = 10 * batch / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for s in range(0, len(paths), batch):
            imgs = pre.decode([read_file(str(p)) for p in paths[s: s + batch]])
            model.encode_image(pre(imgs)).float().cpu()
        torch.cuda.synchronize()
    return len(paths) / (time.perf_counter() - t0), enc


def omniret_add_rate(folder: Path, weights: Path, index: Path, batch: int, workers: int | None = None) -> float:
    import omniret

    with omniret.open(str(index), model=f"openclip:local-dir:{weights}", device="cuda", batch_size=batch) as idx:
        rep = idx.add([str(folder)], batch_size=batch, commit_every=2048, workers=workers)
        assert rep.items == len(list(folder.iterdir())), rep.to_dict()
        return rep.items / rep.seconds


def _part(rows: list[tuple[str, str]], name: str, fn: Any) -> None:
    """Run one measured part; a failure is reported in its row and the others still run."""
    try:
        rows.append((name, f"{fn():,.0f}"))
    except Exception as e:
        traceback.print_exc()
        rows.append((name, f"failed: {type(e).__name__}: {e}"))
    print(rows[-1], flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--procs", type=int, default=16)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    import torch

    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = make_jpegs(Path(tmp) / "jpegs", args.n)
        print(f"generated {args.n} JPEGs in {time.perf_counter() - t0:.1f} s", flush=True)
        rows.append((f"(a) Pillow decode, {args.procs} processes", f"{pillow_rate(paths, args.procs):,.0f}"))
        print(rows[-1], flush=True)
        if not torch.cuda.is_available():
            print("no CUDA device: skipping (b) nvjpeg, (c) bare pipeline, (d) omniret add")
            rows += [(name, "skipped (no CUDA)") for name in ("(b) nvjpeg batched decode", "(c) nvjpeg + ViT-B-32 fp16",
                                                               "(d) omniret add (GPU path)")]
        else:
            _part(rows, f"(b) nvjpeg batched decode, batch {args.batch}", lambda: nvjpeg_rate(paths, args.batch))
            try:
                bare, enc = bare_pipeline_rate(paths, args.batch)
                rows.append(("ViT-B-32 fp16 encode alone (random tensors)", f"{enc:,.0f}"))
                rows.append((f"(c) read + nvjpeg + resize + ViT-B-32 fp16, batch {args.batch}", f"{bare:,.0f}"))
            except Exception as e:  # keep the other parts' figures
                traceback.print_exc()
                rows.append(("(c) bare pipeline", f"failed: {type(e).__name__}: {e}"))
            print(rows[-2:], flush=True)
            weights = Path(tmp) / "vitb32"
            weights.mkdir()
            save_random_vitb32(weights)
            _part(rows, "(d) omniret add, GPU path (decode → encode → commit)",
                  lambda: omniret_add_rate(Path(tmp) / "jpegs", weights, Path(tmp) / "index", args.batch))
            os.environ["OMNIRET_GPU_DECODE"] = "0"
            _part(rows, f"(e) omniret add, CPU decode path ({args.procs - 1} workers, draft mode) + GPU encode",
                  lambda: omniret_add_rate(Path(tmp) / "jpegs", weights, Path(tmp) / "index_cpu", args.batch,
                                           workers=args.procs - 1))
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    lines = [f"GPU ingest: {args.n} JPEGs 1600×1200, {device}, {os.cpu_count()} CPU cores", "",
             "| stage | images/s |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    text = "\n".join(lines)
    print(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_ingest.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
