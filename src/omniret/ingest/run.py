"""The ingest pipeline: sources → decode (threads) → encode (batched) → store (atomic commits).

One file is the unit of atomicity — except paged documents, committed every
``IngestOptions.commit_pages`` pages: a file's items, vectors and source state land in the same commit,
so a crash leaves every file either fully indexed or not at all, and a re-run of ``add`` picks up
exactly the files whose state is missing. A long PDF's parts commit its pages as they are embedded,
the document item recording how many (``metadata["partial"]``, with the content hash); its source
state comes with the last part. A re-run after a crash finds the file without a state, sees the
pages already done (same content) and continues after them, without duplicates; a changed file
starts over. Texts are embedded a commit group at a time across pages and files, each distinct text
once, shortest first (:data:`TEXT_CALL` a call).

Decoding runs in a few threads of this process, with a bounded number of files in flight,
overlapped with encoding in the calling thread. Threads, not worker processes: a process started with
``spawn`` or ``forkserver`` re-imports the caller's ``__main__``, which loops forever in a script
without an ``if __name__ == "__main__":`` guard and fails outright for ``python -`` (stdin), while
``fork`` is unsafe beside torch's OpenMP threads. The decoders spend their time in C code that releases
the GIL (Pillow's JPEG/PNG decoders and resampling, PyAV, PDFium, onnxruntime for OCR), and threads
hand decoded pixels to the encoder without pickling them; measured against the former process pool in
``bench/RESULTS_ingest_callers.md``. PDFium is not thread-safe: :mod:`omniret.media.pdf` serialises
its calls. The same functions —
:func:`plan`, :func:`decode_file`, :func:`encode_files` — are what a distributed ingest
(:mod:`omniret.scale`) maps over its workers, so there is one ingest logic, not a fork.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from omniret.encoders.base import Encoder
from omniret.errors import MediaError, OmniretError, missing_module_hint
from omniret.ingest.documents import PARTIAL, page_items_count
from omniret.ingest.media import MediaConfig, MediaWork, decode_media, media_items
from omniret.ingest.structured import decode_structured, is_structured, structured_items
from omniret.ingest.work import (
    DECODED_MODALITIES,
    DEFERRED_HASH,
    AddReport,
    DecodeConfig,
    DecodedFile,
    DecodeTask,
    IngestOptions,
    file_items,
)
from omniret.items import Modality, Role, make_id
from omniret.methods.late_interaction import mean_pool_frames
from omniret.sources.changes import Changes, detect_changes
from omniret.sources.hashing import hash_file
from omniret.sources.walk import FileInfo, WalkResult, walk
from omniret.spaces.pages import PageSpace
from omniret.store.base import Filter, SourceState, Store, WriteBatch
from omniret.threads import ingest_threads, torch_threads, uses_torch


# -- planning ---------------------------------------------------------------------------------------
def plan(paths: Sequence[str], store: Store, options: IngestOptions) -> tuple[WalkResult, Changes]:
    """Walk ``paths`` and classify the files against what ``store`` already holds.

    Known files whose size or mtime moved are hashed now (to tell a touch from a change); new files
    get :data:`DEFERRED_HASH` and are hashed by the decode step.
    """
    walked = walk(paths, include_hidden=options.include_hidden, confine=options.confine)
    known = store.source_states()

    def hasher(uri: str) -> str:
        return hash_file(uri) if uri in known else DEFERRED_HASH

    changes = detect_changes(walked.files, known, hasher, covers=walked.covers)
    return walked, changes


def _rehash(files: Iterable[FileInfo], report: AddReport) -> list[tuple[FileInfo, str]]:
    out = []
    for f in files:
        try:
            out.append((f, hash_file(f.uri)))
        except MediaError as e:
            report.failed.append((f.uri, e.reason))
    return out


# -- decoding (runs in decode threads) ---------------------------------------------------------------
def decode_file(task: DecodeTask, config: DecodeConfig) -> DecodedFile:
    """Decode one file; never raises for bad input (the reason is returned instead)."""
    try:
        if task.content_hash == DEFERRED_HASH:
            task = replace(task, content_hash=hash_file(task.uri))
        if task.modality is Modality.IMAGE:
            return _decode_image(task, config)
        if task.modality is Modality.TEXT:
            return _decode_text(task, config)
        if task.modality is Modality.DOCUMENT and is_structured(task.uri):
            return DecodedFile(task, media=decode_structured(task.uri, config.chunk_chars, config.chunk_overlap,
                                                           config.preprocess))
        return DecodedFile(task, media=decode_media(task.uri, task.modality, config.media, config.preprocess))
    except MediaError as e:
        return DecodedFile(task, error=e.reason)
    except Exception as e:  # a decoder bug must not stop the run; it is reported per file
        return DecodedFile(task, error=missing_module_hint(e) or f"unexpected {type(e).__name__}: {e}")


def _decode_image(task: DecodeTask, config: DecodeConfig) -> DecodedFile:
    from omniret.media.image import load_image

    if config.preprocess is None:
        return DecodedFile(task, error="the index's model does not embed images")
    im = load_image(task.uri, target_size=config.target_size, max_pixels=config.max_pixels)
    pixels, meta = image_pixels(im, config)
    return DecodedFile(task, pixels=pixels, meta=meta)


def image_pixels(im: Any, config: DecodeConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """A decoded RGB image → the encoder's input array (the index's preprocessing) and its size metadata."""
    assert config.preprocess is not None  # callers refuse images first when the model has no image tower
    return np.asarray(config.preprocess(im), dtype=np.float32), {"width": im.width, "height": im.height}


def _decode_text(task: DecodeTask, config: DecodeConfig) -> DecodedFile:
    from omniret.media.text import load_text

    doc = load_text(task.uri, max_chars=config.chunk_chars, overlap=config.chunk_overlap)
    meta: dict[str, Any] = {"chars": len(doc.text), "encoding": doc.encoding}
    if doc.title:
        meta["title"] = doc.title
    return DecodedFile(task, chunks=[(c.text, c.start, c.end) for c in doc.chunks], meta=meta)


def decode_stream(
    tasks: Iterable[Any], config: DecodeConfig, workers: int, *, window: int = 64,
    fn: Callable[[Any, DecodeConfig], Any] = decode_file, n_tasks: int | None = None,
) -> Iterator[Any]:
    """Decode ``tasks`` in order, with at most ``window`` in flight across ``workers`` threads.

    ``fn(task, config)`` decodes one task and never raises (:func:`decode_file` for files; the record
    ingest passes its own). ``tasks`` may be a lazy iterable: ``n_tasks`` (default ``len(tasks)``)
    decides whether starting threads is worth it (:func:`decode_threads`). Closing the iterator early
    (an encoder error, Ctrl-C) stops the threads after the tasks they are decoding; nothing is left
    running.
    """
    n = decode_threads(n_tasks if n_tasks is not None else len(tasks), workers)  # type: ignore[arg-type]
    if n == 0:
        for t in tasks:
            yield fn(t, config)
        return
    todo: queue.SimpleQueue[tuple[Any, _Slot] | None] = queue.SimpleQueue()
    threads = [threading.Thread(target=_decode_loop, args=(todo, config, fn), name=f"omniret-decode-{i}", daemon=True)
               for i in range(n)]
    for th in threads:
        th.start()
    pending: deque[_Slot] = deque()
    it = iter(tasks)
    try:
        for t in it:
            pending.append(_Slot())
            todo.put((t, pending[-1]))
            if len(pending) >= window:
                break
        while pending:
            result = pending.popleft().wait()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(_Slot())
                todo.put((nxt, pending[-1]))
            yield result
    finally:
        for slot in pending:
            slot.cancelled = True
        for _ in threads:
            todo.put(None)
        for th in threads:
            th.join()


class _Slot:
    """One file's place in the decode window: filled by a decode thread, read in order."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.cancelled = False
        self.result: Any = None

    def wait(self) -> Any:
        self.done.wait()
        assert self.result is not None  # set before done
        return self.result


