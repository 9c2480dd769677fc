"""The torch thread policy (omniret.threads): arithmetic, overrides, restoration, thread isolation."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import omniret
from omniret import threads
from omniret.errors import OmniretError
from omniret.threads import ENV, ingest_threads, query_threads, torch_threads, usable_cores


@pytest.fixture(autouse=True)
def _keep_torch_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ENV, raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(("cores", "workers", "expected"), [
    (2, 1, 2),  # this machine: a JPEG decoder leaves most of its core idle; two threads measured 1.4x faster
    (8, 3, 5),
    (4, 3, 2),  # more decoders: never below two where two cores exist
    (2, 4, 2),
    (4, 0, 4),  # decoding in this process, interleaved with encoding: every core
    (1, 1, 1),  # one core: one thread
])
def test_ingest_threads_is_cores_minus_workers(cores: int, workers: int, expected: int) -> None:
    assert ingest_threads(workers, cores=cores, environ={}) == expected


def test_ingest_threads_defaults_to_usable_cores() -> None:
    assert ingest_threads(0, environ={}) == usable_cores()
    assert ingest_threads(1, environ={}) == max(min(2, usable_cores()), usable_cores() - 1)


def test_usable_cores_follows_affinity() -> None:
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no sched_getaffinity on this platform")
    assert usable_cores() == len(os.sched_getaffinity(0))


def test_overrides_env_then_argument() -> None:
    assert ingest_threads(1, cores=8, environ={ENV: "3"}) == 3
    assert ingest_threads(1, cores=8, environ={ENV: " 3 "}) == 3
    assert ingest_threads(1, cores=8, environ={ENV: ""}) == 7  # empty = unset
    assert ingest_threads(1, cores=8, override=2, environ={ENV: "3"}) == 2  # the argument beats the env
    assert ingest_threads(1, cores=8, environ={ENV: "0"}) is None  # 0: leave torch alone
    assert ingest_threads(1, cores=8, override=0, environ={ENV: "3"}) is None
    assert query_threads(environ={}) == 1
    assert query_threads(environ={ENV: "2"}) == 2
    assert query_threads(environ={ENV: "0"}) is None
    assert query_threads(override=4, environ={}) == 4


@pytest.mark.parametrize("bad", ["two", "-1", "1.5", "1e3"])
def test_bad_env_value_is_a_clear_error(bad: str) -> None:
    with pytest.raises(OmniretError, match=f"{ENV}.*got '{bad}'"):
        ingest_threads(1, environ={ENV: bad})
    with pytest.raises(OmniretError, match=ENV):
        query_threads(environ={ENV: bad})


def test_bad_argument_values() -> None:
    with pytest.raises(OmniretError, match="torch_threads"):
        ingest_threads(1, override=-2, environ={})
    with pytest.raises(OmniretError, match="decode_workers"):
        ingest_threads(-1, environ={})
    with pytest.raises(OmniretError, match=">= 1"):
        with torch_threads(0):
            pass


def test_torch_threads_sets_and_restores() -> None:
    torch.set_num_threads(3)
    with torch_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
        with torch_threads(2):
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 3
    with torch_threads(None) as n:  # no-op
        assert n is None and torch.get_num_threads() == 3
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 3


def test_a_block_in_one_thread_leaves_another_threads_count_alone() -> None:
    if not threads._per_thread(torch):
        pytest.skip("this torch build's intra-op thread count is process-wide")
    torch.set_num_threads(3)
    entered, leave = threading.Event(), threading.Event()
    seen: dict[str, int] = {}

    def query() -> None:
        with torch_threads(1):
            seen["query"] = torch.get_num_threads()
            entered.set()
            leave.wait(10)

    t = threading.Thread(target=query)
    t.start()
    assert entered.wait(10)
    seen["main during"] = torch.get_num_threads()
    leave.set()
    t.join(10)
    assert seen == {"query": 1, "main during": 3}
    assert torch.get_num_threads() == 3


def _record_threads(idx: Any, method: str, log: list[int]) -> None:
    real = getattr(idx.encoder, method)

    def wrapped(*args: Any, **kwargs: Any) -> np.ndarray:
        log.append(torch.get_num_threads())
        return real(*args, **kwargs)

    setattr(idx.encoder, method, wrapped)


def test_add_encodes_with_the_policy_and_restores(tmp_path: Path, corpus: Path) -> None:
    torch.set_num_threads(3)
    log: list[int] = []
    with omniret.open(str(tmp_path / "idx"), model="fake") as idx:
        _record_threads(idx, "encode_pixels", log)
        _record_threads(idx, "encode_text", log)
        report = idx.add(str(corpus), workers=0)
        assert report.items == 10 and log and set(log) == {ingest_threads(0)}
        assert torch.get_num_threads() == 3
        log.clear()
        (corpus / "extra.txt").write_text("one more note about boats", encoding="utf-8")
        idx.add(str(corpus), workers=0, torch_threads=2)  # the option
        assert set(log) == {2} and torch.get_num_threads() == 3


def test_add_honours_env_and_restores_after_an_error(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.set_num_threads(3)
    monkeypatch.setenv(ENV, "1")
    log: list[int] = []
    with omniret.open(str(tmp_path / "idx"), model="fake") as idx:
        _record_threads(idx, "encode_text", log)

        def broken(*args: Any, **kwargs: Any) -> np.ndarray:
            log.append(torch.get_num_threads())
            raise RuntimeError("encoder crashed")

        idx.encoder.encode_pixels = broken
        with pytest.raises(RuntimeError, match="encoder crashed"):
            idx.add(str(corpus), workers=0)
        assert log == [1] and torch.get_num_threads() == 3


def test_embed_query_uses_one_thread_and_restores(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.set_num_threads(3)
    log: list[int] = []
    with omniret.open(str(tmp_path / "idx"), model="fake") as idx:
        _record_threads(idx, "encode_text", log)
        _record_threads(idx, "encode_images", log)
        idx.embed_query(text="a red square")
        idx.embed_query(image=str(corpus / "red.png"))
        assert log == [1, 1] and torch.get_num_threads() == 3
        monkeypatch.setenv(ENV, "2")
        idx.embed_query(text="a red square")
        monkeypatch.setenv(ENV, "0")  # leave torch alone
        idx.embed_query(text="a red square")
        assert log == [1, 1, 2, 3] and torch.get_num_threads() == 3
