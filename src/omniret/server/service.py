"""The glue the routes call: one object holding the index, the write lock and the upload folders.

Routes stay a few lines each: parse, call one method here (which calls one library function),
format. Searches run in worker threads and may overlap each other and an ``add``; writes
(add, remove, classify with ``write``) are serialised by one lock.
"""

from __future__ import annotations

import functools
import inspect
import os
import shutil
import tempfile
import threading
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omniret.errors import MediaError, QueryError
from omniret.index import Index
from omniret.ingest.work import AddReport
from omniret.items import Hit, Item, make_id
from omniret.server.errors import HTTPProblem
from omniret.server.settings import ServerSettings
from omniret.server.uploads import Pending, Uploads

#: leading bytes of the sound formats a query upload is recognised as
_AUDIO_MAGIC = (b"RIFF", b"ID3", b"fLaC", b"OggS", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2", b"FORM")
_COPY_CHUNK = 1 << 20


class Service:
    """An :class:`Index` served over HTTP (thread-safe for many readers and one writer at a time)."""

    def __init__(self, index: Index, settings: ServerSettings, *, owns_index: bool) -> None:
        self.index = index
        self.settings = settings
        self.owns_index = owns_index
        self.write_lock = threading.Lock()
        self.root = Path(os.path.realpath(index.path))
        self.upload_dir = self.root / "uploads"
        self.query_tmp = Path(tempfile.mkdtemp(prefix="omniret-query-"))
        # a read-only index (read-only media): thumbnails are cached in the private temp folder instead
        self.thumb_dir = self.query_tmp / "thumbs" if index.store.read_only else self.root / "thumbs"
        self._base: str | None = None  # see _source_base
        self.uploads = Uploads.of_index(index, self.upload_dir)
        if settings.batch_queries:  # requests run in many threads: let their query encodings share calls
            index.batch_queries(wait_ms=settings.batch_wait_ms)
        if settings.writes_enabled and not index.store.read_only:  # leftovers of uploads killed in an earlier run
            with self.write_lock:
                self.uploads.cleanup()

    def close(self) -> None:
        shutil.rmtree(self.query_tmp, ignore_errors=True)
        if self.settings.batch_queries:
            self.index.batch_queries(False)
        if self.owns_index:
            self.index.close()

    def public_uri(self, uri: str) -> str:
        """``uri`` as clients see it, never an absolute server path: relative to the ``--root`` it lies
        under (led by that folder's name), ``uploads/…`` for uploads, else relative to the common folder
        of the index's sources (led by its name); just the file name when none of those applies."""
        from omniret.sources.walk import is_under

        for base in (*self.settings.roots, str(self.upload_dir), self._source_base()):
            if base and base != os.sep and is_under(uri, base) and uri != base:
                return f"{os.path.basename(base) or base}/{os.path.relpath(uri, base)}"
        return os.path.basename(uri)

    def _source_base(self) -> str:
        """The deepest folder holding every indexed source file (computed once, widened by adds)."""
        if self._base is None:
            uris = list(self.index.store.source_states())
            self._base = "" if not uris else os.path.dirname(uris[0]) if len(uris) == 1 else os.path.commonpath(uris)
        return self._base

    def _widen_base(self, paths: Sequence[str]) -> None:
        """Keep :meth:`_source_base` covering files just added under ``paths`` (files or folders)."""
        if self._base is None or not paths:
            return
        folders = [p if os.path.isdir(p) else os.path.dirname(p) for p in paths]
        self._base = os.path.commonpath([self._base, *folders] if self._base else folders)

    def known_paths(self) -> dict[str, str]:
        """Server folders and the labels that replace them in messages sent to clients."""
        out = {str(self.upload_dir): "<uploads>", str(self.query_tmp): "<upload>", str(self.root): "<index>"}
        out.update({r: f"<root {i}>" for i, r in enumerate(self.settings.roots)})
        return out

    # -- reading --------------------------------------------------------------------------
    def search(self, text: str | None, k: int, options: dict[str, Any], upload: Path | None = None,
               upload_kind: str = "image", upload_name: str = "upload") -> list[Hit]:
        kwargs: dict[str, Any] = dict(options)
        if upload is not None:
            kwargs[upload_kind] = str(upload)
        if text is None and upload is None and not kwargs.get("like"):
            raise HTTPProblem(400, "give a query: text, an uploaded image or sound (multipart 'file'), or like=[ids]")
        self._check_supported(self.index.search, kwargs, "search")
        try:
            return self.index.search(text, k=k, **kwargs)
        except (QueryError, MediaError) as e:
            if upload is None:
                raise
            raise HTTPProblem(400, str(e).replace(str(upload), repr(upload_name))) from e

    def classify(self, labels: list[str], options: dict[str, Any]) -> list[dict[str, Any]]:
        fn = getattr(self.index, "classify", None)
        if fn is None:
            raise HTTPProblem(400, "this omniret version has no zero-shot classification (Index.classify)")
        self._check_supported(fn, options, "classify")
        if options.get("write"):
            with self.write_lock:
                return [self._public(_as_dict(r)) for r in fn(labels, **options)]
        return [self._public(_as_dict(r)) for r in fn(labels, **options)]

    def _public(self, result: dict[str, Any]) -> dict[str, Any]:
        if isinstance(result.get("uri"), str):
            result = {**result, "uri": self.public_uri(result["uri"])}
        return result

    def get(self, item_id: str) -> Item:
        if not isinstance(item_id, str) or not 0 < len(item_id) <= 200:
            raise HTTPProblem(404, "no item with that id")
        item = self.index.get(item_id)
        if item is None:
            raise HTTPProblem(404, f"no item with id {item_id[:80]!r}; ids come from /search results")
        return item

    def media_path(self, item_id: str) -> str:
        """The original file of an indexed item (only ever a path the index recorded, and only while that
        path still resolves to itself)."""
        item = self.get(item_id)
        self._check_served(item)
        return item.uri

    def thumbnail(self, item_id: str) -> Path:
        from omniret.server.thumbs import thumbnail

        item = self.get(item_id)
        self._check_served(item)
        return thumbnail(item, self.thumb_dir, size=self.settings.thumb_size)

    def _check_served(self, item: Item) -> None:
        """Refuse to read a file whose recorded path no longer resolves to itself.

        The index records real paths (links resolved, and a server-side add only takes files under
        its roots), so a path that now resolves elsewhere had a symlink put into it since it was
        indexed: serving it could hand out any file on the server.
        """
        uri = item.uri
        if not os.path.isfile(uri):
            raise HTTPProblem(404, f"the file of item {item.id} is no longer on the server; re-run add with prune")
        if os.path.realpath(uri) != os.path.normpath(uri):
            raise HTTPProblem(403, f"the file of item {item.id} is now reached through a symbolic link, "
                                   "so it is not served; re-run add on its folder")

    @staticmethod
    def _check_supported(fn: Callable[..., Any], kwargs: dict[str, Any], what: str) -> None:
        """400 (not 5xx: the client can leave them out) naming the options this library version's ``fn`` does not take (checked before calling)."""
        params = accepted_keywords(fn)
        if params is None:
            return
        unknown = sorted(k for k in kwargs if k not in params)
        if unknown:
            hint = " (searching by sound)" if "audio" in unknown else ""
            raise HTTPProblem(400, f"this omniret version's {what} does not support option(s) "
                                   f"{', '.join(unknown)}{hint}; leave them out or upgrade omniret")

    # -- uploads --------------------------------------------------------------------------
    def save_query_upload(self, src: Any, filename: str) -> tuple[Path, str]:
        """Copy an uploaded query file to a private temp file; return it and ``image`` or ``audio``."""
        fd, name = tempfile.mkstemp(dir=self.query_tmp, suffix=Path(filename).suffix[:10])
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, _COPY_CHUNK)
        path = Path(name)
        with open(path, "rb") as f:
            head = f.read(16)
        if not head:
            path.unlink(missing_ok=True)
            raise HTTPProblem(400, f"uploaded file {filename!r} is empty")
        kind = "audio" if head.startswith(_AUDIO_MAGIC) and not head[8:12] == b"WEBP" else "image"
        return path, kind

    def check_writable(self) -> None:
        """403 when the index is read-only (read-only media or mount): before an upload touches the disk."""
        if self.index.store.read_only:
            reason = getattr(self.index.store, "read_only_reason", None) or "opened read-only"
            raise HTTPProblem(403, f"the index is read-only ({self.scrub_path(reason)}); it can be searched, "
                              "not written")

    def scrub_path(self, text: str) -> str:
        return text.replace(str(self.root), "<index>")

    def receive_upload(self, src: Any, filename: str) -> Pending:
        """Receive an uploaded file for indexing (placed and indexed by :meth:`add_uploads`)."""
        self.check_writable()
        return self.uploads.receive(src, filename)

    # -- writing --------------------------------------------------------------------------
    def add(self, paths: Sequence[str], *, prune: bool = False, confine: Sequence[str] | None = None) -> AddReport:
        """Index server-side paths; every file the walk reaches must lie (real path) under ``confine``
        (default: the server's roots), so a symlink pointing out of them is skipped, never read."""
        confine = self.settings.roots if confine is None else confine
        if not confine:
            raise HTTPProblem(403, "adding server-side paths is disabled; start the server with --root DIR")
        with self.write_lock:
            report = self.index.add(list(paths), workers=0, prune=prune, confine=tuple(confine))
            self._widen_base(paths)
        return report

    def add_uploads(self, received: Sequence[Pending]) -> tuple[AddReport, list[str]]:
        """Place and index received uploads; a file that could not be indexed is deleted again, unless an
        item points at it (see :mod:`omniret.server.uploads`), and reported."""
        with self.write_lock:
            self.uploads.cleanup()
            files = [self.uploads.place(p) for p in received]
            report = self.index.add([str(f) for f in files], workers=0, confine=(str(self.upload_dir),))
            self._widen_base([str(self.upload_dir)])
            ids = []
            for f in files:
                if self.uploads.release(f):
                    continue
                ids.append(make_id(str(f)))
        if not ids and (report.failed or report.skipped):
            reasons = "; ".join(f"{os.path.basename(u)}: {r}" for u, r in (report.failed + report.skipped)[:5])
            raise HTTPProblem(400, f"nothing could be indexed: {reasons}")
        return report, ids

    def remove(self, item_id: str) -> int:
        """Remove an item; a whole file (an item without parent) goes with all its parts, and an uploaded
        file with it (a twin upload of the same bytes keeps its own)."""
        item = self.get(item_id)
        with self.write_lock:
            n = self.index.remove([item.uri] if item.parent_id is None else [item.id])
            if item.parent_id is None:
                self.uploads.release(item.uri)
        return n


