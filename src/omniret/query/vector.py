"""A query vector of your own (``Index.search(vector=..., space=...)``): checked against its space and
turned into the one run the search stages take."""

from __future__ import annotations

from typing import Any

import numpy as np

from omniret.errors import QueryError
from omniret.items import Modality
from omniret.query.pipeline import Query, StageOptions
from omniret.store.base import Store


def vector_run(store: Store, main_space: str, vector: Any, space: str | None, others: tuple[Any, ...],
               opts: StageOptions) -> list[tuple[str, Query]]:
    """``[(space, query)]`` for ``vector`` in ``space`` (default ``main_space``), L2-normalised; ``[]`` when
    the space holds no vectors yet. ``others``: the other query arguments, which must be empty. The query
    counts as an image query for the stages (as algebra's vector terms do)."""
    if vector is None:
        raise QueryError("space= names the space of a query vector; give vector=[...] too")
    if any(x is not None and x != [] for x in others):
        raise QueryError("vector= is a query on its own; it cannot be combined with text=, image=, audio=, "
                         "negative=, like= or terms=")
    name = space or main_space
    spaces = store.manifest().get("spaces") or {}
    dim = int(spaces[name]["dim"]) if name in spaces else store.spaces().get(name)
    if dim is None:
        raise QueryError(f"unknown space {name!r}; this index has: {', '.join(sorted(spaces)) or 'none'}")
    if name != main_space and (opts.hubness != "none" or opts.hybrid != "none"):
        raise QueryError(f"hubness and hybrid stages work in the model's own space, not in {name!r}")
    try:
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError) as e:
        raise QueryError(f"vector must be a list or array of {dim} numbers ({e})") from e
    norm = float(np.linalg.norm(vec)) if np.all(np.isfinite(vec)) else 0.0
    if vec.shape != (dim,) or norm == 0.0:
        raise QueryError(f"space {name!r} takes {dim}-d query vectors with finite, not all zero values; "
                         f"got shape {vec.shape}")
    if name not in store.spaces():
        return []
    return [(name, Query(vec / norm, Modality.IMAGE))]
