"""Micro-batching of concurrent query encodings: queries that arrive within a few milliseconds of each
other, from different threads, share one encoder call.

A server answers each request in its own thread; each used to encode its query alone, so 50
concurrent searches made 50 batch-of-one encoder calls, each paying the model's fixed per-call cost
and competing for the same cores. :class:`QueryBatcher` puts one worker thread in front of the
encoder: a caller hands over its text (or its preprocessed image) and waits; the worker takes what
is queued — waiting up to ``wait_ms`` for company when a query arrives alone — and runs one
``encode_text`` (or ``encode_pixels``) call for up to ``max_batch`` queries. While it encodes, the
next batch gathers by itself, so under load the batches grow with the load and the wait costs
nothing; an idle server adds at most ``wait_ms`` to a query.

Results are the same vectors the caller would have computed alone (the encoders embed each row of a
batch independently). When a batched call fails, each of its queries is retried alone, so one bad
query fails only its own caller.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omniret.encoders.base import Encoder
from omniret.errors import OmniretError
from omniret.items import Role
from omniret.threads import query_threads, torch_threads, uses_torch

_STOP = object()


@dataclass
class _Job:
    kind: str  # "text" or "pixels"
    payload: Any
    future: Future[np.ndarray] = field(default_factory=Future)


class QueryBatcher:
    """Coalesces concurrent :meth:`encode_text` / :meth:`encode_pixels` calls for one encoder.

    Thread-safe; :meth:`close` stops the worker (queries submitted afterwards are encoded directly).
    """

    def __init__(self, encoder: Encoder, *, max_batch: int = 64, wait_ms: float = 2.0,
                 threads: int | None = None) -> None:
        check_batching(max_batch, wait_ms)
        self.encoder = encoder
        self.max_batch = int(max_batch)
        self.wait_s = float(wait_ms) / 1000.0
        self.threads = query_threads() if threads is None else threads
        #: sizes of the batches run so far (for tests and benchmarks; bounded)
        self.batch_sizes: list[int] = []
        self._preprocessor: Callable[[Any], np.ndarray] | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="omniret-query-batcher", daemon=True)
        self._worker.start()

    # -- callers ----------------------------------------------------------------------------
    def encode_text(self, text: str) -> np.ndarray:
        """The query vector of ``text`` (``(dim,)`` float32), computed in a shared batch."""
        return self._submit("text", text)

    def encode_image(self, image: Any) -> np.ndarray:
        """The query vector of an RGB PIL image: preprocessed in the calling thread (in parallel with
        other callers), embedded in a shared batch."""
        pre = self._preprocessor
        if pre is None:
            pre = self._preprocessor = self.encoder.image_preprocessor()
        return self.encode_pixels(pre(image))

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """The query vector of one preprocessed image (the encoder's ``image_preprocessor()`` output)."""
        return self._submit("pixels", np.asarray(pixels, dtype=np.float32))

    def _submit(self, kind: str, payload: Any) -> np.ndarray:
        if self._closed:
            return self._encode_one(kind, payload)
        job = _Job(kind, payload)
        self._queue.put(job)
        return job.future.result()

    def close(self) -> None:
        """Stop the worker after the queued queries are answered."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._worker.join(timeout=30)

    # -- the worker -------------------------------------------------------------------------
    def _run(self) -> None:
        with torch_threads(self.threads, load=uses_torch(self.encoder)):
            while True:
                batch, stop = self._gather()
                for kind in ("text", "pixels"):
                    jobs = [j for j in batch if j.kind == kind]
                    if jobs:
                        self._answer(kind, jobs)
                if stop:
                    return

    def _gather(self) -> tuple[list[_Job], bool]:
        """The next batch: what is queued now, plus what arrives within ``wait_s`` of the first query."""
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch = [first]
        deadline = time.monotonic() + self.wait_s
        while len(batch) < self.max_batch:
            try:
                left = deadline - time.monotonic()
                job = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                return batch, True
            batch.append(job)
        return batch, False

    def _answer(self, kind: str, jobs: Sequence[_Job]) -> None:
        if len(self.batch_sizes) < 100_000:
            self.batch_sizes.append(len(jobs))
        try:
            vecs = self._encode([j.payload for j in jobs], kind)
        except Exception:  # one bad query must not fail the others: retry each alone
            for j in jobs:
                _settle(j.future, lambda j=j: self._encode([j.payload], kind)[0])
            return
        for j, v in zip(jobs, vecs, strict=True):
            j.future.set_result(np.asarray(v, dtype=np.float32))

    def _encode(self, payloads: list[Any], kind: str) -> np.ndarray:
        if kind == "text":
            return self.encoder.encode_text(payloads, role=Role.QUERY)
        return self.encoder.encode_pixels(np.stack(payloads), role=Role.QUERY)

    def _encode_one(self, kind: str, payload: Any) -> np.ndarray:
        with torch_threads(self.threads, load=uses_torch(self.encoder)):
            return np.asarray(self._encode([payload], kind)[0], dtype=np.float32)


def check_batching(max_batch: int, wait_ms: float) -> None:
    """Raise :class:`OmniretError` naming a bad ``max_batch`` or ``wait_ms``."""
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
        raise OmniretError(f"max_batch must be a positive integer, got {max_batch!r}")
    if isinstance(wait_ms, bool) or not isinstance(wait_ms, int | float) or not 0 <= wait_ms <= 1000:
        raise OmniretError(f"wait_ms must be between 0 and 1000 milliseconds, got {wait_ms!r}")


def _settle(future: Future[np.ndarray], fn: Callable[[], np.ndarray]) -> None:
    try:
        future.set_result(np.asarray(fn(), dtype=np.float32))
    except BaseException as e:  # handed to the waiting caller, raised there
        future.set_exception(e)
