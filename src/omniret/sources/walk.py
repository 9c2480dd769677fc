"""Walking files, folders and globs into candidate source files.

:func:`walk` turns what a user typed (``photos/``, ``notes/*.md``, ``data/**/*.jpg``, a file) into a
sorted, de-duplicated list of :class:`FileInfo` records: resolved absolute paths with their size,
``mtime_ns`` and modality (by extension, see :data:`MODALITY_BY_EXTENSION`). It never reads file
contents. Rules:

- folders are walked recursively; symlinks are followed (to files and to folders) but a folder
  whose real path was already visited is not entered again, so symlink loops end;
- hidden names (starting with ``"."``) are skipped unless ``include_hidden=True``; a path the
  user named explicitly is always taken, hidden or not;
- an omniret index folder (one holding ``omniret.db``) is never entered;
- with ``confine`` (folders), a file or folder whose real path lies outside all of them — one
  reached through a symlink pointing out — is skipped with a reason, never read (``omniret serve
  --root`` confines what a client may add to its roots);
- unsupported extensions, broken symlinks, special files (FIFOs, sockets, devices) and unreadable
  folders are reported in :attr:`WalkResult.skipped` with a reason;
- a path that does not exist, or a glob that matches nothing, raises :class:`OmniretError`.

Globs use ``fnmatch`` rules per path segment (``*`` does not cross ``/``) plus ``**`` for any number
of folders; matching is done during our own loop-safe walk rather than with :mod:`glob`, whose
``**`` follows symlinked folders without loop detection.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from types import MappingProxyType

from omniret.errors import OmniretError
from omniret.items import Modality
from omniret.media.formats import document_extensions

#: Extension (lower case, no dot) → modality. Documents (PDF, HTML, Office, OpenDocument, EPUB, e-mail)
#: come from the format registry, :data:`omniret.media.formats.FORMATS`. A file is listed whether or not
#: its decoder's optional library is installed: a missing one is the file's failure reason, by name.
MODALITY_BY_EXTENSION: MappingProxyType[str, Modality] = MappingProxyType(
    {
        **dict.fromkeys(("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "svg", "svgz", "heic", "heif",
                         "avif"),
                        Modality.IMAGE),
        **dict.fromkeys(("txt", "md", "markdown", "rst"), Modality.TEXT),
        **dict.fromkeys(("wav", "mp3", "flac", "ogg", "m4a"), Modality.AUDIO),
        **dict.fromkeys(("mp4", "mkv", "webm", "mov"), Modality.VIDEO),
        **dict.fromkeys(sorted(document_extensions()), Modality.DOCUMENT),
    }
)

#: A folder holding this file is an omniret index and is never walked into.
INDEX_MARKER = "omniret.db"

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One candidate source file: resolved absolute path, size in bytes, mtime in ns, modality."""

    uri: str
    size: int
    mtime_ns: int
    modality: Modality


@dataclass(frozen=True, slots=True)
class Skipped:
    """A path the walk saw but will not ingest, with a short reason."""

    uri: str
    reason: str


@dataclass(frozen=True)
class WalkResult:
    """The outcome of :func:`walk`: files sorted by URI, skipped paths, and the walked scope.

    ``covers(uri)`` says whether a known source at ``uri`` would have been found by this walk if
    it still existed; change detection uses it so that ``add notes/`` does not declare the photos
    added earlier as gone.
    """

    files: tuple[FileInfo, ...]
    skipped: tuple[Skipped, ...]
    hidden: int = 0  # hidden names not entered (not counted as skipped)
    include_hidden: bool = False
    _dirs: frozenset[str] = field(default=frozenset(), repr=False)
    _explicit: frozenset[str] = field(default=frozenset(), repr=False)
    _globs: tuple[tuple[str, tuple[str, ...]], ...] = field(default=(), repr=False)

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)

    def covers(self, uri: str) -> bool:
        """True if ``uri`` lies in the part of the file system this walk looked at."""
        if uri in self._explicit:
            return True
        if self._under_walked_dir(uri):
            return True
        for base, pats in self._globs:
            rel = _relative_parts(uri, base)
            if rel is not None and _glob_covers(rel, pats, self.include_hidden):
                return True
        return False

    def _under_walked_dir(self, uri: str) -> bool:
        """True if an ancestor of ``uri`` was walked in full, with no hidden name in between
        (so files of a since-deleted subfolder count as covered)."""
        head, name = os.path.split(uri)
        while name:
            if name.startswith(".") and not self.include_hidden:
                return False
            if head in self._dirs:
                return True
            head, name = os.path.split(head)
        return False


