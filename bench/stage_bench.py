"""Added latency of each search stage for ONE query over K' candidates (pure numpy, no store).

Run: ``.venv/bin/python bench/stage_bench.py [--out bench/RESULTS_stages.md]``. Each stage is timed
on the candidate arrays the engine would hand it (scores, gathered per-candidate stats, ...), as the
median of repeated calls. The lead combines these with the store's candidate-generation numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from omniret.methods import composed, fusion, gap, hubness, late_interaction, muvera

D = 512  # CLIP ViT-B embedding size
KS = (100, 250, 500, 1000)


def _time_us(fn: Callable[[], object], repeat: int = 30) -> tuple[float, float]:
    """(min, median) wall time of ``fn`` in microseconds; the min is the least disturbed by other load."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e6, statistics.median(times) * 1e6


def _stages(k: int, rng: np.random.Generator) -> dict[str, Callable[[], object]]:
    scores = rng.uniform(-0.2, 0.4, (1, k))
    log_z, active = rng.uniform(5, 9, (1, k)), rng.random((1, k)) < 0.3
    q = rng.normal(size=(1, D))
    mods = rng.integers(0, 3, (1, k))
    means, covs = rng.normal(size=(3, D)) * 0.01, np.stack([np.eye(D) * 1e-3] * 3)
    ids = [f"doc{i}" for i in range(k)]
    run_a = (ids, scores[0])
    run_b = (ids[::-1], rng.normal(size=k))
    gal = rng.normal(size=(k, D))
    caps = rng.normal(size=(k, 3, D))
    qtok = rng.normal(size=(32, 128)).astype(np.float32)
    docs = [rng.normal(size=(int(n), 128)).astype(np.float32) for n in rng.integers(20, 200, k)]
    cfg = muvera.FDEConfig(128, 4, num_repetitions=10, projection_dimension=16, fill_empty_partitions=True)
    fdes = muvera.document_fde_batch(docs, cfg)
    return {
        "QB-Norm (apply_qbnorm)": lambda: hubness.apply_qbnorm(scores, log_z, active, 20.0),
        "DualDIS (apply_dual_dis)": lambda: hubness.apply_dual_dis(scores, log_z, active, log_z, active),
        "T-norm calibration (3 modalities)": lambda: gap.tnorm_scores(q, scores, mods, means, covs),
        "RRF, 2 runs": lambda: fusion.rrf([run_a, run_b]),
        "weighted sum z-score, 2 runs": lambda: fusion.weighted_sum([run_a, run_b], norm="zscore"),
        "WeiMoCIR rescoring (3 captions)": lambda: composed.weimocir(q[0], q[0], gal, caps),
        "MaxSim rerank (32 q-tok, 20-200 d-tok, d=128)": lambda: late_interaction.maxsim(qtok, docs),
        "MUVERA FDE MIPS + rerank top-100": lambda: muvera.muvera_search(qtok, fdes, docs, cfg, 10, 100),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=None, help="write a Markdown table here")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    load_before = os.getloadavg()[0]
    table: dict[str, dict[int, tuple[float, float]]] = {}
    for k in KS:
        for name, fn in _stages(k, rng).items():
            table.setdefault(name, {})[k] = _time_us(fn, repeat=10 if "MaxSim" in name or "MUVERA" in name else 30)
    head = "| stage (min / median) | " + " | ".join(f"K'={k}" for k in KS) + " |"
    lines = [head, "|" + "---|" * (len(KS) + 1)]
    lines += [f"| {n} | " + " | ".join(f"{v[k][0]:.0f} / {v[k][1]:.0f} us" for k in KS) + " |" for n, v in table.items()]
    text = "\n".join(lines) + f"\n\n1-min load average before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(
                "# Added latency per search stage, one query (min / median of repeats, microseconds)\n\n"
                f"Machine: {platform.processor() or platform.machine()}, numpy {np.__version__}, "
                f"embedding dim {D}; produced by `bench/stage_bench.py`.\n\n{text}\n"
            )


if __name__ == "__main__":
    main()
