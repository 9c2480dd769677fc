"""``Index``: the facade users hold. ``omniret.open(path, model=...)`` → add / remove / search / info.

The index is self-describing: its manifest records the encoder (registry name and constructor
arguments), the space, the dimension and the versions, so reopening needs no flags and opening
with a different model is an error that names both. No algorithm math lives here: it calls the
ingest pipeline, the store and the pure ranking stages in :mod:`omniret.methods`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Unpack

import numpy as np

from omniret.encoders.base import Encoder, check_device
from omniret.encoders.batching import QueryBatcher, check_batching
from omniret.encoders.onnx import CacheDamaged, OnnxQueryEncoder
from omniret.encoders.query_cache import QueryCache
from omniret.errors import ModelMismatchError, OmniretError, QueryError, StoreError
from omniret.ingest.work import AddReport, IngestOptions
from omniret.items import Hit, Item, Modality, Record, Role
from omniret.query import pipeline, routing
from omniret.query.args import (
    captions,
    image_term,
    item_texts,
    load_query_image,
    make_filter,
    reference_caption,
    restrict,
)
from omniret.query.hits import document_pages, granulate, make_hit
from omniret.query.options import SearchKnobs, SearchOptions
from omniret.query.pipeline import NEGATIVE_WEIGHT, Query, StageOptions, Term, combine_terms, compose_query
from omniret.query.stats import Bank, SpaceStats
from omniret.query.vector import vector_run
from omniret.sources.fetch import FetchLimits
from omniret.spaces.pages import PageSpace
from omniret.store.base import Filter, Problem, Store, WriteBatch
from omniret.store.manifest import SCHEMA_VERSION, manifest_for, omniret_version
from omniret.tasks.check import check_index, validate_manifest
from omniret.threads import ingest_threads, query_threads, torch_threads, uses_torch

log = logging.getLogger(__name__)
#: the search path checks a query's language at most this often (see :meth:`Index._note_language`)
LANGUAGE_CHECK_EVERY_S = 0.1
ImageLike = Any  # a path, or a PIL image


class Index:
    """An omniret index: a store plus the encoder that fills it. Build with :meth:`Index.open`."""

    def __init__(self, store: Store, encoder: Encoder, path: str, *, log_queries: bool = False,
                 audio_encoder: Encoder | None = None, router_url: str | None = None,
                 page_model: Any = None, files: str | None = None, query_cache: bool = True) -> None:
        self.store = store
        self.encoder = encoder
        self.audio_encoder = audio_encoder
        #: the multi-vector page space (ColPali/ColQwen2 over PDF pages), or None; see omniret.spaces.pages
        self.path = path
        #: where derived files live (banks, statistics, page matrices): ``path``, or the store's side
        #: folder when ``path`` is a store URI (Store.side_folder)
        self.files = files or path
        self.page_space: PageSpace | None = PageSpace(page_model, self.files) if page_model is not None else None
        self.log_queries = log_queries
        self.router_url = router_url
        self._stats: SpaceStats | None = None
        self._space_stats: dict[str, SpaceStats] = {}
        self._pending: list[tuple[str, np.ndarray]] = []
        self._query_cache: QueryCache | None = None
        #: False: the query cache not looked at yet (None: none usable); query_cache=False: never used
        self._fast: OnnxQueryEncoder | None | bool = False if query_cache else None
        self.use_query_cache = query_cache
        self._batching: dict[str, Any] | None = None  # the batcher arguments while batch_queries is on
        self._batchers: dict[int, QueryBatcher] = {}  # by id() of the encoder they front
        self._batch_lock = threading.Lock()
        self._noted: set[str] = set()
        self._last_language_check = -LANGUAGE_CHECK_EVERY_S
        self._rerankers: Any = None

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] = ".omniret",
        model: str | None = "auto",
        *,
        audio_model: str | None = None,
        page_model: str | None = None,
        device: str | None = None,
        batch_size: int | None = None,
        store: Store | None = None,
        log_queries: bool = False,
        query_cache: bool = True,
        **store_options: Any,
    ) -> Index:
        """Open the index at ``path``, creating it if needed.

        ``model``: a registry name (``offline``, ``openclip:...``, ``st:...``) or ``auto``/``None``.
        On an existing index, ``auto``/``None`` means "the model recorded in the manifest"; any
        other name must match it, or :class:`ModelMismatchError` names both.
        ``audio_model``: an optional second encoder for the audio space (``hf:<CLAP folder or id>``,
        or ``auto`` = the default CLAP when its weights are on this machine); recorded in the
        manifest of a new index and restored on reopening (see :mod:`omniret.spaces.audio`).
        ``page_model``: an optional multi-vector page model (``colpali:<hub id or folder>``) that
        embeds every PDF page's image for MUVERA + MaxSim search; recorded and restored the same
        way (see :mod:`omniret.spaces.pages`).
        ``query_cache=False``: never embed queries with the model's ONNX query towers, nor write them
        (:meth:`prepare_queries`); every query loads the model.
        """
        from omniret.encoders import registry
        from omniret.spaces import audio as audio_space
        from omniret.spaces import pages as page_space
        from omniret.store import open_store

        path = os.fspath(path)
        before = _new_folder_state(path) if store is None else None
        st = store if store is not None else open_store(path, **store_options)
        files = st.side_folder() or path
        try:
            manifest = st.manifest()
            validate_manifest(manifest, st, path)
            enc_kwargs: dict[str, Any] = {}
            if device and device != "auto":
                enc_kwargs["device"] = check_device(device)
            if batch_size:
                enc_kwargs["batch_size"] = batch_size
            recorded = manifest.get("encoder")
            if recorded:
                from omniret.tasks import upgrade

                up = manifest.get("upgrade") or {}
                upgrading = up.get("to") if up.get("state") in upgrade.ACTIVE else None
                if model not in (None, "auto", recorded["name"], upgrading):
                    raise ModelMismatchError(
                        f"the index at {path} was built with model {recorded['name']!r}, not {model!r}; "
                        f"open it with model={recorded['name']!r} (or 'auto'), or use another index folder"
                    )
                # mid-upgrade: queries go through the new model, mapped into the old space
                mapped = upgrade.encoder_for(manifest, registry.create, files, **enc_kwargs)
                encoder = mapped or registry.create(recorded["name"], **_encoder_config(manifest, files, enc_kwargs))
                audio = audio_space.resolve(audio_model, manifest.get("audio_encoder"), path, registry.create,
                                            **enc_kwargs)
                if audio is not None and not manifest.get("audio_encoder"):  # attached to an existing index
                    st.set_manifest({**manifest, **_audio_manifest(manifest, audio)})
                pages = page_space.resolve(page_model, manifest.get("page_encoder"), path, **enc_kwargs)
                if pages is not None and not manifest.get("page_encoder"):  # attached: PDFs added from now on
                    st.set_manifest({**st.manifest(), "page_encoder": page_space.manifest_entry(pages)})
            else:
                encoder = registry.create(model or "auto", **enc_kwargs)
                audio = audio_space.resolve(audio_model, None, path, registry.create, **enc_kwargs)
                new = manifest_for(encoder)
                pages = page_space.resolve(page_model, None, path, **enc_kwargs)
                if pages is not None:
                    new["page_encoder"] = page_space.manifest_entry(pages)
                st.set_manifest({**new, **(_audio_manifest(new, audio) if audio is not None else {})})
        except BaseException:
            if store is None:
                st.close()
                if before is not None:  # a new index whose model failed to load: leave nothing behind
                    _remove_new_index(path, before)
            raise
        return cls(st, encoder, path, log_queries=log_queries, audio_encoder=audio, page_model=pages, files=files,
                   query_cache=query_cache)

    def close(self) -> None:
        self.batch_queries(False)
        self.store.close()

    def batch_queries(self, enable: bool = True, *, max_batch: int = 64, wait_ms: float = 2.0) -> None:
        """Let searches running concurrently in several threads share encoder calls: a text or image
        query arriving within ``wait_ms`` of others is embedded in one batch with them (at most
        ``max_batch``); see :mod:`omniret.encoders.batching`. The HTTP server turns this on. The vectors
        are the ones a lone query gets; a single-threaded caller gains nothing. ``False`` turns it off."""
        if enable:
            check_batching(max_batch, wait_ms)
        with self._batch_lock:
            old, self._batchers = list(self._batchers.values()), {}
            self._batching = {"max_batch": max_batch, "wait_ms": wait_ms} if enable else None
        for b in old:
            b.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------
    def add(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        options: IngestOptions | None = None,
        progress: Callable[[int, int], None] | None = None,
        **option_kwargs: Any,
    ) -> AddReport:
        """Index files, folders and globs; unchanged files are skipped, changed ones re-embedded.

        Keyword arguments are :class:`IngestOptions` fields (``prune=True``, ``workers=0``...).
        Bad files are skipped, counted and listed in the report; nothing stored is lost.
        """
        from omniret.ingest.run import run_add  # the decoders' imports stay out of a search

        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        opts = options or IngestOptions(**option_kwargs)
        self.store.verify_before_write()  # a damaged or read-only index is reported, not written into
        try:
            return run_add([os.fspath(p) for p in paths], self.store, self.encoder, opts, progress,
                           audio_encoder=self.audio_encoder, page_space=self.page_space)
        finally:
            self.store.checkpoint(resync_marker=True)  # what was committed no longer depends on the -wal file

    def add_records(
        self,
        records: Iterable[Record | Mapping[str, Any]],
        *,
        id_col: str | None = None,
        image_col: str | None = None,
        text_col: str | None = None,
        audio_col: str | None = None,
        uri_col: str | None = None,
        metadata_cols: Sequence[str] | None = None,
        options: IngestOptions | None = None,
        progress: Callable[[int, int], None] | None = None,
        fetch_max_bytes: int = FetchLimits.max_bytes,
        fetch_timeout: float = FetchLimits.timeout,
        **option_kwargs: Any,
    ) -> AddReport:
        """Upsert records by your own ids: dicts or :class:`~omniret.items.Record` s with ``id`` and any of
        ``text``, ``image`` (path, URL, bytes, PIL image, array), ``audio`` (path, URL, bytes,
        ``(samples, rate)``), ``uri``, ``metadata``.

        Rows with other column names (a ``datasets.Dataset``, a list of dicts): name the columns with
        ``image_col``/``text_col``/``audio_col``/``id_col``/``uri_col``; the other columns (or
        ``metadata_cols``) become metadata; ids default to ``<dataset name>#<row>``.

        One item per record: an image (its text becomes the caption), a sound, or a text. A record whose
        content did not change since the last call is skipped; a changed one is re-embedded; a bad one is
        listed in ``report.failed`` as ``(id, reason)`` and its stored version kept. URLs are fetched with
        ``fetch_max_bytes`` / ``fetch_timeout`` limits. Keyword arguments are :class:`IngestOptions` fields.
        """
        from omniret.sources.manifest import parse_columns, rows_of

        if isinstance(records, Mapping | Record | str | bytes):
            raise QueryError("add_records takes an iterable of records (dicts or Record); wrap one record in a list")
        cols = parse_columns(id_col, image_col, text_col, audio_col, uri_col, metadata_cols)
        return self._run_records(rows_of(records, cols), options or IngestOptions(**option_kwargs), progress,
                                 fetch_max_bytes, fetch_timeout)

    def add_manifest(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        id_col: str | None = None,
        image_col: str | None = None,
        text_col: str | None = None,
        audio_col: str | None = None,
        uri_col: str | None = None,
        metadata_cols: Sequence[str] | None = None,
        options: IngestOptions | None = None,
        progress: Callable[[int, int], None] | None = None,
        fetch_max_bytes: int = FetchLimits.max_bytes,
        fetch_timeout: float = FetchLimits.timeout,
        **option_kwargs: Any,
    ) -> AddReport:
        """Add the rows of manifests — Parquet, CSV, TSV or JSONL with an image URL/path column and a caption
        column (img2dataset / clip-retrieval style) — and WebDataset ``.tar`` shards, as records (see
        :meth:`add_records`; shards need no column names). Relative paths are read from the manifest's folder.
        """
        from omniret.sources.manifest import Columns, ManifestRows, chain_rows, parse_columns

        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        cols = parse_columns(id_col, image_col, text_col, audio_col, uri_col, metadata_cols) or Columns()
        sources = [ManifestRows(p, cols) for p in paths]
        rows = sources[0] if len(sources) == 1 else chain_rows(sources)
        return self._run_records(rows, options or IngestOptions(**option_kwargs), progress, fetch_max_bytes,
                                 fetch_timeout)

    def _run_records(self, rows: Iterable[Any], opts: IngestOptions, progress: Callable[[int, int], None] | None,
                     fetch_max_bytes: int, fetch_timeout: float) -> AddReport:
        from omniret.ingest.records import run_records

        limits = FetchLimits(max_bytes=int(fetch_max_bytes), timeout=float(fetch_timeout))
        self.store.verify_before_write()  # a damaged or read-only index is reported, not written into
        try:
            return run_records(rows, self.store, self.encoder, opts, progress,
                               audio_encoder=self.audio_encoder, fetch_limits=limits)
        finally:
            self.store.checkpoint(resync_marker=True)

    def add_vectors(
        self,
        ids: Sequence[str | int],
        vectors: Any,
        *,
        items: Sequence[Mapping[str, Any] | None] | None = None,
        space: str | None = None,
        normalize: bool = True,
        modality: str | Modality = Modality.IMAGE,
        commit_every: int = 4096,
    ) -> AddReport:
        """Store vectors you already have (``(len(ids), dim)``) under ``ids``, without running a model.

        ``space``: the index's own space (default; the dimension must be the model's, and text or image
        queries then reach these vectors), or a name of your own for another model's vectors, recorded in
        the manifest with its dimension on first use (later calls must match). Search them with
        ``search(vector=..., space=...)``. ``items``: one dict (``uri``, ``text``, ``metadata``,
        ``modality``) or ``None`` per id; new ids become record items (of ``modality``), existing ones keep
        theirs unless a dict is given. ``normalize``: L2-normalise (searches rank by inner product).
        Bad rows (NaN, zeros) are listed in ``report.failed`` as ``(id, reason)``; a wrong dimension
        refuses the whole call before anything is written.
        """
        from omniret.ingest import vectors as vec

        mat = vec.check_matrix(vectors, len(ids))
        with self._write_run():
            return self._add_vectors(vec, ids, mat, items, space, normalize, modality, commit_every)

    def _add_vectors(self, vec: Any, ids: Sequence[str | int], mat: np.ndarray,
                     items: Sequence[Mapping[str, Any] | None] | None, space: str | None, normalize: bool,
                     modality: str | Modality, commit_every: int) -> AddReport:
        spec, manifest = vec.resolve_space(self.store.manifest(), self.encoder.space, self.encoder.dim, space,
                                           mat.shape[1], normalize)
        if manifest is not None:
            self.store.set_manifest(manifest)
        return vec.write_vectors(self.store, spec, ids, mat, items, normalize=normalize,
                                 modality=Modality.parse(modality), commit_every=commit_every)

    def export_parquet(self, path: str | os.PathLike[str], *, spaces: Sequence[str] | None = None) -> Any:
        """Write items, metadata and vectors (all spaces, or ``spaces``) to one Parquet file; see
        :mod:`omniret.tasks.exchange` for the columns. Returns an :class:`~omniret.tasks.exchange.ExportReport`."""
        from omniret.tasks.exchange import export_parquet

        return export_parquet(self.store, self.encoder.space, path, spaces=spaces)

    def import_parquet(self, path: str | os.PathLike[str]) -> AddReport:
        """Upsert the items and vectors of a Parquet file written by :meth:`export_parquet`.

        The export must come from the same model (its space); a new index folder takes the model from
        the file (``omniret import`` does that). Rows keep their ids: importing twice changes nothing.
        """
        from omniret.tasks import exchange

        exported, columns, pf = exchange.read_header(path)
        exchange.check_model(exported, self.store.manifest(), os.fspath(path))
        with self._write_run():
            merged = exchange.merge_spaces(exported, self.store.manifest(), columns, os.fspath(path))
            if merged is not None:
                self.store.set_manifest(merged)
            return exchange.import_rows(self.store, pf, columns)

    @contextlib.contextmanager
    def _write_run(self) -> Any:
        """A run of writes: refused up front on a damaged or read-only index; checkpointed at the end, so
        what was committed no longer depends on the -wal file."""
        self.store.verify_before_write()
        try:
            yield
        finally:
            self.store.checkpoint(resync_marker=True)

    def remove(self, ids_or_paths: Sequence[str]) -> int:
        """Remove items by id, or every item of a source file by its path. Returns how many went."""
        known = self.store.source_states()
        uris, ids = [], []
        for x in ids_or_paths:
            real = os.path.realpath(x) if os.path.exists(x) or os.path.isabs(x) else None
            if real is not None and real in known:
                uris.append(real)
            else:
                ids.append(x)
        children = [c.id for i in ids for c in self.store.iter_items(Filter(parent_id=i))]  # a file's parts go too
        self.store.verify_before_write()
        before = self.store.count()
        try:
            self.store.commit(WriteBatch(delete_ids=ids + children, delete_uris=uris))
        finally:
            self.store.checkpoint()
        if self.page_space is not None:  # derived data: page matrices of items that are gone
            self.page_space.sync(self.store)
        return before - self.store.count()

    # -- searching -----------------------------------------------------------------------------
    def embed_query(self, text: str | None = None, image: ImageLike | None = None) -> np.ndarray:
        """The query vector ``(dim,)`` of a text or an image (a path or a PIL image).

        Encodes with one thread in the calling thread (a batch of one is latency-bound; see
        :mod:`omniret.threads`, overridable with ``$OMNIRET_TORCH_THREADS``). When the index holds the
        model's query towers as ONNX (:meth:`prepare_queries`), they embed the query without loading
        torch or the model; a damaged cache falls back to the model (and is rebuilt by the next
        :meth:`prepare_queries`).
        """
        if (text is None) == (image is None):
            raise QueryError("give exactly one of text= or image= to embed a query")
        if text is not None:
            if not isinstance(text, str) or not text.strip():
                raise QueryError(f"query text must be a non-empty string, got {text!r}")
            return self._embed(Modality.TEXT, text)
        if not self.encoder.supports(Modality.IMAGE):
            raise QueryError(f"model {self.encoder.name!r} cannot embed images; query with text instead")
        return self._embed(Modality.IMAGE, load_query_image(image, self.encoder.image_size))

    def _embed(self, modality: Modality, value: Any) -> np.ndarray:
        """``value`` (a text or an RGB PIL image) embedded by the ONNX query towers when present, else by
        the model; through the query batcher when :meth:`batch_queries` is on."""
        fast = self._query_towers()
        if fast is not None and fast.has_tower(modality):
            try:
                return self._encode_query(fast, modality, value)
            except CacheDamaged:  # never trusted again: removed, rebuilt by the next prepare_queries()
                self._fast = None
                self.query_cache().discard()
        with torch_threads(query_threads(), load=uses_torch(self.encoder)):
            return self._encode_query(self.encoder, modality, value)

    def _encode_query(self, enc: Encoder, modality: Modality, value: Any) -> np.ndarray:
        batcher = self._batcher_for(enc)
        if batcher is not None:
            return batcher.encode_text(value) if modality is Modality.TEXT else batcher.encode_image(value)
        if modality is Modality.TEXT:
            return enc.encode_text([value], role=Role.QUERY)[0]
        return enc.encode_images([value], role=Role.QUERY)[0]

    def _batcher_for(self, enc: Encoder) -> QueryBatcher | None:
        """The query batcher of ``enc`` (the model, or its ONNX query towers), made on first use."""
        if self._batching is None:
            return None
        with self._batch_lock:
            b = self._batchers.get(id(enc))
            if b is None or b.encoder is not enc:
                b = self._batchers[id(enc)] = QueryBatcher(enc, **self._batching)
            return b

    def query_cache(self) -> QueryCache:
        """The ONNX query towers of this index's model (:mod:`omniret.encoders.query_cache`)."""
        if self._query_cache is None:
            self._query_cache = QueryCache(self.encoder, self.files)
        return self._query_cache

    def _query_towers(self) -> OnnxQueryEncoder | None:
        if self._fast is False:
            with self._batch_lock:  # concurrent first queries (a server's threads) load the towers once
                if self._fast is False:
                    self._fast = self.query_cache().load()
        return self._fast if isinstance(self._fast, OnnxQueryEncoder) else None

    def prepare_queries(self) -> str:
        """Export the model's query towers to ONNX next to the index when they are missing, so a new
        process (the CLI) embeds queries without torch. Loads the model when it builds (seconds, once per
        model). Returns the cache's state: ``ready``, ``failed`` (the model's towers cannot be exported
        faithfully; queries load the model), ``unsupported`` (no towers, or no onnxruntime) or ``off``
        (opened with ``query_cache=False``)."""
        cache = self.query_cache()
        if not self.use_query_cache:
            return "off"
        if cache.state() == "missing":
            with torch_threads(ingest_threads(0), load=uses_torch(self.encoder)):
                self._fast = cache.build()
        return cache.state()

    def search(
        self,
        text: str | None = None,
        *,
        image: ImageLike | None = None,
        audio: str | os.PathLike[str] | None = None,
        negative: str | Sequence[str] | None = None,
        like: Sequence[str] | None = None,
        terms: Sequence[Term] | None = None,
        vector: Any = None,
        space: str | None = None,
        options: SearchOptions | None = None,
        **knobs: Unpack[SearchKnobs],
    ) -> list[Hit]:
        """Search by text, by an example image or sound, by text + image (a composed query), or by query algebra.

        Always returns ``list[Hit]``, best first. The arguments are the query: ``text``, ``image`` (a
        path or a PIL image; with ``text``, a composed query), ``audio`` (a recording, searched in the
        audio space), ``negative`` texts (subtracted), ``like`` (stored items as positive examples, left
        out of the results), ``terms`` (the full algebra as weighted :class:`Term` s), or ``vector`` (a query
        vector of your own, in the index's space or in ``space``, one filled by :meth:`add_vectors`).

        Everything else is a :class:`~omniret.query.options.SearchOptions` — ``options=`` or the same
        fields as flat keywords (:class:`~omniret.query.options.SearchKnobs`), applied over ``options``:

        - how many and what: ``k``; ``granularity``: ``auto`` (default) returns documents at the page — a
          page once, scored by its best block or section, with the matched blocks and their boxes in
          ``metadata["matched"]`` and navigation/boilerplate items (``metadata["role"]``) left out unless
          ``where`` names a role — and everything else as found; ``item`` the matched items themselves,
          ``parent`` (``rollup=True``) their parents (files, pages), ``root`` the top of their parent
          chain, each scored by its best child;
        - filters: ``modality``, ``where`` (metadata equality or a :class:`Filter`), ``path_glob``,
          ``mtime_min``/``mtime_max``;
        - ranking: ``route`` (auto|all|llm|<modality>) picks the spaces and how their scores merge (see
          :mod:`omniret.query.routing`); the stages of :mod:`omniret.query.pipeline`: ``hubness``
          (none|is|qbnorm|dbnorm|dualdis), ``gap`` (none|center|calibrate), ``compose`` (sum|weimo|pdv,
          with ``alpha``/``beta``), ``hybrid`` (none|rrf|minmax|zscore: BM25 fused with dense),
          ``candidates`` (the ANN depth). Hubness and hybrid stages search the main space only;
          ``rerank`` (none|cross|cross:<model>|maxsim|model:<registry name>) re-scores the top
          ``rerank_depth`` hits with a stronger model (:mod:`omniret.query.rerank`).
        """
        o = SearchOptions.of(options, **knobs)
        if text is not None:
            self._note_language(text)
        rk = o.ranking
        if rk.rerank not in (None, "none"):
            return self._reranked(text, image, audio, negative, like, terms, o)
        gran = routing.parse_granularity(o.granularity, o.rollup)
        rt = self._route(rk.route, text)
        if rt.granularity is not None and o.granularity is None and not o.rollup:
            gran = rt.granularity
        flt = restrict(o.filters.to_filter(), rt)
        exclude = frozenset(like or ())
        opts = StageOptions(k=o.k, where=flt, rollup=gran != "item", hubness=rk.hubness, gap=rk.gap,
                            compose=rk.compose, alpha=rk.alpha, beta=rk.beta, hybrid=rk.hybrid,
                            candidates=rk.candidates, exclude=exclude)
        opts.validate()
        if vector is not None or space is not None:
            runs = vector_run(self.store, self.encoder.space, vector, space,
                              (text, image, audio, negative, like, terms), opts)
        else:
            runs = self._space_queries(text, image, audio, negative, like, terms, opts)
        plain = text is not None and image is None and audio is None and not (negative or like or terms)
        page_q = self.page_space.query_for(text, opts) if self.page_space is not None and plain else None
        if not runs and page_q is None:
            return []
        calibrate = routing.needs_calibration(rt, len(runs) + (page_q is not None))
        if calibrate and opts.hubness != "none":
            raise QueryError("route='all' calibrates scores across modalities, which excludes hubness corrections; "
                             "use route='auto' or hubness='none'")
        results = []
        for space, query in runs:
            so = replace(opts, gap="calibrate") if calibrate else opts
            stats = self._stats_of(space) if (so.gap != "none" or so.hubness != "none") else None
            if stats is not None and stats.version < 0:  # never built: calibrate's per-modality search needs counts
                stats.refresh()
            ids, scores, keys = pipeline.candidates(self.store, stats, space, query.vector, so)
            if stats is not None:  # up to at least the commit the ANN search ran against (no SQL if unchanged)
                stats.refresh(seen=self.store.seen_version())
            caption_fn = ((lambda cand, q=query: self._caption_sims(q, cand))
                          if opts.compose == "weimo" and image is not None and space == self.encoder.space else None)
            results.append(pipeline.rerank(self.store, stats, space, query, ids, scores, so, caption_fn, keys))
        if page_q is not None:
            results.append(self.page_space.run(page_q, opts, self.store, calibrate))  # type: ignore[union-attr]
        ids, merged = routing.merge(results) if len(results) > 1 else results[0]
        # records only for the hits returned (the stages' K' candidates stay ids); rollups need them all
        hits = self._hits(ids, merged, o.k if gran == "item" else None)
        if page_q is not None:
            hits = self.page_space.mark_hits(hits, results[-1], page_q, o.k)  # type: ignore[union-attr]
        if runs:
            self._log_query(runs[0][1])
        if gran == "auto":
            hits = document_pages(hits, self.store, keep_nav=_asks_role(flt))[: o.k]
        else:
            hits = granulate(hits, self.store, gran)[: o.k]
        if not hits and rt.source.startswith("llm:") and rt.modalities is not None:  # routed to nothing: auto
            return self.search(text, image=image, audio=audio, negative=negative, like=like, terms=terms,
                               options=replace(o, ranking=replace(rk, route="auto")))
        return hits

    def _reranked(self, text: str | None, image: ImageLike | None, audio: Any, negative: Any, like: Any,
                  terms: Any, o: SearchOptions) -> list[Hit]:
        """The first stage to ``rerank_depth`` hits, re-ranked by ``o.ranking.rerank``, cut to ``k``."""
        from omniret.query import rerank as rr

        spec = rr.parse_rerank(o.ranking.rerank)
        depth = o.ranking.rerank_depth if o.ranking.rerank_depth is not None else rr.DEFAULT_DEPTH
        if depth < 1:
            raise QueryError(f"rerank_depth must be >= 1, got {depth}")
        if not text or not isinstance(text, str):
            raise QueryError("re-ranking needs a text query (text=...); search by example without rerank=")
        scorer = self.rerankers().scorer(spec)
        first = replace(o, k=max(o.k, depth), ranking=replace(o.ranking, rerank="none"))
        hits = self.search(text, image=image, audio=audio, negative=negative, like=like, terms=terms, options=first)
        return rr.rerank(hits, text, scorer)[: o.k]

    def rerankers(self) -> Any:
        """The index's loaded re-ranking models (:class:`omniret.query.rerank.Rerankers`), built on first use."""
        if self._rerankers is None:
            from omniret.encoders import registry
            from omniret.query.rerank import Rerankers

            self._rerankers = Rerankers(registry.create, registry.create_cross_encoder, self.page_space)
        return self._rerankers

    def language_note(self, text: str) -> str | None:
        """A note when ``text`` is in a language the index's text space was not trained on (an English-only
        model such as ``offline`` asked in German), else ``None``; see :mod:`omniret.query.language`."""
        from omniret.query.language import language_note

        return language_note(text, self.encoder.name, self.encoder.languages)

    def _note_language(self, text: str) -> None:
        """Log :meth:`language_note` once per index and language (only English-only models detect at all).

        Detection costs about 5 ms of pure Python per new text, under one lock: on the search path it runs
        for at most one query every :data:`LANGUAGE_CHECK_EVERY_S` seconds, so a person typing queries
        always gets the note and a server answering a hundred searches a second spends ~5 % of a core on it
        instead of serialising every request behind it."""
        if self.encoder.languages is None:
            return
        now = time.monotonic()
        with self._batch_lock:
            if now - self._last_language_check < LANGUAGE_CHECK_EVERY_S:
                return
            self._last_language_check = now
        note = self.language_note(text)
        if note is not None and note not in self._noted:
            self._noted.add(note)
            log.warning(note)

    def _route(self, route: str | Modality, text: str | None) -> routing.Route:
        """Parse ``route``; ``llm`` asks the configured endpoint (text queries only; else ``auto``)."""
        rt = routing.parse_route(route)
        if rt.source != "llm":
            return rt
        url, model, key = routing.router_config(self.router_url)
        if not text:
            return routing.Route(source="llm:fallback")
        import httpx

        with httpx.Client() as client:
            return routing.route_from_label(routing.llm_route(text, url, model, client, api_key=key))

    def _space_queries(self, text: str | None, image: ImageLike | None, audio: Any,
                       negative: str | Sequence[str] | None, like: Sequence[str] | None,
                       terms: Sequence[Term] | None, opts: StageOptions) -> list[tuple[str, Query]]:
        """The spaces this query enters, each with the query embedded there (only spaces with vectors)."""
        from omniret.spaces import audio as audio_space

        mods = opts.where.modalities if opts.where is not None else None
        audio_only = mods is not None and mods <= {Modality.AUDIO}
        aenc = self.audio_encoder
        present = self.store.spaces()
        if audio is not None:
            if text is not None or image is not None or terms or like:
                raise QueryError("audio= is a query by example sound; it cannot be combined with text=, image=, "
                                 "like= or terms=")
            if aenc is None:
                raise audio_space.missing("search(audio=...)")
            q = Query(audio_space.embed_audio_query(aenc, audio), Modality.AUDIO)
            return [(aenc.space, q)] if aenc.space in present else []
        if audio_only and aenc is None:
            raise audio_space.missing("searching audio (route/modality 'audio')")
        if audio_only and text is not None and not aenc.supports(Modality.TEXT):  # type: ignore[union-attr]
            raise QueryError(f"audio model {aenc.name!r} has no text tower; search audio by example (audio=PATH)")  # type: ignore[union-attr]
        runs: list[tuple[str, Query]] = []
        if not audio_only:
            main = self._build_query(text, image, negative, like, terms, opts)
            if self.encoder.space in present:
                runs.append((self.encoder.space, main))
        single_stage = opts.hubness == "none" and opts.hybrid == "none"
        if (aenc is not None and text is not None and image is None and not terms and not like
                and aenc.supports(Modality.TEXT) and aenc.space in present and (single_stage or audio_only)):
            negs = [negative] if isinstance(negative, str) else list(negative or ())
            vecs = aenc.encode_text([text, *negs], role=Role.QUERY)
            vec = vecs[0] if not negs else combine_terms(list(vecs), [1.0] + [-NEGATIVE_WEIGHT] * len(negs))
            runs.append((aenc.space, Query(np.asarray(vec, dtype=np.float32), Modality.TEXT, text)))
        return runs

    def search_pages(self, text: str, *, k: int = 10, candidates: int | None = None) -> list[Hit]:
        """Search only the page space (the page model's MaxSim over PDF pages); scores are raw MaxSim.

        ``candidates``: pages taken from the MUVERA FDE search and re-ranked exactly (default 200:
        recall@10 0.97 at 10k pages in bench/RESULTS_muvera.md); with ``candidates >= len(pages)`` this
        is brute-force MaxSim over every stored page.
        """
        if self.page_space is None:
            raise QueryError("this index has no page model; create it with page_model='colpali:<hub id or folder>' "
                             "(omniret add --page-model ...)")
        if k < 1:
            raise QueryError(f"k must be >= 1, got {k}")
        if not len(self.page_space):
            return []
        tokens = self.page_space.query_tokens(text)
        ids, scores = self.page_space.search(tokens, k=k, candidates=candidates)
        return self.page_space.with_regions(self._hits(ids, scores), tokens)

    def parse_expression(self, expr: str) -> list[Term]:
        """Query algebra (see :func:`omniret.query.pipeline.parse_expression`); bare words that are image files
        become image terms.

        A bare word that looks like a media file (an image, audio, video or PDF extension: ``+beach.jpg``) must
        be an existing image file: a missing one, or a FIFO, a folder or a sound, is a :class:`QueryError`
        naming it, rather than a silent search for the text "beach.jpg". To search such words as text, quote
        them (``"beach.jpg"``).
        """
        return pipeline.parse_expression(expr, image_term)

    def _build_query(self, text: str | None, image: ImageLike | None, negative: str | Sequence[str] | None,
                     like: Sequence[str] | None, terms: Sequence[Term] | None, opts: StageOptions) -> Query:
        all_terms: list[Term] = list(terms or ())
        if text is not None and image is not None:
            vec = self._composed(text, image, opts)
            all_terms.insert(0, Term("vector", vec, 1.0))
        elif text is not None:
            all_terms.insert(0, Term("text", text, 1.0))
        elif image is not None:
            all_terms.insert(0, Term("image", image, 1.0))
        for n in [negative] if isinstance(negative, str) else list(negative or ()):
            all_terms.append(Term("text", n, -NEGATIVE_WEIGHT))
        all_terms += [Term("item", i, 1.0) for i in like or ()]
        if not all_terms:
            raise QueryError("give a query: text=, image=, like= or terms=")
        vecs = [self._term_vector(t) for t in all_terms]
        weights = [t.weight for t in all_terms]
        vec = vecs[0] if len(vecs) == 1 and weights[0] > 0 else combine_terms(vecs, weights)
        lead = max((t for t in all_terms if t.weight > 0), key=lambda t: t.weight, default=all_terms[0])
        mod = {"text": Modality.TEXT, "image": Modality.IMAGE, "vector": Modality.IMAGE}.get(lead.kind)
        if mod is None:
            mod = self._item_modality(lead.value)
        words = " ".join(str(t.value) for t in all_terms if t.kind == "text" and t.weight > 0) or None
        return Query(vec, mod, words)

    def _term_vector(self, t: Term) -> np.ndarray:
        if t.kind == "vector":
            return np.asarray(t.value, dtype=np.float32)
        if t.kind == "text":
            return self.embed_query(text=t.value)
        if t.kind == "image":
            return self.embed_query(image=t.value)
        if t.kind == "item":
            v = self.store.vectors(self.encoder.space, [t.value])[0]
            if np.isnan(v).any():
                raise QueryError(f"item {t.value!r} has no vector in this index; check the id (omniret search --json shows ids)")
            return v
        raise QueryError(f"unknown query term kind {t.kind!r}; use text, image or item")

    def _item_modality(self, item_id: str) -> Modality:
        it = self.get(item_id)
        return it.modality if it is not None else Modality.TEXT

    def _composed(self, text: str, image: ImageLike, opts: StageOptions) -> np.ndarray:
        v = self.embed_query(image=image)
        t = self.embed_query(text=text)
        pair = None
        if opts.compose == "pdv":
            caption = reference_caption(self.store, image)
            if caption:
                e = self.encoder.encode_text([caption, f"{caption}, {text}"], role=Role.QUERY)
                pair = (e[0], e[1])
        return compose_query(opts.compose, v, t, opts.alpha, opts.beta, pair)

    def _caption_sims(self, query: Query, ids: list[str]) -> np.ndarray | None:
        """WeiMoCIR's s_Q2C per candidate: mean cosine of the query with the item's captions (NaN: none)."""
        items = self.store.get(ids)
        caps = [captions(it) for it in items]
        flat = sorted({c for cs in caps for c in cs})
        if not flat:
            return None
        emb = dict(zip(flat, self.encoder.encode_text(flat, role=Role.DOCUMENT), strict=True))
        q = query.vector.astype(np.float64)
        return np.array([np.mean([emb[c] @ q for c in cs]) if cs else np.nan for cs in caps])

    # -- banks and statistics ------------------------------------------------------------------
    def stats(self) -> SpaceStats:
        """The (lazily built) statistics of the index's space: modality moments, hubness banks."""
        if self._stats is None:
            self._stats = SpaceStats(self.store, self.encoder.space, self.files)
        return self._stats

    def _stats_of(self, space: str) -> SpaceStats:
        if space == self.encoder.space:
            return self.stats()
        if space not in self._space_stats:
            self._space_stats[space] = SpaceStats(self.store, space, self.files)
        return self._space_stats[space]

    def set_query_bank(self, texts: Sequence[str] | None = None, *, from_items: bool = False,
                       append: bool = False, limit: int = 5000, source: str = "texts") -> int:
        """Set the query bank that hubness corrections (is, qbnorm, dbnorm, dualdis) normalise by.

        ``texts``: sample queries (e.g. a log of real queries, or training captions); or
        ``from_items=True``: up to ``limit`` of the index's own text items and captions. Returns
        the bank size. The bank is stored in the index and the statistics follow every add/remove.
        """
        if texts is None and not from_items:
            raise QueryError("give texts=[...] (sample queries) or from_items=True")
        self.store.verify_before_write()  # the bank is stored in the index folder
        bank_texts = [t for t in (texts or []) if isinstance(t, str) and t.strip()]
        if from_items:
            bank_texts += item_texts(self.store, limit)
        if not bank_texts:
            raise QueryError("the query bank would be empty: no non-empty texts were given or found")
        bank_texts = bank_texts[:limit] if not append else bank_texts
        vecs = np.concatenate([self.encoder.encode_text(bank_texts[i : i + 256], role=Role.QUERY)
                               for i in range(0, len(bank_texts), 256)])
        self.stats().set_query_bank(Bank(vecs, bank_texts, source), append=append)
        self.stats().refresh(force=True)
        qb = self.stats().query_bank()
        return 0 if qb is None else len(qb.vectors)

    def _log_query(self, query: Query) -> None:
        """Opt-in rolling query log (``Index.open(..., log_queries=True)``) feeding the query bank."""
        if not self.log_queries or query.modality is not Modality.TEXT or not query.text:
            return
        self._pending.append((query.text, query.vector))
        if len(self._pending) >= 32:
            texts, vecs = zip(*self._pending, strict=True)
            self.stats().set_query_bank(Bank(np.stack(vecs), list(texts), "query-log"), append=True)
            self._pending.clear()

    def _hits(self, ids: Sequence[str], scores: Sequence[float] | np.ndarray, limit: int | None = None) -> list[Hit]:
        """Hits for ``ids`` with their ``scores``, best first; with ``limit``, the first ``limit`` whose
        item still exists (ids and records are read a slice at a time, so K' candidates cost k reads)."""
        if len(ids) != len(scores):
            raise ValueError(f"{len(ids)} ids but {len(scores)} scores")
        out: list[Hit] = []
        start, step = 0, max(len(ids) if limit is None else limit, 1)
        while start < len(ids) and (limit is None or len(out) < limit):
            chunk = list(ids[start : start + step])
            sc = np.asarray(scores[start : start + step], dtype=np.float64).tolist()
            items = self.store.get(chunk)
            out += [make_hit(it, s) for it, s in zip(items, sc, strict=True) if it is not None]
            start += len(chunk)
        return out if limit is None else out[:limit]

    def classify(self, labels: Sequence[str], **kwargs: Any) -> list[Any]:
        """Zero-shot classification/tagging of indexed items or files; see :func:`omniret.tasks.classify.classify`."""
        from omniret.tasks.classify import classify

        return list(classify(self, labels, **kwargs))

    def context(self, question: str, *, budget_tokens: int = 2000,
                modalities: Sequence[str | Modality] | None = None, tokenizer: Any = None,
                route: str = "all", rerank: str | None = None, **kwargs: Any) -> Any:
        """Evidence for a generator: routed, de-duplicated, diversified (MMR), optionally re-ranked hits within
        ``budget_tokens`` (counted with ``tokenizer``: a Hugging Face name/folder or a callable; default an
        approximation), each with its citation. Returns a :class:`omniret.tasks.context.Context`; see that
        module for the steps and the other keywords."""
        from omniret.tasks.context import build_context

        return build_context(self, question, budget_tokens=budget_tokens, modalities=modalities,
                             tokenizer=tokenizer, route=route, rerank=rerank, **kwargs)

    def ask(self, question: str, *, llm_url: str | None = None, llm_model: str | None = None,
            api_key: str | None = None, client: Any = None, **context_kwargs: Any) -> Any:
        """:meth:`context` sent to an OpenAI-compatible chat endpoint (``llm_url``, else ``$OMNIRET_LLM_URL``);
        returns an :class:`omniret.tasks.generate.Answer` (text, cited source numbers, the context)."""
        from omniret.tasks.generate import generate, llm_config

        url, model, key = llm_config(llm_url, llm_model, api_key)
        ctx = self.context(question, **context_kwargs)
        return generate(ctx, url or "", model=model, api_key=key, client=client)

    def align(self, pairs: str | os.PathLike[str], **config: Any) -> Any:
        """Learn an image projector from ``pairs`` (JSONL of image path + text) with STRUCTURE, store it in the
        index, re-embed the images and switch to ``offline+aligned``; keywords are
        :class:`omniret.tasks.align.AlignConfig` fields. Returns an :class:`omniret.tasks.align.AlignReport`."""
        from omniret.tasks.align import AlignConfig, align_index

        log_fn = config.pop("log", None)
        return align_index(self, pairs, AlignConfig(**config), log=log_fn)

    def get(self, item_id: str) -> Item | None:
        return self.store.get([item_id])[0]

    def check(self, *, repair: bool = False, model: str | None = None, salvage: bool = False) -> list[Problem]:
        """What is wrong with this index (empty: nothing): SQLite integrity, the manifest, vector/FAISS/FTS
        consistency, query banks; ``repair=True`` rebuilds what is derived, ``salvage=True`` also the readable
        rows of damaged tables (see :mod:`omniret.tasks.check`). Each problem has a ``line()`` for people."""
        return check_index(self.path, repair=repair, model=model, salvage=salvage, store=self.store)

    # -- describing ----------------------------------------------------------------------------
    def unembedded(self) -> dict[str, int]:
        """Items stored without a vector (metadata only, not searchable by meaning), by modality:
        ``audio`` recordings of an index without an audio model, ``document`` pages with no text.
        :func:`omniret.ingest.work.unembedded_notes` says why in words."""
        out: dict[str, int] = {}
        for m in (Modality.AUDIO, Modality.DOCUMENT):
            n = self.store.count(Filter(modalities=frozenset({m}), metadata={"embedded": False}))
            if n:
                out[m.value] = n
        return out

    def unembedded_notes(self) -> list[str]:
        """:meth:`unembedded` in words, each with its fix (what ``omniret add`` and an empty search print)."""
        from omniret.ingest.work import unembedded_notes

        return unembedded_notes(self.unembedded(), has_audio_model=self.audio_encoder is not None)

    def info(self) -> dict[str, Any]:
        """Counts, model, size on disk and the most recent ingest errors."""
        manifest = self.store.manifest()
        out = {"path": os.path.abspath(self.path), "model": self.encoder.name, "space": self.encoder.space,
               "dim": self.encoder.dim, "manifest": manifest}
        out.update(self.store.info())
        if self.page_space is not None:
            out["page_model"], out["pages_embedded"] = self.page_space.encoder.name, len(self.page_space)
        out["unembedded"] = self.unembedded()
        out["last_errors"] = [{"uri": u, "reason": r, "time": t} for u, r, t in self.store.errors(20)]
        return out


