"""Uploaded files kept for indexing: content-addressed, reference-counted by the index, cleaned up.

Layout: ``<index>/uploads/<content hash>/<name>``. Uploads of the same bytes share the hash folder,
and the same bytes under the same name are one file (so one item). The index is the reference
count: a file stays while an item points at it (the item id of a file is ``make_id(path)``).

- Removing an item deletes its own file only, and the hash folder once it is empty: a twin (the same
  bytes under another name) keeps its file.
- A failed upload deletes its file only when no item points at it: bytes and name equal to an
  indexed upload never take that upload's file with them.
- A killed upload leaves a ``.part-*`` file (killed while receiving) or a placed file no item points
  at (killed before its commit). :meth:`Uploads.cleanup` removes those once they are older than a
  grace period (another server process on the same index may be mid-upload); the server runs it at
  start-up and then at most every ``grace`` seconds while uploads come in.

Placing, indexing, releasing and cleaning run under the service's write lock, so a delete and an
upload of the same bytes never interleave.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omniret.items import make_id

_COPY_CHUNK = 1 << 20
PART_PREFIX = ".part-"
#: seconds an unreferenced upload is left alone (it may belong to an upload in flight elsewhere)
DEFAULT_GRACE_S = 600.0


@dataclass(frozen=True)
class Pending:
    """A received upload not yet placed: its temporary file, content hash and safe name."""

    tmp: Path
    digest: str
    name: str


class Uploads:
    """The upload folder of one index; ``referenced(path)`` says whether an item points at ``path``."""

    def __init__(self, folder: Path, referenced: Callable[[str], bool], grace_s: float = DEFAULT_GRACE_S) -> None:
        self.folder = folder
        self.referenced = referenced
        self.grace_s = grace_s
        self._last_cleanup = float("-inf")

    @classmethod
    def of_index(cls, index: Any, folder: Path, grace_s: float = DEFAULT_GRACE_S) -> Uploads:
        """Uploads whose references are the top-level items of ``index`` (an :class:`omniret.Index`)."""
        return cls(folder, lambda path: index.get(make_id(path)) is not None, grace_s)

    def receive(self, src: Any, name: str) -> Pending:
        """Stream ``src`` (a binary file object) into a temporary file, hashing it as it comes."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=PART_PREFIX)
        digest = hashlib.blake2b(digest_size=8)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(_COPY_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Pending(Path(tmp), digest.hexdigest(), name)

    def place(self, pending: Pending) -> Path:
        """Move a received upload to ``<hash>/<name>`` (same bytes and name: the same file, replaced)."""
        folder = self.folder / pending.digest
        folder.mkdir(exist_ok=True)
        final = folder / pending.name
        os.replace(pending.tmp, final)
        return final

    @staticmethod
    def discard(pending: Pending) -> None:
        """Forget a received upload that was never placed."""
        pending.tmp.unlink(missing_ok=True)

    def release(self, path: str | os.PathLike[str]) -> bool:
        """Delete the uploaded file ``path`` unless an item still points at it (then its hash folder,
        if that is empty now). Returns whether the file went."""
        p = Path(path)
        if p.parent.parent != self.folder or self.referenced(str(p)):
            return False
        p.unlink(missing_ok=True)
        _rmdir_if_empty(p.parent)
        return True

    def cleanup(self, *, force: bool = False) -> int:
        """Delete leftovers of killed uploads older than the grace period; returns how many files went.

        Runs at most once per grace period unless ``force``.
        """
        now = time.time()
        if not force and now - self._last_cleanup < self.grace_s:
            return 0
        self._last_cleanup = now
        if not self.folder.is_dir():
            return 0
        gone = 0
        for entry in list(self.folder.iterdir()):
            if entry.is_file() and entry.name.startswith(PART_PREFIX):
                gone += _unlink_if_stale(entry, now - self.grace_s)
            elif entry.is_dir() and not entry.is_symlink():
                for f in list(entry.iterdir()):
                    if f.is_file() and not self.referenced(str(f)):
                        gone += _unlink_if_stale(f, now - self.grace_s)
                _rmdir_if_empty(entry)
        return gone


def _unlink_if_stale(path: Path, cutoff: float) -> int:
    try:
        if path.stat().st_mtime >= cutoff:
            return 0
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1


def _rmdir_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty (a twin is still there), or already gone
        pass
