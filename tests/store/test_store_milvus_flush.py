"""The Milvus store's flush policy (omniret.store.milvus_flush).

Milvus Lite 3.2 does not expose segment state: ``list_segments`` / ``list_persistent_segments`` /
``list_loaded_segments`` answer UNIMPLEMENTED and ``describe_index`` reports every row as indexed,
flushed or not. So these tests observe two things: the per-collection counts of un-flushed rows that
the store keeps in its side state (reopened from disk), and the ``flush`` calls that reach the
client, recorded by a wrapper that still calls the real ``MilvusClient.flush``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from store_helpers import SPACE, make_items, unit

from omniret.errors import StoreError
from omniret.store.milvus import MilvusStore
from omniret.store.milvus_flush import FlushClock, FlushPolicy, over_threshold
from omniret.store.milvus_state import SideState


def _record_flushes(store: MilvusStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = store._client.flush

    def flush(collection_name: str, **kwargs: Any) -> None:
        calls.append(collection_name)
        real(collection_name, **kwargs)

    monkeypatch.setattr(store._client, "flush", flush)
    return calls


def test_flushes_after_enough_rows_and_later_rows_stay_visible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loc = f"milvus-lite://{tmp_path}/m.db"
    store = MilvusStore(loc, flush_rows=50, flush_interval_s=math.inf)
    calls = _record_flushes(store, monkeypatch)
    items, mat = make_items(66), unit(66, seed=5)
    store.upsert(items[:30], {SPACE: mat[:30]})
    space_coll = store._space_collection(SPACE)[1]
    assert calls == [] and store.unflushed() == {store._items: 30, space_coll: 30}
    store.upsert(items[30:60], {SPACE: mat[30:60]})  # 60 >= 50 rows in each collection: both flushed
    assert sorted(calls) == sorted([store._items, space_coll]) and store.unflushed() == {}
    store.upsert(items[60:], {SPACE: mat[60:]})
    store.delete([items[0].id])  # a delete counts as a written row too
    assert store.unflushed() == {store._items: 7, space_coll: 7}
    # rows after the flush sit in growing segments and are still found, by vector and by BM25
    _, ids = store.search(SPACE, mat[61:62], 1)
    assert ids[0, 0] == items[61].id
    assert items[62].id in [i for i, _ in store.lexical(items[62].text or "", 3)]
    assert len(calls) == 2  # interval inf: no search-time flush
    # the counts are on disk, so another process opening the index sees them
    other = SideState(store.loc.state_path)
    assert other.unflushed() == {store._items: 7, space_coll: 7}
    other.close()
    store.close()  # flush on close
    assert sorted(calls[2:]) == sorted([store._items, space_coll])
    again = MilvusStore(loc)
    assert again.unflushed() == {} and again.count() == 65
    again.close()


def test_search_flushes_pending_rows_once_per_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MilvusStore(f"milvus-lite://{tmp_path}/m.db", flush_interval_s=3600, flush_on_close=False)
    calls = _record_flushes(store, monkeypatch)
    items, mat = make_items(6), unit(6, seed=6)
    store.upsert(items[:3], {SPACE: mat[:3]})
    space_coll = store._space_collection(SPACE)[1]
    _, ids = store.search(SPACE, mat[1:2], 1)  # never flushed by this process: flush first
    assert ids[0, 0] == items[1].id and calls == [space_coll]
    assert store.unflushed() == {store._items: 3}
    store.upsert(items[3:], {SPACE: mat[3:]})
    _, ids = store.search(SPACE, mat[4:5], 1)  # flushed a moment ago: search the growing rows as they are
    assert ids[0, 0] == items[4].id and calls == [space_coll]
    assert store.lexical(items[5].text or "", 1)[0][0] == items[5].id
    assert calls == [space_coll, store._items]  # the BM25 collection's first search flushes it
    store.close()  # flush_on_close=False: the 3 new vectors stay pending, on disk
    state = SideState(store.loc.state_path)
    assert calls == [space_coll, store._items] and state.unflushed() == {space_coll: 3}
    state.close()


def test_explicit_flush(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MilvusStore(f"milvus-lite://{tmp_path}/m.db", flush_interval_s=math.inf)
    store.upsert(make_items(4), {SPACE: unit(4)})
    calls = _record_flushes(store, monkeypatch)
    assert store.flush() == 8 and store.unflushed() == {} and len(calls) == 2
    assert store.flush() == 0  # nothing pending: flushes again, reports no rows
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.flush()


def test_flush_failure_is_a_store_error_and_keeps_the_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MilvusStore(f"milvus-lite://{tmp_path}/m.db", flush_interval_s=math.inf, flush_on_close=False)
    store.upsert(make_items(2), {SPACE: unit(2)})

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("server busy")

    monkeypatch.setattr(store._client, "flush", broken)
    with pytest.raises(StoreError, match="flush"):
        store.flush()
    assert sum(store.unflushed().values()) == 4 and store.count() == 2
    store.close()


def test_policy_validation_and_helpers() -> None:
    for bad in ({"rows": 0}, {"rows": 1.5}, {"interval_s": -1.0}, {"interval_s": math.nan}):
        with pytest.raises(StoreError):
            FlushPolicy(**bad)  # type: ignore[arg-type]
    assert over_threshold({"a": 5, "b": 9, "c": 10}, 9) == ["b", "c"]
    clock = FlushClock()
    assert clock.due("x", 3600) and not clock.due("x", math.inf)
    clock.mark(["x"])
    assert not clock.due("x", 3600) and clock.due("x", 0.0)
