"""Change detection: which walked files are new, changed or unchanged, and which known sources are gone.

Rule (the one ``rsync`` and ``git``'s index use as a fast path): a file whose size and
``mtime_ns`` both equal the stored :class:`~omniret.store.base.SourceState` is unchanged and is
not read. Otherwise its content hash is computed: the same hash means unchanged content (only
the stored mtime needs refreshing: a "touch"); a different hash means changed. A known source
that the walk covered but did not find is gone.

:func:`detect_changes` is a pure function of its inputs plus the hashing callback, so tests
can count exactly which files get read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from omniret.errors import MediaError, is_environment_failure
from omniret.sources.walk import FileInfo

if TYPE_CHECKING:  # sources sit below the store in the layering; only the type is needed
    from omniret.store.base import SourceState


@dataclass(frozen=True)
class Changes:
    """The classification of one walk against the store's known sources.

    - ``new``: files never seen, with their content hash
    - ``changed``: known files whose bytes differ, with the new hash
    - ``unchanged``: known files with the same content (whether or not they were read)
    - ``touched``: the refreshed :class:`SourceState` of unchanged files whose size or mtime moved
      (content identical); write these back so the next run skips hashing them
    - ``gone``: URIs of known sources inside the walk's scope that no longer exist
    - ``retry``: known files whose last ingest failed but whose content is unchanged (the caller
      decides whether to try them again)
    - ``retry_env``: the same, where the failure came from the installation (a missing optional
      library, :func:`omniret.errors.is_environment_failure`): worth trying again every run
    - ``failed``: files the hasher could not read (vanished since the walk, permission denied),
      with the :class:`MediaError` reason; one bad file never aborts the whole run
    """

    new: tuple[tuple[FileInfo, str], ...] = ()
    changed: tuple[tuple[FileInfo, str], ...] = ()
    unchanged: tuple[FileInfo, ...] = ()
    touched: tuple[SourceState, ...] = ()
    gone: tuple[str, ...] = ()
    retry: tuple[FileInfo, ...] = ()
    failed: tuple[tuple[FileInfo, str], ...] = ()
    retry_env: tuple[FileInfo, ...] = ()

    @property
    def to_ingest(self) -> tuple[tuple[FileInfo, str], ...]:
        """New and changed files with their hashes: what the ingest must decode and encode."""
        return self.new + self.changed


def detect_changes(
    files: Iterable[FileInfo],
    known: Mapping[str, SourceState],
    hasher: Callable[[str], str],
    *,
    covers: Callable[[str], bool] | None = None,
) -> Changes:
    """Classify ``files`` (from a walk) against ``known`` states; see the module docstring.

    ``hasher(uri)`` returns a file's content hash (e.g. :func:`omniret.sources.hashing.hash_file`)
    and is called only for files that are new or whose size or mtime changed. ``covers(uri)``
    (e.g. :meth:`WalkResult.covers`) limits ``gone`` to known sources the walk looked for; with
    ``None`` every known source not walked is gone. A :class:`MediaError` from ``hasher`` puts
    the file in ``failed``; other exceptions propagate.
    """
    new: list[tuple[FileInfo, str]] = []
    changed: list[tuple[FileInfo, str]] = []
    unchanged: list[FileInfo] = []
    touched: list[SourceState] = []
    retry: list[FileInfo] = []
    retry_env: list[FileInfo] = []
    failed: list[tuple[FileInfo, str]] = []

    def again(state: SourceState) -> list[FileInfo]:
        return retry_env if is_environment_failure(state.error or "") else retry
    seen: set[str] = set()
    for info in files:
        seen.add(info.uri)
        state = known.get(info.uri)
        if state is not None and state.size == info.size and state.mtime_ns == info.mtime_ns:
            (again(state) if state.error else unchanged).append(info)
            continue
        try:
            digest = hasher(info.uri)
        except MediaError as e:
            failed.append((info, e.reason))
            continue
        if state is None:
            new.append((info, digest))
        elif digest != state.content_hash:
            changed.append((info, digest))
        else:  # same bytes, new size/mtime (a touch): refresh the state so next time is free
            (again(state) if state.error else unchanged).append(info)
            touched.append(replace(state, size=info.size, mtime_ns=info.mtime_ns))
    gone = sorted(u for u in known if u not in seen and (covers is None or covers(u)))
    return Changes(
        tuple(new), tuple(changed), tuple(unchanged), tuple(touched), tuple(gone), tuple(retry), tuple(failed),
        tuple(retry_env),
    )
