"""Issue 13.12: concurrent query encodings share encoder calls (omniret.encoders.batching), with the same
vectors a lone query gets, and one bad query failing only its own caller."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEncoder  # type: ignore[import-not-found]
from PIL import Image

import omniret
from omniret.encoders.batching import QueryBatcher
from omniret.items import Role


class SlowFake(FakeEncoder):
    """The fake encoder with a per-call cost (like a model's fixed overhead), counting its text calls."""

    def __init__(self) -> None:
        super().__init__()
        self.text_batches: list[int] = []

    def encode_text(self, texts: Sequence[str], *, role: Role = Role.QUERY) -> np.ndarray:
        if any(t == "BOOM" for t in texts):
            raise RuntimeError("the model refuses BOOM")
        self.text_batches.append(len(texts))
        time.sleep(0.02)
        return super().encode_text(texts, role=role)


def _together(n: int, fn: object) -> list[object]:
    """Run ``fn(i)`` in ``n`` threads released at once; results (or exceptions) in order."""
    barrier, out = threading.Barrier(n), [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = fn(i)  # type: ignore[operator]
        except Exception as e:
            out[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_concurrent_text_queries_share_encoder_calls() -> None:
    enc = SlowFake()
    batcher = QueryBatcher(enc, wait_ms=5)
    texts = [f"query number {i}" for i in range(24)]
    try:
        got = _together(24, lambda i: batcher.encode_text(texts[i]))
    finally:
        batcher.close()
    alone = FakeEncoder().encode_text(texts)
    assert np.allclose(np.stack(got), alone)  # type: ignore[arg-type]
    assert sum(enc.text_batches) == 24 and len(enc.text_batches) < 12 and max(enc.text_batches) > 1


def test_one_bad_query_fails_only_its_caller() -> None:
    enc = SlowFake()
    batcher = QueryBatcher(enc, wait_ms=20)
    try:
        got = _together(6, lambda i: batcher.encode_text("BOOM" if i == 3 else f"fine {i}"))
    finally:
        batcher.close()
    assert isinstance(got[3], RuntimeError) and "BOOM" in str(got[3])
    assert all(isinstance(g, np.ndarray) for i, g in enumerate(got) if i != 3)
    assert batcher.encode_text("after close") is not None  # closed: encodes directly


def test_index_batch_queries_same_hits(tmp_path: Path, corpus: Path) -> None:
    with omniret.open(str(tmp_path / "idx"), model="fake") as idx:
        idx.add(str(corpus), workers=0)
        queries = ["cats in the sun", "rocket launch", "pasta with basil", "a red picture", "blue stripes"] * 4
        alone = [[(h.id, round(h.score, 5)) for h in idx.search(q, k=3)] for q in queries]
        img = tmp_path / "q.png"
        Image.new("RGB", (40, 30), (220, 30, 30)).save(img)
        img_alone = [h.id for h in idx.search(image=str(img), k=3)]
        idx.batch_queries(wait_ms=5)
        batched = _together(len(queries), lambda i: [(h.id, round(h.score, 5)) for h in idx.search(queries[i], k=3)])
        assert batched == alone
        assert [h.id for h in idx.search(image=str(img), k=3)] == img_alone
        (batcher,) = idx._batchers.values()
        assert max(batcher.batch_sizes) > 1
        with pytest.raises(omniret.OmniretError, match="wait_ms"):
            idx.batch_queries(wait_ms=-1)
    assert not idx._batchers and not batcher._worker.is_alive()  # close stops the worker


@pytest.mark.slow
def test_offline_model_batched_vectors_match_lone_ones() -> None:
    from omniret.encoders.registry import create

    enc = create("offline", device="cpu")
    texts = ["a dog runs on the beach", "stock market report", "a puppy playing by the sea", "x"]
    ims = [Image.new("RGB", (300, 200), c) for c in ((200, 30, 30), (20, 200, 40), (10, 10, 230))]
    batcher = QueryBatcher(enc, wait_ms=50)
    try:
        got_t = _together(len(texts), lambda i: batcher.encode_text(texts[i]))
        got_i = _together(len(ims), lambda i: batcher.encode_image(ims[i]))
    finally:
        batcher.close()
    for t, v in zip(texts, got_t, strict=True):
        assert np.allclose(v, enc.encode_text([t])[0], atol=1e-5), t  # type: ignore[arg-type]
    for im, v in zip(ims, got_i, strict=True):
        assert np.allclose(v, enc.encode_images([im], role=Role.QUERY)[0], atol=1e-5)  # type: ignore[arg-type]
    assert max(batcher.batch_sizes) > 1
