"""``omniret demo``: index sample images that ship with scikit-image and scikit-learn, plus a few
notes, then run searches by text and by example image. Works offline with the ``offline`` model.

The samples and the index go to the user's cache folder (:func:`default_dir`: ``$OMNIRET_CACHE/demo``,
else ``$XDG_CACHE_HOME/omniret/demo``, else ``~/.cache/omniret/demo``), never into the current
folder, unless ``--dir`` says where.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

#: scikit-image samples that load offline (no download), written as PNG files
SKIMAGE_SAMPLES = ("astronaut", "chelsea", "coffee", "rocket", "horse", "camera", "coins",
                   "hubble_deep_field", "page", "text", "moon", "clock", "immunohistochemistry")
NOTES = {
    "pets.md": "# Pets\n\nOur cat sleeps on the sofa all day. The dog prefers the garden and chases birds.\n",
    "breakfast.txt": "Breakfast: a strong cup of coffee, toast with butter, and an orange.\n",
    "space.txt": "The rocket lifted off from the launch pad at dawn, carrying a satellite into orbit.\n",
}
QUERIES = ("a cat", "a cup of coffee", "a rocket launch", "a horse", "the night sky full of stars")


def default_dir() -> Path:
    """Where the demo writes when not told: the user's cache folder (XDG base directory rules)."""
    root = os.environ.get("OMNIRET_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = os.path.join(xdg, "omniret") if xdg and os.path.isabs(xdg) else os.path.join(
            os.path.expanduser("~"), ".cache", "omniret")
    return Path(root) / "demo"


def write_samples(folder: str | os.PathLike[str]) -> list[Path]:
    """Write the sample images and notes into ``folder``; returns the files written."""
    import numpy as np
    from PIL import Image
    from skimage import data
    from sklearn.datasets import load_sample_images

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SKIMAGE_SAMPLES:
        arr = getattr(data, name)()
        path = out / f"{name}.png"
        if not path.exists():
            Image.fromarray(np.asarray(arr)).save(path)
        written.append(path)
    sk = load_sample_images()
    for fname, arr in zip(sk.filenames, sk.images, strict=True):
        path = out / os.path.basename(fname)
        if not path.exists():
            Image.fromarray(arr).save(path, quality=92)
        written.append(path)
    for name, text in NOTES.items():
        path = out / name
        if not path.exists():
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def run_demo(workdir: str | os.PathLike[str] | None = None, *, model: str = "offline", device: str | None = None, as_json: bool = False,
             quiet: bool = False) -> Iterator[str]:
    """Index the samples under ``workdir`` (default: :func:`default_dir`) and yield printable result lines."""
    from omniret.index import Index

    workdir = Path(workdir) if workdir is not None else default_dir()
    samples = workdir / "samples"
    write_samples(samples)
    with Index.open(workdir / "index", model=model, device=device) as idx:
        report = idx.add([str(samples)])
        if as_json:
            yield json.dumps({"event": "add", "model": idx.encoder.name, "index": str(workdir / "index"),
                              **report.to_dict()})
        else:
            yield (f"indexed {report.new + report.changed} new/changed files ({report.items} items) "
                   f"with model {idx.encoder.name} in {report.seconds:.1f}s from {samples}\n"
                   f"(index: {workdir / 'index'}; search it with omniret --index {workdir / 'index'} search ...)")
        for q in QUERIES:
            yield from _show(idx.search(q, k=3), f"search {q!r}", as_json)
        yield from _show(idx.search(image=str(samples / "chelsea.png"), k=3), "search --image chelsea.png", as_json)


def _show(hits: list, title: str, as_json: bool) -> Iterator[str]:
    if as_json:
        yield json.dumps({"query": title, "hits": [h.to_dict() for h in hits]}, default=str)
        return
    yield f"\n{title}"
    for rank, h in enumerate(hits, 1):
        label = os.path.basename(h.uri)
        yield f"  {rank}. {h.score:.3f}  {h.modality.value:5s}  {label}"
