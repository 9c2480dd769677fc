"""The ingest pipeline: sources → decode (worker processes) → encode (batched) → store (atomic commits).

One file is the unit of atomicity: a file's items, vectors and source state land in the same
commit, so a crash leaves every file either fully indexed or not at all, and a re-run of ``add``
picks up exactly the files whose state is missing.

Decoding runs in a pool of worker processes (``spawn``, so no torch state is forked) with a bounded
number of files in flight, overlapped with encoding in this process. The same functions —
:func:`plan`, :func:`decode_file`, :func:`encode_files` — are what a distributed ingest
(:mod:`omniret.scale`) maps over its workers, so there is one ingest logic, not a fork.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omniret.encoders.base import Encoder, ImagePreprocessor
from omniret.errors import MediaError
from omniret.items import Item, Modality, Role, make_id
from omniret.sources.changes import Changes, detect_changes
from omniret.sources.hashing import hash_file
from omniret.sources.walk import FileInfo, WalkResult, walk
from omniret.store.base import SourceState, Store, WriteBatch

#: modalities the single-machine ingest decodes today; others are walked, counted and reported
DECODED_MODALITIES = frozenset({Modality.IMAGE, Modality.TEXT})


@dataclass(frozen=True)
class IngestOptions:
    """Knobs of one ``add`` run (frozen; parsed once at the edge)."""

    workers: int | None = None  # decode processes; None = auto, 0 = decode in this process
    batch_size: int = 32  # encoder batch
    commit_every: int = 256  # items per commit (files are never split across commits)
    include_hidden: bool = False
    prune: bool = False  # delete items of files that are gone
    retry_failed: bool = False  # decode again files that failed before and did not change
    max_pixels: int | None = 178_956_970
    chunk_chars: int = 800
    chunk_overlap: int = 150


@dataclass
class AddReport:
    """What an ``add`` did. ``failed`` lists ``(uri, reason)``; ``skipped`` the walk's refusals."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    items: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "items": self.items,
            "failed": [{"uri": u, "reason": r} for u, r in self.failed],
            "skipped": [{"uri": u, "reason": r} for u, r in self.skipped],
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class DecodeTask:
    uri: str
    modality: Modality
    size: int
    mtime_ns: int
    content_hash: str


