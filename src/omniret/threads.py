"""How many torch intra-op threads each kind of work gets: the one place that decides it.

Two measured problems on small machines (``bench/RESULTS_scale.md``, ``bench/RESULTS_offline.md``):

* **ingest** encodes in this process while decode threads run beside it; with torch's
  default (one thread per core) ``cores + workers`` busy threads share ``cores`` cores. The policy
  gives the encoder what the decoders leave, but never fewer than two threads where two cores exist:
  ``threads = max(min(2, cores), cores - decode_workers)``, with ``cores = len(os.sched_getaffinity(0))``
  (the cores this process may run on, not the machine's). A JPEG decoder keeps its core only partly
  busy: on 2 cores with one decode worker, 2 encoder threads were 1.4x faster than 1 on an idle
  machine (and 0.4-0.85x as fast once anything else wanted a core — set ``OMNIRET_TORCH_THREADS=1``
  on a shared machine). The floor keeps the idle-machine speed the ingest target was measured at.
* **single-query encoding** is one tiny batch bound by latency. OpenMP threads spin-wait for each
  other at every op; on a loaded machine a parallel region waits for a descheduled thread (one
  MiniLM query on 2 cores: 12.4 vs 9.6 ms idle, but 13 vs 21 ms median and 21 vs 157 ms p90 with
  one core busy, for 1 vs 2 threads). One thread is the robust choice: ``threads = 1``.

Override: ``$OMNIRET_TORCH_THREADS`` (read when a policy function is called, never at import) or
the ``torch_threads`` argument: a positive integer is used for both kinds of work as is, ``0``
leaves torch's own setting untouched.

Concurrency. ``torch.set_num_threads`` is not simply process-wide. With the OpenMP backend (the
PyPI CPU and CUDA builds; see ``torch.__config__.parallel_info()``), it sets the *calling OS
thread's* OpenMP thread count (an OpenMP per-thread ICV) plus a process default that a thread adopts
at its first parallel op; threads that already ran torch keep their own count. So
:func:`torch_threads` changes the count of the thread it runs in and restores it on exit: two
searches in two threads, or a search beside an ``add`` in another thread, do not change each
other's counts (``tests/core/test_threads.py`` checks this). The process default is changed for
the duration of the block, so a thread whose *first* torch op starts inside that window adopts the
block's count; the module lock keeps concurrent set/restore pairs from interleaving. With another
backend (native thread pool, TBB) the count *is* process-wide; there a block only applies its count
when no other block is active in the process (the first one in wins, later ones run with it),
so no block ever restores a value over another's.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from omniret.errors import OmniretError

#: environment variable that overrides the policy: a positive integer, or 0 to leave torch alone
ENV = "OMNIRET_TORCH_THREADS"
#: threads for encoding one query (latency-bound, tiny batch)
QUERY_THREADS = 1

_LOCK = threading.Lock()
_active = 0  # blocks currently applied (matters only where the count is process-wide)


def usable_cores() -> int:
    """Cores this process may run on: ``len(os.sched_getaffinity(0))`` (respects taskset, cgroup
    cpusets), else ``os.cpu_count()``, at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def parse_override(value: str | int | None, *, source: str = ENV) -> int | None:
    """``None`` (no override), ``0`` (leave torch alone) or a positive thread count.

    Raises :class:`~omniret.errors.OmniretError` naming ``source`` for anything else.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = -1
    if n < 0 or isinstance(value, bool):
        raise OmniretError(
            f"{source} must be a whole number of torch threads (1, 2...) or 0 to leave torch's setting "
            f"alone, got {value!r}; unset it to use the automatic policy"
        )
    return n


def env_override(environ: Mapping[str, str] | None = None) -> int | None:
    """The override in ``$OMNIRET_TORCH_THREADS`` (``environ`` defaults to ``os.environ``)."""
    return parse_override((os.environ if environ is None else environ).get(ENV))


def _resolve(override: int | None, environ: Mapping[str, str] | None) -> int | None:
    return parse_override(override, source="torch_threads") if override is not None else env_override(environ)


def ingest_threads(
    decode_workers: int, *, cores: int | None = None, override: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int | None:
    """Torch threads for encoding during ``add``: ``max(min(2, cores), cores - decode_workers)``.

    ``decode_workers`` is the number of decode threads (0 when decoding runs in the calling thread,
    interleaved with encoding, which then may use every core). ``cores`` defaults to
    :func:`usable_cores`. ``override`` (else ``$OMNIRET_TORCH_THREADS``) wins when set; the result
    ``None`` means "leave torch's setting alone" (override 0).
    """
    if decode_workers < 0:
        raise OmniretError(f"decode_workers must be >= 0, got {decode_workers}")
    forced = _resolve(override, environ)
    if forced is not None:
        return forced or None
    n = usable_cores() if cores is None else cores
    return max(min(2, n), n - decode_workers)


def query_threads(*, override: int | None = None, environ: Mapping[str, str] | None = None) -> int | None:
    """Torch threads for encoding one query: :data:`QUERY_THREADS` unless overridden (``None``:
    leave torch alone)."""
    forced = _resolve(override, environ)
    if forced is not None:
        return forced or None
    return QUERY_THREADS


def uses_torch(encoder: Any) -> bool:
    """Whether ``encoder`` runs torch: the torch-backed encoders expose a ``device``. Lets
    :func:`torch_threads` import torch before such an encoder's first (lazy) load, and spares
    others (numpy-only models, test fakes) the import."""
    return hasattr(encoder, "device")


def _torch(load: bool) -> Any | None:
    """torch if imported; else imported when ``load`` and installed; else ``None``."""
    mod = sys.modules.get("torch")
    if mod is not None or not load:
        return mod
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    return torch


@functools.cache
def _per_thread(torch: Any) -> bool:
    """Whether torch's intra-op count is per OS thread (the OpenMP backend) rather than process-wide."""
    try:
        return "parallel backend: OpenMP" in torch.__config__.parallel_info()
    except Exception:  # an unusual build: assume the count is shared, the cautious case
        return False


@contextmanager
def torch_threads(n: int | None, *, load: bool = True) -> Iterator[int | None]:
    """Run the block with ``n`` torch intra-op threads in this thread, then restore the previous count.

    ``n=None`` does nothing (as does a missing torch, or torch not yet imported with ``load=False``). Yields the count in force in the block
    (``None`` when untouched). See the module docstring for what other threads see.
    """
    global _active
    torch = _torch(load) if n is not None else None
    if torch is None or n is None:
        yield None
        return
    if n < 1:
        raise OmniretError(f"torch thread count must be >= 1, got {n}")
    per_thread = _per_thread(torch)
    with _LOCK:
        prev = torch.get_num_threads()  # also runs torch's lazy per-thread init now, not inside the block
        apply = per_thread or _active == 0
        if apply:
            _active += 1
            if prev != n:
                torch.set_num_threads(n)
    try:
        yield n if apply else prev
    finally:
        if apply:
            with _LOCK:
                _active -= 1
                if torch.get_num_threads() != prev:
                    torch.set_num_threads(prev)
