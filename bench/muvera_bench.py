"""MUVERA candidates + exact MaxSim re-rank (the product's multi-vector stage) vs brute-force MaxSim.

Data (seeded, overlapping on purpose): ``topics`` topic directions, each with ``SUBS`` sub-centres
around it; page ``p`` mixes ``PAGE_TOPICS`` topics (``p % topics`` and random others, so about
``pages * PAGE_TOPICS / topics`` pages share each topic) and draws its tokens from a random subset
of ``PAGE_SUBS`` sub-centres of each of its topics (share ``TOPIC_SHARE``), from ``PAGE_BG`` of
``N_BACKGROUND`` background centres shared by every page (share ``BG_SHARE``), and from directions
of its own (the rest), each with per-token noise.
A query of 32 tokens copies tokens of one *source* page (20 topic, 8 background, 4 own) with
noise, so the source page's topic-mates score close to it: brute-force MaxSim's top-10 is full of
near-ties, and a weak candidate generator loses recall@10.

Product path: the pages are added to a real ``omniret.spaces.multivector.MultiVectorIndex`` (float16
token segments on disk, memory-mapped; float32 FDEs in RAM) and ``index.search(q, k, candidates)``
is timed. The sweep over other FDE settings uses the same functions that ``search`` calls
(``query_fde``, one FDE product, ``maxsim`` over the index's stored float16 rows) with another FDE
matrix; its result is checked equal to ``index.search`` on the index's own setting. FDEs for R
repetitions hold those of every R' < R as a prefix (repetition r depends only on the seed and r),
so one build serves R' in {R/4, R/2, R}.

Baseline: exact MaxSim over every page from a float32 copy in RAM (one BLAS product per chunk of
pages), the fastest brute force here; it also gives the true top-10 (ties to the lower page).
Timing: for every query, brute force and every MUVERA setting run back to back, so load changes
on the shared cores hit all of them; we report medians over queries and the median per-query
speed-up.

Usage: .venv/bin/python bench/muvera_bench.py [--pages 10000 --tokens 1000 --queries 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from omniret.methods.late_interaction import maxsim
from omniret.methods.muvera import FDEConfig, document_fde_batch, query_fde
from omniret.spaces.multivector import MultiVectorIndex

DIM = 128
SUBS, PAGE_SUBS, PAGE_TOPICS = 24, 6, 3
N_BACKGROUND, PAGE_BG = 512, 48
TOPIC_SHARE, BG_SHARE = 0.45, 0.45
Q_TOPIC, Q_BG, Q_OWN = 20, 8, 4
K = 10


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _noise(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    return (scale / np.sqrt(DIM)) * rng.standard_normal(shape, dtype=np.float32)


def make_pages(pages: int, tokens: int, topics: int, seed: int, chunk: int = 100) -> np.ndarray:
    """(pages, tokens, DIM) float16 pages; rows ordered [topic tokens | background tokens | own tokens]."""
    rng0 = np.random.default_rng([seed, 0])
    topic_dir = _unit(rng0.standard_normal((topics, 1, DIM), dtype=np.float32))
    subs = _unit(topic_dir + _noise(rng0, (topics, SUBS, DIM), 0.9))  # sub-centres share the topic
    bg = _unit(rng0.standard_normal((N_BACKGROUND, DIM), dtype=np.float32))
    n_topic, n_bg = int(TOPIC_SHARE * tokens), int(BG_SHARE * tokens)
    out = np.empty((pages, tokens, DIM), dtype=np.float16)
    for s in range(0, pages, chunk):
        rng = np.random.default_rng([seed, 1, s])
        n = min(chunk, pages - s)
        # each page mixes PAGE_TOPICS topics (the first is p % topics) and a subset of each one's sub-centres
        page_topics = np.concatenate([(np.arange(s, s + n) % topics)[:, None],
                                      rng.integers(0, topics, (n, PAGE_TOPICS - 1))], axis=1)
        own_subs = np.argsort(rng.random((n, PAGE_TOPICS, SUBS)), axis=2)[:, :, :PAGE_SUBS]
        which = rng.integers(0, PAGE_TOPICS, (n, n_topic))
        topic = np.take_along_axis(page_topics, which, axis=1)
        pick = own_subs[np.arange(n)[:, None], which, rng.integers(0, PAGE_SUBS, (n, n_topic))]
        own_bg = np.argsort(rng.random((n, N_BACKGROUND)), axis=1)[:, :PAGE_BG]
        pick_bg = np.take_along_axis(own_bg, rng.integers(0, PAGE_BG, (n, n_bg)), axis=1)
        centres = np.concatenate([subs[topic, pick], bg[pick_bg],
                                  rng.standard_normal((n, tokens - n_topic - n_bg, DIM), dtype=np.float32)], axis=1)
        out[s : s + n] = _unit(centres + _noise(rng, centres.shape, 0.7))
    return out


def make_queries(tok: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` queries of Q_TOPIC + Q_BG + Q_OWN noisy copies of tokens of distinct source pages."""
    pages, tokens, _ = tok.shape
    n_topic, n_bg = int(TOPIC_SHARE * tokens), int(BG_SHARE * tokens)
    rng = np.random.default_rng([seed, 2])
    src = rng.choice(pages, n, replace=False)
    qs = []
    for p in src:
        rows = np.concatenate([rng.choice(n_topic, Q_TOPIC, replace=False),
                               n_topic + rng.choice(n_bg, Q_BG, replace=False),
                               n_topic + n_bg + rng.choice(tokens - n_topic - n_bg, Q_OWN, replace=False)])
        q = tok[p, rows].astype(np.float32)
        qs.append(_unit(q + _noise(rng, q.shape, 0.5)))
    return np.stack(qs), src


