"""Search latency of the embedded store vs the bare FAISS call on the same index vs numpy brute force.

Clustered synthetic unit vectors (Gaussian blobs around random unit centres, renormalised) are
committed to a fresh :class:`~omniret.store.embedded.EmbeddedStore`; the first search builds the
FAISS index (timed). Then, per N:

- single-query latency (p50/p99) of ``store.search`` and of the bare ``index.search`` that the store
  makes on the very same index object (same candidate count, same parameters), interleaved;
- throughput (QPS) of one batch of queries through both;
- numpy brute force over the stored float16 vectors on a subsample of queries (latency and the
  exact ground truth), and recall@k of the store (and of the bare FAISS candidates) against it.

Usage::

    .venv/bin/python bench/search_bench.py --n 100000 1000000 --out bench/RESULTS_search.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from omniret.items import Item, Modality
from omniret.store.base import WriteBatch
from omniret.store.embedded import EmbeddedStore

SPACE = "bench"


def clustered(n: int, dim: int, clusters: int, sigma: float, seed: int) -> np.ndarray:
    """``n`` unit vectors: a random unit centre plus N(0, sigma²) noise per coordinate, renormalised."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(12345).standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    for a in range(0, n, 100_000):
        b = min(n, a + 100_000)
        x = centres[rng.integers(0, clusters, b - a)] + sigma * rng.standard_normal((b - a, dim), dtype=np.float32)
        out[a:b] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def ingest(store: EmbeddedStore, x: np.ndarray, batch: int) -> float:
    t = time.perf_counter()
    for a in range(0, len(x), batch):
        b = min(len(x), a + batch)
        items = [Item(id=f"v{j}", uri=f"/bench/{j}.jpg", modality=Modality.IMAGE) for j in range(a, b)]
        wb = WriteBatch()
        wb.add(items, {SPACE: x[a:b]})
        store.commit(wb)
    return time.perf_counter() - t


