"""Quality of the ``offline`` encoder on Open Clip Art: text→image R@1/5/10 and median rank.

Usage (from the repository root)::

    .venv/bin/python bench/offline_quality.py --debs data/debs --data data/openclipart [--subset 2000]

Builds the set if needed (``omniret.eval.openclipart``), embeds every image once with the classifier
(probabilities and pooled penultimate features are cached under ``<data>/cache``), then scores each
ConSE variant (label source x prompt templates x top-T) from the cache. A query hits at K if any of
its images is in the top K (CLIP_benchmark semantics); the median rank is that of the best-ranked
relevant image (1 = first). Prints a Markdown table and writes ``<data>/cache/results.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from omniret.encoders import offline as off
from omniret.eval import openclipart

KS = (1, 5, 10)
TOPS = (1, 3, 5, 10, 20, 50, 1000)


def load_rgb(path: str) -> Image.Image:
    """Decode a PNG; transparent pixels become white (clip art is drawn on a transparent canvas).
    A PNG PIL refuses (one in the set is 623 megapixels, over its decompression-bomb limit) becomes a
    blank white image, so it stays in the corpus as a distractor and the run goes on."""
    try:
        im = Image.open(path)
        im.load()
    except (Image.DecompressionBombError, OSError) as e:
        print(f"  unreadable, embedded as blank: {path}: {e}", flush=True)
        return Image.new("RGB", (224, 224), (255, 255, 255))
    if im.mode in ("RGBA", "LA", "P", "PA") or "transparency" in im.info:
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, im).convert("RGB")
    return im.convert("RGB")


def embed_images(paths: list[str], cache: Path, tag: str, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(probs (n, 1000), pooled features (n, 1280)) from EfficientNet-Lite0, cached on disk."""
    fp, ff = cache / f"effl0_probs_{tag}.npy", cache / f"effl0_feats_{tag}.npy"
    if fp.is_file() and ff.is_file() and len(np.load(fp, mmap_mode="r")) == len(paths):
        return np.load(fp), np.load(ff)
    model = off.load_efficientnet_lite0("cpu")
    pre = off.EfficientNetLitePreprocess()
    probs, feats, t0 = [], [], time.time()
    with ThreadPoolExecutor(2) as pool, torch.inference_mode():
        for i in range(0, len(paths), batch):
            x = torch.from_numpy(np.stack(list(pool.map(lambda p: pre(load_rgb(p)), paths[i : i + batch]))))
            f = model._avg_pooling(model.extract_features(x)).flatten(1)
            probs.append(model._fc(f).softmax(-1).numpy())
            feats.append(f.numpy())
            if (i // batch) % 10 == 0:
                print(f"  images {i + len(x)}/{len(paths)}  {time.time() - t0:.0f}s", flush=True)
    P, F = np.concatenate(probs), np.concatenate(feats)
    np.save(fp, P)
    np.save(ff, F)
    return P, F


def class_emb(text_model: object, labels: str, templates: str, cache: Path) -> np.ndarray:
    f = cache / f"class_{labels}_{templates}.npy"
    if f.is_file():
        return np.load(f)
    e = off.class_embeddings(text_model, labels, templates)
    np.save(f, e)
    return e


def ranks(scores: np.ndarray, rel: list[np.ndarray]) -> np.ndarray:
    """0-based rank of the best relevant column in each row of ``scores`` (ties count against)."""
    out = np.empty(len(rel), dtype=np.int64)
    for i, r in enumerate(rel):
        best = scores[i, r].max()
        out[i] = int((scores[i] > best).sum())
    return out


def metrics(rk: np.ndarray) -> dict[str, float]:
    m = {f"R@{k}": float((rk < k).mean()) for k in KS}
    m["MdR"] = float(np.median(rk + 1))
    return m


def blend_image_to_image(P: np.ndarray, F: np.ndarray, E: np.ndarray, top: int, ids: list[str],
                         qrels: dict[str, set[str]]) -> list[dict]:
    """Image→image on the keyword task: each image tagged with a keyword queries the others (itself
    excluded); relevant = the images sharing a keyword with it. Compares ConSE alone, the CNN's pooled
    features alone, and the one-space blend ``[sqrt(w) conse ; sqrt(1-w) feats]``."""
    col = {d: j for j, d in enumerate(ids)}
    rel_sets: dict[int, set[int]] = {}
    for docs in qrels.values():
        members = [col[d] for d in docs if d in col]
        for m in members:
            rel_sets.setdefault(m, set()).update(x for x in members if x != m)
    qs = np.array(sorted(i for i, r in rel_sets.items() if r))
    conse = off.conse_combine(P, E, top)
    feats = F / np.linalg.norm(F, axis=1, keepdims=True)
    out = []
    for w in (1.0, 0.75, 0.5, 0.25, 0.0):
        X = np.hstack([np.sqrt(w) * conse, np.sqrt(1 - w) * feats])
        S = X[qs] @ X.T
        S[np.arange(len(qs)), qs] = -np.inf
        rk = ranks(S, [np.array(sorted(rel_sets[q])) for q in qs])
        out.append({"task": "keyword image->image", "w_conse": w, **metrics(rk), "queries": len(qs)})
    return out


def markdown(results: list[dict], meta: dict) -> str:
    """The grid as Markdown tables: one per task (T across columns as R@1 / R@10 / MdR) + the blend."""
    lines = [f"Machine: {meta['machine']}; Python {meta['python']}; torch {meta['torch']}; "
             f"images: {meta['images']} ({'fixed-seed subset' if meta['subset'] else 'full set'})", ""]
    for task in openclipart.TASKS:
        rows = [r for r in results if r["task"] == task]
        if not rows:
            continue
        lines += [f"### text→image, `{task}` task ({rows[0]['queries']} queries)", "",
                  "R@1 / R@5 / R@10 / median rank for each top-T", "",
                  "| labels | templates | " + " | ".join(f"T={t}" for t in TOPS) + " |",
                  "|---|---|" + "---|" * len(TOPS)]
        for labels in ("torchvision", "wordnet", "both"):
            for templates in off.TEMPLATES:
                cells = []
                for t in TOPS:
                    r = next((x for x in rows if (x["labels"], x["templates"], x["T"]) == (labels, templates, t)), None)
                    cells.append("" if r is None else
                                 f"{r['R@1']:.3f} / {r['R@5']:.3f} / {r['R@10']:.3f} / {r['MdR']:g}")
                lines.append(f"| {labels} | {templates} | " + " | ".join(cells) + " |")
        lines.append("")
    blend = [r for r in results if r["task"] == "keyword image->image"]
    if blend:
        lines += [f"### image→image, keyword task ({blend[0]['queries']} query images), blend weight of ConSE", "",
                  "| w_conse | R@1 | R@5 | R@10 | MdR |", "|---|---|---|---|---|"]
        lines += [f"| {r['w_conse']} | {r['R@1']:.3f} | {r['R@5']:.3f} | {r['R@10']:.3f} | {r['MdR']:g} |"
                  for r in blend]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--debs", default="data/debs", help="folder with the openclipart .deb files")
    ap.add_argument("--data", default="data/openclipart", help="where the built set lives")
    ap.add_argument("--subset", type=int, default=0, help="fixed-seed image subset size (0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--markdown", default="", help="also write the tables to this Markdown file")
    args = ap.parse_args()
    data = Path(args.data)
    if not (data / "corpus.jsonl").is_file():
        print(openclipart.build(args.debs, data))
    cache = data / "cache"
    cache.mkdir(exist_ok=True)
    corpus, _, _ = openclipart.load(data, "title")
    keep = np.arange(len(corpus))
    if args.subset:
        keep = np.sort(np.random.default_rng(args.seed).choice(len(corpus), args.subset, replace=False))
    ids = [corpus[i].id for i in keep]
    col = {d: j for j, d in enumerate(ids)}
    tag = f"sub{args.subset}_seed{args.seed}" if args.subset else "all"
    P, F = embed_images([corpus[i].path for i in keep], cache, tag)
    text_model = off.load_minilm("cpu")
    results = []
    for task in openclipart.TASKS:
        _, queries, qrels = openclipart.load(data, task)
        qids = [q for q in queries if any(d in col for d in qrels[q])]
        rel = [np.array([col[d] for d in qrels[q] if d in col]) for q in qids]
        Q = off.embed_prompts(text_model, [queries[q] for q in qids], 256)
        print(f"{task}: {len(qids)} queries over {len(ids)} images", flush=True)
        for labels in ("torchvision", "wordnet", "both"):
            for templates in off.TEMPLATES:
                E = class_emb(text_model, labels, templates, cache)
                for top in TOPS:
                    rk = ranks(Q @ off.conse_combine(P, E, top).T, rel)
                    row = {"task": task, "labels": labels, "templates": templates, "T": top, **metrics(rk),
                           "queries": len(qids), "images": len(ids)}
                    results.append(row)
                    print(" | ".join(str(round(v, 4)) if isinstance(v, float) else str(v) for v in row.values()),
                          flush=True)
    _, _, kw_qrels = openclipart.load(data, "keyword")
    E = class_emb(text_model, off.DEFAULT_LABELS, off.DEFAULT_TEMPLATES, cache)
    for row in blend_image_to_image(P, F, E, off.DEFAULT_TOP_K, ids, kw_qrels):
        results.append(row)
        print(" | ".join(str(round(v, 4)) if isinstance(v, float) else str(v) for v in row.values()), flush=True)
    meta = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
            "python": platform.python_version(), "torch": torch.__version__, "subset": args.subset,
            "images": len(ids)}
    (cache / f"results_{tag}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(markdown(results, meta), encoding="utf-8")


if __name__ == "__main__":
    main()
