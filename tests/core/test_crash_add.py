"""SIGKILL an ``add`` at random moments; the index must hold whole files only, and a re-run completes it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from builders import make_image  # type: ignore[import-not-found]

import omniret

SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from omniret.encoders.registry import EncoderEntry, register
register(EncoderEntry("fake", "fakes:create", "test", "fake"))
import omniret
idx = omniret.open({index!r}, model="fake")
idx.add({corpus!r}, workers={workers}, commit_every=3, batch_size=2)
print("done", flush=True)
"""


def _check_consistent(index: str, n_files: int) -> int:
    with omniret.open(index, model="fake") as idx:
        items = list(idx.store.iter_items())
        states = idx.store.source_states()
        by_uri = {it.uri for it in items}
        assert by_uri == {u for u, s in states.items() if s.error is None}, "items and source states disagree"
        assert len(items) == len(by_uri), "an image file has more than one item"
        if items:
            ids = [it.id for it in items]
            vecs = idx.store.vectors(idx.encoder.space, ids)
            assert not np.isnan(vecs).any(), "an item without its vector"
            scores, found = idx.store.search(idx.encoder.space, vecs[:5], 1)
            assert [f[0] for f in found] == ids[:5] or np.allclose(scores[:, 0], 1.0, atol=1e-2)
        assert len(items) <= n_files
        return len(items)


def _wait_for_progress(index: str, committed: int, timeout: float = 60.0) -> None:
    """Block until the running add has committed at least one more file (so the kill lands mid-run)."""
    from omniret.store import open_store

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(index, "omniret.db").exists():
            store = open_store(index)
            try:
                if len(store.source_states()) > committed:
                    return
            finally:
                store.close()
        time.sleep(0.1)
    raise AssertionError("the add subprocess made no progress")


def test_sigkill_during_add_then_rerun_completes(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rng = np.random.default_rng(7)
    n = 40
    for i in range(n):
        make_image(corpus / f"img{i:03d}.png", tuple(int(x) for x in rng.integers(0, 255, 3)), stripe=bool(i % 2))
    index = str(tmp_path / "idx")
    env = {**os.environ, "OMNIRET_FAKE_DELAY": "0.15"}  # slow enough that no round finishes before its kill
    tests_dir = str(Path(__file__).resolve().parents[1])
    random.seed(3)
    counts = []
    for round_ in range(4):
        script = SCRIPT.format(tests=tests_dir, index=index, corpus=str(corpus), workers=round_ % 2)
        proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE)
        _wait_for_progress(index, counts[-1] if counts else 0)
        time.sleep(random.uniform(0.0, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        counts.append(_check_consistent(index, n))
    assert counts == sorted(counts), "a later crash lost committed files"
    assert 0 < counts[0] < n, f"the first kill should land mid-run: {counts}"
    with omniret.open(index, model="fake") as idx:
        report = idx.add(str(corpus), workers=0)
        assert report.failed == []
        assert report.new == n - counts[-1]
        assert idx.store.count() == n
        assert len({it.uri for it in idx.store.iter_items()}) == n
