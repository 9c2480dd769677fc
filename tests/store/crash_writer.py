"""Subprocess for the crash test: commit forever, printing each commit number after it returns.

Commit ``c`` adds items ``c{c}-0..c{c}-{M-1}`` (deterministic vectors) and deletes the items of
commit ``c-3``; every few commits it searches (building / catching up the FAISS index) and
sometimes closes and reopens the store (saving the index), so kills land everywhere.
"""

from __future__ import annotations

import sys

import numpy as np

from omniret.items import Item, Modality
from omniret.store.base import WriteBatch
from omniret.store.embedded import EmbeddedStore

M = 40
DIM = 8


def vectors_of(c: int) -> np.ndarray:
    x = np.random.default_rng(c).standard_normal((M, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def batch_of(c: int) -> WriteBatch:
    b = WriteBatch(delete_ids=[f"c{c - 3}-{j}" for j in range(M)] if c >= 3 else [])
    b.add([Item(id=f"c{c}-{j}", uri=f"/crash/{c}/{j}.txt", modality=Modality.TEXT, text=f"commit {c}")
           for j in range(M)], {"s": vectors_of(c)})
    return b


def main(folder: str, start: int) -> None:
    store = EmbeddedStore(folder, index_kind=sys.argv[3] if len(sys.argv) > 3 else "auto", flat_threshold=100)
    c = start
    while True:
        store.commit(batch_of(c))
        print(c, flush=True)
        if c % 3 == 0:
            store.search("s", vectors_of(c)[:2], 5)
        if c % 7 == 0:
            store.close()
            store = EmbeddedStore(folder, flat_threshold=100)
        c += 1


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
