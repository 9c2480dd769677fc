"""Checking a whole index (``omniret check [--repair]``): the manifest, the store, the derived files.

:func:`check_index` runs on a store opened by itself, so it works on an index that ``omniret.open`` refuses
(a damaged manifest). The manifest is checked here (it names models, which only the encoder registry
knows); the store checks its own data (:meth:`omniret.store.base.Store.check`: SQLite integrity, the
commit marker, vector/FAISS/FTS consistency); the derived files of the index folder (query banks) are
checked last. Every finding is one :class:`~omniret.store.base.Problem` line; ``repair=True`` rebuilds
what is derived, and with ``model=NAME`` rewrites a damaged manifest for that model when its space and
dimension match the stored vectors.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omniret.encoders import registry
from omniret.errors import ModelError, OmniretError, StoreError
from omniret.store import open_store
from omniret.store.base import Problem, Store
from omniret.store.manifest import ENCODER_KEYS, manifest_for, manifest_problems

_REWRITE = ("rewrite it for the model the index was built with: `omniret check --repair --model NAME` "
            "(the model must embed into the stored space {spaces}), or restore the folder from a backup")


def _where(path: str) -> str:
    return (f"{os.path.join(path, 'omniret.db')} (manifest)" if "://" not in path
            else f"the manifest of the index at {path}")


def manifest_errors(manifest: Any, store: Store) -> list[str]:
    """What is wrong with the manifest: its shape (:func:`~omniret.store.manifest.manifest_problems`) and
    model entries whose names or recorded arguments the registry does not accept."""
    problems = manifest_problems(manifest, store.spaces())
    if problems:
        return problems
    for key in ENCODER_KEYS:
        entry = manifest.get(key)
        if entry:
            try:
                registry.check_arguments(entry["name"], dict(entry.get("config", {})), page_model=key == "page_encoder")
            except ModelError as e:
                problems.append(f"manifest[{key!r}] records {e}")
    return problems


def validate_manifest(manifest: dict[str, Any], store: Store, path: str) -> None:
    """Raise a clear error naming the manifest and ``omniret check`` when it is damaged or was written for
    another model class (run when an index is opened, before any encoder is built from it)."""
    problems = manifest_problems(manifest, store.spaces())
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise StoreError(f"{_where(path)} is damaged: {problems[0]}{more}. Run `omniret check` to see what is wrong and "
                         "`omniret check --repair --model NAME` to rewrite it for the model the index was built with")
    for problem in manifest_errors(manifest, store):
        raise ModelError(f"{_where(path)}: {problem}: it was written for another model class or omniret version. "
                         "Open it with the omniret that built it, or run `omniret check --repair --model NAME` to "
                         "rewrite the manifest")


def _rewrite_manifest(store: Store, model: str) -> str:
    """Write a fresh manifest for ``model`` (raises :class:`OmniretError` when it does not fit the vectors)."""
    encoder = registry.create(model)
    spaces = store.spaces()
    if spaces and spaces.get(encoder.space) != encoder.dim:
        raise OmniretError(f"model {model!r} embeds into space {encoder.space!r} ({encoder.dim}-d), but the stored "
                           f"vectors are in {spaces}; give the model the index was built with")
    store.set_manifest(manifest_for(encoder))
    return f"rewritten for model {model!r}"


def check_manifest(store: Store, path: str, *, repair: bool, model: str | None) -> list[Problem]:
    try:
        manifest: Any = store.manifest()
        problems = manifest_errors(manifest, store)
    except StoreError as e:
        problems = [str(e).split(": ", 1)[-1].split(". Run", 1)[0]]
    if not problems:
        return []
    found = f"{_where(path)}: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
    action = _REWRITE.format(spaces=", ".join(f"{s!r} ({d}-d)" for s, d in store.spaces().items()) or "(none yet)")
    if repair and model:
        try:
            return [Problem(found, _rewrite_manifest(store, model), derived=False, repaired=True)]
        except OmniretError as e:
            return [Problem(found, f"not rewritten: {e}", derived=False)]
    return [Problem(found, action, derived=False)]


def check_banks(folder: str | os.PathLike[str]) -> list[Problem]:
    """Query banks (``banks/*.npz``) must load; a damaged one is set again with ``omniret bank``."""
    import numpy as np

    out = []
    for path in sorted(Path(folder, "banks").glob("*.npz")):
        try:
            with np.load(path, allow_pickle=True) as z:
                vectors = z["vectors"]
                if vectors.ndim != 2 or len(z["texts"]) != len(vectors):
                    raise ValueError("its vectors and texts disagree")
        except Exception as e:  # noqa: BLE001 - any unreadable bank is reported
            out.append(Problem(f"{path}: the query bank cannot be read ({type(e).__name__}: {e})",
                               "set it again: `omniret bank --queries FILE` (or --from-items)", derived=False))
    return out


def check_index(path: str | os.PathLike[str], *, repair: bool = False, model: str | None = None,
                salvage: bool = False, store: Store | None = None, **store_options: Any) -> list[Problem]:
    """Every problem of the index at ``path`` (an empty list: nothing found). See the module docstring.

    ``salvage`` (with ``repair``): a data table with damaged pages is copied row by row into a new database,
    losing the rows that cannot be read (the next ``add`` indexes their files again).

    ``store``: an already opened store of that index (else it is opened here and closed after).
    """
    path = os.fspath(path)
    own = store is None
    if store is None:
        try:
            store = open_store(path, **store_options)
        except StoreError as e:
            return [Problem(str(e), "restore the index folder from a backup, or build a new index (omniret add into "
                            "a new folder)", derived=False)]
    try:
        problems = check_manifest(store, path, repair=repair, model=model)
        problems += store.check(repair=repair, salvage=salvage and repair)
        problems += check_banks(store.side_folder() or path)
        return problems
    finally:
        if own:
            store.close()
