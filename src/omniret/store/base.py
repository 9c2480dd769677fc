"""The store contract: the only code that touches disk or a database.

A store holds records (:class:`~omniret.items.Item`), per-space vectors, a text index for
lexical (BM25) search, the per-source change-detection state, the ingest error log, and the
manifest. Every write is one atomic :class:`WriteBatch` commit: after a crash the store holds
exactly the batches that finished.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, overload

import numpy as np

from omniret.items import Item, Modality


@dataclass(frozen=True)
class Filter:
    """Restricts a search or listing. All given conditions must hold (AND).

    - ``modalities``: item modality in this set
    - ``path_glob``: the item's URI matches this glob (``fnmatch`` rules: ``*`` also crosses ``/``)
    - ``mtime_min`` / ``mtime_max``: the source file's mtime (seconds since the epoch), inclusive
    - ``metadata``: equality on top-level keys of the item's JSON metadata
    - ``parent_id``: children of this item only
    - ``ids``: only these item ids
    """

    modalities: frozenset[Modality] | None = None
    path_glob: str | None = None
    mtime_min: float | None = None
    mtime_max: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    parent_id: str | None = None
    ids: frozenset[str] | None = None

    def only_modalities(self) -> bool:
        """Whether the modality set is this filter's only condition."""
        return self.modalities is not None and replace(self, modalities=None).is_empty()

    def is_empty(self) -> bool:
        return (
            self.modalities is None
            and self.path_glob is None
            and self.mtime_min is None
            and self.mtime_max is None
            and not self.metadata
            and self.parent_id is None
            and self.ids is None
        )


@dataclass(frozen=True)
class SourceState:
    """What was last seen of one source file, for change detection on the next ``add``."""

    uri: str
    size: int
    mtime_ns: int
    content_hash: str
    error: str | None = None  # the reason it failed to ingest, if it did


@dataclass
class WriteBatch:
    """One atomic commit: upserts, deletes, source states and logged errors together.

    ``vectors[space]`` is ``(ids, matrix)``: the ids of items (in this batch or already stored)
    and their ``(len(ids), dim)`` vectors in that space. Items may have no vector in a space
    (a parent record, a file whose text is empty).
    """

    items: list[Item] = field(default_factory=list)
    vectors: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)
    delete_ids: list[str] = field(default_factory=list)
    delete_uris: list[str] = field(default_factory=list)  # delete every item of these sources, and their state
    sources: list[SourceState] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (uri, reason)

    def add(self, items: Sequence[Item], vectors: Mapping[str, np.ndarray] | None = None) -> None:
        """Append items with vectors aligned to them (``vectors[space]`` has one row per item)."""
        self.items.extend(items)
        for space, mat in (vectors or {}).items():
            ids, old = self.vectors.get(space, ([], None))
            mat = np.asarray(mat, dtype=np.float32)
            if mat.shape[0] != len(items):
                raise ValueError(f"space {space!r}: {mat.shape[0]} vectors for {len(items)} items")
            ids = ids + [it.id for it in items]
            self.vectors[space] = (ids, mat if old is None else np.concatenate([old, mat]))

    def __len__(self) -> int:
        return len(self.items) + len(self.delete_ids) + len(self.delete_uris) + len(self.sources)


@dataclass(frozen=True)
class Problem:
    """One finding of a check: what was found, what to do about it (or what ``--repair`` did)."""

    found: str
    action: str
    derived: bool  # rebuildable from what the index holds (``--repair`` does it)
    repaired: bool = False

    def line(self) -> str:
        if self.repaired:
            return f"{self.found}: repaired ({self.action})"
        if self.derived:
            return f"{self.found}: derived data, `omniret check --repair` {self.action}"
        return f"{self.found}: {self.action}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "line": self.line()}


