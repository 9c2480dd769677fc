"""Query-side helpers of the facade: user filter arguments → :class:`Filter`, query images, captions."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from omniret.errors import QueryError
from omniret.items import Item, Modality
from omniret.query import routing
from omniret.store.base import Filter, Store

ImageLike = Any  # a path, or a PIL image


def make_filter(
    modality: str | Modality | Sequence[str | Modality] | None = None,
    where: Filter | Mapping[str, Any] | None = None,
    path_glob: str | None = None,
    mtime_min: float | None = None,
    mtime_max: float | None = None,
) -> Filter | None:
    """Build a :class:`Filter` from user-facing arguments (``None`` when nothing filters)."""
    if isinstance(where, Filter):
        base = where
    elif where is None:
        base = Filter()
    elif isinstance(where, Mapping):
        for key, value in where.items():
            check_depth(value, f"where[{str(key)[:40]!r}]")
        base = Filter(metadata=dict(where))
    else:
        raise QueryError(f"where must be a mapping of metadata key → value, got {type(where).__name__}")
    mods = base.modalities
    if modality is not None:
        seq = [modality] if isinstance(modality, str | Modality) else list(modality)
        mods = frozenset(Modality.parse(m) for m in seq)
    flt = Filter(
        modalities=mods,
        path_glob=path_glob if path_glob is not None else base.path_glob,
        mtime_min=mtime_min if mtime_min is not None else base.mtime_min,
        mtime_max=mtime_max if mtime_max is not None else base.mtime_max,
        metadata=base.metadata,
        parent_id=base.parent_id,
        ids=base.ids,
    )
    return None if flt.is_empty() else flt


#: how deeply a metadata filter value may nest lists and dicts (a 5000-deep one hit Python's recursion limit)
MAX_FILTER_DEPTH = 32


def check_depth(value: Any, what: str, limit: int = MAX_FILTER_DEPTH) -> None:
    """Raise :class:`QueryError` when ``value`` nests lists/dicts deeper than ``limit`` (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, Mapping | list | tuple):
            if depth >= limit:
                raise QueryError(f"metadata filter {what}: nested over {limit} levels deep; compare a flatter value")
            stack.extend((x, depth + 1) for x in (v.values() if isinstance(v, Mapping) else v))


def restrict(flt: Filter | None, rt: routing.Route) -> Filter | None:
    """The user's filter narrowed to the route's modalities (an explicit route disjoint from it is an error)."""
    if rt.modalities is None:
        return flt
    base = flt or Filter()
    mods = rt.modalities if base.modalities is None else base.modalities & rt.modalities
    if not mods:
        if rt.source.startswith("llm:"):
            return flt  # the user's modality filter wins over the router
        raise QueryError(f"route {rt.source!r} and modality filter {sorted(m.value for m in base.modalities or ())} "
                         "exclude each other; drop one of them")
    return replace(base, modalities=frozenset(mods))


def load_query_image(image: ImageLike, target_size: int) -> Any:
    from PIL import Image

    from omniret.errors import MediaError
    from omniret.media.image import load_image, to_rgb

    if isinstance(image, Image.Image):
        return to_rgb(image)
    if isinstance(image, str | os.PathLike):
        try:
            return load_image(os.fspath(image), target_size=target_size)
        except MediaError as e:
            raise QueryError(f"query image {e}") from e
    raise QueryError(f"image must be a file path or a PIL image, got {type(image).__name__}")


def captions(it: Item | None) -> list[str]:
    """Captions of an item for WeiMoCIR: ``caption``/``captions``/``alt``/``ocr_text``/``title`` metadata."""
    if it is None:
        return []
    out: list[str] = []
    for key in ("caption", "captions", "alt", "ocr_text", "title"):
        v = it.metadata.get(key)
        if isinstance(v, str) and v.strip():
            out.append(v.strip())
        elif isinstance(v, list):
            out += [c.strip() for c in v if isinstance(c, str) and c.strip()]
    return out


def reference_caption(store: Store, image: ImageLike) -> str | None:
    """A caption of the reference image if it is an indexed file that has one (for PDV)."""
    if not isinstance(image, str | os.PathLike):
        return None
    from omniret.items import make_id

    caps = captions(store.get([make_id(os.path.realpath(os.fspath(image)))])[0])
    return caps[0] if caps else None


def item_texts(store: Store, limit: int) -> list[str]:
    out: list[str] = []
    for it in store.iter_items(Filter(modalities=frozenset({Modality.TEXT}))):
        if it.parent_id is not None and it.text:
            out.append(it.text)
        if len(out) >= limit:
            return out
    for it in store.iter_items(Filter(modalities=frozenset({Modality.IMAGE}))):
        out += captions(it)
        if len(out) >= limit:
            break
    return out[:limit]


def image_term(word: str) -> bool:
    """Whether a bare query-algebra word is an image file; a word that names a media file that is not a
    readable image file is an error (see :meth:`Index.parse_expression`)."""
    from omniret.errors import MediaError
    from omniret.media._io import check_regular_file
    from omniret.sources.walk import modality_for

    mod = modality_for(word)
    if mod is None or mod is Modality.TEXT:
        return False
    try:
        check_regular_file(word, "image file")
    except MediaError as e:
        raise QueryError(f"query term {e}; to search the word as text, quote it: '\"{word}\"'") from e
    if mod is not Modality.IMAGE:
        article = "an" if mod.value[0] in "aeiou" else "a"
        raise QueryError(f"query term {word!r} is {article} {mod.value} file; query algebra takes image files "
                         "(search by a sound with audio=, --audio)")
    return True
