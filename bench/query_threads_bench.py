"""Single-query encoding latency under the torch thread policy (omniret.threads) vs a fixed count.

    python bench/query_threads_bench.py [--model offline] [--n 30] [--threads 2]

Encodes one short text at a time through ``Index.embed_query``'s policy (``torch_threads(query_threads())``,
1 thread unless ``$OMNIRET_TORCH_THREADS`` says otherwise) and through ``torch_threads(--threads)``,
alternating the two per query so that both see the same machine. Runs twice: with the machine quiet,
then with one busy-looping Python process started by this script (and killed by it) to keep one
core loaded. Prints the median and 90th percentile in ms for each condition.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

QUERIES = ["a dog runs on the beach", "stock market report", "a red bicycle", "rocket launch at night",
           "a cup of coffee", "an old map of the city", "children playing football", "a cat asleep"]


def measure(encoder, n: int, fixed: int) -> dict[str, list[float]]:
    from omniret.items import Role
    from omniret.threads import query_threads, torch_threads

    out: dict[str, list[float]] = {"policy": [], f"{fixed} threads": []}
    for i in range(n):
        for label, count in (("policy", query_threads()), (f"{fixed} threads", fixed)):
            text = QUERIES[i % len(QUERIES)] + f" {i}"
            with torch_threads(count):
                t0 = time.perf_counter()
                encoder.encode_text([text], role=Role.QUERY)
                out[label].append((time.perf_counter() - t0) * 1e3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="offline")
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    from omniret.encoders import registry
    from omniret.threads import query_threads, usable_cores

    encoder = registry.create(args.model)
    encoder.encode_text(["warm up"] * 4)  # load the model
    print(f"usable cores {usable_cores()}, policy threads {query_threads()}, load {os.getloadavg()}")
    print("| condition | threads | median ms | p90 ms |\n|---|---|---|---|")
    for cond in ("quiet", "one core busy"):
        busy = None
        if cond != "quiet":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(1.0)
        try:
            res = measure(encoder, args.n, args.threads)
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
        for label, ms in res.items():
            p90 = statistics.quantiles(ms, n=10)[-1]
            print(f"| {cond} | {label} | {statistics.median(ms):.1f} | {p90:.1f} |")


if __name__ == "__main__":
    main()
