"""The GPU ingest path's preprocessing (run on CPU here) and the benchmark script in a tiny configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from omniret.ingest.gpu import GpuPreprocess, _read, applies, is_jpeg

ROOT = Path(__file__).resolve().parents[2]


def test_preprocess_matches_pillow_path(tmp_path: Path) -> None:
    from omniret.encoders.openclip import OpenClipPreprocess

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:300, 0:400]
    img = np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1) + rng.integers(0, 10, (300, 400, 3))
    Image.fromarray(img.astype(np.uint8)).save(tmp_path / "a.jpg", quality=95)
    (tmp_path / "b.png").write_bytes(b"\x89PNG")
    assert is_jpeg(str(tmp_path / "a.jpg")) and not is_jpeg(str(tmp_path / "b.png"))
    mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    import torch

    pre = GpuPreprocess(64, mean, std, device="cpu", dtype=torch.float32)
    out = pre(pre.decode([d[0] for d in _read([str(tmp_path / "a.jpg")])]))
    ref = OpenClipPreprocess({"size": 64, "mean": mean, "std": std, "interpolation": "bicubic",
                              "resize_mode": "shortest"})(Image.open(tmp_path / "a.jpg"))
    assert out.shape == (1, 3, 64, 64)
    got = out[0].numpy()
    assert np.abs(got - ref).mean() < 0.05  # same pixels up to resize rounding
    assert np.corrcoef(got.ravel(), ref.ravel())[0, 1] > 0.99


def test_fast_path_does_not_apply_off_cuda() -> None:
    import fakes

    assert not applies(fakes.FakeEncoder())


def test_bench_runs_on_cpu(tmp_path: Path) -> None:
    env = dict(os.environ, OUT=str(tmp_path))
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_ingest_bench.py"), "--n", "4", "--procs", "2"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    table = (tmp_path / "gpu_ingest.md").read_text()
    assert "(a) Pillow decode" in table and "skipped (no CUDA)" in table