class IdRow(Sequence["str | None"]):
    """One query's hit ids, looked up in an index's id column only when read (position -1: ``None``).

    :meth:`Store.search_keyed` may return these instead of id arrays. A ranking stage searches K'
    = 100 candidates and shows about 10: looking up every candidate's id first touched 100 Python
    strings spread over memory (cache misses right after the ANN scan, ~8 us a search at 100k).
    Slices and :meth:`take` stay lazy; ``column[positions]`` must return an object array.
    """

    __slots__ = ("_col", "_pos")

    def __init__(self, column: Any, positions: np.ndarray) -> None:
        self._col = column
        self._pos = positions

    def __len__(self) -> int:
        return len(self._pos)

    @overload
    def __getitem__(self, i: int) -> str | None: ...
    @overload
    def __getitem__(self, i: slice) -> IdRow: ...
    def __getitem__(self, i: int | slice) -> str | None | IdRow:
        if isinstance(i, slice):
            return IdRow(self._col, self._pos[i])
        return self._lookup(np.atleast_1d(self._pos[i]))[0]

    def __iter__(self) -> Iterator[str | None]:
        return iter(self.tolist())

    def take(self, order: np.ndarray) -> IdRow:
        """These ids in the order of positions ``order`` (still lazy)."""
        return IdRow(self._col, self._pos[order])

    def padded(self) -> bool:
        """Whether any slot is empty (``None``)."""
        return bool(len(self._pos)) and int(self._pos.min()) < 0

    def tolist(self) -> list[str | None]:
        return self._lookup(self._pos)

    def _lookup(self, pos: np.ndarray) -> list[str | None]:
        if not len(pos):
            return []
        if pos.min() >= 0:
            return self._col[pos].tolist()  # type: ignore[no-any-return]
        out = self._col[np.maximum(pos, 0)].tolist()
        return [None if p < 0 else i for p, i in zip(pos.tolist(), out, strict=True)]


def check_queries(queries: np.ndarray, k: int, dim: int, space: str) -> np.ndarray:
    """Validate a search call's arguments (shared by every backend): ``(nq, dim)`` float32, C-contiguous."""
    from omniret.errors import QueryError

    q = np.asarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise QueryError(f"k must be a positive integer, got {k!r}")
    if q.ndim != 2 or q.shape[1] != dim:
        raise QueryError(f"queries of shape {q.shape} for space {space!r} of dim {dim}; pass (n, {dim})")
    if not np.all(np.isfinite(q)):
        raise QueryError("queries contain NaN or infinity; check the encoder output")
    return np.ascontiguousarray(q)


