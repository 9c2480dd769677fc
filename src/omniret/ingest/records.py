"""``Index.add_records``: your own ids and content (text, an image, a sound), upserted by id.

The same pipeline as files, fed by rows instead of a walk: rows are checked and planned in this
process (new / changed / unchanged against the store, by a digest of the content), decoded in the
decode threads of :func:`omniret.ingest.run.decode_stream` (:func:`decode_record`; images through
the index's own preprocessing, :func:`omniret.ingest.run.image_pixels`), embedded by
:func:`omniret.ingest.run.encode_work` and written in atomic :class:`~omniret.store.base.WriteBatch`
commits, one record one item. A bad row (no id, unreadable image, failed fetch) becomes a
``(id, reason)`` entry in :class:`~omniret.ingest.work.AddReport.failed` and the store's error log;
the stored version of that id, if any, stays as it was.

Record ids are yours and distinct from file-derived ids: a record's ``uri`` is always a URI
(``file://``, ``https://``, ``record:<id>``), never a bare path, so adding, changing or pruning files
never touches records, and an id that already belongs to a file's item is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omniret.encoders.base import Encoder
from omniret.errors import MediaError, OmniretError, missing_module_hint
from omniret.ingest.media import MediaWork
from omniret.ingest.run import (
    Vectors,
    decode_config,
    decode_stream,
    decode_threads,
    default_workers,
    encode_work,
    image_pixels,
)
from omniret.ingest.work import AddReport, DecodeConfig, IngestOptions
from omniret.items import Item, Modality, Record, is_record_uri
from omniret.methods.late_interaction import mean_pool_frames
from omniret.sources.fetch import FetchLimits, fetch, is_url
from omniret.sources.manifest import RowError
from omniret.store.base import Store, WriteBatch
from omniret.threads import ingest_threads, torch_threads, uses_torch

#: rows planned (looked up in the store) at a time
PLAN_CHUNK = 512


@dataclass(frozen=True)
class RecordConfig:
    """What a decode worker needs for records (picklable): the files' decode config plus fetch limits."""

    decode: DecodeConfig
    fetch: FetchLimits = field(default_factory=FetchLimits)


@dataclass(frozen=True)
class RecordTask:
    record: Record
    modality: Modality
    uri: str
    digest: str
    mtime: float | None = None


@dataclass
class DecodedRecord:
    task: RecordTask
    error: str | None = None
    pixels: np.ndarray | None = None
    windows: list[np.ndarray] = field(default_factory=list)  # audio windows at the audio model's rate
    meta: dict[str, Any] = field(default_factory=dict)


# -- planning (this process) ------------------------------------------------------------------------
def record_uri(rec: Record) -> str:
    """Where a record's content lives, as a URI: its ``uri`` (a bare path becomes ``file://``), else its
    image or audio source when that is a path or URL, else ``record:<id>``."""
    for src in (rec.uri, rec.image, rec.audio):
        if isinstance(src, os.PathLike):
            src = os.fspath(src)
        if isinstance(src, str) and src:
            return src if is_record_uri(src) else Path(os.path.abspath(src)).as_uri()
    return f"record:{rec.id}"


def _local_path(src: Any) -> str | None:
    if isinstance(src, os.PathLike):
        return os.fspath(src)
    if isinstance(src, str) and not is_url(src):
        return _file_uri_path(src) if src.startswith("file://") else src
    return None


def _file_uri_path(uri: str) -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(uri).path)


