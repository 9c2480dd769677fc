"""Caption → image retrieval in six languages on a small hand-made set (held back: nothing was tuned on it).

    python bench/multilingual_bench.py --oca data/oca --distractors 500 \
        --models offline,offline:multilingual --out bench/multilingual/out

The set (``bench/multilingual/captions.jsonl``): 117 images — 20 real photos that ship with
scikit-image and scikit-learn, 97 Open Clip Art images (a seeded sample of the library, captioned
only where the picture is recognisable) — each with one caption written by hand in English after
looking at the image, and translated by hand into German, Spanish, French, Japanese and Chinese.
The gallery is those 117 images plus ``--distractors`` other Open Clip Art images (a seeded sample,
no caption). Every caption is a query whose one relevant image is the one it describes; each model
indexes the gallery through ``omniret.open(...).add`` and answers through ``Index.search``.

Prints (and writes to ``--out``) per model and language: R@1, R@5, R@10, MRR, and langdetect's
accuracy on the captions (:func:`omniret.query.language.detect_language`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import time
from pathlib import Path

import numpy as np

LANGS = ("en", "de", "es", "fr", "ja", "zh")
HERE = Path(__file__).parent
CAPTIONS = HERE / "multilingual" / "captions.jsonl"


def photo(name: str, folder: Path) -> Path:
    """Write a scikit-image / scikit-learn sample image to ``folder`` as PNG; its path."""
    from PIL import Image

    out = folder / f"{name.replace(':', '_')}.png"
    if out.is_file():
        return out
    source, _, key = name.partition(":")
    if source == "skimage":
        import skimage.data

        arr = getattr(skimage.data, key)()
        arr = np.asarray(arr[0] if isinstance(arr, tuple) else arr)  # stereo_motorcycle: (left, right, disparity)
    else:
        from sklearn.datasets import load_sample_images

        ds = load_sample_images()
        arr = ds.images[[os.path.basename(f).split(".")[0] for f in ds.filenames].index(key)]
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    Image.fromarray(arr).convert("RGB").save(out)
    return out


def gallery(oca: Path, work: Path, n_distractors: int, seed: int) -> tuple[list[dict], list[Path]]:
    """(caption rows with ``path``, every gallery file): captioned images first, then distractors."""
    rows = [json.loads(line) for line in CAPTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    corpus = {}
    for line in (oca / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        corpus[r["id"]] = r["path"]
    files = work / "files"
    files.mkdir(parents=True, exist_ok=True)
    taken = set()
    for r in rows:
        src, _, key = r["image"].partition(":")
        if src == "openclipart":
            dst = files / (key.replace("/", "__") + ".png")
            if not dst.exists():
                shutil.copyfile(corpus[key], dst)
            r["path"] = dst
            taken.add(os.path.basename(corpus[key]))
        else:
            r["path"] = photo(r["image"], files)
    pool = sorted(k for k, p in corpus.items() if os.path.basename(p) not in taken
                  and os.path.getsize(p) < 3_000_000)  # the library's few huge PNGs are decompression bombs
    seen = set(taken)
    distractors = []
    for key in random.Random(seed).sample(pool, len(pool)):
        base = os.path.basename(corpus[key])
        if base in seen:  # the library files some images under several categories
            continue
        seen.add(base)
        dst = files / ("d__" + key.replace("/", "__") + ".png")
        if not dst.exists():
            shutil.copyfile(corpus[key], dst)
        distractors.append(dst)
        if len(distractors) == n_distractors:
            break
    return rows, [Path(r["path"]) for r in rows] + distractors


def evaluate(model: str, rows: list[dict], files: list[Path], work: Path) -> dict[str, dict[str, float]]:
    import omniret

    idx_dir = work / f"index-{model.replace(':', '_')}"
    idx = omniret.open(str(idx_dir), model=model)
    t = time.time()
    report = idx.add([str(f) for f in files], workers=0)
    print(f"{model}: indexed {report.items} images ({report.new} new) in {time.time() - t:.0f}s; failed {report.failed}")
    out = {}
    for lang in LANGS:
        ranks = []
        t = time.time()
        for r in rows:
            hits = idx.search(r[lang], k=100, modality="image")
            paths = [os.path.realpath(h.uri) for h in hits]
            target = os.path.realpath(r["path"])
            ranks.append(paths.index(target) + 1 if target in paths else 10_000)
        rk = np.asarray(ranks)
        out[lang] = {"R@1": float(np.mean(rk <= 1)), "R@5": float(np.mean(rk <= 5)),
                     "R@10": float(np.mean(rk <= 10)), "MRR": float(np.mean(1.0 / rk)),
                     "ms/query": (time.time() - t) / len(rows) * 1000}
    idx.close()
    return out


def detection(rows: list[dict]) -> dict[str, float]:
    from omniret.query.language import detect_language

    out = {}
    for lang in LANGS:
        found = [detect_language(r[lang]) for r in rows]
        out[lang] = float(np.mean([d is not None and d.code == lang for d in found]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--oca", type=Path, default=Path("data/oca"), help="omniret eval prepare openclipart output")
    ap.add_argument("--distractors", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="offline,offline:multilingual")
    ap.add_argument("--work", type=Path, default=Path("data/multilingual-bench"))
    ap.add_argument("--out", type=Path, default=HERE / "multilingual" / "out")
    args = ap.parse_args()
    rows, files = gallery(args.oca, args.work, args.distractors, args.seed)
    print(f"{len(rows)} captioned images ({sum(not r['image'].startswith('openclipart') for r in rows)} photos), "
          f"gallery {len(files)}")
    result = {"gallery": len(files), "captioned": len(rows), "distractors": args.distractors, "seed": args.seed,
              "machine": f"{platform.machine()} {os.cpu_count()} cpu, load {os.getloadavg()[0]:.1f}",
              "detection": detection(rows), "models": {}}
    for model in args.models.split(","):
        result["models"][model] = evaluate(model, rows, files, args.work)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "result.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print("| model | metric | " + " | ".join(LANGS) + " |")
    print("|---|---|" + "---:|" * len(LANGS))
    for model, per in result["models"].items():
        for metric in ("R@1", "R@5", "R@10", "MRR"):
            print(f"| {model} | {metric} | " + " | ".join(f"{per[lg][metric]:.3f}" for lg in LANGS) + " |")
    print("| langdetect | accuracy | " + " | ".join(f"{result['detection'][lg]:.3f}" for lg in LANGS) + " |")


if __name__ == "__main__":
    main()
