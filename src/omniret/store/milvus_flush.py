"""When the Milvus store flushes: sealing growing segments so that searches use the vector index.

Milvus writes new rows into *growing* segments. Only *sealed* segments get the collection's index
(FLAT, HNSW, ...); growing ones are searched by a brute-force scan (pymilvus ``Collection.flush``:
"only sealed segments can be indexed"). A server seals a growing segment itself when it reaches its
size limit, but Milvus Lite keeps everything growing until ``flush``: in ``bench/RESULTS_scale.md``
one query took 0.9-1.0 s at 20k growing 512-d rows and 2.6-2.9 s at 50k, against 32 ms (FLAT) after
one flush of 1.6-4.6 s. The pymilvus docs also warn against flushing after every insert: each flush
seals whatever is pending, and many small sealed segments make searches slower too.

So the rule (per collection; counts kept in the side state, so they survive a restart and are seen
by another process opening the same index):

1. **After a commit**, flush a collection once the rows written to it since its last flush
   (upserts plus deletes) reach ``rows`` (default 20,000). Segments sealed this way hold at least
   ``rows`` rows, never the small ones the docs warn about, and the growing scan stays under ~1 s.
2. **Before a search** (vector or BM25), flush the collection searched when it has unflushed rows
   and this process has not flushed it for ``interval_s`` seconds (default 10). One flush of a few
   thousand rows costs 0.2-0.5 s here, the price of a few growing-segment queries, and the interval
   caps the small segments an add-one-file-then-search loop can create at one per interval.
3. **On close**, flush what is pending (``on_close``), so the next reader starts on sealed segments.

Correctness never depends on flushing: Milvus searches growing segments too, and every read filters
``seq <= last commit``; only speed does.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from omniret.errors import StoreError
from omniret.store.milvus_state import SideState

DEFAULT_ROWS = 20_000
DEFAULT_INTERVAL_S = 10.0


@dataclass(frozen=True)
class FlushPolicy:
    """When :class:`~omniret.store.milvus.MilvusStore` calls ``flush`` (see the module docstring).

    ``rows``: flush a collection after a commit once this many rows were written to it since its
    last flush. ``interval_s``: before a search, flush pending rows of the collection searched if it
    was last flushed (by this process) at least this long ago; ``math.inf`` turns search-time
    flushes off. ``on_close``: flush pending rows on ``close()``.
    """

    rows: int = DEFAULT_ROWS
    interval_s: float = DEFAULT_INTERVAL_S
    on_close: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.rows, bool) or not isinstance(self.rows, int) or self.rows < 1:
            raise StoreError(f"flush_rows must be a positive integer, got {self.rows!r}")
        if not isinstance(self.interval_s, (int, float)) or math.isnan(self.interval_s) or self.interval_s < 0:
            raise StoreError(f"flush_interval_s must be a number of seconds >= 0 (inf: never), got {self.interval_s!r}")


class FlushClock:
    """The last time this process flushed each collection (monotonic seconds)."""

    def __init__(self) -> None:
        self._at: dict[str, float] = {}

    def mark(self, names: Iterable[str]) -> None:
        now = time.monotonic()
        for name in names:
            self._at[name] = now

    def due(self, name: str, interval_s: float) -> bool:
        """Whether ``name`` was never flushed by this process or last flushed ``interval_s`` ago or more."""
        if math.isinf(interval_s):
            return False
        last = self._at.get(name)
        return last is None or time.monotonic() - last >= interval_s


def over_threshold(unflushed: dict[str, int], rows: int) -> list[str]:
    """The collections whose rows written since their last flush reached ``rows``."""
    return sorted(name for name, n in unflushed.items() if n >= rows)


class Flusher:
    """Applies a :class:`FlushPolicy` to one store's collections (``client`` is a ``MilvusClient``).

    ``lock`` is the store's writer lock: a flush never runs while a commit writes.
    """

    def __init__(self, client: Any, state: SideState, policy: FlushPolicy, lock: threading.RLock, where: str) -> None:
        self.policy = policy
        self._client, self._state, self._lock, self._where = client, state, lock, where
        self._clock = FlushClock()

    def flush(self, names: Sequence[str]) -> None:
        """Flush ``names`` now (collections that do not exist are skipped) and reset their counts."""
        with self._lock:
            for name in names:
                if not self._client.has_collection(name):
                    self._state.clear_unflushed([name])
                    continue
                try:
                    self._client.flush(name)
                except Exception as e:  # pymilvus raises several unrelated types
                    raise StoreError(f"{self._where}: flushing collection {name!r} failed ({e}); the rows are "
                                     "committed and searchable (without the index); call flush() again") from e
                self._state.clear_unflushed([name])
                self._clock.mark([name])

    def after_commit(self, written: dict[str, int]) -> None:
        """Rule 1: count the rows a commit wrote; flush the collections that reached ``policy.rows``."""
        self.flush(over_threshold(self._state.add_unflushed(written), self.policy.rows))

    def before_search(self, name: str) -> None:
        """Rule 2: flush ``name``'s pending rows if this process has not flushed it for ``policy.interval_s``."""
        if self._state.unflushed().get(name, 0) and self._clock.due(name, self.policy.interval_s):
            with self._lock:
                if self._state.unflushed().get(name, 0):
                    self.flush([name])

    def on_close(self) -> None:
        """Rule 3: flush every collection with pending rows (if ``policy.on_close``)."""
        if self.policy.on_close:
            self.flush(sorted(self._state.unflushed()))
