"""Published numbers (issue 4 item 5), runnable only where weights and data exist (marked ``network``).

Command (documented in bench/RESULTS_methods.md)::

    OMNIRET_FLICKR30K=/data/flickr30k OMNIRET_COCO=/data/coco .venv/bin/pytest -m network tests/eval_runner

CLIP_benchmark reports for open_clip ``ViT-B-32``/``laion2b_s34b_b79k`` on Flickr30k (1k test)
text→image R@1 ≈ 75 and on MS-COCO 5k R@1 ≈ 47; QB-Norm (Bogolin et al., CVPR 2022, Table 7) reports
COCO-5k text→image R@1 30.3 → 34.8 for CLIP ViT-B/32 with a query bank of training captions.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.network

MODEL = "openclip:ViT-B-32/laion2b_s34b_b79k"


def _karpathy(env: str) -> Path:
    root = os.environ.get(env)
    if not root or not Path(root).is_dir():
        pytest.skip(f"set {env} to a Karpathy-split folder (dataset_*.json + images)")
    return Path(root)


def _t2i_recall(root: Path, tmp_path: Path, methods: tuple[str, ...], model: str = MODEL,
                bank: tuple[str, ...] | None = None) -> dict[str, dict[str, float]]:
    from omniret.eval import runner
    from omniret.eval.datasets.registry import load_dataset

    ds = load_dataset("karpathy", root)
    cfg = runner.EvalConfig(model=model, methods=methods, depth=100, cache_dir=str(tmp_path), bank_fraction=0.0,
                            bank_texts=bank)
    result = runner.run_eval(ds, cfg)
    return {m.method: m.metrics for m in result.methods}


def test_clip_benchmark_flickr30k_t2i(tmp_path: Path) -> None:
    got = _t2i_recall(_karpathy("OMNIRET_FLICKR30K"), tmp_path, ("raw",))["raw"]
    assert np.isclose(got["recall@1"], 0.75, atol=0.02)


def test_clip_benchmark_coco5k_t2i(tmp_path: Path) -> None:
    got = _t2i_recall(_karpathy("OMNIRET_COCO"), tmp_path, ("raw",))["raw"]
    assert np.isclose(got["recall@1"], 0.47, atol=0.02)


def test_qbnorm_coco5k_t2i(tmp_path: Path) -> None:
    """QB-Norm's COCO-5k text→image row for CLIP ViT-B/32 (OpenAI weights): R@1 30.3 → 34.8, with a
    query bank of training captions (their code samples the bank from the train split)."""
    from omniret.eval.datasets.registry import load_dataset

    root = _karpathy("OMNIRET_COCO")
    train = load_dataset("karpathy", root, split="train", check_files=False)
    rng = np.random.default_rng(0)
    captions = [q.content for q in train.queries]
    bank = tuple(captions[i] for i in sorted(rng.choice(len(captions), size=min(50_000, len(captions)),
                                                        replace=False)))
    got = _t2i_recall(root, tmp_path, ("raw", "qbnorm"), model="openclip:ViT-B-32/openai", bank=bank)
    assert np.isclose(got["raw"]["recall@1"], 0.303, atol=0.02)
    assert np.isclose(got["qbnorm"]["recall@1"], 0.348, atol=0.02)
