"""Zero-shot classification: prompt-ensembled class embeddings and softmax scoring.

CLIP_benchmark rule (LAION-AI/CLIP_benchmark ``zero_shot_classifier``, from open_clip
``zero_shot.py``; Radford et al., ICML 2021):

    class_emb_c = normalize( mean_i normalize( text_encoder(prompt_{c,i}) ) )
    p(c | x)    = softmax_c( temperature * <normalize(x), class_emb_c> )

The temperature (CLIP's learnt logit scale, 100) does not change the argmax, only how peaked the
probabilities are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from omniret.errors import ModelError, QueryError
from omniret.methods.prompts import IMAGENET_TEMPLATES, PromptSpec, class_prompts

__all__ = ["class_embeddings", "classify_scores", "ensemble", "labels_above"]


def _normalize(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def ensemble(prompt_embs: np.ndarray) -> np.ndarray:
    """One class embedding from its prompt embeddings (T, d): ``normalize(mean(normalize(e_i)))``."""
    e = np.asarray(prompt_embs, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] == 0:
        raise QueryError(f"prompt embeddings must be a non-empty (prompts, dim) array, got shape {e.shape}")
    return _normalize(_normalize(e).mean(axis=0))


def class_embeddings(
    encode_fn: Callable[[Sequence[str]], np.ndarray],
    labels: Sequence[str],
    prompts: PromptSpec = IMAGENET_TEMPLATES,
) -> np.ndarray:
    """Class embeddings (C, d) for ``labels`` by prompt ensembling, one batched ``encode_fn`` call.

    ``prompts``: generic templates (default: the 80 CLIP ImageNet templates) or a mapping
    label -> sentences (CuPL-style). ``encode_fn`` maps a list of texts to an (n, d) array.
    """
    per_label = class_prompts(labels, prompts)
    texts = [s for lab in labels for s in per_label[lab]]
    embs = np.asarray(encode_fn(texts), dtype=np.float64)
    if embs.ndim != 2 or embs.shape[0] != len(texts):
        raise ModelError(f"encode_fn returned shape {embs.shape} for {len(texts)} prompts; it must return (n, dim)")
    bounds = np.cumsum([0] + [len(per_label[lab]) for lab in labels])
    return np.stack([ensemble(embs[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])


def classify_scores(
    item_emb: np.ndarray, class_emb: np.ndarray, temperature: float = 100.0, k: int = 5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Softmax class probabilities and top-k for items (n, d) against class embeddings (C, d).

    Returns ``(probs (n, C), topk_idx (n, k'), topk_probs (n, k'))`` with ``k' = min(k, C)``, best
    first; equal probabilities go to the lower class index.
    """
    x = np.asarray(item_emb, dtype=np.float64)
    c = np.asarray(class_emb, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1] or c.shape[0] == 0:
        raise QueryError(f"items {x.shape} and classes {c.shape} must be (n, d) and (C, d) with one d")
    if temperature <= 0 or k < 1:
        raise QueryError(f"temperature must be > 0 and k >= 1, got {temperature}, {k}")
    from scipy.special import softmax  # loaded on first use

    probs = softmax(temperature * (_normalize(x) @ _normalize(c).T), axis=1)
    top = np.argsort(-probs, axis=1, kind="stable")[:, : min(k, c.shape[0])]
    return probs, top, np.take_along_axis(probs, top, axis=1)


def labels_above(probs: np.ndarray, threshold: float, min_labels: int = 0) -> np.ndarray:
    """Boolean (n, C) mask of classes with probability >= ``threshold`` (multi-label tagging).

    ``min_labels``: always keep at least this many top classes per item (e.g. 1 = never empty).
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or not 0.0 <= threshold <= 1.0 or min_labels < 0:
        raise QueryError("probs must be (n, C), threshold in [0, 1] and min_labels >= 0")
    mask = p >= threshold
    if min_labels:
        top = np.argsort(-p, axis=1, kind="stable")[:, : min(min_labels, p.shape[1])]
        np.put_along_axis(mask, top, True, axis=1)
    return mask