def exact(base16: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Exact top-k ids (positions) by numpy brute force, one query at a time; also seconds per query."""
    base = base16.astype(np.float32)
    out = np.empty((len(q), k), dtype=np.int64)
    t = time.perf_counter()
    for i in range(len(q)):
        s = base @ q[i]
        part = np.argpartition(-s, k)[:k]
        out[i] = part[np.argsort(-s[part])]
    return out, (time.perf_counter() - t) / max(len(q), 1)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def run_one(n: int, args: argparse.Namespace, workdir: Path) -> dict[str, float | str]:
    dim, k = args.dim, args.k
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    x = clustered(n, dim, args.clusters, args.sigma, seed=1)
    q = clustered(args.queries, dim, args.clusters, args.sigma, seed=2)
    folder = workdir / f"n{n}"
    store = EmbeddedStore(folder, index_kind=args.index_kind, nprobe=args.nprobe)
    t_ingest = ingest(store, x, args.batch)
    t = time.perf_counter()
    store.search(SPACE, q[:1], k)  # builds the FAISS index from SQLite
    t_build = time.perf_counter() - t
    idx = store._indexes[SPACE]  # the same index object the store searches
    kk = min(k if idx.kind != "ivfpq" else idx.rerank_pool(k), idx.n)
    params = idx._params(None, kk)

    lat_store, lat_bare = [], []
    for i in range(args.single):
        qi = q[i % len(q)][None, :]
        t0 = time.perf_counter_ns()
        store.search(SPACE, qi, k)
        t1 = time.perf_counter_ns()
        idx.index.search(qi, kk, params=params)
        t2 = time.perf_counter_ns()
        lat_store.append(t1 - t0)
        lat_bare.append(t2 - t1)
    t = time.perf_counter()
    _, ids_store = store.search(SPACE, q, k)
    qps_store = len(q) / (time.perf_counter() - t)
    t = time.perf_counter()
    _, pos_bare = idx.index.search(q, kk, params=params)
    qps_bare = len(q) / (time.perf_counter() - t)

    sub = q[: args.exact]
    truth_pos, brute_s = exact(idx.mat, sub, k)
    truth_ids = idx.item_ids[truth_pos]
    rec_store = recall(ids_store[: len(sub)], truth_ids)
    rec_bare = recall(pos_bare[: len(sub), :k], truth_pos)
    size = store.info()["bytes_on_disk"]
    store.close()
    shutil.rmtree(folder, ignore_errors=True)
    ms = 1e-6
    return {
        "n": n, "kind": idx.kind, "ingest_s": t_ingest, "build_s": t_build, "db_mb": size / 2**20,
        "store_p50": np.percentile(lat_store, 50) * ms, "store_p99": np.percentile(lat_store, 99) * ms,
        "bare_p50": np.percentile(lat_bare, 50) * ms, "bare_p99": np.percentile(lat_bare, 99) * ms,
        "overhead_p50": (np.percentile(lat_store, 50) - np.percentile(lat_bare, 50)) * ms,
        "qps_store": qps_store, "qps_bare": qps_bare, "brute_ms": brute_s * 1e3, "brute_qps": 1 / brute_s,
        "recall_store": rec_store, "recall_bare": rec_bare, "kk": kk,
    }


def table(rows: list[dict[str, float | str]], args: argparse.Namespace) -> str:
    head = ("| N | index | build s (ingest s) | store p50 / p99 ms | bare FAISS p50 / p99 ms | overhead p50 ms "
            "| store QPS (batch) | bare QPS (batch) | numpy brute ms/q | recall@{k} store (bare cands) |")
    lines = [head.format(k=args.k), "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {r['kind']} | {r['build_s']:.1f} ({r['ingest_s']:.1f}) "
            f"| {r['store_p50']:.3f} / {r['store_p99']:.3f} | {r['bare_p50']:.3f} / {r['bare_p99']:.3f} "
            f"| {r['overhead_p50']:.3f} | {r['qps_store']:,.0f} | {r['qps_bare']:,.0f} "
            f"| {r['brute_ms']:.1f} | {r['recall_store']:.4f} ({r['recall_bare']:.4f} @ {r['kk']}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, nargs="+", default=[100_000])
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--sigma", type=float, default=0.05, help="per-coordinate noise around a cluster centre")
    p.add_argument("--queries", type=int, default=1000, help="batch size for QPS")
    p.add_argument("--single", type=int, default=1000, help="single queries timed for p50/p99")
    p.add_argument("--exact", type=int, default=200, help="queries checked against numpy brute force")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--batch", type=int, default=50_000, help="items per commit while ingesting")
    p.add_argument("--index-kind", default="auto", choices=["auto", "flat", "hnsw", "ivfpq"])
    p.add_argument("--nprobe", type=int, default=32)
    p.add_argument("--threads", type=int, default=0, help="FAISS OpenMP threads (0: its default)")
    p.add_argument("--dir", type=Path, default=None, help="where to put the stores (default: a temp dir)")
    p.add_argument("--out", type=Path, default=None, help="write the results section to this Markdown file")
    args = p.parse_args(argv)
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="omniret-bench-"))
    rows = []
    for n in args.n:
        rows.append(run_one(n, args, workdir))
        print(table(rows[-1:], args), flush=True)
    if args.dir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    md = table(rows, args)
    print(md)
    if args.out:
        cmd = " ".join(["python", "bench/search_bench.py", *(argv if argv is not None else sys.argv[1:])])
        text = (
            "## Search latency (embedded store)\n\n"
            f"Command: `{cmd}`  \n"
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
            f"{platform.python_version()}, faiss {faiss.__version__}; {time.strftime('%Y-%m-%d')}.  \n"
            f"Data: {args.dim}-d clustered unit vectors ({args.clusters} clusters, sigma {args.sigma}), k={args.k}; "
            f"latency over {args.single} single queries (store and bare FAISS interleaved, same index object, "
            f"same candidate count and parameters), QPS over one batch of {args.queries}, recall vs numpy exact "
            f"search over the stored float16 vectors on {args.exact} queries. 'build' is the first search "
            "(FAISS built from SQLite, training included); 'ingest' is the SQLite commits.\n\n"
            f"{md}\n"
        )
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
