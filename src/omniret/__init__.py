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
from omniret.items import Hit, Item, Modality, Role

__version__ = "0.1.0"

if TYPE_CHECKING:
    from omniret.index import Index


def open(path: str = ".omniret", model: str | None = "auto", **kwargs: Any) -> Index:  # noqa: A001
    """Open (or create) the index folder at ``path``. See :class:`omniret.index.Index`."""
    from omniret.index import Index

    return Index.open(path, model=model, **kwargs)


__all__ = [
    "Hit",
    "Index",
    "Item",
    "MediaError",
    "Modality",
    "ModelError",
    "ModelMismatchError",
    "OmniretError",
    "QueryError",
    "Role",
    "StoreError",
    "__version__",
    "open",
]
