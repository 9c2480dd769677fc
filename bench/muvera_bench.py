"""MUVERA candidates + exact MaxSim re-rank vs brute-force MaxSim on synthetic multi-vector pages.

Data (structured, seeded): ``topics`` topic centres; page ``p`` belongs to topic ``p % topics``
(so ``pages / topics`` pages compete for every query) and has 8 sub-centres around its topic
centre; 60 % of its tokens are drawn around its sub-centres, 40 % around 64 background centres
shared by all pages. All tokens are L2-normalised and stored as float16. A query of 32 tokens is
drawn around the sub-centres of one page (24 tokens) plus the background (8 tokens).

Brute force: exact MaxSim of the query against every page (batched BLAS over chunks), timed on
float16 storage (converted per chunk) and on a float32 copy; the faster is the baseline. MUVERA:
exact MIPS over document FDEs (Dhulipala et al. 2024) for the top-C pages, then exact MaxSim
re-rank of those C. Recall@10 is measured against the brute-force top-10. FDEs for R repetitions
hold those for every R' < R as a prefix (repetition r only depends on the seed and r), so one
build serves every R' in the sweep.

Usage: .venv/bin/python bench/muvera_bench.py [--pages 10000 --tokens 1000 --queries 20]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from omniret.search.muvera import FDEConfig, document_fde_batch, query_fde

DIM = 128
SUBS = 8
N_BACKGROUND = 64


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _centres(seed: int, topics: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 0])
    return _unit(rng.standard_normal((topics, DIM))), _unit(rng.standard_normal((N_BACKGROUND, DIM)))


def _page_subs(seed: int, page: int, topic_centre: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng([seed, 1, page])
    return _unit(topic_centre + 0.8 * rng.standard_normal((SUBS, DIM)) / np.sqrt(DIM))


def _draw(rng: np.random.Generator, subs: np.ndarray, bg: np.ndarray, n: int, n_topic: int) -> np.ndarray:
    """``n_topic`` tokens around ``subs`` and ``n - n_topic`` around the background, noise 0.6."""
    centres = np.concatenate([subs[rng.integers(0, len(subs), n_topic)], bg[rng.integers(0, len(bg), n - n_topic)]])
    return _unit(centres + 0.6 * rng.standard_normal((n, DIM)) / np.sqrt(DIM)).astype(np.float32)


def make_pages(pages: int, tokens: int, topics: int, seed: int) -> np.ndarray:
    """(pages, tokens, DIM) float16 token matrices, generated page by page (bounded temporaries)."""
    topic_c, bg = _centres(seed, topics)
    out = np.empty((pages, tokens, DIM), dtype=np.float16)
    for p in range(pages):
        rng = np.random.default_rng([seed, 2, p])
        out[p] = _draw(rng, _page_subs(seed, p, topic_c[p % topics]), bg, tokens, int(0.6 * tokens))
    return out


def make_queries(n: int, pages: int, topics: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    topic_c, bg = _centres(seed, topics)
    src = np.random.default_rng([seed, 3]).choice(pages, n, replace=False)
    qs = [_draw(np.random.default_rng([seed, 4, int(p)]), _page_subs(seed, int(p), topic_c[p % topics]), bg, 32, 24)
          for p in src]
    return np.stack(qs), src


def maxsim_rows(tok: np.ndarray, rows: np.ndarray | None, q: np.ndarray, chunk: int = 200) -> np.ndarray:
    """Exact MaxSim of ``q`` against ``tok[rows]`` (all rows when None), float32 BLAS per chunk."""
    n = len(tok) if rows is None else len(rows)
    out = np.empty(n, dtype=np.float32)
    for s in range(0, n, chunk):
        block = tok[s : s + chunk] if rows is None else tok[np.sort(rows[s : s + chunk])]
        sims = block.astype(np.float32, copy=False) @ q.T  # (c, L, Lq)
        vals = sims.max(axis=1).sum(axis=1)
        if rows is not None:  # restore caller order after the sorted gather
            vals = vals[np.argsort(np.argsort(rows[s : s + chunk]))]
        out[s : s + len(vals)] = vals
    return out


def top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    order = np.lexsort((ids, -scores))[:k]
    return ids[order]


def build_fdes(tok: np.ndarray, cfg: FDEConfig, batch: int = 100) -> np.ndarray:
    out = np.empty((len(tok), cfg.fde_dim), dtype=np.float32)
    for s in range(0, len(tok), batch):
        out[s : s + batch] = document_fde_batch(list(tok[s : s + batch]), cfg)
    return out


def _time(fn, *a):  # noqa: ANN001, ANN002, ANN202
    t = time.perf_counter()
    r = fn(*a)
    return r, time.perf_counter() - t


def run_muvera(tok, fdes, cfg, r_use, queries, truth, cands, k=10):  # noqa: ANN001, ANN201
    """Per candidate count: median latency (s) and mean recall@10, using the first ``r_use`` reps."""
    width = r_use * cfg.num_partitions * cfg.proj_dim
    qcfg = FDEConfig(DIM, cfg.num_simhash_projections, r_use, cfg.seed, cfg.projection_dimension)
    sub = np.ascontiguousarray(fdes[:, :width])
    rows = []
    for c in cands:
        lat, rec = [], []
        for q, t in zip(queries, truth, strict=True):
            t0 = time.perf_counter()
            approx = sub @ query_fde(q, qcfg).astype(np.float32)
            cand = np.argpartition(-approx, c - 1)[:c] if c < len(approx) else np.arange(len(approx))
            got = top_k(maxsim_rows(tok, cand, q), cand, k)
            lat.append(time.perf_counter() - t0)
            rec.append(len(set(got.tolist()) & set(t.tolist())) / k)
        rows.append((r_use, c, float(np.median(lat)), float(np.mean(rec)), float(np.min(rec))))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=10_000)
    ap.add_argument("--tokens", type=int, default=1000)
    ap.add_argument("--topics", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--brute-queries", type=int, default=3, help="queries timed on float16 storage (slow)")
    ap.add_argument("--ksim", type=int, default=5)
    ap.add_argument("--dproj", type=int, default=16)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--cands", default="100,200,300,500,1000")
    ap.add_argument("--out", default=str(Path(__file__).with_name("RESULTS_muvera.md")))
    a = ap.parse_args()
    log = []

    def say(s: str) -> None:
        print(s, flush=True)
        log.append(s)

    tok, t_gen = _time(make_pages, a.pages, a.tokens, a.topics, 0)
    queries, src = make_queries(a.queries, a.pages, a.topics, 0)
    say(f"generated {a.pages} pages x {a.tokens} tokens x {DIM} float16 ({tok.nbytes / 2**30:.2f} GiB) in {t_gen:.0f} s")
    tok32 = tok.astype(np.float32)  # exact copy of the float16 values, so both storages score the same
    truth, bf32 = [], []
    for q in queries:
        s, dt = _time(maxsim_rows, tok32, None, q)
        truth.append(top_k(s, np.arange(a.pages), 10))
        bf32.append(dt)
    bf16 = [_time(maxsim_rows, tok, None, q)[1] for q in queries[: a.brute_queries]]
    src_in_top = np.mean([int(p) in set(t.tolist()) for p, t in zip(src, truth, strict=True)])
    brute = min(float(np.median(bf16)), float(np.median(bf32)))
    cfg = FDEConfig(DIM, a.ksim, a.reps, 1, a.dproj, True)
    fdes, t_fde = _time(build_fdes, tok, cfg)
    cands = [int(c) for c in a.cands.split(",") if int(c) <= a.pages]
    rows = []
    for r_use in sorted({max(1, a.reps // 4), a.reps // 2, a.reps} - {0}):
        rows += [("float32", *r) for r in run_muvera(tok32, fdes, cfg, r_use, queries, truth, cands)]
    rows += [("float16", *r) for r in run_muvera(tok, fdes, cfg, a.reps, queries, truth, cands)]
    _write(a, say, log, t_fde, fdes, brute, bf16, bf32, src_in_top, rows)


def _write(a, say, log, t_fde, fdes, brute, bf16, bf32, src_in_top, rows) -> None:  # noqa: ANN001, PLR0913
    say(f"brute-force MaxSim per query: float16 storage {np.median(bf16):.3f} s, float32 copy {np.median(bf32):.3f} s "
        f"(median of {len(bf16)} / {len(bf32)}); baseline = {brute:.3f} s; query's source page in top-10: {src_in_top:.0%}")
    say(f"FDE build (k_sim={a.ksim}, d_proj={a.dproj}, R={a.reps}, fill on, dim {fdes.shape[1]}): {t_fde:.0f} s "
        f"for {a.pages} pages ({a.pages / t_fde:.0f} pages/s), {fdes.nbytes / 2**20:.0f} MiB as float32")
    say("")
    say("Speed-up is against the faster brute force (float32 storage) in every row.")
    say("")
    say("| re-rank storage | R | FDE dim | C | latency / query (median) | speed-up | recall@10 (mean) | recall@10 (min) |")
    say("|---|---|---|---|---|---|---|---|")
    for store, r_use, c, lat, rec, rmin in rows:
        dim = r_use * (1 << a.ksim) * a.dproj
        say(f"| {store} | {r_use} | {dim} | {c} | {lat * 1000:.0f} ms | {brute / lat:.1f}x | {rec:.3f} | {rmin:.1f} |")
    hdr = (f"# MUVERA + exact MaxSim re-rank vs brute-force MaxSim\n\nCommand: `.venv/bin/python bench/muvera_bench.py "
           f"--pages {a.pages} --tokens {a.tokens} --topics {a.topics} --queries {a.queries} --ksim {a.ksim} "
           f"--dproj {a.dproj} --reps {a.reps}` on 2 CPU cores (numpy BLAS), no GPU.\n\n")
    Path(a.out).write_text(hdr + "\n".join(log) + "\n")


if __name__ == "__main__":
    main()
