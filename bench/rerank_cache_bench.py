"""What the ``model:`` re-ranker's candidate cache saves: the same re-ranked searches, cold and warm.

    python bench/rerank_cache_bench.py --oca data/oca --images 600 --queries 40

Indexes ``--images`` Open Clip Art images (a seeded sample; ``omniret eval prepare openclipart``
output) with the ``offline`` model, then times ``Index.search(title, rerank="model:offline:multilingual",
rerank_depth=50)`` for ``--queries`` image titles: with the cache emptied before every query (what
each query cost before the cache), from an empty cache (queries share candidates), the same queries
again (their candidates cached), and as many other titles. Also the first stage alone. Prints per-query
medians and the candidates embedded per pass (the cache's growth).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--oca", type=Path, default=Path("data/oca"))
    ap.add_argument("--images", type=int, default=600)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import omniret

    rows = [json.loads(x) for x in (args.oca / "corpus.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    seen, sample = set(), []
    for r in random.Random(args.seed).sample(rows, len(rows)):
        if r["path"] not in seen and Path(r["path"]).stat().st_size < 3_000_000:
            seen.add(r["path"])
            sample.append(r)
        if len(sample) == args.images:
            break
    titles = [r["title"] for r in sample if r.get("title")]
    first, other = titles[: args.queries], titles[args.queries: 2 * args.queries]
    spec = "model:offline:multilingual"
    with tempfile.TemporaryDirectory(prefix="omniret-rerank-cache-") as tmp, \
            omniret.open(str(Path(tmp) / "idx"), model="offline") as idx:
        t = time.time()
        idx.add([r["path"] for r in sample], workers=0)
        print(f"indexed {idx.store.count()} images in {time.time() - t:.0f}s")
        idx.search("warm up", k=10, rerank=spec, rerank_depth=1)  # loads both models

        from omniret.query import rerank as rerank_mod

        puts = [0]  # candidates embedded (each is put into the cache once embedded)
        put = rerank_mod.CandidateCache.put

        def counting_put(self: rerank_mod.CandidateCache, key: object, vec: object) -> None:
            puts[0] += 1
            put(self, key, vec)  # type: ignore[arg-type]

        rerank_mod.CandidateCache.put = counting_put  # type: ignore[method-assign]

        def empty_cache() -> None:
            for c in idx._rerankers._caches.values():
                c._vecs.clear()

        def timed(queries: list[str], cold: bool = False, **kw: object) -> list[float]:
            out = []
            for q in queries:
                if cold:  # every query cold: what re-ranking cost before the cache
                    empty_cache()
                t0 = time.perf_counter()
                idx.search(q, k=10, modality="image", **kw)
                out.append((time.perf_counter() - t0) * 1000)
            return out

        rr = {"rerank": spec, "rerank_depth": args.depth}
        passes = [("first stage only", first, {}), ("re-ranked, no cache (as before)", first, {**rr, "cold": True}),
                  ("re-ranked, cache empty at the start", first, rr),
                  ("re-ranked, same queries again", first, rr), ("re-ranked, other queries", other, rr)]
        print("| pass | queries | median ms/query | p90 ms | candidates embedded |\n|---|---|---|---|---|")
        for name, qs, kw in passes:
            before = puts[0]
            ms = timed(qs, **kw)
            if kw.get("cold"):
                empty_cache()  # the next pass starts from an empty cache
            p90 = sorted(ms)[int(0.9 * (len(ms) - 1))]
            print(f"| {name} | {len(qs)} | {statistics.median(ms):.0f} | {p90:.0f} | {puts[0] - before} |", flush=True)


if __name__ == "__main__":
    main()