@dataclass
class DecodedFile:
    """A file after decoding: pixels for an image, chunks for a text file, or the failure reason."""

    task: DecodeTask
    error: str | None = None
    pixels: np.ndarray | None = None
    chunks: list[tuple[str, int, int]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DecodeConfig:
    """Everything a decode worker needs (picklable)."""

    preprocess: ImagePreprocessor | None
    target_size: int | None
    max_pixels: int | None
    chunk_chars: int
    chunk_overlap: int


# -- planning ---------------------------------------------------------------------------------------
def plan(paths: Sequence[str], store: Store, options: IngestOptions) -> tuple[WalkResult, Changes]:
    """Walk ``paths`` and classify the files against what ``store`` already holds."""
    walked = walk(paths, include_hidden=options.include_hidden)
    changes = detect_changes(walked.files, store.source_states(), hash_file, covers=walked.covers)
    return walked, changes


def _rehash(files: Iterable[FileInfo], report: AddReport) -> list[tuple[FileInfo, str]]:
    out = []
    for f in files:
        try:
            out.append((f, hash_file(f.uri)))
        except MediaError as e:
            report.failed.append((f.uri, e.reason))
    return out


# -- decoding (runs in worker processes) --------------------------------------------------------------
_WORKER_CONFIG: DecodeConfig | None = None


def _init_worker(config: DecodeConfig) -> None:
    global _WORKER_CONFIG
    _WORKER_CONFIG = config
    try:  # decoding is the worker's only job: keep it from oversubscribing the cores
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def _decode_in_worker(task: DecodeTask) -> DecodedFile:
    assert _WORKER_CONFIG is not None  # set by the pool initializer
    return decode_file(task, _WORKER_CONFIG)


def decode_file(task: DecodeTask, config: DecodeConfig) -> DecodedFile:
    """Decode one file; never raises for bad input (the reason is returned instead)."""
    try:
        if task.modality is Modality.IMAGE:
            return _decode_image(task, config)
        if task.modality is Modality.TEXT:
            return _decode_text(task, config)
        return DecodedFile(task, error=f"{task.modality.value} files are not indexed yet by this version")
    except MediaError as e:
        return DecodedFile(task, error=e.reason)
    except Exception as e:  # a decoder bug must not stop the run; it is reported per file
        return DecodedFile(task, error=f"unexpected {type(e).__name__}: {e}")


def _decode_image(task: DecodeTask, config: DecodeConfig) -> DecodedFile:
    from omniret.media.image import load_image

    if config.preprocess is None:
        return DecodedFile(task, error="the index's model does not embed images")
    im = load_image(task.uri, target_size=config.target_size, max_pixels=config.max_pixels)
    meta = {"width": im.width, "height": im.height}
    return DecodedFile(task, pixels=np.asarray(config.preprocess(im), dtype=np.float32), meta=meta)


def _decode_text(task: DecodeTask, config: DecodeConfig) -> DecodedFile:
    from omniret.media.text import load_text

    doc = load_text(task.uri, max_chars=config.chunk_chars, overlap=config.chunk_overlap)
    meta: dict[str, Any] = {"chars": len(doc.text), "encoding": doc.encoding}
    if doc.title:
        meta["title"] = doc.title
    return DecodedFile(task, chunks=[(c.text, c.start, c.end) for c in doc.chunks], meta=meta)


def decode_stream(
    tasks: Sequence[DecodeTask], config: DecodeConfig, workers: int, *, window: int = 64
) -> Iterator[DecodedFile]:
    """Decode ``tasks`` in order, with at most ``window`` files in flight across ``workers`` processes."""
    if workers <= 0 or len(tasks) < 2 * max(workers, 1):
        for t in tasks:
            yield decode_file(t, config)
        return
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(config,)) as pool:
        pending: deque[Any] = deque()
        it = iter(tasks)
        for t in it:
            pending.append(pool.apply_async(_decode_in_worker, (t,)))
            if len(pending) >= window:
                break
        while pending:
            result = pending.popleft().get()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.apply_async(_decode_in_worker, (nxt,)))
            yield result


