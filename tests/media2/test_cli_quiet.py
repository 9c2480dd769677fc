"""``-q`` silences the model-loading bars of transformers & co; a model that fails to load creates no index."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from tiny_clap import build_clip

from omniret.cli.main import EXIT_USER_ERROR, cli

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


@pytest.fixture
def bars_restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """-q switches the libraries' bars off process-wide: switch them back on around the test."""
    import huggingface_hub.utils as hub
    from transformers.utils import logging as tf_logging

    for var in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(var, raising=False)
    hub.enable_progress_bars()
    tf_logging.enable_progress_bar()
    yield
    hub.enable_progress_bars()
    tf_logging.enable_progress_bar()


def _add(tmp: Path, clip: Path, *flags: str) -> tuple[int, str, str]:
    notes = tmp / "notes"
    notes.mkdir(exist_ok=True)
    (notes / "a.txt").write_text("a short note about the sea")
    args = ["--index", str(tmp / f"idx{len(flags)}"), *flags, "add", str(notes), "--model", f"hf:{clip}",
            "--workers", "0"]
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_quiet_hides_the_loading_weights_bar(clip_dir: Path, tmp_path: Path, bars_restored: None) -> None:
    code, _, err = _add(tmp_path, clip_dir)
    assert code == 0, err
    assert "Loading weights" in err  # the bar -q must hide is really there
    code, out, err = _add(tmp_path, clip_dir, "-q")
    assert code == 0, err
    assert "Loading weights" not in err and "%|" not in err, err
    assert "1 new" in out
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"  # for libraries imported later and subprocesses


def test_a_failed_audio_model_leaves_no_index_behind(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("words")
    for target in (tmp_path / "new-idx", tmp_path / "deep" / "er" / "idx"):
        r = CliRunner().invoke(cli, ["--index", str(target), "add", str(notes), "--model", "fake",
                                     "--audio-model", "hf:/nowhere/clap"], catch_exceptions=False)
        assert r.exit_code == EXIT_USER_ERROR, r.output
        assert not target.exists()
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "keep.txt").write_text("the user's own file")
    r = CliRunner().invoke(cli, ["--index", str(existing), "add", str(notes), "--model", "bogus:x"])
    assert r.exit_code == EXIT_USER_ERROR and "unknown model" in r.stderr
    assert sorted(p.name for p in existing.iterdir()) == ["keep.txt"]  # its omniret.db is gone, the rest kept
