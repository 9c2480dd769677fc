"""Modality filters keep their allowed positions and selector while the index is unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omniret.items import Item, Modality
from omniret.store.base import Filter
from omniret.store.embedded import EmbeddedStore
from omniret.store.faiss_index import IndexConfig

SPACE = "s16"


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _add(store: EmbeddedStore, prefix: str, n: int, mod: Modality, seed: int) -> dict[str, np.ndarray]:
    vecs = _unit(np.random.default_rng(seed).standard_normal((n, 16)))
    store.upsert([Item(f"{prefix}{i}", f"/d/{prefix}{i}", mod) for i in range(n)], {SPACE: vecs})
    return {f"{prefix}{i}": v for i, v in enumerate(store.vectors(SPACE, [f"{prefix}{i}" for i in range(n)]))}


def _exact(vecs: dict[str, np.ndarray], q: np.ndarray, k: int) -> list[str]:
    ids = sorted(vecs)
    s = np.array([vecs[i] @ q for i in ids])
    return [ids[j] for j in np.argsort(-s, kind="stable")[:k]]


@pytest.mark.parametrize("exact_max", [20_000, 10])  # exact scoring of the allowed set / a bitmap selector
def test_modality_filter_is_cached_and_follows_changes(tmp_path: Path, exact_max: int) -> None:
    cfg = IndexConfig(kind="flat", exact_filter_max=exact_max)
    with EmbeddedStore(tmp_path / "s", config=cfg) as store:
        text = _add(store, "t", 60, Modality.TEXT, 1)
        images = _add(store, "i", 50, Modality.IMAGE, 2)
        only_images = Filter(modalities=frozenset({Modality.IMAGE}))
        q = _unit(np.random.default_rng(3).standard_normal(16))
        _, ids = store.search(SPACE, q, 5, only_images)
        assert ids[0].tolist() == _exact(images, q, 5)

        calls = []
        real = store._filtered_vids
        store._filtered_vids = lambda space, where: calls.append(where) or real(space, where)  # type: ignore[method-assign]
        _, again = store.search(SPACE, q, 5, only_images)
        _, keyed, _ = store.search_keyed(SPACE, q, 5, only_images)
        assert again[0].tolist() == ids[0].tolist() == keyed[0].tolist() and calls == []  # no SQL pass

        images |= _add(store, "j", 10, Modality.IMAGE, 4)  # a commit: the restriction is rebuilt
        _, ids = store.search(SPACE, q, 5, only_images)
        assert ids[0].tolist() == _exact(images, q, 5) and len(calls) == 1
        gone = ids[0][0]
        store.delete([gone])
        images.pop(gone)
        _, ids = store.search(SPACE, q, 5, only_images)
        assert ids[0].tolist() == _exact(images, q, 5) and gone not in ids[0].tolist()
        _, ids = store.search(SPACE, q, 5, Filter(modalities=frozenset({Modality.TEXT})))
        assert ids[0].tolist() == _exact(text, q, 5)


def test_only_modalities() -> None:
    assert Filter(modalities=frozenset({Modality.TEXT})).only_modalities()
    assert not Filter(modalities=frozenset({Modality.TEXT}), path_glob="*.txt").only_modalities()
    assert not Filter().only_modalities()
