"""Few-pair alignment (STRUCTURE) against today's offline model, on held-out Open Clip Art images.

    python bench/align_bench.py --oca data/oca --images 5000 --out bench/align_out

The Open Clip Art images with a title (one file per picture; the library's few decompression bombs
left out) are split 50/50 by image with a fixed seed. Training pairs: each training image with its
title (``dc:title``, written by the artist). Test: each held-out image's title is a query over the
held-out gallery only; relevant = the held-out images with the same (case-folded) title; and each
keyword shared by 2–50 held-out images is a query whose relevant images are those tagged with it.
Nothing of the test half is seen in training or in choosing ``mix`` (a 10 % validation slice of the
training half). Features (EfficientNet-Lite0) and text embeddings (MiniLM) are computed once and cached.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from omniret.encoders.offline import OfflineEncoder, conse_combine
from omniret.items import Role
from omniret.tasks import align as al


def corpus(oca: Path, limit: int, seed: int) -> list[dict]:
    rows, seen = [], set()
    for line in (oca / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        base = os.path.basename(r["path"])
        if not r.get("title") or base in seen or os.path.getsize(r["path"]) > 3_000_000:
            continue
        seen.add(base)
        rows.append(r)
    order = np.random.default_rng(seed).permutation(len(rows))[:limit]
    return [rows[i] for i in sorted(order)]


def features(enc: OfflineEncoder, rows: list[dict], cache: Path, chunk: int = 250) -> dict[str, np.ndarray]:
    """Features, probabilities and title embeddings of ``rows``, cached a chunk at a time (resumable)."""
    cache.mkdir(parents=True, exist_ok=True)
    parts = []
    t = time.time()
    for i in range(0, len(rows), chunk):
        part = rows[i : i + chunk]
        f = cache / f"chunk-{i:06d}-{len(part)}.npz"
        ids = np.array([r["id"] for r in part])
        if f.is_file():
            with np.load(f) as z:
                if list(z["ids"]) == list(ids):
                    parts.append({k: z[k] for k in z.files})
                    continue
        feats, probs, texts, failed = al.pair_arrays(enc, [al.Pair(r["path"], r["title"]) for r in part], 64)
        if failed:
            raise SystemExit(f"unreadable images: {failed[:3]}")
        np.savez(f, ids=ids, feats=feats, probs=probs, titles=texts)
        parts.append({"ids": ids, "feats": feats, "probs": probs, "titles": texts})
        print(f"  {i + len(part)}/{len(rows)} images, {time.time() - t:.0f}s", flush=True)
    return {k: np.concatenate([p[k] for p in parts]) for k in ("ids", "feats", "probs", "titles")}


def metrics(queries: np.ndarray, rel: list[set[int]], gallery: np.ndarray) -> dict[str, float]:
    s = queries @ gallery.T
    order = np.argsort(-s, axis=1, kind="stable")[:, :100]
    first = np.array([next((j + 1 for j, d in enumerate(order[i]) if d in rel[i]), 101) for i in range(len(rel))])
    out = {f"R@{k}": float(np.mean(first <= k)) for k in (1, 5, 10)}
    out["MRR@100"] = float(np.mean(np.where(first <= 100, 1.0 / first, 0.0)))
    out["MdR"] = float(np.median(first))  # rank of the first relevant image, 101 = not in the top 100
    return out


def tasks(rows: list[dict], test: np.ndarray, enc: OfflineEncoder) -> dict[str, tuple[np.ndarray, list[set[int]]]]:
    by_title: dict[str, set[int]] = defaultdict(set)
    by_kw: dict[str, set[int]] = defaultdict(set)
    for g, i in enumerate(test):
        by_title[rows[i]["title"].strip().lower()].add(g)
        for kw in rows[i].get("subjects") or []:
            by_kw[kw.strip().lower()].add(g)
    titles = sorted(t for t, s in by_title.items() if len(s) <= 5)
    kws = sorted(k for k, s in by_kw.items() if 2 <= len(s) <= 50)
    return {"title": (enc.encode_text(titles, role=Role.QUERY), [by_title[t] for t in titles]),
            "keyword": (enc.encode_text(kws, role=Role.QUERY), [by_kw[k] for k in kws])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--oca", type=Path, default=Path("data/oca"))
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--cache", type=Path, default=Path("data/align-bench"))
    ap.add_argument("--out", type=Path, default=Path("bench/align_out"))
    args = ap.parse_args()
    enc = OfflineEncoder(device="cpu")
    rows = corpus(args.oca, args.images, args.seed)
    data = features(enc, rows, args.cache)
    train, test = al._split(len(rows), 0.5, args.seed + 1)
    fit, val = train[al._split(len(train), 0.1, args.seed)[0]], train[al._split(len(train), 0.1, args.seed)[1]]
    print(f"{len(rows)} images: {len(fit)} training pairs, {len(val)} validation, {len(test)} held-out")
    class_emb = enc.class_embeddings()
    conse_test = conse_combine(data["probs"][test], class_emb, enc.top_k)
    queries = tasks(rows, test, enc)
    results = {name: {"ConSE (today's offline)": metrics(q, rel, conse_test)} for name, (q, rel) in queries.items()}
    runs = [("contrastive only (λ=0)", al.AlignConfig(structure_lambda=0.0, epochs=args.epochs), False),
            ("STRUCTURE (λ=10, L=1)", al.AlignConfig(structure_lambda=10.0, epochs=args.epochs), False),
            ("STRUCTURE + ImageNet prompts", al.AlignConfig(structure_lambda=10.0, epochs=args.epochs), True)]
    chosen = {}
    for label, cfg, prompts in runs:
        f, t = data["feats"][fit], data["titles"][fit]
        if prompts:
            wf, wt = al.imagenet_prompt_pairs(enc)
            f, t = np.concatenate([f, wf]), np.concatenate([t, wt])
        t0 = time.time()
        proj, _ = al.train_projector(f, t, cfg)
        mix, table = al.choose_mix(proj, data["feats"][val], data["probs"][val], data["titles"][val], class_emb,
                                   enc.top_k)
        chosen[label] = {"mix": mix, "train_seconds": time.time() - t0, "validation": table}
        aligned = proj(data["feats"][test])
        mixed = mix * conse_test + (1 - mix) * aligned
        mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
        for name, (q, rel) in queries.items():
            results[name][f"{label}: projector only"] = metrics(q, rel, aligned)
            results[name][f"{label}: mixed with ConSE (α={mix:g})"] = metrics(q, rel, mixed)
        print(f"{label}: mix {mix:g}, {time.time() - t0:.0f}s")
    args.out.mkdir(parents=True, exist_ok=True)
    info = {"images": len(rows), "train_pairs": int(len(fit)), "validation": int(len(val)), "test": int(len(test)),
            "queries": {k: len(v[1]) for k, v in queries.items()}, "chosen": chosen,
            "machine": f"{platform.machine()} {os.cpu_count()} cpu, load {os.getloadavg()[0]:.1f}"}
    (args.out / "result.json").write_text(json.dumps({"info": info, "results": results}, indent=1))
    for name, table in results.items():
        print(f"\n{name} → image ({len(queries[name][1])} queries, {len(test)} held-out images)\n")
        print("| image embedding | R@1 | R@5 | R@10 | MRR@100 | MdR |\n|---|---:|---:|---:|---:|---:|")
        for label, m in table.items():
            print(f"| {label} | {m['R@1']:.4f} | {m['R@5']:.4f} | {m['R@10']:.4f} | {m['MRR@100']:.4f} | {m['MdR']:g} |")


if __name__ == "__main__":
    main()
