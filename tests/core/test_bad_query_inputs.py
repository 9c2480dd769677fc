"""Issue 13 (6, 11): query files that are not regular files, binary query lists, bogus devices, algebra
terms naming missing files, filters nested thousands deep, and a model that fails on a new index path.

Each gives one clear error naming the thing and the fix (never a hang, a traceback or leftovers).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import omniret
from omniret.cli.main import EXIT_USER_ERROR, cli
from omniret.errors import MediaError, ModelError, OmniretError, QueryError


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def index(tmp_path: Path, corpus: Path) -> str:
    path = str(tmp_path / "idx")
    code, _, _ = run("--index", path, "-q", "add", str(corpus), "--model", "fake", "--workers", "0")
    assert code == 0
    return path


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "query.png"
    os.mkfifo(path)
    return path


def returns_within(fn: Callable[[], Any], fifo: Path, seconds: float = 30.0) -> Any:
    """Run ``fn`` in a thread; if it is still blocked (on opening the FIFO) after ``seconds``, unblock it by
    opening the FIFO's write end and fail."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            out["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        with open(fifo, "wb"):
            pass
        t.join(10)
        pytest.fail(f"blocked on the FIFO {fifo} for {seconds:g} s")
    if "error" in out:
        raise out["error"]
    return out.get("value")


# -- 6: query files that are FIFOs or devices ----------------------------------------------------
def test_search_image_on_a_fifo_does_not_hang(index: str, fifo: Path) -> None:
    with omniret.open(index) as idx, pytest.raises(QueryError, match="FIFO.*not a regular file"):
        returns_within(lambda: idx.search(image=str(fifo)), fifo)
    code, _, err = returns_within(lambda: run("--index", index, "search", "--image", str(fifo)), fifo)
    assert code == EXIT_USER_ERROR and "FIFO" in err and str(fifo) in err


def test_search_audio_on_a_fifo_does_not_hang(tmp_path: Path) -> None:
    from omniret.media.audio import load_audio

    path = tmp_path / "query.wav"
    os.mkfifo(path)
    with pytest.raises(MediaError, match="FIFO"):
        returns_within(lambda: load_audio(str(path)), path)


def test_search_image_on_a_fifo_named_svg_does_not_hang(index: str, tmp_path: Path) -> None:
    path = tmp_path / "query.svg"
    os.mkfifo(path)
    with omniret.open(index) as idx, pytest.raises(QueryError, match="FIFO"):
        returns_within(lambda: idx.search(image=str(path)), path)


def test_query_image_on_a_device_is_refused(index: str) -> None:
    with omniret.open(index) as idx, pytest.raises(QueryError, match="character device"):
        idx.search(image="/dev/zero")


def test_bank_and_label_files_on_a_fifo_do_not_hang(index: str, fifo: Path) -> None:
    code, _, err = returns_within(lambda: run("--index", index, "bank", "--queries", str(fifo)), fifo)
    assert code == EXIT_USER_ERROR and "--queries" in err and "FIFO" in err
    code, _, err = returns_within(lambda: run("--index", index, "classify", "--labels-file", str(fifo)), fifo)
    assert code == EXIT_USER_ERROR and "--labels-file" in err and "FIFO" in err


# -- 11: the CLI and library parts ---------------------------------------------------------------
def test_bank_on_a_binary_file_is_a_clear_error(index: str, tmp_path: Path) -> None:
    binary = tmp_path / "queries.txt"
    binary.write_bytes(bytes(range(256)) * 40)
    code, _, err = run("--index", index, "bank", "--queries", str(binary))
    assert code == EXIT_USER_ERROR
    assert err.startswith("error: --queries") and "not text" in err and "one query per line" in err
    assert "UnicodeDecodeError" not in err
    good = tmp_path / "good.txt"
    good.write_text("a cat\n\nthe sun\n", encoding="utf-8")
    code, out, _ = run("--index", index, "bank", "--queries", str(good))
    assert code == 0 and "2 queries" in out