def _digest_part(h: Any, src: Any) -> float | None:
    """Feed a content source's identity into ``h``; returns a local file's mtime (seconds) if it is one."""
    path = _local_path(src)
    if path is not None:
        try:
            st = os.stat(path)
            h.update(f"path|{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}".encode())
            return st.st_mtime_ns / 1e9
        except OSError:
            h.update(f"path|{path}|missing".encode())
            return None
    if isinstance(src, str):
        h.update(f"url|{src}".encode())
    elif isinstance(src, bytes | bytearray | memoryview):
        h.update(b"bytes|" + bytes(src))
    elif isinstance(src, dict):
        for k in sorted(src):
            h.update(f"|{k}=".encode())
            _digest_part(h, src[k]) if k in ("bytes", "path", "array") else h.update(repr(src[k]).encode())
    elif isinstance(src, tuple | list):
        for x in src:
            _digest_part(h, x)
    elif hasattr(src, "tobytes"):  # PIL images and numpy arrays
        h.update(f"{type(src).__name__}|{getattr(src, 'mode', '')}|{getattr(src, 'shape', getattr(src, 'size', ''))}"
                 .encode())
        h.update(src.tobytes())
    elif src is not None:
        h.update(repr(src).encode())
    return None


def digest(rec: Record, uri: str) -> tuple[str, float | None]:
    """A content digest of ``rec`` (what decides unchanged vs changed on a re-run) and its file mtime."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps([rec.text, uri, rec.metadata], sort_keys=True).encode())
    mtime = _digest_part(h, rec.image)
    m2 = _digest_part(h, rec.audio)
    return h.hexdigest(), mtime if mtime is not None else m2


def _modality(rec: Record) -> Modality:
    if rec.image is not None:
        return Modality.IMAGE
    return Modality.AUDIO if rec.audio is not None else Modality.TEXT


def plan_records(rows: Iterable[Any], store: Store, encoder: Encoder, report: AddReport) -> Iterator[RecordTask]:
    """Check ``rows`` and yield the records to (re-)embed; counts and per-row failures go to ``report``."""
    chunk: list[tuple[int, Any]] = []
    for n, row in enumerate(rows):
        chunk.append((n, row))
        if len(chunk) >= PLAN_CHUNK:
            yield from _plan_chunk(chunk, store, encoder, report)
            chunk = []
    yield from _plan_chunk(chunk, store, encoder, report)


def _plan_chunk(rows: list[tuple[int, Any]], store: Store, encoder: Encoder, report: AddReport) -> list[RecordTask]:
    tasks: dict[str, RecordTask] = {}
    for n, row in rows:
        if isinstance(row, RowError):
            report.failed.append((row.id, row.reason))
            continue
        try:
            rec = Record.of(row)
        except OmniretError as e:
            rid = row.get("id") if isinstance(row, dict) else getattr(row, "id", None)
            report.failed.append((f"row {n}" if rid in (None, "") else str(rid), str(e)))
            continue
        mod = _modality(rec)
        if mod is Modality.IMAGE and not encoder.supports(Modality.IMAGE):
            report.failed.append((rec.id, f"model {encoder.name!r} does not embed images"))
            continue
        uri = record_uri(rec)
        dig, mtime = digest(rec, uri)
        tasks[rec.id] = RecordTask(rec, mod, uri, dig, mtime)  # a repeated id: the last row wins
    out = []
    for task, old in zip(tasks.values(), store.get(list(tasks)), strict=True):
        if old is not None and not is_record_uri(old.uri):
            report.failed.append((task.record.id, f"id {task.record.id!r} belongs to the file item {old.uri!r}; "
                                                  "give the record another id"))
        elif old is not None and old.content_hash == task.digest:
            report.unchanged += 1
        else:
            report.new += old is None
            report.changed += old is not None
            out.append(task)
    return out


# -- decoding (decode threads) ------------------------------------------------------------------------
def decode_record(task: RecordTask, config: RecordConfig) -> DecodedRecord:
    """Decode one record's image or sound; never raises for bad input (the reason is returned)."""
    rec = task.record
    try:
        if task.modality is Modality.IMAGE:
            if config.decode.preprocess is None:
                return DecodedRecord(task, error="the index's model does not embed images")
            pixels, meta = image_pixels(_image(rec.image, config), config.decode)
            return DecodedRecord(task, pixels=pixels, meta=meta)
        if task.modality is Modality.AUDIO:
            return _decode_audio(task, config)
        return DecodedRecord(task)
    except MediaError as e:
        return DecodedRecord(task, error=e.reason)
    except Exception as e:  # a decoder bug must not stop the run; it is reported per record
        return DecodedRecord(task, error=missing_module_hint(e) or f"unexpected {type(e).__name__}: {e}")


