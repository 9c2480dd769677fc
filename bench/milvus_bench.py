"""Milvus Lite vs the embedded store: insert time, single-query search latency and recall@10.

Clustered synthetic unit vectors (random unit centres + Gaussian noise, renormalised) are committed
in batches of 5,000 through the ordinary :class:`~omniret.store.base.Store` API to (a) the embedded
store (its ``auto`` index: exact ``flat`` below 100k vectors, ``ivfpq`` above), (b) Milvus Lite
``FLAT`` and (c) Milvus Lite ``HNSW`` (M=16, efConstruction=200, ef=64). Queries are perturbed
stored vectors; ground truth is exact numpy over the float16-rounded vectors. Every store runs with
its default behaviour: ``MilvusStore`` flushes by its own policy (:mod:`omniret.store.milvus_flush`:
after a commit once 20,000 rows are pending, before a search when rows are pending and the last flush
is 10 s old or more), so the insert time includes its flushes and the first (untimed-in-p50) search
may include one; the bench never flushes by hand. Reported: the rows still un-flushed after the
inserts, the first search's time, then p50/p99 of all queries; the last column sends the queries
straight to ``MilvusClient.search`` without the store's visibility filter.

Usage::

    .venv/bin/python bench/milvus_bench.py --n 50000 200000 --out bench/RESULTS_milvus.md
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from omniret.items import Item, Modality
from omniret.store.base import Store, WriteBatch
from omniret.store.embedded import EmbeddedStore
from omniret.store.milvus import MilvusStore
from omniret.store.milvus_flush import DEFAULT_ROWS

SPACE = "bench"


def clustered(n: int, dim: int, seed: int = 0, clusters: int = 256, sigma: float = 0.04) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(0, clusters, n)] + sigma * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def fill(store: Store, mat: np.ndarray, step: int = 5000) -> float:
    t0 = time.perf_counter()
    for s in range(0, len(mat), step):
        items = [Item(f"v{i}", f"/b/{i}.jpg", Modality.IMAGE, mtime=float(i)) for i in range(s, min(s + step, len(mat)))]
        batch = WriteBatch()
        batch.add(items, {SPACE: mat[s: s + step]})
        store.commit(batch)
    return time.perf_counter() - t0


def measure(store: Store, q: np.ndarray, truth: np.ndarray, k: int = 10) -> dict[str, float]:
    t0 = time.perf_counter()
    store.search(SPACE, q[:1], k)  # builds / loads the index (embedded); may flush pending rows (Milvus)
    first = time.perf_counter() - t0
    lat, hits = [], 0
    for i in range(len(q)):
        t0 = time.perf_counter()
        _, ids = store.search(SPACE, q[i: i + 1], k)
        lat.append(time.perf_counter() - t0)
        got = {int(x[1:]) for x in ids[0] if x is not None}
        hits += len(got & set(truth[i].tolist()))
    return {"first_ms": 1e3 * first, "p50_ms": 1e3 * float(np.percentile(lat, 50)),
            "p99_ms": 1e3 * float(np.percentile(lat, 99)), "recall@10": hits / (k * len(q))}


def bare_milvus(store: MilvusStore, q: np.ndarray, k: int = 10) -> float:
    """p50 ms of the same single queries sent straight to ``MilvusClient.search`` without the store's
    commit-visibility filter (``seq <= last commit``): Milvus Lite's own floor."""
    _, name = store._space_collection(SPACE)
    params = {"metric_type": "IP", "params": store._search_params}
    lat = []
    for i in range(len(q)):
        t0 = time.perf_counter()
        store._client.search(name, data=q[i : i + 1].tolist(), anns_field="v", limit=k, search_params=params,
                             output_fields=[])
        lat.append(time.perf_counter() - t0)
    return 1e3 * float(np.percentile(lat, 50))


def run(n: int, dim: int, nq: int, folder: Path, flush_rows: int = DEFAULT_ROWS,
        only: str = "") -> list[tuple[str, float, dict[str, float]]]:
    mat = clustered(n, dim)
    rng = np.random.default_rng(1)
    q = mat[rng.integers(0, n, nq)] + 0.02 * rng.standard_normal((nq, dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    half = mat.astype(np.float16).astype(np.float32)
    truth = np.argsort(-(q @ half.T), axis=1)[:, :10]
    backends: dict[str, Callable[[], Store]] = {
        "embedded (auto)": lambda: EmbeddedStore(folder / f"emb{n}"),
        "milvus-lite FLAT": lambda: MilvusStore(f"milvus-lite://{folder}/flat{n}.db", flush_rows=flush_rows),
        "milvus-lite HNSW": lambda: MilvusStore(f"milvus-lite://{folder}/hnsw{n}.db", index_type="HNSW",
                                                index_params={"M": 16, "efConstruction": 200},
                                                search_params={"ef": 64}, flush_rows=flush_rows),
    }
    out = []
    for name, open_ in backends.items():
        if only and only not in name:
            continue
        store = open_()
        insert_s = fill(store, mat)
        pending = float("nan")
        if isinstance(store, MilvusStore):  # rows the store's flush policy left in growing segments
            pending = float(store.unflushed().get(store._space_collection(SPACE)[1], 0))
        res = measure(store, q, truth)
        res["pending"] = pending
        res["bare_p50_ms"] = bare_milvus(store, q) if isinstance(store, MilvusStore) else float("nan")
        res["load1"] = os.getloadavg()[0]
        store.close()
        print(f"n={n} {name}: insert {insert_s:.1f}s {res}", flush=True)
        out.append((name, insert_s, res))
    return out


def _ms(x: float) -> str:
    return "—" if np.isnan(x) else f"{x:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[50_000])
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--flush-rows", type=int, default=DEFAULT_ROWS, help="MilvusStore flush_rows (default: its default)")
    ap.add_argument("--only", default="", help="run only the backends whose name contains this (e.g. FLAT)")
    args = ap.parse_args()
    lines = [f"Machine: {platform.machine()}, {os.cpu_count()} shared cores, dim {args.dim}, {args.queries} queries, k=10",
             "", "| N | backend | insert s | insert rows/s | rows un-flushed after insert | first search ms | p50 ms "
             "| p99 ms | recall@10 | bare client p50 ms, no filter | load (1 min) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.n:
            for name, ins, r in run(n, args.dim, args.queries, Path(tmp), args.flush_rows, args.only):
                pending = "—" if np.isnan(r["pending"]) else f"{r['pending']:,.0f}"
                lines.append(f"| {n:,} | {name} | {ins:.1f} | {n / ins:,.0f} | {pending} | {r['first_ms']:.1f} "
                             f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
                             f"| {r['recall@10']:.3f} | {_ms(r['bare_p50_ms'])} | {r['load1']:.1f} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