def _decode_loop(todo: queue.SimpleQueue[tuple[Any, _Slot] | None], config: DecodeConfig,
                 fn: Callable[[Any, DecodeConfig], Any] = decode_file) -> None:
    """A decode thread: tasks until the ``None`` sentinel. Torch work inside a decoder (e.g. a torchvision
    preprocessor) runs on one intra-op thread, leaving the cores to the encoder."""
    with torch_threads(1, load=False):
        while (job := todo.get()) is not None:
            task, slot = job
            try:
                if not slot.cancelled:
                    slot.result = fn(task, config)
            except BaseException as e:  # the decode function reports bad input itself; never leave a slot unfilled
                slot.result = DecodedFile(task, error=f"unexpected {type(e).__name__}: {e}")
            finally:
                slot.done.set()


def decode_threads(n_tasks: int, workers: int) -> int:
    """Decode threads :func:`decode_stream` starts for ``n_tasks`` files: none for a handful (decoded
    in the calling thread, interleaved with encoding)."""
    return workers if workers > 0 and n_tasks >= 2 * workers else 0


def default_workers() -> int:
    """Decode threads: one per core beyond the first (which encodes), at least one, at most 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


# -- encoding -------------------------------------------------------------------------------------
class Vectors:
    """Vectors by space and item id, gathered while a group of files is encoded."""

    def __init__(self) -> None:
        self.by_space: dict[str, dict[str, np.ndarray]] = {}

    def put(self, space: str, ids: Sequence[str], mat: np.ndarray) -> None:
        self.by_space.setdefault(space, {}).update(zip(ids, np.asarray(mat, dtype=np.float32), strict=True))

    def get(self, space: str, ids: Sequence[str]) -> np.ndarray:
        d = self.by_space.get(space, {})
        return np.stack([d[i] for i in ids if i in d]) if any(i in d for i in ids) else np.zeros((0, 0))

    def into(self, batch: WriteBatch) -> None:
        for space, d in self.by_space.items():
            if d:
                batch.vectors[space] = (list(d), np.stack(list(d.values())))


@dataclass
class FilePart:
    """A decoded file, or a run of its pages: a paged document is committed in parts of at most
    ``IngestOptions.commit_pages`` pages. The ``first`` part replaces the file's old items (unless the
    run resumes a document committed in parts before), the ``last`` one writes its source state, so a
    file counts as indexed only once all of it is."""

    file: DecodedFile
    pages: tuple[int, int] | None = None  # (first, last) page numbers; None: the whole file
    first: bool = True
    last: bool = True
    weight: int = 1  # progress units: its pages (a file that is not paged: 1)


def split_file(d: DecodedFile, commit_pages: int, done: int = 0) -> list[FilePart]:
    """``d`` as parts of at most ``commit_pages`` pages, skipping the first ``done`` pages (committed by an
    earlier, interrupted run); a file that is not paged, or failed, is one part."""
    pages = d.media.pages if d.media is not None else []
    if d.error is not None or not pages:
        return [FilePart(d)]
    numbers = [pg.number for pg in pages if pg.number > done]
    if not numbers:  # every page was committed; only the source state (and the final document item) remain
        numbers = [pages[-1].number]
    step = max(1, commit_pages)
    chunks = [numbers[i : i + step] for i in range(0, len(numbers), step)]
    return [FilePart(d, (c[0], c[-1]), first=(i == 0 and done == 0), last=(i == len(chunks) - 1), weight=len(c))
            for i, c in enumerate(chunks)]


def resume_point(store: Store, d: DecodedFile) -> int:
    """Pages of ``d`` an interrupted run already committed (0 if none, or if the file changed since)."""
    if d.media is None or not d.media.pages or d.error is not None:
        return 0
    doc = store.get([make_id(d.task.uri)])[0]
    partial = doc.metadata.get(PARTIAL) if doc is not None else None
    if isinstance(partial, dict) and partial.get("content_hash") == d.task.content_hash:
        return int(partial.get("pages_done") or 0)
    return 0


def encode_files(
    decoded: Sequence[DecodedFile], encoder: Encoder, batch_size: int,
    encode_hook: Callable[[int], None] | None = None, audio_encoder: Encoder | None = None,
    page_space: PageSpace | None = None,
) -> WriteBatch:
    """:func:`encode_parts` of whole files."""
    return encode_parts([FilePart(d) for d in decoded], encoder, batch_size, encode_hook, audio_encoder, page_space)


def encode_parts(
    parts: Sequence[FilePart], encoder: Encoder, batch_size: int,
    encode_hook: Callable[[int], None] | None = None, audio_encoder: Encoder | None = None,
    page_space: PageSpace | None = None,
) -> WriteBatch:
    """Encode a group of decoded files into one :class:`WriteBatch` (items, vectors, source states).

    Text-like inputs (chunks, pages, blocks) go through ``encoder.encode_text``; images and textless
    pages through ``encode_pixels``; video frames through ``encode_pixels`` then meanP per segment;
    waveforms through ``audio_encoder.encode_audio`` into its own space. Parents pool their children.
    With ``page_space``, rendered PDF pages are embedded by the page model and their token matrices
    written to its multi-vector index *now*, before the caller commits the batch (see
    :mod:`omniret.spaces.pages`).
    """
    batch, work = WriteBatch(), MediaWork()
    for part in parts:
        d, t = part.file, part.file.task
        if part.first:  # a changed file's old items (e.g. chunks that no longer exist) go in the same commit
            batch.delete_uris.append(t.uri)
        if part.last:
            batch.sources.append(SourceState(t.uri, t.size, t.mtime_ns, t.content_hash, d.error))
        if d.error is not None:
            batch.errors.append((t.uri, d.error))
        else:
            _gather(d, work, audio_encoder is not None, part.pages)
    batch.items.extend(work.items)
    if page_space is not None:
        page_space.add_pages(work.pages)
    vecs = Vectors()
    encode_work(work, encoder, audio_encoder, batch_size, vecs, encode_hook)
    for pid, child_ids, kind in work.pools:
        space = encoder.space if kind == "image" else audio_encoder.space if audio_encoder else ""
        children = vecs.get(space, child_ids)
        if len(children):
            vecs.put(space, [pid], mean_pool_frames(children)[None, :])
    vecs.into(batch)
    return batch


def _gather(d: DecodedFile, work: MediaWork, has_audio_model: bool, pages: tuple[int, int] | None = None) -> None:
    """Add one decoded file's items (of a paged document: those of ``pages``) and embedding inputs to ``work``."""
    t = d.task
    if d.media is not None:
        base = {"name": os.path.basename(t.uri), "size": t.size}
        common = {"content_hash": t.content_hash, "mtime": t.mtime_ns / 1e9}
        part = (structured_items(t.uri, d.media, base, common) if d.media.doc is not None
                else media_items(t.uri, t.modality, d.media, base, common, has_audio_model, pages))
        work.items.extend(part.items)
        work.texts.extend(part.texts)
        work.pixels.extend(part.pixels)
        work.frames.extend(part.frames)
        work.waves.extend(part.waves)
        work.pools.extend(part.pools)
        work.pages.extend(part.pages)
        return
    items = file_items(d)
    if t.modality is Modality.IMAGE:
        assert d.pixels is not None
        work.items.append(items[0])
        work.pixels.append((items[0].id, d.pixels))
    else:
        work.items.extend(items)  # the parent record has no vector
        work.texts.extend((it.id, it.text or "") for it in items[1:])