def _as_dict(result: Any) -> dict[str, Any]:
    """A classification result as JSON-able data (dicts, ``to_dict()`` objects or dataclasses)."""
    import dataclasses

    if isinstance(result, dict):
        return result
    if hasattr(result, "to_dict"):
        return dict(result.to_dict())
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    raise TypeError(f"unexpected classification result {type(result).__name__}")


def accepted_keywords(fn: Callable[..., Any]) -> frozenset[str] | None:
    """The keyword arguments ``fn`` takes: its named parameters, plus the keys of the TypedDict of a
    ``**kwargs: Unpack[TD]`` (``Index.search``'s flat :class:`~omniret.query.options.SearchKnobs`);
    ``None`` when that cannot be told (a bare ``**kwargs``, or no signature).

    Cached per function (a bound method counts as its function): resolving the type hints took
    12 ms, as long as encoding the query, and every search request asks."""
    func = getattr(fn, "__func__", None)
    return _accepted_keywords(fn, False) if func is None else _accepted_keywords(func, True)


@functools.lru_cache(maxsize=64)
def _accepted_keywords(fn: Callable[..., Any], bound: bool) -> frozenset[str] | None:
    try:
        params = dict(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return None
    if bound and params:  # the function of a bound method: its first parameter is taken already
        params.pop(next(iter(params)))
    names = {n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    var = next((n for n, p in params.items() if p.kind is p.VAR_KEYWORD), None)
    if var is None:
        return frozenset(names)
    try:
        hint = typing.get_type_hints(fn, include_extras=True).get(var)
    except Exception:  # unresolvable annotations: cannot tell
        return None
    if typing.get_origin(hint) is not typing.Unpack:
        return None
    (td,) = typing.get_args(hint)
    return frozenset(names | set(typing.get_type_hints(td)))