def _image(src: Any, config: RecordConfig) -> Any:
    from PIL import Image

    from omniret.media.image import image_from_array, load_image, load_image_bytes, to_rgb

    c = config.decode
    if isinstance(src, dict):  # Hugging Face datasets / Parquet image structs: {"bytes": ..., "path": ...}
        src = src.get("bytes") or src.get("path")
    if isinstance(src, Image.Image):
        if c.max_pixels is not None and src.width * src.height > c.max_pixels:
            raise MediaError("<image>", f"image too large: {src.width}x{src.height} exceeds {c.max_pixels:,} pixels")
        return to_rgb(src)
    if is_url(src):
        return load_image_bytes(fetch(src, config.fetch), name=src, target_size=c.target_size, max_pixels=c.max_pixels)
    path = _local_path(src)
    if path is not None:
        return load_image(path, target_size=c.target_size, max_pixels=c.max_pixels)
    if isinstance(src, bytes | bytearray | memoryview):
        return load_image_bytes(bytes(src), target_size=c.target_size, max_pixels=c.max_pixels)
    if hasattr(src, "__array__"):
        return image_from_array(src, max_pixels=c.max_pixels)
    raise MediaError("<image>", f"an image must be a path, URL, bytes, PIL image or array, not {type(src).__name__}")


def _decode_audio(task: RecordTask, config: RecordConfig) -> DecodedRecord:
    from omniret.media.audio import slice_window, window_spans

    m = config.decode.media
    if m.audio_rate is None:  # no audio model: stored with its metadata only, like audio files
        return DecodedRecord(task, meta={"embedded": False})
    samples, meta = _samples(task.record.audio, m.audio_rate, m.max_audio_seconds, config.fetch)
    duration = len(samples) / m.audio_rate
    if duration <= 0:
        raise MediaError("<audio>", "no samples (zero-length)")
    spans = window_spans(duration, m.audio_window, m.audio_hop)
    return DecodedRecord(task, windows=[slice_window(samples, m.audio_rate, s) for s in spans],
                         meta={**meta, "duration": round(duration, 3)})


def _samples(src: Any, rate: int, max_seconds: float | None, limits: FetchLimits) -> tuple[np.ndarray, dict[str, Any]]:
    """Mono float32 samples at ``rate`` from a path, URL, bytes, ``(samples, rate)`` or a datasets Audio dict."""
    from omniret.media.audio import load_audio, resample

    if isinstance(src, dict) and "array" in src:
        src = (src["array"], src.get("sampling_rate"))
    if isinstance(src, tuple) and len(src) == 2:
        x = np.asarray(src[0], dtype=np.float32)
        x = x.mean(axis=0 if x.ndim == 2 and x.shape[0] < x.shape[1] else -1) if x.ndim == 2 else x.reshape(-1)
        if not isinstance(src[1], int | np.integer) or src[1] < 1:
            raise MediaError("<audio>", f"give audio as (samples, sample_rate) with a positive integer rate, got {src[1]!r}")
        if max_seconds is not None and len(x) / int(src[1]) > max_seconds:
            raise MediaError("<audio>", f"recording too long: over {max_seconds:.0f} s; raise max_audio_seconds")
        return resample(x, int(src[1]), rate), {"sample_rate": int(src[1])}
    if isinstance(src, dict):
        src = src.get("bytes") or src.get("path")
    path = _local_path(src)
    if path is not None:
        clip = load_audio(path, sample_rate=rate, max_seconds=max_seconds)
        return clip.samples, clip.metadata()  # type: ignore[return-value]
    data = fetch(src, limits) if is_url(src) else src
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MediaError("<audio>", f"audio must be a path, URL, bytes or (samples, rate), not {type(src).__name__}")
    suffix = os.path.splitext(src)[1][:8] if is_url(src) else ""
    with tempfile.NamedTemporaryFile(suffix=suffix) as f:  # PyAV and soundfile read files
        f.write(bytes(data))
        f.flush()
        clip = load_audio(f.name, sample_rate=rate, max_seconds=max_seconds)
    return clip.samples, clip.metadata()  # type: ignore[return-value]


