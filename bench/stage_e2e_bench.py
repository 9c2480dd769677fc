"""Latency each ranking stage adds to one search, end to end through the public API, at 100k and 1M items.

    python bench/stage_e2e_bench.py --n 100000 [--n 1000000] [--queries 500]

Builds an index (embedded store, the offline model's 384-d text space) of N clustered unit vectors
(image items) plus a 1,000-query bank, refreshes the per-space statistics once (timed separately: a
one-off cost paid after a rebuild or a removal; additions are folded in incrementally), then times
the paths below round-robin (a fresh random path order per round), each search with a query no
other path has used, so no path finds another's candidates, vectors or item records in the CPU
caches (running one query through every path back to back had let the bare search reuse the
records that the paths returning the same top 10 had just read):

- ANN alone: ``store.search(space, q, 10)`` (the FAISS call and the id mapping, nothing else);
- bare search: ``Index.search(terms=[Term("vector", q)], k=10)`` — the product's search call with the
  query already embedded, no ranking stage (candidates, ranking, hits with their stored records);
- each stage through the same call: hubness=qbnorm / is / dbnorm and gap=center with the default
  K' = max(100, 10·k) = 100 candidates; gap=calibrate with k per modality (T-norm keeps each
  modality's order, see ``StageOptions.depth``).

Then the same for an index of N items of two modalities (half text, half image): the bare search,
a ``modality=image`` filtered search, gap=center and gap=calibrate (which searches each modality
for its own candidates: one ANN search per modality present). ``--single-only`` skips it.

Reports p50/p99 ms and each stage's added p50 as a share of the bare search and of the ANN call
alone. Also the median time the offline model takes to embed a text query (the part of a real
text search this bench leaves out). Timings are wall-clock; the machine has 2 shared cores, so
quote the ratios of one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from omniret.encoders import registry
from omniret.index import Index
from omniret.items import Item, Modality
from omniret.query.pipeline import Term
from omniret.query.stats import Bank
from omniret.store.base import WriteBatch
from omniret.store.embedded import EmbeddedStore

ANN, BARE = "ANN alone: store.search (k=10)", "bare search: Index.search, no stage"
N_TEST = 500  # queries per path (each path gets its own)
STAGES = {"hubness=qbnorm": {"hubness": "qbnorm"}, "hubness=is": {"hubness": "is"},
          "hubness=dbnorm": {"hubness": "dbnorm"}, "gap=center": {"gap": "center"},
          "gap=calibrate": {"gap": "calibrate"}}


def clustered(n: int, dim: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    x = centers[rng.integers(0, len(centers), n)] + 0.05 * rng.standard_normal((n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def build(folder: Path, n: int, space: str, dim: int, seed: int = 0, mixed: bool = False
          ) -> tuple[EmbeddedStore, np.ndarray, float]:
    """N image items (``mixed``: every other one a text item: two modalities, each half the index)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((1000, dim)).astype(np.float32)
    store = EmbeddedStore(folder)
    t0 = time.perf_counter()
    for start in range(0, n, 50_000):
        m = min(50_000, n - start)
        vecs = clustered(m, dim, rng, centers)
        batch = WriteBatch()
        batch.add([Item(f"v{start + i}", f"/data/item{start + i}",
                        Modality.TEXT if mixed and (start + i) % 2 else Modality.IMAGE) for i in range(m)],
                  {space: vecs})
        store.commit(batch)
    ingest = time.perf_counter() - t0
    queries = clustered(1000 + (len(STAGES) + 2) * N_TEST, dim, rng, centers)
    return store, queries, ingest


def time_one(fn, reps: list[float]) -> None:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    reps.append((time.perf_counter() - t0) * 1e3)


def encode_ms(encoder, n: int = 30) -> float:  # type: ignore[no-untyped-def]
    texts = [f"a photo of item number {i} on a table" for i in range(n)]
    encoder.encode_text(texts[:1])  # load
    reps: list[float] = []
    for t in texts:
        time_one(lambda t=t: encoder.encode_text([t]), reps)
    return statistics.median(reps)


