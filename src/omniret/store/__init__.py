"""Store backends and the registry that names them.

``open_store(location)`` picks the backend from the location: ``<scheme>://rest`` selects the
backend registered under ``scheme`` (``embedded://./idx``, ``milvus://host:19530/coll``,
``milvus-lite:///path/file.db``); a plain
path is an embedded store. Backends are imported only when used. Third parties register more
through the ``omniret.stores`` entry-point group (each entry point is a ``(location, **options) ->
Store`` factory).
May import only ``items`` and ``errors``: a store ranks nothing beyond raw similarity.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from omniret.errors import StoreError
from omniret.store.base import Filter, SourceState, Store, WriteBatch

__all__ = ["Filter", "SourceState", "Store", "StoreEntry", "WriteBatch", "backends", "open_store"]


@dataclass(frozen=True)
class StoreEntry:
    scheme: str
    factory_path: str  # "module:callable", imported only when used
    description: str
    example: str


_BUILTINS: tuple[StoreEntry, ...] = (
    StoreEntry(
        "embedded",
        "omniret.store.embedded:EmbeddedStore",
        "a local folder: SQLite (WAL) records + float16 vectors + FTS5, FAISS indexes as derived data",
        "./my-index",
    ),
    StoreEntry(
        "milvus",
        "omniret.store.milvus:MilvusStore",
        "a Milvus server (collections <collection>_*) + a local side-state SQLite file",
        "milvus://localhost:19530/my_index",
    ),
    StoreEntry(
        "milvus-lite",
        "omniret.store.milvus:MilvusStore",
        "a Milvus Lite file (pymilvus + milvus-lite) + <file>.state.sqlite next to it",
        "milvus-lite:///data/index.db",
    ),
)


def backends() -> list[StoreEntry]:
    """Built-in backends followed by those registered through entry points."""
    out = list(_BUILTINS)
    seen = {e.scheme for e in out}
    for ep in entry_points(group="omniret.stores"):
        if ep.name not in seen:
            out.append(StoreEntry(ep.name, ep.value, f"plugin from {ep.value}", f"{ep.name}://..."))
            seen.add(ep.name)
    return out


def _split(location: str) -> tuple[str, str]:
    scheme, sep, rest = location.partition("://")
    if not sep or not scheme.replace("+", "").replace("-", "").isalnum():
        return "embedded", location
    return scheme.lower(), (rest if scheme.lower() == "embedded" else location)


def open_store(location: str | os.PathLike[str], **options: Any) -> Store:
    """Open (creating if needed) the store at ``location``; ``options`` go to the backend."""
    scheme, target = _split(os.fspath(location))
    entries = {e.scheme: e for e in backends()}
    entry = entries.get(scheme)
    if entry is None:
        raise StoreError(f"unknown store backend {scheme!r} in {os.fspath(location)!r}; "
                         f"choose from {', '.join(sorted(entries))} (or give a folder path)")
    module, _, attr = entry.factory_path.partition(":")
    try:
        factory: Callable[..., Store] = getattr(import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise StoreError(f"store backend {scheme!r} cannot be loaded ({e}); install its extra") from e
    return factory(target, **options)
