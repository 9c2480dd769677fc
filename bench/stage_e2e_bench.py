"""Latency each ranking stage adds to one search, end to end through the store, at 100k and 1M items.

    python bench/stage_e2e_bench.py --n 100000 [--n 1000000] [--queries 300]

Builds an embedded store of N clustered 512-d unit vectors (image items) plus a 1,000-query bank,
refreshes the per-space statistics once (timed separately: a one-off cost paid after add/remove),
then times, query by query and interleaved, for the same query vectors:

- bare: ``store.search(space, q, 10)`` (the ANN call alone);
- raw pipeline: :func:`omniret.pipeline.candidates` + :func:`omniret.pipeline.rerank`, no stage;
- each stage: qbnorm, dbnorm (DualIS), is, gap=center, gap=calibrate — K' = 100 candidates.

Reports p50/p99 ms and the added p50 over bare, as a share of the bare p50.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from omniret import pipeline
from omniret.items import Item, Modality
from omniret.pipeline import Query, SearchOptions
from omniret.stats import Bank, SpaceStats
from omniret.store.base import WriteBatch
from omniret.store.embedded import EmbeddedStore

SPACE = "bench-512"


def clustered(n: int, dim: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    x = centers[rng.integers(0, len(centers), n)] + 0.05 * rng.standard_normal((n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def build(folder: Path, n: int, dim: int = 512, seed: int = 0) -> tuple[EmbeddedStore, np.ndarray, float]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((1000, dim)).astype(np.float32)
    store = EmbeddedStore(folder)
    t0 = time.perf_counter()
    for start in range(0, n, 50_000):
        m = min(50_000, n - start)
        vecs = clustered(m, dim, rng, centers)
        batch = WriteBatch()
        batch.add([Item(f"v{start + i}", f"/data/img{start + i}.jpg", Modality.IMAGE) for i in range(m)],
                  {SPACE: vecs})
        store.commit(batch)
    ingest = time.perf_counter() - t0
    queries = clustered(1300, dim, rng, centers)
    return store, queries, ingest


def time_one(fn, reps: list[float]) -> None:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    reps.append((time.perf_counter() - t0) * 1e3)


def run(n: int, n_queries: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        store, queries, ingest = build(Path(tmp) / "idx", n)
        t0 = time.perf_counter()
        store.search(SPACE, queries[:1], 10)  # builds the FAISS index
        build_s = time.perf_counter() - t0
        stats = SpaceStats(store, SPACE, tmp)
        stats.set_query_bank(Bank(queries[:1000], [], "synthetic"))
        t0 = time.perf_counter()
        stats.refresh(force=True)
        refresh_s = time.perf_counter() - t0
        tests = queries[1000 : 1000 + n_queries]
        configs = {
            "raw pipeline (no stage)": SearchOptions(k=10),
            "hubness=qbnorm": SearchOptions(k=10, hubness="qbnorm"),
            "hubness=is": SearchOptions(k=10, hubness="is"),
            "hubness=dbnorm": SearchOptions(k=10, hubness="dbnorm"),
            "gap=center": SearchOptions(k=10, gap="center"),
            "gap=calibrate": SearchOptions(k=10, gap="calibrate"),
        }
        times: dict[str, list[float]] = {"bare store.search (k=10)": [], **{k: [] for k in configs}}
        order_rng = np.random.default_rng(1)
        names = ["bare store.search (k=10)", *configs]
        for q in tests:
            query = Query(q, Modality.TEXT, None)
            for name in order_rng.permutation(names):  # a fresh order per query: no path always runs first
                if name == "bare store.search (k=10)":
                    time_one(lambda q=q: store.search(SPACE, q[None, :], 10), times[name])
                    continue
                opts = configs[name]

                def go(opts=opts, query=query) -> None:  # type: ignore[no-untyped-def]
                    ids, s = pipeline.candidates(store, stats, SPACE, query.vector, opts)
                    pipeline.rerank(store, stats, SPACE, query, ids, s, opts)

                time_one(go, times[name])
        store.close()
    bare = statistics.median(times["bare store.search (k=10)"])
    rows = [f"### N = {n:,} (ingest {ingest:.0f} s, FAISS build {build_s:.0f} s, statistics refresh {refresh_s:.1f} s "
            f"with a 1,000-query bank and a 2,000-item gallery bank)", "",
            "| path | p50 ms | p99 ms | added p50 ms | added / bare p50 |", "|---|---|---|---|---|"]
    for name, t in times.items():
        p50, p99 = statistics.median(t), float(np.percentile(t, 99))
        add = p50 - bare
        rows.append(f"| {name} | {p50:.3f} | {p99:.3f} | {add:+.3f} | {add / bare:+.0%} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, action="append")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    lines = ["# Stage latency end to end (`bench/stage_e2e_bench.py`)", "",
             f"Command: `python bench/stage_e2e_bench.py {' '.join(f'--n {n}' for n in args.n or [100_000])} "
             f"--queries {args.queries}`; 512-d clustered unit vectors, k = 10, K' = 100 candidates for the "
             "stages; 2 shared CPU cores. Each query runs every path back to back, in a fresh random order per query.", ""]
    for n in args.n or [100_000]:
        lines += run(n, args.queries) + [""]
        text = "\n".join(lines)  # written after each size, so a long run keeps what it measured
        print(text, flush=True)
        if args.out:
            Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