def modality_for(path: str | os.PathLike[str]) -> Modality | None:
    """The modality of ``path`` by its extension, or ``None`` if omniret does not handle it."""
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    return MODALITY_BY_EXTENSION.get(ext)


def is_glob(path: str) -> bool:
    """True if ``path`` contains glob characters (``*``, ``?``, ``[``)."""
    return any(c in _GLOB_CHARS for c in path)


def walk(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    include_hidden: bool = False,
    confine: Sequence[str] = (),
) -> WalkResult:
    """Expand files, folders and globs into candidate source files (see the module docstring).

    ``confine``: when given, only files whose real path lies under one of these folders are taken.

    Raises :class:`OmniretError` naming the path when a path does not exist or a glob matches
    nothing.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    w = _Walker(include_hidden, tuple(os.path.realpath(c) for c in confine))
    for p in paths:
        w.root(os.fspath(p))
    by_uri = {f.uri: f for f in w.files}
    skipped = {s.uri: s for s in w.skipped if s.uri not in by_uri}
    return WalkResult(
        files=tuple(by_uri[u] for u in sorted(by_uri)),
        skipped=tuple(skipped[u] for u in sorted(skipped)),
        hidden=w.hidden,
        include_hidden=include_hidden,
        _dirs=frozenset(w.full_dirs),
        _explicit=frozenset(w.explicit),
        _globs=tuple(w.globs),
    )


class _Walker:
    """Mutable state of one :func:`walk` call (kept private; the result is frozen)."""

    def __init__(self, include_hidden: bool, confine: tuple[str, ...] = ()) -> None:
        self.include_hidden = include_hidden
        self.confine = confine
        self.files: list[FileInfo] = []
        self.skipped: list[Skipped] = []
        self.hidden = 0
        self.visited: set[str] = set()  # real paths of folders walked in full (loop guard)
        self.full_dirs: set[str] = set()  # real paths of folders listed in full (not via a glob)
        self.explicit: set[str] = set()
        self.globs: list[tuple[str, tuple[str, ...]]] = []

    # -- roots ------------------------------------------------------------------------------
    def root(self, path: str) -> None:
        path = os.path.expanduser(path)
        if is_glob(path):
            self._glob_root(path)
            return
        if not os.path.lexists(path):
            raise OmniretError(
                f"path not found: {path!r}; check the spelling or pass an existing file or folder"
            )
        if os.path.isdir(path):
            self._dir(os.path.realpath(path), None, None, self.visited)
        elif os.path.islink(path) and not os.path.exists(path):
            raise OmniretError(f"path {path!r} is a broken symlink; fix or remove the link")
        else:
            real = os.path.realpath(path)
            self.explicit.add(real)
            self._file(real)

    def _glob_root(self, pattern: str) -> None:
        parts = os.path.abspath(pattern).split(os.sep)
        cut = next(i for i, part in enumerate(parts) if is_glob(part))
        base = os.sep.join(parts[:cut]) or os.sep
        pats = tuple(parts[cut:])
        before = len(self.files) + len(self.skipped)
        if os.path.isdir(base):
            real = os.path.realpath(base)
            self.globs.append((real, pats))
            self._dir(real, (), pats, set())
        if len(self.files) + len(self.skipped) == before:
            raise OmniretError(f"no file matches the pattern {pattern!r}; check the pattern and its folder")

    # -- visiting ---------------------------------------------------------------------------
    def _dir(
        self, real: str, rel: tuple[str, ...] | None, pats: tuple[str, ...] | None, seen: set[str]
    ) -> None:
        """Walk folder ``real``; with ``pats``, ``rel`` is its path below the glob base.

        ``seen`` holds the real paths already entered in this mode (full walk, or one glob).
        """
        if real in seen:
            return
        if not self._inside(real):
            return
        if os.path.exists(os.path.join(real, INDEX_MARKER)):
            self.skipped.append(Skipped(real, "omniret index folder"))
            return
        seen.add(real)
        try:
            with os.scandir(real) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            self.skipped.append(Skipped(real, f"cannot list folder ({e.strerror or e})"))
            return
        if pats is None:
            self.full_dirs.add(real)
        for entry in entries:
            self._entry(entry, rel, pats, seen)

    def _entry(
        self,
        entry: os.DirEntry[str],
        rel: tuple[str, ...] | None,
        pats: tuple[str, ...] | None,
        seen: set[str],
    ) -> None:
        if entry.name.startswith(".") and not self.include_hidden:
            self.hidden += 1
            return
        sub = None if rel is None else (*rel, entry.name)
        matched = sub is not None and pats is not None and _glob_match(sub, pats)
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            if pats is None or matched:  # a folder matched by a glob is taken whole
                self._dir(_real(entry), None, None, self.visited)
            elif sub is not None and _glob_prefix(sub, pats):
                self._dir(_real(entry), sub, pats, seen)
            return
        if pats is not None and not matched:
            return
        if entry.is_symlink() and not os.path.exists(entry.path):
            self.skipped.append(Skipped(os.path.abspath(entry.path), "broken symlink"))
            return
        self._file(_real(entry))

    def _inside(self, real: str) -> bool:
        """False (and the path reported as skipped) when ``real`` escapes the confining folders."""
        if not self.confine or any(is_under(real, c) for c in self.confine):
            return True
        self.skipped.append(Skipped(real, "outside the allowed folders (reached through a symlink); not read"))
        return False

    def _file(self, real: str) -> None:
        if not self._inside(real):
            return
        modality = modality_for(real)
        if modality is None:
            ext = os.path.splitext(real)[1].lower()
            self.skipped.append(Skipped(real, f"unsupported extension {ext!r}" if ext else "no extension"))
            return
        try:
            st = os.stat(real)
        except FileNotFoundError:
            self.skipped.append(Skipped(real, "file vanished"))
            return
        except OSError as e:
            self.skipped.append(Skipped(real, f"cannot stat ({e.strerror or e})"))
            return
        if not stat.S_ISREG(st.st_mode):
            self.skipped.append(Skipped(real, "not a regular file"))
            return
        self.files.append(FileInfo(real, st.st_size, st.st_mtime_ns, modality))


def is_under(path: str, folder: str) -> bool:
    """True if the (already resolved) ``path`` is ``folder`` or lies below it."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _real(entry: os.DirEntry[str]) -> str:
    """Resolved path of an entry of a folder that is itself resolved: only symlinks need work
    (``realpath`` costs a system call per path component)."""
    return os.path.realpath(entry.path) if entry.is_symlink() else entry.path