def default_workers() -> int:
    """Decode processes: one per core beyond the first (which encodes), at least one, at most 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


# -- encoding -------------------------------------------------------------------------------------
def file_items(d: DecodedFile) -> list[Item]:
    """The items a decoded file becomes: one image item, or a parent plus one item per text chunk."""
    t = d.task
    name = os.path.basename(t.uri)
    mtime = t.mtime_ns / 1e9
    base = {"name": name, "size": t.size, **d.meta}
    fid = make_id(t.uri)
    if t.modality is Modality.IMAGE:
        return [Item(fid, t.uri, Modality.IMAGE, metadata=base, content_hash=t.content_hash, mtime=mtime)]
    first = d.chunks[0][0] if d.chunks else ""
    parent = Item(fid, t.uri, Modality.TEXT, text=first[:200], metadata={**base, "chunks": len(d.chunks)},
                  content_hash=t.content_hash, mtime=mtime)
    children = [
        Item(make_id(t.uri, part=str(i)), t.uri, Modality.TEXT, parent_id=fid, span=(float(s), float(e)),
             text=txt, metadata={"name": name, "chunk": i}, content_hash=t.content_hash, mtime=mtime)
        for i, (txt, s, e) in enumerate(d.chunks)
    ]
    return [parent, *children]


def encode_files(
    decoded: Sequence[DecodedFile], encoder: Encoder, batch_size: int,
    encode_hook: Callable[[int], None] | None = None,
) -> WriteBatch:
    """Encode a group of decoded files into one :class:`WriteBatch` (items, vectors, source states)."""
    batch = WriteBatch()
    images: list[tuple[Item, np.ndarray]] = []
    texts: list[Item] = []
    for d in decoded:
        t = d.task
        # a changed file's old items (e.g. chunks that no longer exist) go in the same commit
        batch.delete_uris.append(t.uri)
        state = SourceState(t.uri, t.size, t.mtime_ns, t.content_hash, d.error)
        batch.sources.append(state)
        if d.error is not None:
            batch.errors.append((t.uri, d.error))
            continue
        items = file_items(d)
        if t.modality is Modality.IMAGE:
            assert d.pixels is not None
            images.append((items[0], d.pixels))
        else:
            batch.items.append(items[0])  # the parent record has no vector
            texts.extend(items[1:])
    space = encoder.space
    for i in range(0, len(images), batch_size):
        part = images[i : i + batch_size]
        vecs = encoder.encode_pixels(np.stack([p for _, p in part]), role=Role.DOCUMENT)
        batch.add([it for it, _ in part], {space: vecs})
        if encode_hook:
            encode_hook(len(part))
    for i in range(0, len(texts), batch_size):
        part_t = texts[i : i + batch_size]
        vecs = encoder.encode_text([it.text or "" for it in part_t], role=Role.DOCUMENT)
        batch.add(part_t, {space: vecs})
        if encode_hook:
            encode_hook(len(part_t))
    return batch


def _n_items(d: DecodedFile) -> int:
    return 1 if d.task.modality is Modality.IMAGE else len(d.chunks) + 1


def run_add(
    paths: Sequence[str],
    store: Store,
    encoder: Encoder,
    options: IngestOptions,
    progress: Callable[[int, int], None] | None = None,
) -> AddReport:
    """Add ``paths`` to ``store`` (see the module docstring). ``progress(done_files, total_files)``."""
    t0 = time.perf_counter()
    walked, changes = plan(paths, store, options)
    report = AddReport(new=len(changes.new), changed=len(changes.changed), unchanged=len(changes.unchanged))
    report.skipped = [(s.uri, s.reason) for s in walked.skipped]
    report.failed = [(f.uri, reason) for f, reason in changes.failed]  # vanished or unreadable while hashing
    todo = list(changes.to_ingest)
    if options.retry_failed:
        todo += _rehash(changes.retry, report)
    else:
        report.unchanged += len(changes.retry)
    tasks, upfront = _tasks(todo, encoder)
    housekeeping = WriteBatch(sources=list(changes.touched))
    for uri, reason in upfront:
        housekeeping.sources.append(_failed_state(uri, todo, reason))
        housekeeping.errors.append((uri, reason))
        report.failed.append((uri, reason))
    if options.prune and changes.gone:
        housekeeping.delete_uris.extend(changes.gone)
        report.removed = len(changes.gone)
    if len(housekeeping):
        store.commit(housekeeping)
    config = DecodeConfig(
        preprocess=encoder.image_preprocessor() if encoder.supports(Modality.IMAGE) else None,
        target_size=encoder.image_size, max_pixels=options.max_pixels,
        chunk_chars=options.chunk_chars, chunk_overlap=options.chunk_overlap,
    )
    workers = default_workers() if options.workers is None else options.workers
    group: list[DecodedFile] = []
    n_group = done = 0

    def flush() -> None:
        nonlocal n_group
        if not group:
            return
        batch = encode_files(group, encoder, options.batch_size)
        store.commit(batch)
        report.items += len(batch.items)
        report.failed.extend(batch.errors)
        group.clear()
        n_group = 0

    window = max(4 * options.batch_size, 16)
    for d in decode_stream(tasks, config, workers, window=window):
        group.append(d)
        n_group += _n_items(d)
        done += 1
        if n_group >= options.commit_every:
            flush()
        if progress:
            progress(done, len(tasks))
    flush()
    report.seconds = time.perf_counter() - t0
    return report


def _tasks(todo: Iterable[tuple[FileInfo, str]], encoder: Encoder) -> tuple[list[DecodeTask], list[tuple[str, str]]]:
    """Decode tasks for files the encoder can embed; the rest fail up front with a reason."""
    tasks: list[DecodeTask] = []
    refused: list[tuple[str, str]] = []
    for info, digest in todo:
        if info.modality not in DECODED_MODALITIES:
            refused.append((info.uri, f"{info.modality.value} files are not indexed yet by this version"))
        elif not encoder.supports(info.modality):
            refused.append((info.uri, f"model {encoder.name!r} does not embed {info.modality.value}"))
        else:
            tasks.append(DecodeTask(info.uri, info.modality, info.size, info.mtime_ns, digest))
    return tasks, refused


def _failed_state(uri: str, todo: Sequence[tuple[FileInfo, str]], reason: str) -> SourceState:
    for info, digest in todo:
        if info.uri == uri:
            return SourceState(uri, info.size, info.mtime_ns, digest, reason)
    return SourceState(uri, 0, 0, "", reason)
