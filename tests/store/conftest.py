"""The ``store_factory`` fixture: every conformance test runs once per backend listed here.

Adding a backend is one line in ``BACKENDS``: a name and a ``(folder) -> Store`` opener that opens
the *same* store again when called twice with the same folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from omniret.store.base import Store
from omniret.store.embedded import EmbeddedStore
from omniret.store.milvus import MilvusStore

BACKENDS: dict[str, Callable[[Path], Store]] = {
    "embedded": lambda folder: EmbeddedStore(folder / "embedded"),
    "milvus": lambda folder: MilvusStore(f"milvus-lite://{folder}/milvus.db"),
}


@pytest.fixture(params=sorted(BACKENDS))
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens the test's store (the same one on every call); closes everything it opened."""
    opened: list[Store] = []

    def open_() -> Store:
        store = BACKENDS[request.param](tmp_path)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()