def test_device_bogus_is_a_clear_error(tmp_path: Path, index: str) -> None:
    from omniret.encoders.base import check_device, pick_device

    with pytest.raises(ModelError, match=r"unknown device 'bogus'; choose from auto, cpu"):
        pick_device("bogus")
    with pytest.raises(ModelError, match="unknown device"):
        check_device("cuda:x")
    assert check_device("cpu") == "cpu" and pick_device("auto") in ("cpu", "cuda")
    with pytest.raises(ModelError, match="unknown device 'bogus'"):
        omniret.open(index, device="bogus")
    code, _, err = run("--index", index, "--device", "bogus", "search", "cats")
    assert code == EXIT_USER_ERROR and err.startswith("error: unknown device 'bogus'") and "RuntimeError" not in err


def test_device_missing_cuda_is_a_clear_error(index: str) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ModelError, match="'cuda' is not available on this machine; choose from auto, cpu"):
        omniret.open(index, device="cuda")


def test_expr_plus_missing_image_is_an_error(index: str, corpus: Path) -> None:
    code, _, err = run("--index", index, "search", "--expr", '"beach" +nosuch.jpg')
    assert code == EXIT_USER_ERROR and "nosuch.jpg: no such image file" in err and '"nosuch.jpg"' in err
    with omniret.open(index) as idx:
        with pytest.raises(QueryError, match="no such image file"):
            idx.parse_expression('"beach" +nosuch.jpg')
        terms = idx.parse_expression('"beach" "nosuch.jpg"')  # quoted: text, as documented
        assert [(t.kind, t.value) for t in terms] == [("text", "beach"), ("text", "nosuch.jpg")]
        red = str(corpus / "red.png")
        assert [t.kind for t in idx.parse_expression(f'"beach" +{red}')] == ["text", "image"]
        assert [t.kind for t in idx.parse_expression("notes.txt about cats")] == ["text"]  # not media: text
        with pytest.raises(QueryError, match="is an audio file"):
            (corpus / "song.mp3").write_bytes(b"ID3")
            idx.parse_expression(f'"beach" +{corpus / "song.mp3"}')


def test_where_5000_deep_is_a_clear_error(index: str) -> None:
    deep = "[" * 5000 + "]" * 5000
    code, _, err = run("--index", index, "search", "x", "--where", f"k={deep}")
    assert code == EXIT_USER_ERROR and "nests too deeply" in err and "RecursionError" not in err
    code, _, err = run("--index", index, "search", "x", "--where", "k=" + "[" * 40 + "]" * 40)
    assert code == EXIT_USER_ERROR and "nested over 32 levels" in err
    code, _, _ = run("--index", index, "search", "x", "--where", "k=" + "[" * 5 + "]" * 5)
    assert code == 0
    value: Any = 1
    for _ in range(5000):
        value = [value]
    with omniret.open(index) as idx, pytest.raises(QueryError, match="nested over 32 levels"):
        idx.search("x", where={"k": value})


@pytest.mark.parametrize("kind", ["model", "audio_model", "device"])
def test_add_with_bogus_model_on_new_path_creates_nothing(tmp_path: Path, corpus: Path, kind: str) -> None:
    target = tmp_path / "new" / "deeper" / "idx"
    args = {"model": ["--model", "bogus:x"], "audio_model": ["--model", "fake", "--audio-model", "hf:/no/such/clap"],
            "device": ["--model", "fake"]}[kind]
    pre = ["--device", "bogus"] if kind == "device" else []
    code, _, err = run("--index", str(target), *pre, "add", str(corpus), *args)
    assert code == EXIT_USER_ERROR and err.startswith("error: ")
    assert not target.exists(), "a failed first open left files behind"
    existing = tmp_path / "mine"  # a folder the user made stays, empty as it was
    existing.mkdir()
    code, _, _ = run("--index", str(existing), *pre, "add", str(corpus), *args)
    assert code == EXIT_USER_ERROR and existing.is_dir() and list(existing.iterdir()) == []
    with pytest.raises(OmniretError):
        omniret.open(str(existing), **({"model": "bogus:x"} if kind == "model" else
                                       {"model": "fake", "audio_model": "hf:/no/such"} if kind == "audio_model" else
                                       {"model": "fake", "device": "bogus"}))
    assert list(existing.iterdir()) == []


def test_failed_open_of_an_existing_index_keeps_it(index: str) -> None:
    with pytest.raises(ModelError):
        omniret.open(index, model="fake", device="bogus")
    with omniret.open(index) as idx:
        assert idx.store.count() == 10
    assert json.loads(run("--index", index, "--json", "info")[1])["items"] == 10