# -- helpers ------------------------------------------------------------------------------------
def _asks_role(where: Filter | None) -> bool:
    """Whether a filter names a ``role`` (then navigation and boilerplate items are what was asked for)."""
    return where is not None and "role" in where.metadata


_ABSENT = frozenset({"\0absent"})


def _new_folder_state(path: str) -> frozenset[str] | None:
    """For a local index folder that holds no index yet: the names already in it (``_ABSENT`` if the
    folder does not exist), so a failed open can remove exactly what it created; else ``None``."""
    if "://" in path or (Path(path) / "omniret.db").exists():
        return None
    try:
        return frozenset(os.listdir(path))
    except FileNotFoundError:
        return _ABSENT
    except OSError:
        return None


def _remove_new_index(path: str, before: frozenset[str]) -> None:
    """Undo the creation of a new index folder (or of the files a new index put into an existing folder)."""
    import shutil

    if before is _ABSENT:
        shutil.rmtree(path, ignore_errors=True)
        return
    for name in set(os.listdir(path)) - before:
        target = os.path.join(path, name)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(target)
def _encoder_config(manifest: Mapping[str, Any], files: str, enc_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The recorded encoder's constructor arguments, plus files it keeps in the index folder (the image
    projector of ``omniret align``: ``manifest["align"]["projector"]``, relative to the index)."""
    cfg = {**manifest["encoder"].get("config", {}), **enc_kwargs}
    projector = (manifest.get("align") or {}).get("projector")
    if projector and manifest["encoder"]["name"] == (manifest.get("align") or {}).get("encoder"):
        cfg["projector"] = os.path.join(files, projector)
    return cfg


def _audio_manifest(manifest: Mapping[str, Any], audio: Encoder) -> dict[str, Any]:
    from omniret.spaces.audio import manifest_entry

    spaces = {**manifest.get("spaces", {}), audio.space: {"dim": audio.dim, "metric": "ip", "normalized": True,
                                                          "encoder": audio.name}}
    return {"audio_encoder": manifest_entry(audio), "spaces": spaces}


def default_index_path() -> str:
    """``$OMNIRET_INDEX`` if set, else ``.omniret`` in the working directory (read when called)."""
    return os.environ.get("OMNIRET_INDEX") or ".omniret"


def ensure_index_exists(path: str) -> None:
    """Raise a clear error when a read-only command points at a folder that holds no index."""
    if "://" in path:  # a store URI (milvus-lite:///x.db, milvus://host/coll): the backend checks it
        return
    if not (Path(path) / "omniret.db").exists():
        raise StoreError(f"no omniret index at {path!r}; create one with `omniret add PATH` or pass --index DIR")


__all__ = ["SCHEMA_VERSION", "Index", "OmniretError", "default_index_path", "ensure_index_exists", "make_filter",
           "omniret_version"]