def time_paths(store: EmbeddedStore, idx: Index, space: str, paths: dict[str, dict[str, object] | None],
               queries: np.ndarray, n_queries: int) -> dict[str, list[float]]:
    """ms per search for each path (kwargs of Index.search; None: the ANN call alone), round-robin in
    a fresh random order per round, each path with its own queries."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    own = {name: queries[j * N_TEST : j * N_TEST + n_queries] for j, name in enumerate(paths)}
    order_rng = np.random.default_rng(1)
    for i in range(n_queries):
        for name in order_rng.permutation(list(paths)):  # a fresh order per round: no path always runs first
            q, kw = own[name][i], paths[name]
            if kw is None:
                time_one(lambda q=q: store.search(space, q[None, :], 10), times[name])
            else:
                terms = [Term("vector", q, 1.0)]
                time_one(lambda kw=kw, terms=terms: idx.search(terms=terms, k=10, **kw), times[name])
    return times


def table(times: dict[str, list[float]], ann: str | None) -> list[str]:
    bare = statistics.median(times[BARE])
    ann_p50 = statistics.median(times[ann]) if ann else None
    rows = ["| path | p50 ms | p99 ms | added p50 ms (vs bare search) | added / bare search |"
            + (" added / ANN alone |" if ann_p50 else ""), "|---|---|---|---|---|" + ("---|" if ann_p50 else "")]
    for name, t in times.items():
        p50, p99 = statistics.median(t), float(np.percentile(t, 99))
        if name == ann:
            rows.append(f"| {name} | {p50:.3f} | {p99:.3f} | | | |")
            continue
        add = p50 - bare
        rows.append(f"| {name} | {p50:.3f} | {p99:.3f} | {add:+.3f} | {add / bare:+.0%} |"
                    + (f" {add / ann_p50:+.0%} |" if ann_p50 else ""))
    return rows


def run(n: int, n_queries: int) -> list[str]:
    encoder = registry.create("offline")
    space, dim = encoder.space, encoder.dim
    with tempfile.TemporaryDirectory() as tmp:
        store, queries, ingest = build(Path(tmp) / "idx", n, space, dim)
        t0 = time.perf_counter()
        store.search(space, queries[:1], 10)  # builds the FAISS index
        build_s = time.perf_counter() - t0
        idx = Index(store, encoder, os.fspath(Path(tmp) / "idx"))
        stats = idx.stats()
        stats.set_query_bank(Bank(queries[:1000], [], "synthetic"))
        t0 = time.perf_counter()
        stats.refresh(force=True)
        refresh_s = time.perf_counter() - t0
        times = time_paths(store, idx, space, {ANN: None, BARE: {}, **STAGES}, queries[1000:], n_queries)
        enc = encode_ms(encoder)
        store.close()
    rows = [f"### N = {n:,}, one modality (ingest {ingest:.0f} s, FAISS build {build_s:.0f} s, statistics refresh "
            f"{refresh_s:.1f} s with a 1,000-query bank and a 2,000-item gallery bank; load average at the end "
            f"{os.getloadavg()[0]:.1f})", "", *table(times, ANN)]
    rows += ["", f"Embedding one text query with the offline model (the step a text search adds before all of the "
             f"above): median {enc:.1f} ms over 30 queries."]
    return rows


def run_mixed(n: int, n_queries: int) -> list[str]:
    """The gap stages on an index of two modalities (half text, half image): ``calibrate`` searches
    each modality for its own candidates; ``modality=image`` is the plain filtered search."""
    encoder = registry.create("offline")
    space, dim = encoder.space, encoder.dim
    with tempfile.TemporaryDirectory() as tmp:
        store, queries, _ = build(Path(tmp) / "idx", n, space, dim, seed=2, mixed=True)
        store.search(space, queries[:1], 10)
        idx = Index(store, encoder, os.fspath(Path(tmp) / "idx"))
        idx.stats().refresh()
        paths: dict[str, dict[str, object] | None] = {BARE: {}, "modality=image (filtered, no stage)": {"modality": "image"},
                                                      "gap=center": {"gap": "center"}, "gap=calibrate": {"gap": "calibrate"}}
        times = time_paths(store, idx, space, paths, queries[1000:], n_queries)
        store.close()
    return [f"### N = {n:,}, two modalities (text and image, half each; load average at the end "
            f"{os.getloadavg()[0]:.1f})", "", *table(times, None)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, action="append")
    ap.add_argument("--queries", type=int, default=N_TEST, help=f"queries per path (at most {N_TEST})")
    ap.add_argument("--out", default=None)
    ap.add_argument("--single-only", action="store_true", help="skip the two-modality index")
    args = ap.parse_args()
    lines = ["# Stage latency end to end (`bench/stage_e2e_bench.py`)", "",
             f"Command: `python bench/stage_e2e_bench.py {' '.join(f'--n {n}' for n in args.n or [100_000])} "
             f"--queries {args.queries}`; 384-d clustered unit vectors in the offline model's space, k = 10, K' = 100 candidates for the "
             "hubness stages and centring, k per modality for calibrate; 2 shared CPU cores. Each path searches its own queries (none shared between paths), one search per path a round, in a fresh random path order per round.", ""]
    for n in args.n or [100_000]:
        lines += run(n, args.queries) + [""]
        if not args.single_only:
            lines += run_mixed(n, args.queries) + [""]
        text = "\n".join(lines)  # written after each size, so a long run keeps what it measured
        print(text, flush=True)
        if args.out:
            Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
