"""SIGKILL a process in the middle of a stream of commits; the store must hold exactly a prefix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from crash_writer import M, vectors_of

from omniret.store.embedded import EmbeddedStore

HERE = Path(__file__).parent


def expected_ids(last: int) -> set[str]:
    """Items present after commits 0..last: the last three commits' items."""
    return {f"c{c}-{j}" for c in range(max(0, last - 2), last + 1) for j in range(M)}


def run_and_kill(folder: Path, start: int, delay: float) -> list[int]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, str(HERE / "crash_writer.py"), str(folder), str(start)],
                            stdout=subprocess.PIPE, env=env, text=True)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    return [int(line) for line in out.split()]


def check_prefix(folder: Path, start: int, printed: list[int]) -> int:
    """The store holds exactly commits 0..c with c = the last printed (or, if none printed,
    ``start - 1``) or the one after it (it finished but was killed before printing); returns c."""
    with EmbeddedStore(folder, flat_threshold=100) as store:
        have = {it.id for it in store.iter_items()}
        done = printed[-1] if printed else start - 1
        candidates = [done, done + 1]
        last = next((c for c in candidates if have == (expected_ids(c) if c >= 0 else set())), None)
        assert last is not None, f"store holds {len(have)} items, not a prefix ending at {candidates}"
        if last >= 0:
            mat = np.concatenate([vectors_of(c) for c in range(max(0, last - 2), last + 1)])
            q = vectors_of(last)[:3]
            scores, got = store.search("s", q, 5)
            assert all(x in have for x in got.ravel())
            ref = np.sort(q @ mat.astype(np.float16).astype(np.float32).T, axis=1)[:, ::-1][:, :5]
            np.testing.assert_allclose(scores, ref, atol=2e-3)
        return last


@pytest.mark.slow
def test_sigkill_during_commits_leaves_a_prefix(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "store"
    start = 0
    for _ in range(5):
        printed = run_and_kill(folder, start, float(rng.uniform(1.5, 4.0)))
        assert printed == list(range(start, start + len(printed)))
        last = check_prefix(folder, start, printed)
        start = last + 1
    assert start > 10  # the writer did get going
