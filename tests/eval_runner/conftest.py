"""A tiny judged image set for the runner tests: coloured pictures, text and composed queries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30),
           "black": (10, 10, 10), "white": (245, 245, 245)}
SHAPES = ("cat", "dog", "car")


def _picture(path: Path, colour: tuple[int, int, int], shape: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = np.full((32, 32, 3), colour, dtype=np.uint8)
    a[8 * shape : 8 * shape + 8, :, :] = 128
    a = np.clip(a.astype(int) + rng.integers(-10, 10, a.shape), 0, 255).astype(np.uint8)
    Image.fromarray(a).save(path)


@pytest.fixture
def tiny_set(tmp_path: Path) -> Path:
    """``queries.jsonl`` + ``corpus.jsonl``: 18 images (shape × colour), 12 text and 4 composed queries."""
    root = tmp_path / "set"
    (root / "img").mkdir(parents=True)
    corpus, queries = [], []
    for si, shape in enumerate(SHAPES):
        for ci, (cname, rgb) in enumerate(COLOURS.items()):
            name = f"{cname}_{shape}"
            _picture(root / "img" / f"{name}.png", rgb, si, seed=si * 10 + ci)
            corpus.append({"id": name, "image": f"img/{name}.png", "metadata": {"title": f"a {cname} {shape}"}})
    for n, cname in enumerate(COLOURS):
        queries.append({"id": f"t{n}", "text": f"a {cname} thing", "relevant": [f"{cname}_{s}" for s in SHAPES]})
    for n, shape in enumerate(SHAPES):
        queries.append({"id": f"s{n}", "text": f"a {shape}", "relevant": {f"{c}_{shape}": 1 for c in COLOURS}})
    for n, shape in enumerate(SHAPES):
        queries.append({"id": f"u{n}", "text": f"{shape} picture", "relevant": [f"red_{shape}", f"blue_{shape}"]})
    with (root / "corpus.jsonl").open("w") as f:
        f.writelines(json.dumps(r) + "\n" for r in corpus)
    with (root / "queries.jsonl").open("w") as f:
        f.writelines(json.dumps(r) + "\n" for r in queries)
    comp = [{"id": f"c{n}", "image": f"img/red_{s}.png", "text": "blue", "relevant": [f"blue_{s}"]}
            for n, s in enumerate(SHAPES)]
    (root / "composed").mkdir()
    with (root / "composed" / "queries.jsonl").open("w") as f:
        f.writelines(json.dumps({**r, "image": "../" + r["image"]}) + "\n" for r in comp)
    with (root / "composed" / "corpus.jsonl").open("w") as f:
        f.writelines(json.dumps({**r, "image": "../" + r["image"]}) + "\n" for r in corpus)
    return root