# -- glob matching on path segments ----------------------------------------------------------
def _glob_match(parts: Sequence[str], pats: Sequence[str]) -> bool:
    """Full match of path segments against pattern segments (``**`` = zero or more segments)."""
    if not pats:
        return not parts
    if pats[0] == "**":
        return any(_glob_match(parts[i:], pats[1:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], pats[0]) and _glob_match(parts[1:], pats[1:])


def _glob_prefix(parts: Sequence[str], pats: Sequence[str]) -> bool:
    """True if some path starting with ``parts`` (a folder) could still match ``pats``."""
    if not parts:
        return bool(pats)
    if not pats:
        return False
    if pats[0] == "**":
        return True
    return fnmatchcase(parts[0], pats[0]) and _glob_prefix(parts[1:], pats[1:])


def _glob_covers(parts: Sequence[str], pats: Sequence[str], include_hidden: bool) -> bool:
    """True if a file at ``parts`` below a glob base would be found by that glob."""
    if not include_hidden and any(p.startswith(".") for p in parts):
        return False
    return any(_glob_match(parts[:i], pats) for i in range(1, len(parts) + 1))


def _relative_parts(uri: str, base: str) -> tuple[str, ...] | None:
    prefix = base.rstrip(os.sep) + os.sep
    if not uri.startswith(prefix):
        return None
    return tuple(uri[len(prefix) :].split(os.sep))