def encode_work(
    work: MediaWork, encoder: Encoder, audio_encoder: Encoder | None, batch_size: int,
    vecs: Vectors, hook: Callable[[int], None] | None = None,
) -> None:
    """Embed ``work``'s pixels and texts (main space), frames (meanP per segment) and waveforms (the
    audio space) in batches of ``batch_size`` into ``vecs``; ``hook(n)`` after each main-space batch."""
    space = encoder.space
    for i in range(0, len(work.pixels), batch_size):
        part = work.pixels[i : i + batch_size]
        vecs.put(space, [k for k, _ in part], encoder.encode_pixels(_stack([p for _, p in part]), role=Role.DOCUMENT))
        if hook:
            hook(len(part))
    if work.texts:
        _encode_texts(work.texts, encoder, max(TEXT_CALL, batch_size), vecs, hook)
    if work.frames:
        _encode_frames(work.frames, encoder, batch_size, vecs)
    if work.waves and audio_encoder is not None:
        rate = audio_encoder.audio_rate
        for i in range(0, len(work.waves), batch_size):
            part_w = work.waves[i : i + batch_size]
            mat = audio_encoder.encode_audio([w for _, w in part_w], rate, role=Role.DOCUMENT)
            vecs.put(audio_encoder.space, [k for k, _ in part_w], mat)


