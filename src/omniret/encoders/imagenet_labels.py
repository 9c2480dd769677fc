"""ImageNet-1k class names for the offline model's ConSE bridge, read from installed packages.

Two sources, both offline:

- ``"torchvision"``: the curated short names in torchvision's weights metadata
  (``EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"]``), one name per class;
- ``"wordnet"``: every WordNet lemma of the class's synset (``"tabby, tabby cat"``), from timm's
  bundled ImageNet info (``timm.data.ImageNetInfo``).

``"both"`` joins the two (the torchvision name first, duplicates dropped).

``"multilingual"`` (:func:`multilingual_names`): the torchvision names plus each class's names in German,
Spanish, French, Japanese and Chinese, read from the data files of the ``clip_benchmark`` package
(MIT; installed with ``pip install --no-deps clip_benchmark``, only its JSON files are read, nothing of
it is imported): Japanese and Chinese for all 1000 classes (``jp_classnames.json``, ``cn_classnames.json``,
the lists of the Japanese and Chinese CLIP evaluations), German, Spanish and French for the 738-845
classes Babel-ImageNet names (``babel_imagenet.json``; Geigle et al., "Babel-ImageNet: Massively
Multilingual Evaluation of Vision-and-Language Representations", ACL 2024).

Class order is the standard ImageNet-1k order (sorted WordNet ids), which is the order of every
classifier's logits.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

from omniret.errors import ModelError

LABEL_SOURCES = ("torchvision", "wordnet", "both", "multilingual")
NUM_CLASSES = 1000
#: the languages of the ``"multilingual"`` source, English first
MULTILINGUAL_LANGUAGES = ("en", "de", "es", "fr", "ja", "zh")
_CLIP_BENCHMARK_HINT = ("the 'multilingual' ImageNet labels read class names from the clip_benchmark package's "
                        "data files: pip install --no-deps clip_benchmark (or use labels='torchvision')")


@lru_cache(maxsize=1)
def _torchvision_names() -> tuple[str, ...]:
    from torchvision.models import EfficientNet_B0_Weights

    names = tuple(EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])
    if len(names) != NUM_CLASSES:
        raise ModelError(f"torchvision lists {len(names)} ImageNet classes, expected {NUM_CLASSES}")
    return names


@lru_cache(maxsize=1)
def _wordnet_lemmas() -> tuple[tuple[str, ...], ...]:
    try:
        from timm.data import ImageNetInfo
    except ImportError as e:  # pragma: no cover - timm comes with open_clip
        raise ModelError("the 'wordnet' ImageNet labels need timm; pip install timm, or use labels='torchvision'") from e
    info = ImageNetInfo()
    out = []
    for i in range(NUM_CLASSES):
        lemmas = [s.strip() for s in info.index_to_description(i, detailed=False).split(",")]
        out.append(tuple(s for s in lemmas if s))
    return tuple(out)


def _clip_benchmark_datasets() -> Path:
    """The ``clip_benchmark/datasets`` folder of the installed package, found without importing it (its
    ``__init__`` would import torch, open_clip and more; only JSON files are read)."""
    spec = find_spec("clip_benchmark")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / "datasets"
        if (path / "babel_imagenet.json").is_file():
            return path
    raise ModelError(_CLIP_BENCHMARK_HINT)


@lru_cache(maxsize=1)
def multilingual_names() -> dict[str, dict[int, str]]:
    """``language -> {class index: name}`` for :data:`MULTILINGUAL_LANGUAGES` (English for every class;
    other languages where the lists name the class)."""
    folder = _clip_benchmark_datasets()
    try:
        babel = json.loads((folder / "babel_imagenet.json").read_text(encoding="utf-8"))
        full = {lang: json.loads((folder / f"{file}_classnames.json").read_text(encoding="utf-8"))["imagenet1k"]
                for lang, file in (("ja", "jp"), ("zh", "cn"))}
        out: dict[str, dict[int, str]] = {"en": dict(enumerate(_torchvision_names()))}
        for lang in MULTILINGUAL_LANGUAGES[1:]:
            if lang in full:
                out[lang] = dict(enumerate(full[lang]))
            else:
                idx, names = babel[lang.upper()]
                out[lang] = dict(zip((int(i) for i in idx), names, strict=True))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"clip_benchmark's class-name files in {folder} could not be read ({e}); "
                         "reinstall it: pip install --no-deps --force-reinstall clip_benchmark") from e
    for lang, names in out.items():
        if (len(names) > NUM_CLASSES or not all(0 <= c < NUM_CLASSES for c in names)
                or not all(isinstance(n, str) and n.strip() for n in names.values())):
            raise ModelError(f"clip_benchmark's {lang} ImageNet class names are not a list of 1000 names; "
                             "reinstall it: pip install --no-deps --force-reinstall clip_benchmark")
        out[lang] = {c: n.strip() for c, n in names.items()}
    return out


def class_names(source: str = "torchvision") -> list[tuple[str, ...]]:
    """The names of each of the 1000 ImageNet classes: a list of 1000 non-empty tuples of strings
    (``"multilingual"``: the English names; :func:`multilingual_names` has the rest)."""
    if source in ("torchvision", "multilingual"):
        return [(n,) for n in _torchvision_names()]
    if source == "wordnet":
        return list(_wordnet_lemmas())
    if source == "both":
        out = []
        for tv, wn in zip(_torchvision_names(), _wordnet_lemmas(), strict=True):
            seen: dict[str, None] = {tv: None}
            for lemma in wn:
                seen.setdefault(lemma, None)
            out.append(tuple(seen))
        return out
    raise ModelError(f"unknown ImageNet label source {source!r}; choose from {', '.join(LABEL_SOURCES)}")
