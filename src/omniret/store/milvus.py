"""The Milvus store backend: Milvus (or Milvus Lite, a local file) for records, vectors and BM25.

Locations (see :func:`omniret.store.milvus_expr.parse_location`)::

    milvus-lite:///data/index.db          a Milvus Lite file (+ data/index.db.state.sqlite)
    milvus://localhost:19530/my_index     a Milvus server; collections named my_index_*

Layout, for collection prefix ``P``:

- ``P_items``: one row per item (scalar fields, JSON ``metadata``, ``text``), plus ``lex`` (the text
  and the file-name words) with Milvus's built-in BM25 function writing the sparse field ``sp``: so
  :meth:`MilvusStore.lexical` is Milvus full-text search (BM25, k1=1.2, b=0.75, standard analyzer).
- ``P_v_<hash>``: one collection per vector space, one row per (item, space), ``FLOAT_VECTOR`` with
  an inner-product index (``FLAT`` by default; ``index_type="HNSW"``/``"IVF_FLAT"``/``"HNSW_SQ"``
  with ``index_params``). The filterable item fields are copied into each row, so filtered searches
  run inside Milvus (no join).
- a side SQLite file (:mod:`omniret.store.milvus_state`): commit counter, pending batch, manifest,
  source states, errors, space dims, tombstone counts and rows written since each collection's flush.

Flushing (:mod:`omniret.store.milvus_flush`): a collection is flushed after a commit once 20,000 rows
(``flush_rows``) were written to it since its last flush, before a search when it has unflushed rows
and was not flushed in the last 10 s (``flush_interval_s``), on ``close()`` and by :meth:`MilvusStore.flush`.
Un-flushed rows sit in growing segments, which Milvus scans without the index (seconds a query at 50k).

Atomic batches, as far as Milvus allows. Milvus has no transactions across rows or collections, so a
commit is: (1) record the batch as *pending* in the side state; (2) write it to Milvus, every row
stamped ``seq = n``; (3) in one SQLite transaction, store its source states/errors and move the
counter to ``n``. Every read filters ``seq <= counter``, so rows of an unfinished batch are never
seen. A failed or crashed batch (found pending on the next open or commit) is rolled *forward to
absence*: its rows are deleted and the source states of the files it touched are forgotten, so the
next ``add`` re-ingests them. Differences from the embedded store, honestly:

- deletes and replacements of a crashed batch may already have happened (its *additions* never show);
  the affected files are re-ingested by the next ``add`` because their source states were dropped;
- while a batch is being written, items it replaces are briefly invisible to readers;
- one writer at a time per index (a process-local lock; two writing processes are not detected);
- ``iter_vectors`` yields the vectors of later commits in primary-key order, not commit order;
- text fields hold at most 65,535 bytes (longer item text is an error naming the item).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from omniret.errors import QueryError, StoreError
from omniret.items import Item, Modality
from omniret.store import sql
from omniret.store.base import Filter, SourceState, Store, WriteBatch, check_queries
from omniret.store.milvus_expr import (
    filter_expr,
    from_milvus_text,
    item_matches,
    map_strings,
    needs_check,
    parse_location,
    str_list,
    to_milvus_text,
)
from omniret.store.milvus_flush import DEFAULT_INTERVAL_S, DEFAULT_ROWS, Flusher, FlushPolicy
from omniret.store.milvus_state import SideState
from omniret.store.writes import validate_batch

ITEM_FIELDS = ["id", "uri", "modality", "parent_id", "span_start", "span_end", "text", "metadata",
               "content_hash", "mtime"]
FILTER_FIELDS = ["uri", "modality", "parent_id", "mtime", "metadata"]
MAX_TOPK = 16384
_CHUNK = 1000
_WORD = re.compile(r"\w+", re.UNICODE)
_MAX_TEXT = 65535


def _chunks(values: Sequence[str], n: int = _CHUNK) -> Iterator[Sequence[str]]:
    for i in range(0, len(values), n):
        yield values[i: i + n]


class MilvusStore(Store):
    """A :class:`~omniret.store.base.Store` on Milvus / Milvus Lite. See the module docstring.

    ``index_type`` / ``index_params`` / ``search_params`` configure the vector index of every space
    (default exact ``FLAT``); ``collection`` overrides the prefix; ``state_path`` the side state.
    ``flush_rows`` / ``flush_interval_s`` / ``flush_on_close`` set the :class:`FlushPolicy`.
    """

    def __init__(
        self,
        location: str,
        *,
        collection: str | None = None,
        state_path: str | None = None,
        index_type: str = "FLAT",
        index_params: Mapping[str, Any] | None = None,
        search_params: Mapping[str, Any] | None = None,
        token: str = "",
        flush_rows: int = DEFAULT_ROWS,
        flush_interval_s: float = DEFAULT_INTERVAL_S,
        flush_on_close: bool = True,
    ) -> None:
        try:
            from pymilvus import MilvusClient
        except ImportError as e:
            raise StoreError("the Milvus backend needs pymilvus (and milvus-lite for local files): "
                             "pip install 'pymilvus>=2.5' milvus-lite") from e
        policy = FlushPolicy(flush_rows, flush_interval_s, bool(flush_on_close))
        self.loc = parse_location(location, collection=collection, state_path=state_path)
        self._index_type = index_type.upper()
        self._index_params = dict(index_params or {})
        self._search_params = dict(search_params or {})
        self._lock = threading.RLock()
        self._closed = False
        try:
            self._client = MilvusClient(uri=self.loc.uri, token=token)
        except Exception as e:  # pymilvus raises several unrelated types
            raise StoreError(f"{location}: cannot connect to Milvus ({e}); check the address or the file path") from e
        self._state = SideState(self.loc.state_path)
        self._flusher = Flusher(self._client, self._state, policy, self._lock, self.loc.uri)
        self._items = f"{self.loc.prefix}_items"
        if not self._client.has_collection(self._items):
            self._create_items_collection()
        self._recover()

    # -- collections ----------------------------------------------------------------------------
    def _create_items_collection(self) -> None:
        from pymilvus import DataType, Function, FunctionType

        c = self._client
        s = c.create_schema(auto_id=False, enable_dynamic_field=False)
        self._scalar_fields(s)
        s.add_field("span_start", DataType.DOUBLE, nullable=True)
        s.add_field("span_end", DataType.DOUBLE, nullable=True)
        s.add_field("text", DataType.VARCHAR, max_length=_MAX_TEXT, nullable=True)
        s.add_field("content_hash", DataType.VARCHAR, max_length=512, nullable=True)
        s.add_field("lex", DataType.VARCHAR, max_length=_MAX_TEXT, enable_analyzer=True)
        s.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
        s.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                input_field_names=["lex"], output_field_names=["sp"]))
        ip = c.prepare_index_params()
        ip.add_index(field_name="sp", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        c.create_collection(self._items, schema=s, index_params=ip, consistency_level="Strong")

    @staticmethod
    def _scalar_fields(s: Any) -> None:
        from pymilvus import DataType

        s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=512)
        s.add_field("seq", DataType.INT64)
        s.add_field("uri", DataType.VARCHAR, max_length=_MAX_TEXT)
        s.add_field("modality", DataType.VARCHAR, max_length=16)
        s.add_field("parent_id", DataType.VARCHAR, max_length=512, nullable=True)
        s.add_field("mtime", DataType.DOUBLE, nullable=True)
        s.add_field("metadata", DataType.JSON)

    def _create_space_collection(self, name: str, dim: int) -> None:
        from pymilvus import DataType

        c = self._client
        s = c.create_schema(auto_id=False, enable_dynamic_field=False)
        self._scalar_fields(s)
        s.add_field("v", DataType.FLOAT_VECTOR, dim=dim)
        ip = c.prepare_index_params()
        ip.add_index(field_name="v", index_type=self._index_type, metric_type="IP", params=self._index_params)
        try:
            c.create_collection(name, schema=s, index_params=ip, consistency_level="Strong")
        except Exception as e:
            raise StoreError(f"Milvus cannot create a {self._index_type} index ({e}); "
                             "use index_type FLAT, IVF_FLAT, HNSW or HNSW_SQ") from e

    def _space_collection(self, space: str) -> tuple[int, str]:
        got = self._state.spaces().get(space)
        if got is None:
            known = ", ".join(sorted(self._state.spaces())) or "none yet"
            raise StoreError(f"unknown vector space {space!r}; this store has: {known}")
        return got

    def _collection_name(self, space: str) -> str:
        return f"{self.loc.prefix}_v_{hashlib.blake2b(space.encode(), digest_size=6).hexdigest()}"

    # -- manifest -------------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        import json

        return dict(json.loads(self._state.get("manifest") or "{}"))

    def set_manifest(self, manifest: Mapping[str, Any]) -> None:
        import json

        self._check_open()
        self._state.set("manifest", json.dumps(dict(manifest), sort_keys=True))

    # -- writes ---------------------------------------------------------------------------------
    def commit(self, batch: WriteBatch) -> None:
        """Apply ``batch`` (see the module docstring for what "atomic" means on Milvus)."""
        prepared = validate_batch(batch)
        items = list({it.id: it for it in batch.items}.values())
        for it in items:
            if len((it.text or "").encode()) > _MAX_TEXT:
                raise StoreError(f"item {it.id!r} ({it.uri}): text over {_MAX_TEXT} bytes; chunk it smaller")
        with self._lock:
            self._check_open()
            self._recover()
            new_spaces = self._check_spaces(prepared.vectors)
            del_ids = list(dict.fromkeys(prepared.delete_ids + self._ids_of_uris(prepared.delete_uris)))
            known = self._known_items(items, prepared.vectors, set(del_ids))
            seq = self._state.seq() + 1
            uris = list(dict.fromkeys([it.uri for it in items] + prepared.delete_uris
                                      + [s.uri for s in batch.sources]))
            self._state.begin_batch(seq, uris)
            try:
                tomb, written = self._write(seq, items, prepared.vectors, del_ids, known, new_spaces)
                self._state.finish_batch(seq, sources=batch.sources, delete_uris=prepared.delete_uris,
                                         errors=batch.errors, tombstones=tomb, new_spaces=new_spaces)
            except BaseException as e:
                self._rollback(seq, uris, new_spaces)
                if isinstance(e, Exception) and not isinstance(e, StoreError):
                    raise StoreError(f"{self.loc.uri}: commit failed and was rolled back ({e})") from e
                raise
            self._flusher.after_commit(written)

    def _check_spaces(self, vectors: Mapping[str, tuple[list[str], np.ndarray]]) -> dict[str, tuple[int, str]]:
        spaces = self._state.spaces()
        new: dict[str, tuple[int, str]] = {}
        for space, (_, half) in vectors.items():
            dim = int(half.shape[1])
            if space in spaces and spaces[space][0] != dim:
                raise StoreError(f"space {space!r} holds {spaces[space][0]}-d vectors; this batch gives {dim}-d: "
                                 "use the same encoder")
            if space not in spaces:
                new[space] = (dim, self._collection_name(space))
        return new

    def _known_items(self, items: list[Item], vectors: Mapping[str, tuple[list[str], np.ndarray]],
                     deleted: set[str]) -> dict[str, Item]:
        """The items every vector of the batch belongs to (from the batch or the store)."""
        known = {it.id: it for it in items}
        others = sorted({i for ids, _ in vectors.values() for i in ids if i not in known})
        stored = {it.id: it for it in self._get_many([i for i in others if i not in deleted])}
        missing = [i for i in others if i not in stored]
        if missing:
            space = next(s for s, (ids, _) in vectors.items() if set(ids) & set(missing))
            raise StoreError(f"space {space!r}: vectors for unknown item ids {missing[:5]}; add the items in the same batch")
        known.update(stored)
        return known

    def _write(self, seq: int, items: list[Item], vectors: Mapping[str, tuple[list[str], np.ndarray]],
               del_ids: list[str], known: dict[str, Item],
               new_spaces: dict[str, tuple[int, str]]) -> tuple[dict[str, int], dict[str, int]]:
        """Write the batch; returns tombstones per space and rows written (upserted + deleted) per collection."""
        c = self._client
        for dim, name in new_spaces.values():
            if not c.has_collection(name):
                self._create_space_collection(name, dim)
        spaces = {**self._state.spaces(), **new_spaces}
        replaced_items = [it.id for it in items]
        tomb: dict[str, int] = {}
        written: dict[str, int] = {}
        for space, (_, name) in spaces.items():
            gone = list(dict.fromkeys(del_ids + replaced_items + list(vectors.get(space, ([], None))[0])))
            tomb[space] = self._delete_rows(name, gone)
            written[name] = tomb[space] + len(vectors.get(space, ([], None))[0])
        written[self._items] = self._delete_rows(self._items, del_ids) + len(items)
        for part in range(0, len(items), _CHUNK):
            c.upsert(self._items, [_item_row(it, seq) for it in items[part: part + _CHUNK]])
        for space, (ids, half) in vectors.items():
            name = spaces[space][1]
            mat = half.astype(np.float32)
            for part in range(0, len(ids), _CHUNK):
                rows = [dict(_filter_row(known[i], seq), v=mat[part + j].tolist())
                        for j, i in enumerate(ids[part: part + _CHUNK])]
                c.upsert(name, rows)
        return tomb, written

    def _delete_rows(self, collection: str, ids: Sequence[str]) -> int:
        n = 0
        for part in _chunks(list(ids)):
            res = self._client.query(collection, filter=f"id in {str_list(part)}", output_fields=["count(*)"])
            hits = int(res[0]["count(*)"]) if res else 0
            if hits:
                self._client.delete(collection, filter=f"id in {str_list(part)}")
                n += hits
        return n

    def _rollback(self, seq: int, uris: Sequence[str], new_spaces: Mapping[str, tuple[int, str]]) -> None:
        """Remove the rows of unfinished batch ``seq`` and forget the sources it touched."""
        names = [self._items] + [n for _, n in self._state.spaces().values()] + [n for _, n in new_spaces.values()]
        for name in dict.fromkeys(names):
            if self._client.has_collection(name):
                self._client.delete(name, filter=f"seq >= {int(seq)}")
        self._state.abandon_batch(uris)

    def _recover(self) -> None:
        pending = self._state.pending()
        if pending is not None:
            self._rollback(pending[0], pending[1], {})

    def _ids_of_uris(self, uris: Sequence[str]) -> list[str]:
        out: list[str] = []
        for part in _chunks(list(uris)):
            rows = self._client.query(self._items, filter=f"uri in {str_list(map(to_milvus_text, part))}",
                                      output_fields=["id"])
            out.extend(r["id"] for r in rows)
        return out

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self.loc.uri}: the store is closed; open it again")

    # -- reads ----------------------------------------------------------------------------------
    def _expr(self, where: Filter | None) -> str | None:
        """The Milvus filter for ``where``; ``None`` when nothing can match."""
        seq = self._state.seq()
        if not needs_check(where):
            return filter_expr(where, max_seq=seq)
        assert where is not None  # needs_check is False for None
        ids = [it.id for it in self.iter_items(where)]
        return f"seq <= {seq} and id in {str_list(ids)}" if ids else None

    def search(
        self, space: str, queries: np.ndarray, k: int, where: Filter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(k, int | np.integer) or k < 1:  # before any collection work
            raise QueryError(f"k must be a positive integer, got {k!r}")
        self._check_open()
        dim, name = self._space_collection(space)
        q = check_queries(queries, k, dim, space)
        scores = np.full((len(q), int(k)), -np.inf, dtype=np.float32)
        ids = np.full((len(q), int(k)), None, dtype=object)
        expr = self._expr(where)
        if expr is None or len(q) == 0:
            return scores, ids
        self._flusher.before_search(name)
        params = {"metric_type": "IP", "params": self._search_params}
        res = self._client.search(name, data=q.tolist(), anns_field="v", limit=min(int(k), MAX_TOPK),
                                  filter=expr, search_params=params, output_fields=[])
        for i, hits in enumerate(res):
            for j, h in enumerate(hits):
                scores[i, j] = float(h["distance"])
                ids[i, j] = h["id"]
        return scores, ids

    def vectors(self, space: str, ids: Sequence[str]) -> np.ndarray:
        dim, name = self._space_collection(space)
        out = np.full((len(ids), dim), np.nan, dtype=np.float32)
        seq = self._state.seq()
        found: dict[str, list[float]] = {}
        for part in _chunks(list(dict.fromkeys(ids))):
            rows = self._client.query(name, filter=f"seq <= {seq} and id in {str_list(part)}", output_fields=["id", "v"])
            found.update((r["id"], r["v"]) for r in rows)
        for i, item_id in enumerate(ids):
            if item_id in found:
                out[i] = np.asarray(found[item_id], dtype=np.float32)
        return out

    def lexical(self, text: str, k: int, where: Filter | None = None) -> list[tuple[str, float]]:
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise QueryError(f"k must be a positive integer, got {k!r}")
        self._check_open()
        words = _WORD.findall(text.replace("_", " "))
        expr = self._expr(where)
        if not words or expr is None:
            return []
        self._flusher.before_search(self._items)
        res = self._client.search(self._items, data=[" ".join(words)], anns_field="sp", limit=min(int(k), MAX_TOPK),
                                  filter=expr, search_params={"metric_type": "BM25"}, output_fields=[])
        # Milvus Lite reports BM25 as a negated distance; the server as a positive score
        hits = [(h["id"], abs(float(h["distance"]))) for h in res[0]]
        return sorted(hits, key=lambda h: (-h[1], h[0]))

    def _get_many(self, ids: Sequence[str]) -> list[Item]:
        seq = self._state.seq()
        out: list[Item] = []
        for part in _chunks(list(dict.fromkeys(ids))):
            rows = self._client.query(self._items, filter=f"seq <= {seq} and id in {str_list(part)}",
                                      output_fields=ITEM_FIELDS)
            out.extend(_row_item(r) for r in rows)
        return out

    def get(self, ids: Sequence[str]) -> list[Item | None]:
        self._check_open()
        found = {it.id: it for it in self._get_many(ids)}
        return [found.get(i) for i in ids]

    def iter_items(self, where: Filter | None = None) -> Iterator[Item]:
        self._check_open()
        expr = filter_expr(where, max_seq=self._state.seq())
        it = self._client.query_iterator(self._items, batch_size=_CHUNK, filter=expr, output_fields=ITEM_FIELDS)
        try:
            while rows := it.next():
                for r in rows:
                    item = _row_item(r)
                    if where is None or not needs_check(where) or item_matches(item, where):
                        yield item
        finally:
            it.close()

    def count(self, where: Filter | None = None) -> int:
        self._check_open()
        if needs_check(where):
            return sum(1 for _ in self.iter_items(where))
        return self._count(self._items, filter_expr(where, max_seq=self._state.seq()))

    def _count(self, collection: str, expr: str) -> int:
        res = self._client.query(collection, filter=expr, output_fields=["count(*)"])
        return int(res[0]["count(*)"]) if res else 0

    def spaces(self) -> dict[str, int]:
        self._check_open()
        return {s: d for s, (d, _) in self._state.spaces().items()}

    def source_states(self) -> dict[str, SourceState]:
        return self._state.sources()

    def errors(self, limit: int = 100) -> list[tuple[str, str, float]]:
        return self._state.errors(limit)

    def info(self) -> dict[str, Any]:
        self._check_open()
        seq = self._state.seq()
        modalities = {}
        for m in Modality:
            n = self._count(self._items, f"seq <= {seq} and modality == {m.value!r}".replace("'", '"'))
            if n:
                modalities[m.value] = n
        spaces = {s: {"dim": d, "vectors": self._count(name, f"seq <= {seq}"), "index_kind": self._index_type.lower()}
                  for s, (d, name) in self._state.spaces().items()}
        return {
            "backend": "milvus-lite" if self.loc.lite else "milvus",
            "path": self.loc.uri,
            "items": sum(modalities.values()),
            "modalities": modalities,
            "spaces": spaces,
            "bytes_on_disk": _file_bytes(self.loc.uri) + _file_bytes(self.loc.state_path) if self.loc.lite else None,
            "commit": seq,
            "last_commit_time": None,
        }

    # -- change tracking ----------------------------------------------------------------------------
    def version(self) -> int:
        return self._state.seq()

    def iter_vectors(
        self, space: str, *, since: int = 0, chunk: int = 10_000
    ) -> Iterator[tuple[list[str], list[str], np.ndarray]]:
        got = self._state.spaces().get(space)
        if got is None:
            return
        expr = f"seq > {int(since)} and seq <= {self._state.seq()}"
        it = self._client.query_iterator(got[1], batch_size=min(int(chunk), MAX_TOPK), filter=expr,
                                         output_fields=["id", "modality", "v"])
        try:
            while rows := it.next():
                mat = np.asarray([r["v"] for r in rows], dtype=np.float32).reshape(len(rows), got[0])
                yield [r["id"] for r in rows], [r["modality"] for r in rows], mat
        finally:
            it.close()

    def deleted_since(self, space: str, since: int) -> int:
        return self._state.deleted_since(space, since)

    # -- flushing (see omniret.store.milvus_flush) ---------------------------------------------------
    def flush(self) -> int:
        """Seal every collection of this store, so that searches use the vector index on all rows.

        Call it after a large ``add`` (``close()`` does it too). On Milvus Lite (2 cores) a flush of
        1k-10k pending 512-d rows took 0.2-0.7 s and one of 50k about 5 s (``bench/RESULTS_scale.md``).
        Returns the rows that were pending, summed over the collections (items, and each space).
        """
        with self._lock:
            self._check_open()
            pending = self._state.unflushed()
            names = [self._items] + [n for _, n in self._state.spaces().values()]
            self._flusher.flush(list(dict.fromkeys(names + sorted(pending))))
            return sum(pending.values())

    def unflushed(self) -> dict[str, int]:
        """Rows written (upserted or deleted) to each Milvus collection since its last flush."""
        return self._state.unflushed()

    def side_folder(self) -> str:
        """Beside the side-state file: ``<file>.db.state.files`` for Milvus Lite, ``./<collection>.omniret-state.files``
        for a server."""
        return os.path.splitext(self.loc.state_path)[0] + ".files"

    def close(self) -> None:
        """Flush pending rows (unless ``flush_on_close=False``) and close the client and the side state."""
        if self._closed:
            return
        try:
            self._flusher.on_close()
        finally:
            self._closed = True
            try:
                self._client.close()
            finally:
                self._state.close()


def _filter_row(it: Item, seq: int) -> dict[str, Any]:
    return {"id": it.id, "seq": seq, "uri": to_milvus_text(it.uri), "modality": Modality.parse(it.modality).value,
            "parent_id": it.parent_id, "mtime": None if it.mtime is None else float(it.mtime),
            "metadata": map_strings(dict(it.metadata), to_milvus_text)}


def _item_row(it: Item, seq: int) -> dict[str, Any]:
    span = it.span if it.span is not None else (None, None)
    lex = f"{it.text or ''} {sql.file_name_words(it.uri)}".encode()[: _MAX_TEXT - 4].decode(errors="ignore")
    return dict(_filter_row(it, seq), span_start=span[0], span_end=span[1], text=it.text,
                content_hash=it.content_hash, lex=lex)


def _row_item(r: Mapping[str, Any]) -> Item:
    span = None if r.get("span_start") is None else (float(r["span_start"]), float(r["span_end"]))
    return Item(id=r["id"], uri=from_milvus_text(r["uri"]), modality=Modality(r["modality"]),
                parent_id=r.get("parent_id"), span=span, text=r.get("text"),
                metadata=map_strings(dict(r.get("metadata") or {}), from_milvus_text), content_hash=r.get("content_hash"),
                mtime=r.get("mtime"))


def _file_bytes(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
