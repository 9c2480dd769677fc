"""omniret: zero-shot multimodal retrieval.

    >>> import omniret
    >>> idx = omniret.open(".omniret", model="offline")
    >>> idx.add(["photos/", "notes/"])
    >>> hits = idx.search("a cat on a sofa", k=5)

Importing this package loads no model and starts no thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omniret.errors import (
    MediaError,
    ModelError,
    ModelMismatchError,
    OmniretError,
    QueryError,
    StoreError,
)
from omniret.items import Hit, Item, Modality, Record, Role

__version__ = "0.1.0"

if TYPE_CHECKING:
    from omniret.index import Index
    from omniret.query.options import Filters, Ranking, SearchOptions

_LAZY = {"Index": "omniret.index", "SearchOptions": "omniret.query.options", "Filters": "omniret.query.options",
         "Ranking": "omniret.query.options"}


def __getattr__(name: str) -> Any:
    """``omniret.Index``, ``omniret.SearchOptions``…, imported on first use (``import omniret`` stays light)."""
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'omniret' has no attribute {name!r}")


def open(path: str = ".omniret", model: str | None = "auto", **kwargs: Any) -> Index:  # noqa: A001
    """Open (or create) the index folder at ``path``. See :class:`omniret.index.Index`."""
    from omniret.index import Index

    return Index.open(path, model=model, **kwargs)


__all__ = [
    "Filters",
    "Hit",
    "Index",
    "Item",
    "MediaError",
    "Modality",
    "ModelError",
    "ModelMismatchError",
    "OmniretError",
    "QueryError",
    "Ranking",
    "Record",
    "Role",
    "SearchOptions",
    "StoreError",
    "__version__",
    "open",
]
