"""Distributed ingest on Ray Data: the single-machine pipeline's own functions, mapped over a cluster.

``omniret add --engine ray [--address ray://head:10001]`` calls :func:`ray_add`::

    ingest.plan (driver)                 walk + change detection against the store, as run_add does
      → ray.data.from_items(tasks)       one row per file to (re)index
      → map_batches(decode, CPU tasks)   ingest.decode_file on each file (never raises: errors ride along)
      → map_batches(Encode actors)       ingest.encode_files on a group of files → one WriteBatch
                                         (+ the group's embedded PDF pages with a page model)
      → driver: store.commit(batch)      one atomic commit per group, in the order groups finish

With a page model (``index.page_space``, :mod:`omniret.spaces.pages`) each encoder actor builds its own
copy from the model's name and config (a local folder or the Hugging Face cache must hold it on
every worker machine) and embeds the group's rendered pages through the same ``encode_files`` call
into a :class:`~omniret.spaces.pages.PageCollector`; the float16 matrices travel back with the batch
and the driver writes them to ``<index>/multivector`` before the batch's commit, as the local
ingest does.

With an audio model (``index.audio_encoder``, :mod:`omniret.spaces.audio`) the decode tasks resample
audio and video sound tracks at its rate, and each encoder actor rebuilds it from the manifest's
``audio_encoder`` entry (name + config, as :func:`omniret.spaces.audio.resolve` does on reopening)
or from ``audio_encoder_factory``; the same ``encode_files`` call embeds the windows and sound
tracks into the audio space, so their vectors ride in the group's WriteBatch and land in the
same commit as on one machine.

The store is written only by the driver, so any backend works (the embedded folder, Milvus).
Fault tolerance comes from Ray (failed decode tasks are retried; a dead encoder actor is restarted
and its batch retried) plus the store: a group becomes visible only in its commit, together with its
files' source states, so killing the driver loses only uncommitted groups, and re-running
:func:`ray_add` skips every committed file through the normal change detection. Items have
stable ids and a group's commit replaces the items of its files, so a retried group can never
duplicate an item.

Overhead (measured on 2 shared cores, bench/RESULTS_scale.md, offline model): ``ray.init`` takes
7–9 s and each pipeline run ~3.5 s more (actors start, the model loads in each actor); in steady
state Ray matches the single-process path run with the same thread settings (9.1 vs 9.2–9.9
items/s). Ray pays off when there are more machines or GPUs than one process can feed.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from omniret.encoders.base import Encoder
from omniret.errors import ModelMismatchError, OmniretError
from omniret.ingest.run import decode_file, encode_files, media_config, prepare_add
from omniret.ingest.work import AddReport, DecodeConfig, DecodedFile, DecodeTask, IngestOptions
from omniret.items import Modality
from omniret.spaces.pages import EmbeddedPages, PageCollector, PageSpace
from omniret.store.base import Store, WriteBatch


class IndexParts(Protocol):
    """What the Ray ingest reads of an :class:`omniret.index.Index` (the facade passes itself)."""

    store: Store
    encoder: Encoder
    audio_encoder: Encoder | None
    page_space: PageSpace | None


@dataclass(frozen=True)
class RayOptions:
    """How the Ray job is laid out. ``actors``: encoder actors (default: one per GPU, else 1);
    ``files_per_batch``: files per encode call and per commit; ``decode_batch``: files per decode task."""

    actors: int | None = None
    gpus_per_actor: float | None = None  # default: 1 when the cluster has GPUs, else 0
    files_per_batch: int = 64
    decode_batch: int = 8
    max_retries: int = 3


def _decode_rows(batch: dict[str, Any], config: DecodeConfig) -> dict[str, list[bytes]]:
    """Ray task: decode each file of ``batch`` (columns of :class:`DecodeTask` fields)."""
    out = []
    for i in range(len(batch["uri"])):
        task = DecodeTask(str(batch["uri"][i]), Modality(str(batch["modality"][i])), int(batch["size"][i]),
                          int(batch["mtime_ns"][i]), str(batch["content_hash"][i]))
        out.append(pickle.dumps(decode_file(task, config), protocol=pickle.HIGHEST_PROTOCOL))
    return {"decoded": out}


class EncodeActor:
    """Ray actor: builds the encoder once, turns groups of decoded files into pickled WriteBatches."""

    def __init__(self, encoder_factory: Callable[[], Encoder], batch_size: int,
                 page_model_factory: Callable[[], Any] | None = None,
                 audio_encoder_factory: Callable[[], Encoder] | None = None) -> None:
        self.encoder = encoder_factory()
        self.batch_size = batch_size
        self.pages = PageCollector(page_model_factory()) if page_model_factory is not None else None
        self.audio = audio_encoder_factory() if audio_encoder_factory is not None else None

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[bytes]]:
        """Pickled ``(WriteBatch, embedded pages or None)`` for the group of decoded files in ``batch``."""
        decoded: list[DecodedFile] = [pickle.loads(b) for b in batch["decoded"]]
        wb = encode_files(decoded, self.encoder, self.batch_size, audio_encoder=self.audio, page_space=self.pages)
        pages = self.pages.take() if self.pages is not None else None
        return {"batch": [pickle.dumps((wb, pages), protocol=pickle.HIGHEST_PROTOCOL)]}


def _ensure_ray(address: str | None, num_cpus: int | None) -> Any:
    try:
        import ray
    except ImportError as e:
        raise OmniretError("--engine ray needs Ray Data: pip install 'ray[data]>=2.40'") from e
    if not ray.is_initialized():
        if address is None:  # a local instance on this machine
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    return ray


def ray_add(
    paths: Sequence[str],
    index: IndexParts,
    options: IngestOptions | None = None,
    address: str | None = None,
    *,
    encoder_factory: Callable[[], Encoder] | None = None,
    page_model_factory: Callable[[], Any] | None = None,
    audio_encoder_factory: Callable[[], Encoder] | None = None,
    ray_options: RayOptions | None = None,
    num_cpus: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AddReport:
    """Add ``paths`` to ``index`` with Ray Data (see the module docstring). Returns the same report
    as :meth:`omniret.index.Index.add`.

    ``address``: a running cluster (``ray://head:10001`` or ``auto``); ``None`` starts a local Ray with
    ``num_cpus`` CPUs if none is running. ``encoder_factory`` builds the encoder in each actor
    (default: a pickled copy of ``index.encoder``; pass e.g. ``lambda: encoders.registry.create(
    "openclip:ViT-B-32", device="cuda")`` so every GPU actor loads its own model).
    ``page_model_factory`` builds the index's page model in each actor (default: from its name and
    config, :func:`omniret.encoders.registry.create_page_model`); ignored without a page model.
    ``audio_encoder_factory`` builds the index's audio model (CLAP) in each actor (default: from the
    manifest's ``audio_encoder`` name and config, :func:`_audio_model`); ignored without an audio model.
    """
    opts, ropts = options or IngestOptions(), ray_options or RayOptions()
    t0 = time.perf_counter()
    store, encoder, page_space, audio = index.store, index.encoder, index.page_space, index.audio_encoder
    report = AddReport()
    tasks = prepare_add([str(p) for p in paths], store, encoder, opts, report, embed_audio=audio is not None)
    if tasks:
        config = DecodeConfig(
            preprocess=encoder.image_preprocessor() if encoder.supports(Modality.IMAGE) else None,
            target_size=encoder.image_size, max_pixels=opts.max_pixels, chunk_chars=opts.chunk_chars,
            chunk_overlap=opts.chunk_overlap,
            media=replace(media_config(opts, encoder, audio),
                          page_size=page_space.encoder.page_size if page_space is not None else None))
        factory = encoder_factory or _pickled(encoder)
        pages_factory = (page_model_factory or _page_model(page_space.encoder)) if page_space is not None else None
        audio_factory = _checked_audio(audio_encoder_factory or _audio_model(index), audio) if audio is not None else None
        done = 0
        for wb, pages in _run_pipeline(_ensure_ray(address, num_cpus), tasks, config, factory, opts, ropts,
                                       pages_factory, audio_factory):
            if page_space is not None and pages is not None:  # derived data first, as Index.add does
                page_space.store_pages(*pages)
            store.commit(wb)
            report.items += len(wb.items)
            report.count_unembedded(wb.items)
            report.failed.extend(wb.errors)
            done += len(wb.sources)
            if progress:
                progress(done, len(tasks))
    if page_space is not None:  # pages of changed, pruned or now-failing files
        page_space.sync(store)
    report.seconds = time.perf_counter() - t0
    return report


def _pickled(encoder: Encoder) -> Callable[[], Encoder]:
    blob = pickle.dumps(encoder)
    return lambda: pickle.loads(blob)


def _page_model(enc: Any) -> Callable[[], Any]:
    """Rebuild a page model in an actor from its name and config (its weights load there, lazily)."""
    name, config = str(enc.name), dict(enc.config())

    def build() -> Any:
        from omniret.encoders.registry import create_page_model

        return create_page_model(name, **config)

    return build


def _audio_model(index: IndexParts) -> Callable[[], Encoder]:
    """Rebuild the index's audio model in an actor from the manifest's ``audio_encoder`` entry (name and
    config; the encoder's own when the manifest has none), as reopening the index does."""
    from omniret.spaces.audio import manifest_entry

    audio = index.audio_encoder
    if audio is None:
        raise OmniretError("this index has no audio model to rebuild; open it with audio_model='hf:<CLAP folder>'")
    entry = index.store.manifest().get("audio_encoder") or manifest_entry(audio)
    name, config = str(entry["name"]), dict(entry.get("config") or {})

    def build() -> Encoder:
        from omniret.encoders.registry import create

        return create(name, **config)

    return build


def _checked_audio(factory: Callable[[], Encoder], audio: Encoder) -> Callable[[], Encoder]:
    """``factory`` that refuses a model whose vectors would not land in the index's audio space."""
    space, dim, name = audio.space, audio.dim, audio.name

    def build() -> Encoder:
        enc = factory()
        if enc.space != space or not enc.supports(Modality.AUDIO):
            raise ModelMismatchError(
                f"the Ray audio encoder factory built {enc.name!r} (space {enc.space!r}), but the index's audio "
                f"space is {space!r} ({name!r}, dim {dim}); pass audio_encoder_factory=lambda: "
                f"registry.create({name!r}, ...) or leave it out to rebuild it from the manifest")
        return enc

    return build


def _run_pipeline(ray: Any, tasks: list[DecodeTask], config: DecodeConfig, factory: Callable[[], Encoder],
                  opts: IngestOptions, ropts: RayOptions, page_model_factory: Callable[[], Any] | None = None,
                  audio_encoder_factory: Callable[[], Encoder] | None = None,
                  ) -> Iterator[tuple[WriteBatch, EmbeddedPages | None]]:
    from ray.data import ActorPoolStrategy

    gpus = float(ray.cluster_resources().get("GPU", 0))
    per_actor = ropts.gpus_per_actor if ropts.gpus_per_actor is not None else (1.0 if gpus >= 1 else 0.0)
    actors = ropts.actors or (max(1, int(gpus // per_actor)) if per_actor else 1)
    rows = [{"uri": t.uri, "modality": t.modality.value, "size": t.size, "mtime_ns": t.mtime_ns,
             "content_hash": t.content_hash} for t in tasks]
    blocks = max(1, min(len(rows), len(rows) // max(ropts.decode_batch, 1) + 1, 200))
    ds = ray.data.from_items(rows, override_num_blocks=blocks)
    ds = ds.map_batches(_decode_rows, fn_kwargs={"config": config}, batch_size=ropts.decode_batch,
                        batch_format="numpy", num_cpus=1, max_retries=ropts.max_retries)
    ds = ds.map_batches(EncodeActor, fn_constructor_args=(factory, opts.batch_size, page_model_factory,
                                                             audio_encoder_factory),
                        batch_size=ropts.files_per_batch, batch_format="numpy",
                        compute=ActorPoolStrategy(size=actors), num_gpus=per_actor, num_cpus=0 if per_actor else 1,
                        max_restarts=-1, max_task_retries=ropts.max_retries)
    for row in ds.iter_rows():
        yield pickle.loads(row["batch"])
