"""Wall time of one warm ``Index.search`` (text query, k=10) on an existing index, median of N distinct queries.

    PYTHONPATH=<checkout>/src python bench/per_search.py INDEX LABEL [--n 300]

Run it alternately with two checkouts' ``src`` on a copy of the same index to compare their per-search cost.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import omniret

WORDS = ("cat dog rocket orbit pasta basil river mountain forest owl sea beach car train city night garden "
         "flower red green blue").split()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("index")
    ap.add_argument("label")
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    rng = random.Random(0)
    idx = omniret.open(args.index)
    idx.search("warm up", k=10)
    times = []
    for i in range(args.n):
        q = " ".join(rng.sample(WORDS, 3)) + f" {i}"
        t = time.perf_counter()
        idx.search(q, k=10)
        times.append(time.perf_counter() - t)
    print(f"{args.label}: median {statistics.median(times) * 1000:.2f} ms, mean {statistics.mean(times) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
