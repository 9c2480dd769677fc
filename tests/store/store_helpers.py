"""Data and naive references shared by the store tests."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

import numpy as np

from omniret.items import Item, Modality
from omniret.store.base import Filter, Store

SPACE = "s"
DIM = 16
MODALITIES = [Modality.IMAGE, Modality.TEXT, Modality.AUDIO, Modality.DOCUMENT]
WORDS = ["apple", "river", "mountain", "violin", "engine", "tulip", "harbor", "comet"]


def unit(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_items(n: int, *, start: int = 0, prefix: str = "it") -> list[Item]:
    """Items with varied modality, folder, metadata, mtime, parent and text."""
    out = []
    for j in range(start, start + n):
        folder = ("photos", "docs", "sounds")[j % 3]
        out.append(Item(
            id=f"{prefix}{j}",
            uri=f"/data/{folder}/file_{j}.{('jpg', 'txt', 'wav')[j % 3]}",
            modality=MODALITIES[j % 4],
            parent_id=f"{prefix}{j - j % 5}" if j % 5 else None,
            span=(float(j), float(j + 1)) if j % 2 else None,
            text=f"{WORDS[j % len(WORDS)]} number {j}",
            metadata={"tag": ("red", "blue")[j % 2], "rank": j % 7, "flag": j % 3 == 0},
            content_hash=f"h{j}",
            mtime=1000.0 + j,
        ))
    return out


def matches(item: Item, where: Filter | None) -> bool:
    """Naive Python reading of :class:`Filter`."""
    if where is None:
        return True
    if where.modalities is not None and item.modality not in where.modalities:
        return False
    if where.path_glob is not None and not fnmatch.fnmatchcase(item.uri, where.path_glob):
        return False
    if where.mtime_min is not None and (item.mtime is None or item.mtime < where.mtime_min):
        return False
    if where.mtime_max is not None and (item.mtime is None or item.mtime > where.mtime_max):
        return False
    for key, value in where.metadata.items():
        if key not in item.metadata or item.metadata[key] != value or type(item.metadata[key]) is not type(value):
            return False
    if where.parent_id is not None and item.parent_id != where.parent_id:
        return False
    return where.ids is None or item.id in where.ids


def exact_reference(
    ids: Sequence[str], mat: np.ndarray, q: np.ndarray, k: int
) -> tuple[np.ndarray, list[list[str]]]:
    """Exact top-k over float16-rounded vectors: (scores (nq, k) padded with -inf, ids)."""
    m = mat.astype(np.float16).astype(np.float32)
    s = q @ m.T if len(ids) else np.zeros((len(q), 0), np.float32)
    scores = np.full((len(q), k), -np.inf, dtype=np.float32)
    out: list[list[str]] = []
    for i in range(len(q)):
        order = np.argsort(-s[i], kind="stable")[:k]
        scores[i, : len(order)] = s[i, order]
        out.append([ids[j] for j in order])
    return scores, out


def assert_search_matches(
    store: Store, q: np.ndarray, k: int, ids: Sequence[str], mat: np.ndarray,
    where: Filter | None = None, atol: float = 2e-3,
) -> None:
    """Tie-aware: the returned scores equal the exact top-k scores, every returned id really has
    the score it was returned with, ids are unique, and padding is (-inf, None)."""
    ref_scores, _ = exact_reference(ids, mat, q, k)
    scores, got = store.search(SPACE, q, k, where)
    assert scores.shape == (len(q), k) and got.shape == (len(q), k)
    assert scores.dtype == np.float32
    true = dict(zip(ids, mat.astype(np.float16).astype(np.float32), strict=True))
    for i in range(len(q)):
        np.testing.assert_allclose(scores[i], ref_scores[i], atol=atol)
        real = [x for x in got[i] if x is not None]
        assert len(real) == len(set(real)) == int(np.isfinite(ref_scores[i]).sum())
        assert all(x is None for x in got[i][len(real):])
        for j, item_id in enumerate(real):
            assert abs(float(true[item_id] @ q[i]) - scores[i, j]) <= atol
