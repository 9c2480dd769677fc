"""Write an :class:`~omniret.eval.runner.EvalResult` as ``report.md``, ``report.json`` and PNG plots.

Plots (matplotlib, Agg backend, imported only when writing): ``recall_at_k.png`` — Recall@K (any
positive) against K for every method, recomputed from the runs; ``k_occurrence.png`` — histograms of
the k-occurrence counts ``N_k`` of the raw ranking and of each other method (the hubness papers'
picture: a long right tail means hubs).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from omniret.eval.runner import EvalResult

RECALL_KS = (1, 2, 3, 5, 10, 20, 50)
_TABLE_METRICS = ("recall@1", "recall@5", "recall@10", "map_inquire@50", "map@50", "ndcg@10", "mrr@50",
                  "median_rank")


def recall_curve(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, float]],
                 ks: tuple[int, ...] = RECALL_KS) -> list[float]:
    """Any-positive Recall@K of ``run`` for each K (the fraction of queries with a hit in the top K)."""
    hits = np.zeros(len(ks))
    for q, docs in run.items():
        order = [d for d, _ in sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))]
        rel = qrels.get(q, {})
        first = next((i for i, d in enumerate(order) if rel.get(d, 0) > 0), None)
        if first is not None:
            hits += np.array([first < k for k in ks])
    return (hits / max(len(run), 1)).tolist()


def to_json(result: EvalResult) -> dict[str, Any]:
    """The JSON report: dataset, config, versions, wall time, and every method's metrics."""
    return {
        "dataset": result.dataset,
        "task": result.task,
        "n_corpus": result.n_corpus,
        "n_test_queries": len(result.test_queries),
        "n_bank_queries": len(result.bank_queries),
        "model": result.config.model,
        "seed": result.config.seed,
        "parameters": asdict(result.config),
        **result.info,
        "methods": {m.method: {"metrics": m.metrics, "seconds": m.seconds} for m in result.methods},
    }


def markdown(result: EvalResult) -> str:
    """A Markdown summary: one row per method, and how the run was made."""
    skew_key = f"skewness@{result.config.skew_k}"
    cols = [*_TABLE_METRICS, skew_key]
    lines = [
        f"# {result.dataset} ({result.task}) — model `{result.config.model}`",
        "",
        f"{result.n_corpus} documents, {len(result.test_queries)} test queries, "
        f"{len(result.bank_queries)} bank queries (seeded split, seed {result.config.seed}, "
        f"bank fraction {result.config.bank_fraction}); depth {result.config.depth}.",
        "",
        "| method | " + " | ".join(cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for m in result.methods:
        vals = [f"{m.metrics[c]:.1f}" if c == "median_rank" else f"{m.metrics[c]:.4f}" for c in cols]
        lines.append(f"| {m.method} | " + " | ".join(vals) + " |")
    info = result.info
    lines += ["", f"Wall time {info.get('wall_seconds', 0):.1f} s on {info.get('machine', '?')}; "
              f"versions {info.get('versions', {})}.", "",
              "![recall@K](recall_at_k.png)", "", "![k-occurrence](k_occurrence.png)", ""]
    return "\n".join(lines)


def _plot_recall(result: EvalResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for m in result.methods:
        ax.plot(RECALL_KS, recall_curve(m.run, result.qrels), marker="o", label=m.method)
    ax.set_xscale("log")
    ax.set_xticks(RECALL_KS, [str(k) for k in RECALL_KS])
    ax.set_xlabel("K")
    ax.set_ylabel("Recall@K")
    ax.set_title(f"{result.dataset}: Recall@K")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_k_occurrence(result: EvalResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    top = max((max(m.k_occurrence, default=0) for m in result.methods), default=0)
    bins = np.arange(0, top + 2) - 0.5
    for m in result.methods:
        sk = m.metrics.get(f"skewness@{result.config.skew_k}", float("nan"))
        ax.hist(m.k_occurrence, bins=bins, histtype="step", label=f"{m.method} (skew {sk:.2f})")
    ax.set_yscale("log")
    ax.set_xlabel(f"N_{result.config.skew_k} (queries ranking the document in their top {result.config.skew_k})")
    ax.set_ylabel("documents")
    ax.set_title(f"{result.dataset}: k-occurrence before/after correction")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(result: EvalResult, out_dir: Path | str, save_runs: bool = False) -> dict[str, Path]:
    """Write ``report.md``, ``report.json``, ``recall_at_k.png``, ``k_occurrence.png`` (and ``runs.json``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "report.md", "json": out / "report.json",
             "recall": out / "recall_at_k.png", "k_occurrence": out / "k_occurrence.png"}
    paths["json"].write_text(json.dumps(to_json(result), indent=2, default=str), encoding="utf-8")
    paths["md"].write_text(markdown(result), encoding="utf-8")
    _plot_recall(result, paths["recall"])
    _plot_k_occurrence(result, paths["k_occurrence"])
    if save_runs:
        paths["runs"] = out / "runs.json"
        paths["runs"].write_text(json.dumps({m.method: m.run for m in result.methods}), encoding="utf-8")
    return paths
