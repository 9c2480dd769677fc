"""The knobs of a search, grouped: what may be returned (:class:`Filters`), how candidates are found
and re-scored (:class:`Ranking`), and how many at which granularity (:class:`SearchOptions`).

The query itself (text, image, audio, negatives, examples, terms) stays in the arguments of
:meth:`omniret.index.Index.search`; everything else is one frozen :class:`SearchOptions`, built once
at the edge and reusable across queries::

    opts = SearchOptions(k=5, filters=Filters(modality="image"), ranking=Ranking(hubness="qbnorm"))
    idx.search("a red car", options=opts)
    idx.search("a red car", k=5, modality="image", hubness="qbnorm")   # the same search, flat keywords

Flat keywords (:class:`SearchKnobs`) are sorted into the groups by :meth:`SearchOptions.of`; an unknown
keyword is an error that lists the known ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypedDict

from omniret.errors import QueryError
from omniret.items import Modality
from omniret.query.args import make_filter
from omniret.store.base import Filter


@dataclass(frozen=True)
class Filters:
    """Which items a search may return: ``modality`` (one or several), ``where`` (metadata equality,
    or a :class:`~omniret.store.base.Filter`), ``path_glob`` and a modification-time window."""

    modality: str | Modality | Sequence[str | Modality] | None = None
    where: Filter | Mapping[str, Any] | None = None
    path_glob: str | None = None
    mtime_min: float | None = None
    mtime_max: float | None = None

    def to_filter(self) -> Filter | None:
        """The store-level :class:`~omniret.store.base.Filter` (``None`` when nothing filters)."""
        return make_filter(self.modality, self.where, self.path_glob, self.mtime_min, self.mtime_max)


@dataclass(frozen=True)
class Ranking:
    """How candidates are found and re-scored (:mod:`omniret.query.pipeline`, :mod:`omniret.query.routing`).

    ``route``: auto | all | llm | a modality. ``hubness``: none | is | qbnorm | dbnorm | dualdis.
    ``gap``: none | center | calibrate. ``compose`` (text + image queries): sum | weimo | pdv, with
    ``alpha``/``beta``. ``hybrid``: none | rrf | minmax | zscore (BM25 fused with dense).
    ``candidates``: the ANN depth K' the stages see (default: see ``StageOptions.depth``).
    ``rerank``: a second stage over the top ``rerank_depth`` hits (default 50): none | cross |
    cross:<hub id or folder> | maxsim | model:<registry name> (:mod:`omniret.query.rerank`).
    """

    route: str | Modality = "auto"
    hubness: str = "none"
    gap: str = "none"
    compose: str = "sum"
    alpha: float | None = None
    beta: float | None = None
    hybrid: str = "none"
    candidates: int | None = None
    rerank: str = "none"
    rerank_depth: int | None = None


class SearchKnobs(TypedDict, total=False):
    """The flat keyword form of :class:`SearchOptions` that :meth:`omniret.index.Index.search` takes."""

    k: int
    granularity: str | None
    rollup: bool
    modality: str | Modality | Sequence[str | Modality] | None
    where: Filter | Mapping[str, Any] | None
    path_glob: str | None
    mtime_min: float | None
    mtime_max: float | None
    route: str | Modality
    hubness: str
    gap: str
    compose: str
    alpha: float | None
    beta: float | None
    hybrid: str
    candidates: int | None
    rerank: str
    rerank_depth: int | None


_FILTER_KEYS = frozenset(f.name for f in fields(Filters))
_RANKING_KEYS = frozenset(f.name for f in fields(Ranking))
_TOP_KEYS = frozenset({"k", "granularity", "rollup"})


@dataclass(frozen=True)
class SearchOptions:
    """Everything about a search except the query: ``k`` results at ``granularity`` (item | parent |
    root; ``rollup=True`` = parent), among items passing ``filters``, ranked by ``ranking``."""

    k: int = 10
    granularity: str | None = None
    rollup: bool = False
    filters: Filters = field(default_factory=Filters)
    ranking: Ranking = field(default_factory=Ranking)

    @classmethod
    def of(cls, options: SearchOptions | None = None, /, **knobs: Any) -> SearchOptions:
        """``options`` (or the defaults) with flat keywords applied over it, each into its group."""
        base = options if options is not None else cls()
        if not isinstance(base, SearchOptions):
            raise QueryError(f"options must be a SearchOptions, got {type(base).__name__}")
        unknown = sorted(set(knobs) - _TOP_KEYS - _FILTER_KEYS - _RANKING_KEYS)
        if unknown:
            known = ", ".join(sorted(_TOP_KEYS | _FILTER_KEYS | _RANKING_KEYS))
            raise QueryError(f"unknown search option(s) {', '.join(unknown)}; the options are: {known}")
        top = {k: v for k, v in knobs.items() if k in _TOP_KEYS}
        flt = {k: v for k, v in knobs.items() if k in _FILTER_KEYS}
        rank = {k: v for k, v in knobs.items() if k in _RANKING_KEYS}
        return replace(base, **top, filters=replace(base.filters, **flt), ranking=replace(base.ranking, **rank))

    def with_(self, **knobs: Any) -> SearchOptions:
        """A copy with flat keywords changed (``opts.with_(k=20, hubness="is")``)."""
        return SearchOptions.of(self, **knobs)
