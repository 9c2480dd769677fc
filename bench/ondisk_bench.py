"""The ``ondisk`` index kind at scale: build memory, bytes per vector on disk, recall@10, latency.

Synthetic unit vectors (a mixture of 2,000 Gaussian clusters in ``--dim`` dimensions) are generated
chunk by chunk and fed to :meth:`OnDiskIndex.build_chunks` (the same code the embedded store runs
on SQLite chunks, without the SQLite insert). Each size runs in its own subprocess so that its peak
RSS (``ru_maxrss``) is its own. Recall@10 is against exact search on the float16 vectors;
latency is one query at a time after a warm-up pass (page cache warm). Writes a Markdown table.

    .venv/bin/python bench/ondisk_bench.py --sizes 100000 300000 1000000 --out bench/RESULTS_ondisk.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

CLUSTERS = 2000


def _chunk(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    """Embedding-like: cluster centre (norm ~1) + a 32-d latent direction (norm ~0.5) + noise (norm ~0.2)."""
    dim = centres.shape[1]
    basis = np.random.default_rng(11).standard_normal((32, dim)).astype(np.float32) / np.sqrt(32 * dim)
    x = centres[rng.integers(0, len(centres), n)] + 0.5 * rng.standard_normal((n, 32)).astype(np.float32) @ basis
    x += 0.2 / np.sqrt(dim) * rng.standard_normal((n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def run_one(n: int, dim: int, chunk: int, nq: int, folder: Path, nprobes: list[int]) -> dict[str, float]:
    """Build and measure one size (in this process)."""
    from omniret.store.faiss_index import IndexConfig
    from omniret.store.ondisk import OnDiskIndex

    centres = np.random.default_rng(7).standard_normal((CLUSTERS, dim)).astype(np.float32) / np.sqrt(dim)
    rng = np.random.default_rng(1)

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for a in range(0, n, chunk):
            b = min(a + chunk, n)
            yield np.arange(a, b), np.array([f"i{j}" for j in range(a, b)], dtype=object), _chunk(rng, centres, b - a).astype(np.float16)

    cfg = IndexConfig(kind="ondisk", build_chunk=chunk)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    idx = OnDiskIndex.build_chunks(folder / "s.npz", dim, cfg, n, chunks(), seq=1)
    build_s = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    idx.save(folder / "s.npz", "bench")
    lists = sum(f.stat().st_size for f in [*idx.folder.glob("lists-*.ivfdata"), idx.folder / "index.faiss"])
    vecs = (idx.folder / "vectors.npy").stat().st_size
    cols = sum((idx.folder / f).stat().st_size for f in ("vids.npy", "ids.bin", "ids_off.npy") if (idx.folder / f).exists())
    q = _chunk(np.random.default_rng(2), centres, nq)
    truth = np.zeros((nq, 10), dtype=np.int64)
    best = np.full((nq, 10), -np.inf, dtype=np.float32)
    for a in range(0, n, 200_000):  # exact top-10, streamed from the memmap
        s = q @ np.asarray(idx.mat[a : a + 200_000], dtype=np.float32).T
        allp = np.concatenate([truth, np.argpartition(-s, 9, axis=1)[:, :10] + a], axis=1)
        alls = np.concatenate([best, np.take_along_axis(s, allp[:, 10:] - a, axis=1)], axis=1)
        order = np.argsort(-alls, axis=1)[:, :10]
        truth, best = np.take_along_axis(allp, order, axis=1), np.take_along_axis(alls, order, axis=1)
    truth_ids = idx.item_ids[truth]
    out: dict[str, float] = {"n": n, "dim": dim, "nlist": idx.index.nlist, "m": idx.index.pq.M,
                             "build_s": build_s, "build_peak_rss_mb": rss / 2**20, "rss_before_mb": rss0 / 2**20,
                             "index_bytes_per_vector": lists / n, "vector_bytes_per_vector": vecs / n,
                             "column_bytes_per_vector": cols / n}
    for nprobe in nprobes:
        idx.cfg = IndexConfig(kind="ondisk", nprobe=nprobe)
        idx.search(q, 10)  # warm
        lat = []
        hits = 0.0
        for i in range(nq):
            t = time.perf_counter()
            _, got = idx.search(q[i : i + 1], 10)
            lat.append(time.perf_counter() - t)
            hits += len(set(got[0]) & set(truth_ids[i])) / 10
        out[f"recall10_np{nprobe}"] = hits / nq
        out[f"p50_ms_np{nprobe}"] = float(np.percentile(lat, 50) * 1e3)
        out[f"p99_ms_np{nprobe}"] = float(np.percentile(lat, 99) * 1e3)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--chunk", type=int, default=50_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--nprobe", type=int, nargs="+", default=[32, 128])
    p.add_argument("--out", type=Path, default=Path("bench/RESULTS_ondisk.md"))
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one size, print JSON
    p.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.dim, args.chunk, args.queries, args.folder, args.nprobe)))
        return
    rows = []
    for n in args.sizes:
        folder = Path(tempfile.mkdtemp(prefix="ondisk-bench-"))
        load = os.getloadavg()[0]
        try:
            cmd = [sys.executable, __file__, "--one", str(n), "--folder", str(folder), "--dim", str(args.dim),
                   "--chunk", str(args.chunk), "--queries", str(args.queries), "--nprobe", *map(str, args.nprobe)]
            env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}  # no spin-waiting on shared cores
            res = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
            row = json.loads(res.stdout.strip().splitlines()[-1])
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        row["load1"] = load
        rows.append(row)
        print(json.dumps(row), flush=True)
    args.out.write_text(_table(rows, args))


def _table(rows: list[dict[str, float]], args: argparse.Namespace) -> str:
    head = ["N", "nlist", "PQ bytes", "build s", "build peak RSS MB", "index B/vec", "f16 vectors B/vec", "id columns B/vec"]
    for nprobe in args.nprobe:
        head += [f"R@10 np{nprobe}", f"p50 ms np{nprobe}", f"p99 ms np{nprobe}"]
    head.append("load (1 min)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"{r['n']:,}", str(r["nlist"]), str(r["m"]), f"{r['build_s']:.0f}", f"{r['build_peak_rss_mb']:.0f}",
                 f"{r['index_bytes_per_vector']:.1f}", f"{r['vector_bytes_per_vector']:.0f}",
                 f"{r['column_bytes_per_vector']:.1f}"]
        for nprobe in args.nprobe:
            cells += [f"{r[f'recall10_np{nprobe}']:.3f}", f"{r[f'p50_ms_np{nprobe}']:.1f}", f"{r[f'p99_ms_np{nprobe}']:.1f}"]
        cells.append(f"{r['load1']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    cmd = " ".join(["bench/ondisk_bench.py", "--sizes", *map(str, args.sizes), "--dim", str(args.dim)])
    return (f"# On-disk IVF-PQ (`index_kind=\"ondisk\"`), {args.dim}-d synthetic vectors\n\n"
            f"`{cmd}` on 2 shared CPU cores (other jobs running: see the load column). "
            "k=10, re-rank of max(10k, 200) PQ candidates from float16 vectors on disk; "
            "one query at a time, page cache warm. Build peak RSS is the whole Python process "
            "(`ru_maxrss`: interpreter, FAISS, the training sample, one chunk). Index B/vec counts the compact "
            "lists file plus `index.faiss` (centroids, codebooks); id columns are the memory-mapped "
            "position→row-id and position→item-id files.\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