def brute_force(tok32: np.ndarray, q: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Exact MaxSim of ``q`` against every page: one ``(chunk * L, d) @ (d, Lq)`` product per chunk."""
    n, length, dim = tok32.shape
    out = np.empty(n, dtype=np.float32)
    for s in range(0, n, chunk):
        block = tok32[s : s + chunk]
        sims = (block.reshape(-1, dim) @ q.T).reshape(len(block), length, -1)
        out[s : s + len(block)] = sims.max(axis=1).sum(axis=1)
    return out


def top_k(scores: np.ndarray, k: int = K) -> np.ndarray:
    return np.lexsort((np.arange(len(scores)), -scores))[:k]


@dataclass(frozen=True)
class Variant:
    """One FDE setting: the first ``reps`` repetitions of a document-FDE matrix."""

    ksim: int
    dproj: int
    reps: int
    fdes: np.ndarray  # (pages, reps * 2^ksim * dproj) float32, contiguous

    @property
    def qcfg(self) -> FDEConfig:
        return FDEConfig(DIM, self.ksim, self.reps, 1, self.dproj, False)

    @property
    def name(self) -> str:
        return f"R={self.reps}, k_sim={self.ksim}, d_proj={self.dproj} ({self.fdes.shape[1]} d)"


def variant_search(index: MultiVectorIndex, v: Variant, q: np.ndarray, candidates: int) -> list[str]:
    """``MultiVectorIndex.search`` with another FDE matrix (all rows live): the same calls, in the same order."""
    approx = v.fdes @ query_fde(q, v.qcfg).astype(np.float32)
    rows = np.arange(len(approx))
    cand = rows[np.lexsort((rows, -approx))[:candidates]]
    exact = maxsim(q, [index._doc_at(r) for r in cand])  # noqa: SLF001 (the product's row reader)
    order = np.lexsort((cand, -exact))[:K]
    return [index._id_at(r) for r in cand[order]]  # noqa: SLF001


def build_index(tok: np.ndarray, folder: Path, batch: int = 250) -> MultiVectorIndex:
    """The product's index (DEFAULT_FDE), filled ``batch`` pages per segment."""
    index = MultiVectorIndex(folder, "pages", DIM)
    for s in range(0, len(tok), batch):
        index.add([f"p{i}" for i in range(s, min(s + batch, len(tok)))], list(tok[s : s + batch]))
    return index


def build_fdes(tok: np.ndarray, cfg: FDEConfig, batch: int = 250) -> np.ndarray:
    out = np.empty((len(tok), cfg.fde_dim), dtype=np.float32)
    for s in range(0, len(tok), batch):
        out[s : s + batch] = document_fde_batch(list(tok[s : s + batch]), cfg)
    return out


def variants_of(fdes: np.ndarray, cfg: FDEConfig) -> list[Variant]:
    width = cfg.num_partitions * cfg.proj_dim
    reps = sorted({max(1, cfg.num_repetitions // 4), cfg.num_repetitions // 2, cfg.num_repetitions} - {0})
    return [Variant(cfg.num_simhash_projections, cfg.proj_dim, r,
                    fdes if r == cfg.num_repetitions else np.ascontiguousarray(fdes[:, : r * width]))
            for r in reps]


def _timed(fn, *a):  # noqa: ANN001, ANN002, ANN202
    t = time.perf_counter()
    r = fn(*a)
    return r, time.perf_counter() - t


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=10_000)
    ap.add_argument("--tokens", type=int, default=1000)
    ap.add_argument("--topics", type=int, default=300)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--product-brute-queries", type=int, default=5,
                    help="queries also run through index.search(candidates=all pages) (slow)")
    ap.add_argument("--settings", default="5x16,4x8,3x8", help="k_sim x d_proj pairs, each at R = --reps")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--cands", default="50,100,200,400")
    ap.add_argument("--workdir", default=None, help="index folder (default: a temporary folder)")
    ap.add_argument("--out", default=str(Path(__file__).with_name("RESULTS_muvera.md")))
    return ap.parse_args()


@dataclass
class Row:
    """Per-query latencies, speed-ups and recalls of one (path, setting, C)."""

    path: str
    setting: str
    fde_dim: int
    cands: int
    lat: list[float]
    speedup: list[float]
    recall: list[float]


def _check_mirror(index: MultiVectorIndex, variants: list[Variant], q: np.ndarray, cands: list[int]) -> None:
    own = index.fde
    for v in variants:
        if (v.ksim, v.dproj, v.reps) == (own.num_simhash_projections, own.proj_dim, own.num_repetitions):
            for c in cands:
                if variant_search(index, v, q, c) != index.search(q, K, c)[0]:
                    raise RuntimeError(f"variant_search differs from index.search at C={c}; fix the bench")


def run_queries(index: MultiVectorIndex, tok32: np.ndarray, variants: list[Variant], queries: np.ndarray,
                a: argparse.Namespace) -> tuple[list[Row], dict[str, list[float]]]:
    """Brute force and every setting back to back for each query; returns rows and brute-force stats."""
    cands = [int(c) for c in a.cands.split(",") if int(c) <= len(tok32)]
    own = index.fde
    rows = {("index.search", f"R={own.num_repetitions}, k_sim={own.num_simhash_projections}, d_proj={own.proj_dim}"
             f" ({own.fde_dim} d)", own.fde_dim, c): Row("index.search", "", own.fde_dim, c, [], [], []) for c in cands}
    for v in variants:
        rows |= {("same calls", v.name, v.fdes.shape[1], c): Row("same calls", v.name, v.fdes.shape[1], c, [], [], [])
                 for c in cands}
    for (path, name, _, _), row in rows.items():
        row.path, row.setting = path, name
    stats: dict[str, list[float]] = {"brute": [], "product_brute": [], "product_brute_overlap": [],
                                     "gap_10_11": [], "spread_1_10": [], "src_rank": []}
    _check_mirror(index, variants, queries[0], cands)
    for i, q in enumerate(queries):
        scores, t_bf = _timed(brute_force, tok32, q)
        truth = top_k(scores, K + 1)
        want = {f"p{j}" for j in truth[:K]}
        ranked = scores[truth]
        stats["brute"].append(t_bf)
        stats["gap_10_11"].append(float((ranked[K - 1] - ranked[K]) / ranked[K - 1]))
        stats["spread_1_10"].append(float((ranked[0] - ranked[K - 1]) / ranked[0]))
        stats["src_rank"].append(float(np.sum(scores > scores[a.src[i]]) + 1))
        if i < a.product_brute_queries:
            (ids, _), t = _timed(index.search, q, K, len(tok32))
            stats["product_brute"].append(t)
            stats["product_brute_overlap"].append(len(set(ids) & want) / K)
        for (path, _, _, c), row in rows.items():
            v = None if path == "index.search" else next(x for x in variants if x.name == row.setting)
            if v is None:
                (ids, _), t = _timed(index.search, q, K, c)
            else:
                ids, t = _timed(variant_search, index, v, q, c)
            row.lat.append(t)
            row.speedup.append(t_bf / t)
            row.recall.append(len(set(ids) & want) / K)
        print(f"query {i + 1}/{len(queries)}: brute {t_bf:.2f} s, load {os.getloadavg()[0]:.1f}", flush=True)
    return list(rows.values()), stats


def main() -> None:
    a = _parse()
    log: list[str] = []

    def say(s: str = "") -> None:
        print(s, flush=True)
        log.append(s)

    started, load0 = datetime.now(UTC), os.getloadavg()
    tok, t_gen = _timed(make_pages, a.pages, a.tokens, a.topics, 0)
    queries, a.src = make_queries(tok, a.queries, 0)
    say(f"Data: {a.pages} pages x {a.tokens} tokens x {DIM} float16 ({tok.nbytes / 2**30:.2f} GiB), {a.topics} topics "
        f"(each page mixes {PAGE_TOPICS}: ~{a.pages * PAGE_TOPICS / a.topics:.0f} pages a topic), generated in {t_gen:.0f} s; {a.queries} queries of "
        f"{Q_TOPIC + Q_BG + Q_OWN} tokens.")
    with tempfile.TemporaryDirectory(dir=a.workdir) as tmp:
        index, t_index = _timed(build_index, tok, Path(tmp))
        own = index.fde
        say(f"Product index (MultiVectorIndex, DEFAULT_FDE = R {own.num_repetitions}, k_sim "
            f"{own.num_simhash_projections}, d_proj {own.proj_dim}, fill on): built in {t_index:.0f} s "
            f"({a.pages / t_index:.0f} pages/s: float16 segments written + FDEs).")
        variants = []
        for pair in a.settings.split(","):
            ks, dp = (int(x) for x in pair.split("x"))
            cfg = FDEConfig(DIM, ks, a.reps, 1, dp, True)
            if cfg == own:
                fdes = np.ascontiguousarray(index._fdes)  # noqa: SLF001 (the index's own FDEs, as searched)
            else:
                fdes, t = _timed(build_fdes, tok, cfg)
                say(f"FDE build k_sim {ks}, d_proj {dp}, R {a.reps} ({cfg.fde_dim} d): {t:.0f} s "
                    f"({a.pages / t:.0f} pages/s)")
            variants += variants_of(fdes, cfg)
        tok32 = tok.astype(np.float32)  # exact copy of the stored float16 values
        del tok
        rows, stats = run_queries(index, tok32, variants, queries, a)
    _write(a, say, log, rows, stats, started, load0)


def _write(a: argparse.Namespace, say, log: list[str], rows: list[Row], stats: dict[str, list[float]],  # noqa: ANN001
           started: datetime, load0: tuple[float, float, float]) -> None:
    brute = float(np.median(stats["brute"]))
    rank = np.array(stats["src_rank"])
    say(f"Brute-force MaxSim (float32 copy in RAM, BLAS): {brute:.2f} s a query (median of {len(stats['brute'])}). "
        f"Through the product, `index.search(candidates=all)`: {np.median(stats['product_brute']):.2f} s "
        f"(median of {len(stats['product_brute'])}; top-10 overlap with the float32 brute force "
        f"{np.mean(stats['product_brute_overlap']):.2f}).")
    say(f"Brute-force top-10 vs the query's source page: rank 1 for {np.mean(rank == 1):.0%} of queries, in the "
        f"top-10 for {np.mean(rank <= K):.0%} (worst rank {rank.max():.0f}). Near-ties: median relative gap between "
        f"the 10th and 11th scores {np.median(stats['gap_10_11']):.2%}; 1st to 10th {np.median(stats['spread_1_10']):.1%}.")
    say()
    say("Latency and speed-up: medians over queries (speed-up = brute-force time / MUVERA time of the same query). "
        "Recall@10 against the brute-force top-10.")
    say()
    say("| path | setting | C | latency (median) | speed-up (median) | recall@10 (mean) | recall@10 (min) |")
    say("|---|---|---|---|---|---|---|")
    for r in rows:
        say(f"| {r.path} | {r.setting} | {r.cands} | {np.median(r.lat) * 1000:.0f} ms | {np.median(r.speedup):.1f}x "
            f"| {np.mean(r.recall):.3f} | {min(r.recall):.1f} |")
    ok = [r for r in rows if np.mean(r.recall) >= 0.9]
    best = max(ok, key=lambda r: np.median(r.speedup)) if ok else None
    say()
    say("Best setting with recall@10 >= 0.9: " + (
        f"{best.setting}, C = {best.cands} ({best.path}): {np.median(best.speedup):.1f}x at recall@10 "
        f"{np.mean(best.recall):.3f}." if best else "none."))
    load1 = os.getloadavg()
    hdr = (f"# MUVERA + exact MaxSim re-rank vs brute-force MaxSim\n\nCommand: `.venv/bin/python bench/muvera_bench.py "
           f"--pages {a.pages} --tokens {a.tokens} --topics {a.topics} --queries {a.queries} --settings {a.settings} "
           f"--reps {a.reps} --cands {a.cands}`\n\nMachine: 2 shared CPU cores (numpy/OpenBLAS, no GPU), 24 GB RAM; "
           f"started {started:%Y-%m-%d %H:%M} UTC; load average at start {load0[0]:.1f} / {load0[1]:.1f} / "
           f"{load0[2]:.1f}, at end {load1[0]:.1f} / {load1[1]:.1f} / {load1[2]:.1f} (other engineers' jobs).\n\n")
    Path(a.out).write_text(hdr + "\n".join(log) + "\n")


if __name__ == "__main__":
    main()