#: texts per encoder call: the texts of a commit group (pages, blocks, sections, chunks of many files) are
#: encoded together, shortest first, this many a call, so a call's texts have similar lengths (little
#: padding) and the encoder's own batching and length sorting see a long run at once
TEXT_CALL = 512


def _encode_texts(texts: Sequence[tuple[str, str]], encoder: Encoder, call: int, vecs: Vectors,
                  hook: Callable[[int], None] | None) -> None:
    """Embed ``(item id, text)`` pairs: each distinct text once (running heads, repeated notes), in calls
    of ``call`` texts sorted by length."""
    by_text: dict[str, list[str]] = {}
    for key, text in texts:
        by_text.setdefault(text, []).append(key)
    order = sorted(by_text, key=len)
    for i in range(0, len(order), call):
        chunk = order[i : i + call]
        mat = encoder.encode_text(chunk, role=Role.DOCUMENT)
        ids = [k for t in chunk for k in by_text[t]]
        rows = np.repeat(np.arange(len(chunk)), [len(by_text[t]) for t in chunk])
        vecs.put(encoder.space, ids, np.asarray(mat)[rows])
        if hook:
            hook(len(ids))


def _stack(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack(arrays).astype(np.float32, copy=False)


def _encode_frames(frames: Sequence[tuple[str, np.ndarray]], encoder: Encoder, batch_size: int, vecs: Vectors) -> None:
    """Every sampled frame through the image encoder (in batches across segments), then meanP per segment."""
    flat = [f for _, px in frames for f in px]
    out = np.concatenate([
        encoder.encode_pixels(_stack(flat[i : i + batch_size]), role=Role.DOCUMENT)
        for i in range(0, len(flat), batch_size)
    ])
    start = 0
    for sid, px in frames:
        vecs.put(encoder.space, [sid], mean_pool_frames(out[start : start + len(px)])[None, :])
        start += len(px)


def _n_items(part: FilePart) -> int:
    d = part.file
    if d.media is not None and part.pages is not None:
        lo, hi = part.pages
        starts: dict[int, int] = {}
        for sec in d.media.sections:
            starts[sec.page] = starts.get(sec.page, 0) + 1
        return 1 + sum(page_items_count(pg, starts.get(pg.number, 0)) for pg in d.media.pages if lo <= pg.number <= hi)
    if d.media is not None:
        return d.media.n_items()
    return 1 if d.task.modality is Modality.IMAGE else len(d.chunks) + 1


def prepare_add(paths: Sequence[str], store: Store, encoder: Encoder, options: IngestOptions,
                report: AddReport, *, embed_audio: bool = False) -> list[DecodeTask]:
    """The part of an add before any decoding, shared by every engine (this module, Ray): walk and
    classify the files, fill ``report``'s counts, and commit the housekeeping (refreshed states of
    touched files, files refused up front, pruned sources). Returns the files to decode.

    ``embed_audio`` (the index has an audio model): unchanged audio files that were stored without
    embeddings (added before the audio model was attached) are decoded again, and counted as changed."""
    walked, changes = plan(paths, store, options)
    waiting = _unembedded_audio(store, changes.unchanged) if embed_audio else []
    report.new, report.changed = len(changes.new), len(changes.changed) + len(waiting)
    report.unchanged = len(changes.unchanged) - len(waiting)
    report.skipped = [(s.uri, s.reason) for s in walked.skipped]
    report.failed = [(f.uri, reason) for f, reason in changes.failed]  # vanished or unreadable while hashing
    todo = list(changes.to_ingest) + waiting
    # files that failed for want of a library (since installed, perhaps) are tried again every run
    todo += _rehash(changes.retry_env, report)
    report.changed += len(changes.retry_env)
    if options.retry_failed:
        todo += _rehash(changes.retry, report)
        report.changed += len(changes.retry)
    else:
        report.unchanged += len(changes.retry)
        report.not_retried = len(changes.retry)
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
    return tasks


def _unembedded_audio(store: Store, unchanged: Sequence[FileInfo]) -> list[tuple[FileInfo, str]]:
    """Unchanged audio files whose recording is stored by metadata only, with their stored hashes."""
    candidates = {f.uri: f for f in unchanged if f.modality is Modality.AUDIO}
    if not candidates:
        return []
    flt = Filter(modalities=frozenset({Modality.AUDIO}), metadata={"embedded": False})
    uris = {it.uri for it in store.iter_items(flt) if it.uri in candidates}
    if not uris:
        return []
    known = store.source_states()
    return [(candidates[u], known[u].content_hash) for u in sorted(uris) if u in known]


def run_add(
    paths: Sequence[str],
    store: Store,
    encoder: Encoder,
    options: IngestOptions,
    progress: Callable[[int, int], None] | None = None,
    *,
    audio_encoder: Encoder | None = None,
    page_space: PageSpace | None = None,
) -> AddReport:
    """Add ``paths`` to ``store`` (see the module docstring). ``progress(done, total)`` counts files and
    PDF pages (a document's pages join the total once it is decoded).

    ``audio_encoder`` (a model whose :meth:`~omniret.encoders.base.Encoder.encode_audio` works, e.g.
    CLAP) embeds audio windows and video soundtracks in its own space; without it audio files are
    stored with their metadata only and counted in ``AddReport.unembedded``. ``page_space`` (a
    page model, :mod:`omniret.spaces.pages`) also embeds every PDF page's rendered image.
    """
    t0 = time.perf_counter()
    report = AddReport()
    tasks = prepare_add(paths, store, encoder, options, report, embed_audio=audio_encoder is not None)
    if str(getattr(encoder, "device", "")).startswith("cuda"):  # JPEGs: nvjpeg fast path (scale/gpu_decode.py)
        from omniret.ingest.gpu import ingest_jpegs

        tasks = ingest_jpegs(tasks, store, encoder, options, report)
    config = decode_config(options, encoder, audio_encoder, page_space)
    workers = default_workers() if options.workers is None else options.workers
    group: list[FilePart] = []
    n_group = n_pages = done = 0
    total = len(tasks)  # progress units: files, and the pages of paged documents once they are decoded

    def flush() -> None:
        nonlocal n_group, n_pages
        if not group:
            return
        batch = encode_parts(group, encoder, options.batch_size, audio_encoder=audio_encoder, page_space=page_space)
        store.commit(batch)
        report.items += len(batch.items)
        report.count_unembedded(batch.items)
        report.failed.extend(batch.errors)
        group.clear()
        n_group = n_pages = 0

    window = max(4 * options.batch_size, 16)
    # the encoder gets the cores the decode threads leave (omniret.threads); restored afterwards
    n_threads = ingest_threads(decode_threads(len(tasks), workers), override=options.torch_threads)
    with torch_threads(n_threads, load=uses_torch(encoder)):
        for d in decode_stream(tasks, config, workers, window=window):
            parts = split_file(d, options.commit_pages, resume_point(store, d))
            total += sum(p.weight for p in parts) - 1
            for part in parts:
                group.append(part)
                n_group += _n_items(part)
                n_pages += part.weight if part.pages is not None else 0
                if n_group >= options.commit_every or n_pages >= options.commit_pages:
                    flush()
                done += part.weight
                if progress:
                    progress(done, total)
        flush()
    if page_space is not None:  # pages of changed, pruned or now-failing files
        page_space.sync(store)
    report.seconds = time.perf_counter() - t0
    return report


def decode_config(options: IngestOptions, encoder: Encoder, audio_encoder: Encoder | None = None,
                  page_space: PageSpace | None = None) -> DecodeConfig:
    """What decode workers need to turn files (or records) into the encoders' inputs."""
    return DecodeConfig(
        preprocess=encoder.image_preprocessor() if encoder.supports(Modality.IMAGE) else None,
        target_size=encoder.image_size, max_pixels=options.max_pixels,
        chunk_chars=options.chunk_chars, chunk_overlap=options.chunk_overlap,
        media=replace(media_config(options, encoder, audio_encoder),
                      page_size=page_space.encoder.page_size if page_space is not None else None),
    )


def media_config(options: IngestOptions, encoder: Encoder, audio_encoder: Encoder | None) -> MediaConfig:
    if options.video_segments not in ("fixed", "scenes"):
        raise OmniretError(f"unknown video_segments {options.video_segments!r}; choose from fixed, scenes")
    if not options.video_scene_threshold > 0:
        raise OmniretError(f"video_scene_threshold must be > 0 (27 is PySceneDetect's default), "
                           f"got {options.video_scene_threshold}")
    return MediaConfig(
        audio_rate=audio_encoder.audio_rate if audio_encoder is not None else None,
        audio_window=options.audio_window, audio_hop=options.audio_hop, max_audio_seconds=options.max_audio_seconds,
        video_segment_seconds=options.video_segment_seconds,
        video_frames_per_segment=options.video_frames_per_segment, max_video_seconds=options.max_video_seconds,
        video_segments=options.video_segments, video_scene_threshold=options.video_scene_threshold,
        video_ocr=options.video_ocr,
        pdf_ocr=options.pdf_ocr, pdf_blocks=options.pdf_blocks, pdf_max_pages=options.pdf_max_pages,
        image_size=encoder.image_size,
    )


#: what the main encoder must embed for a file of each modality to be indexed
_NEEDS: dict[Modality, Modality | None] = {
    Modality.IMAGE: Modality.IMAGE, Modality.TEXT: Modality.TEXT, Modality.VIDEO: Modality.IMAGE,
    Modality.DOCUMENT: Modality.TEXT, Modality.AUDIO: None,  # audio: the audio model, or metadata only
}


def _tasks(todo: Iterable[tuple[FileInfo, str]], encoder: Encoder) -> tuple[list[DecodeTask], list[tuple[str, str]]]:
    """Decode tasks for files the encoder can embed; the rest fail up front with a reason."""
    tasks: list[DecodeTask] = []
    refused: list[tuple[str, str]] = []
    for info, digest in todo:
        need = _NEEDS.get(info.modality)
        if info.modality not in DECODED_MODALITIES:
            refused.append((info.uri, f"{info.modality.value} files are not indexed yet by this version"))
        elif need is not None and not encoder.supports(need):
            what = info.modality.value if need is info.modality else f"{info.modality.value} ({need.value} needed)"
            refused.append((info.uri, f"model {encoder.name!r} does not embed {what}"))
        else:
            tasks.append(DecodeTask(info.uri, info.modality, info.size, info.mtime_ns, digest))
    return tasks, refused


def _failed_state(uri: str, todo: Sequence[tuple[FileInfo, str]], reason: str) -> SourceState:
    for info, digest in todo:
        if info.uri == uri:
            return SourceState(uri, info.size, info.mtime_ns, digest, reason)
    return SourceState(uri, 0, 0, "", reason)