class Store(ABC):
    """Base class of store backends. See :mod:`omniret.store.embedded` for the default."""

    # -- manifest ---------------------------------------------------------------------------
    @abstractmethod
    def manifest(self) -> dict[str, Any]:
        """The index's self-description (encoders, spaces, dims, versions)."""

    @abstractmethod
    def set_manifest(self, manifest: Mapping[str, Any]) -> None:
        """Replace the manifest (atomically)."""

    # -- writes -----------------------------------------------------------------------------
    @abstractmethod
    def commit(self, batch: WriteBatch) -> None:
        """Apply ``batch`` atomically: all of it or, after a crash, none of it."""

    def upsert(self, items: Sequence[Item], vectors: Mapping[str, np.ndarray]) -> None:
        batch = WriteBatch()
        batch.add(items, vectors)
        self.commit(batch)

    def delete(self, ids: Sequence[str]) -> None:
        self.commit(WriteBatch(delete_ids=list(ids)))

    # -- reads ------------------------------------------------------------------------------
    @abstractmethod
    def search(
        self, space: str, queries: np.ndarray, k: int, where: Filter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest items by inner product: ``(scores (nq, k) float32, ids (nq, k) object)``.

        Rows are sorted by descending score; missing slots (fewer than ``k`` matches) hold
        score ``-inf`` and id ``None``.
        """

    def search_keyed(
        self, space: str, queries: np.ndarray, k: int, where: Filter | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """:meth:`search` plus each hit's *vector key* (nq, k) int64: a number the store gives an item's
        vector in a space, unchanged until that vector is replaced or deleted (-1 in empty slots), the
        same keys :meth:`iter_vectors_keyed` yields. ``None`` when the backend has no such keys.

        Derived per-item statistics (:mod:`omniret.query.stats`) index their arrays by key with one numpy
        gather instead of hashing every candidate id: at K' = 100 candidates the dict lookups, with
        their cache misses after an ANN scan, cost more than the ranking stage's arithmetic.
        """
        scores, ids = self.search(space, queries, k, where)
        return scores, ids, None

    @abstractmethod
    def vectors(self, space: str, ids: Sequence[str]) -> np.ndarray:
        """Stored vectors of ``ids`` in ``space`` as ``(len(ids), dim)`` float32 (NaN rows where absent)."""

    @abstractmethod
    def lexical(self, text: str, k: int, where: Filter | None = None) -> list[tuple[str, float]]:
        """BM25 search over item text and file names: ``[(id, score)]``, best first (higher is better)."""

    @abstractmethod
    def get(self, ids: Sequence[str]) -> list[Item | None]:
        """Items by id, in order (``None`` where unknown)."""

    @abstractmethod
    def iter_items(self, where: Filter | None = None) -> Iterator[Item]:
        """Every item matching ``where``."""

    @abstractmethod
    def count(self, where: Filter | None = None) -> int: ...

    @abstractmethod
    def spaces(self) -> dict[str, int]:
        """Vector spaces present, with their dimension."""

    @abstractmethod
    def source_states(self) -> dict[str, SourceState]:
        """Change-detection state of every known source, by URI."""

    @abstractmethod
    def errors(self, limit: int = 100) -> list[tuple[str, str, float]]:
        """The most recent ingest errors: ``(uri, reason, unix time)``, newest first."""

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """Counts per modality and space, size on disk, index kinds."""

    # -- change tracking (for derived statistics) ---------------------------------------------------
    def version(self) -> int:
        """A number that grows with every commit (the commit counter)."""
        raise NotImplementedError(f"{type(self).__name__} does not track versions")

    def side_folder(self) -> str | None:
        """A local folder for the files an index derives from this store (query banks, statistics,
        upgrade maps), or None: the index then keeps them in its own folder path. Backends opened
        from a URI must say, or the URI would be taken for a relative folder name."""
        return None

    def seen_version(self) -> int:
        """The commit number this store object last read, at least the one its latest search ran
        against. Backends that cache it (the embedded store) answer without a round trip; the
        default reads :meth:`version`."""
        return self.version()

    def iter_vectors(
        self, space: str, *, since: int = 0, chunk: int = 10_000
    ) -> Iterator[tuple[list[str], list[str], np.ndarray]]:
        """Live vectors of ``space`` written by commits after ``since``, in commit order, in chunks
        of ``(item ids, item modalities, (n, dim) float32)``."""
        raise NotImplementedError(f"{type(self).__name__} cannot stream vectors")

    def iter_vectors_keyed(
        self, space: str, *, since: int = 0, chunk: int = 10_000
    ) -> Iterator[tuple[list[str], list[str], np.ndarray, np.ndarray | None]]:
        """:meth:`iter_vectors` with each chunk's vector keys (see :meth:`search_keyed`), or ``None``."""
        for ids, mods, mat in self.iter_vectors(space, since=since, chunk=chunk):
            yield ids, mods, mat, None

    def deleted_since(self, space: str, since: int) -> int:
        """How many vectors of ``space`` were deleted or replaced by commits after ``since``."""
        raise NotImplementedError(f"{type(self).__name__} does not track deletions")

    @property
    def read_only(self) -> bool:
        """Whether this store refuses writes (an index on read-only media, or opened read-only)."""
        return False

    def checkpoint(self, *, resync_marker: bool = False) -> None:  # noqa: B027 - optional hook
        """Make everything committed so far durable in the store's main files (the embedded store folds its
        SQLite write-ahead log into the database). Called at the end of every ``add``/``remove`` run
        (``resync_marker=True`` after ``add``: see :meth:`omniret.store.embedded.EmbeddedStore.checkpoint`)."""

    def check(self, *, repair: bool = False, salvage: bool = False) -> list[Problem]:
        """Integrity and consistency problems of the stored data (``repair``: rebuild what is derived;
        ``salvage``: also copy the readable rows of damaged data tables). The default checks nothing; the
        embedded store runs :func:`omniret.store.check.check_store`."""
        return []

    def verify_before_write(self) -> None:  # noqa: B027 - optional hook
        """Raise :class:`~omniret.errors.StoreError` when the store is damaged or read-only, before a run writes."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and connections."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