# -- encoding and committing (this process) -----------------------------------------------------------
def record_item(d: DecodedRecord) -> Item:
    """The item a decoded record becomes (one per record; its text doubles as the caption of a picture or sound)."""
    t, rec = d.task, d.task.record
    meta = {**d.meta, **rec.metadata}
    if rec.text and t.modality is not Modality.TEXT and "caption" not in meta:
        meta["caption"] = rec.text
    return Item(rec.id, t.uri, t.modality, text=rec.text, metadata=meta, content_hash=t.digest, mtime=t.mtime)


def encode_records(decoded: Iterable[DecodedRecord], encoder: Encoder, batch_size: int,
                   audio_encoder: Encoder | None = None) -> WriteBatch:
    """Embed a group of decoded records into one :class:`WriteBatch` (failures become logged errors)."""
    batch, work = WriteBatch(), MediaWork()
    pools: list[tuple[str, list[str]]] = []
    for d in decoded:
        rid = d.task.record.id
        if d.error is not None:
            batch.errors.append((rid, d.error))
            continue
        work.items.append(record_item(d))
        if d.pixels is not None:
            work.pixels.append((rid, d.pixels))
        elif d.task.modality is Modality.TEXT:
            work.texts.append((rid, d.task.record.text or ""))
        elif d.windows and audio_encoder is not None:
            wids = [f"{rid}\x00w{i}" for i in range(len(d.windows))]  # never stored: pooled below
            work.waves.extend(zip(wids, d.windows, strict=True))
            pools.append((rid, wids))
    batch.items.extend(work.items)
    vecs = Vectors()
    encode_work(work, encoder, audio_encoder, batch_size, vecs)
    if audio_encoder is not None and pools:
        space = vecs.by_space.setdefault(audio_encoder.space, {})
        for rid, wids in pools:
            space[rid] = mean_pool_frames(np.stack([space.pop(w) for w in wids]))
    vecs.into(batch)
    return batch


def run_records(
    rows: Iterable[Any], store: Store, encoder: Encoder, options: IngestOptions,
    progress: Callable[[int, int], None] | None = None, *, audio_encoder: Encoder | None = None,
    fetch_limits: FetchLimits | None = None,
) -> AddReport:
    """Upsert ``rows`` (:class:`~omniret.items.Record` s or dicts) into ``store`` (see the module docstring).

    ``progress(done, total)`` counts rows handed to the encoder; ``total`` is 0 when ``rows`` has no length.
    """
    t0 = time.perf_counter()
    report = AddReport()
    config = RecordConfig(decode_config(options, encoder, audio_encoder), fetch_limits or FetchLimits())
    total = len(rows) if isinstance(rows, Sized) else 0
    workers = default_workers() if options.workers is None else options.workers
    tasks = plan_records(rows, store, encoder, report)
    n_tasks = total or 1_000_000  # an unsized stream is assumed long enough for decode threads
    group: list[DecodedRecord] = []
    done = 0

    def flush() -> None:
        if group:
            batch = encode_records(group, encoder, options.batch_size, audio_encoder)
            store.commit(batch)
            report.items += len(batch.items)
            report.unembedded += sum(1 for it in batch.items if it.metadata.get("embedded") is False)
            report.failed.extend(batch.errors)
            group.clear()

    n_threads = ingest_threads(decode_threads(n_tasks, workers), override=options.torch_threads)
    with torch_threads(n_threads, load=uses_torch(encoder)):
        for d in decode_stream(tasks, config, workers, window=max(4 * options.batch_size, 16),
                               fn=decode_record, n_tasks=n_tasks):
            group.append(d)
            done += 1
            if len(group) >= options.commit_every:
                flush()
            if progress:
                progress(done, total)
        flush()
    report.seconds = time.perf_counter() - t0
    return report
