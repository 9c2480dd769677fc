"""ImageNet-1k class names for the offline model's ConSE bridge, read from installed packages.

Two sources, both offline:

- ``"torchvision"``: the curated short names in torchvision's weights metadata
  (``EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"]``), one name per class;
- ``"wordnet"``: every WordNet lemma of the class's synset (``"tabby, tabby cat"``), from timm's
  bundled ImageNet info (``timm.data.ImageNetInfo``).

``"both"`` joins the two (the torchvision name first, duplicates dropped). Class order is the
standard ImageNet-1k order (sorted WordNet ids), which is the order of every classifier's logits.
"""

from __future__ import annotations

from functools import lru_cache

from omniret.errors import ModelError

LABEL_SOURCES = ("torchvision", "wordnet", "both")
NUM_CLASSES = 1000


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


def class_names(source: str = "torchvision") -> list[tuple[str, ...]]:
    """The names of each of the 1000 ImageNet classes: a list of 1000 non-empty tuples of strings."""
    if source == "torchvision":
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
