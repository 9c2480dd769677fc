"""CLI: --audio-model on add, --audio / --route / --granularity on search, labels in the human output."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from omniret.cli.main import cli


def test_cli_audio_model_route_and_labels(mixed: Path, excerpt: Path, tmp_path: Path) -> None:
    run = CliRunner()
    idx = str(tmp_path / "idx")
    out = run.invoke(cli, ["--index", idx, "-q", "add", str(mixed), "--model", "fake", "--audio-model", "fake-clap",
                           "--workers", "0"])
    assert out.exit_code == 0, out.output
    res = run.invoke(cli, ["--index", idx, "search", "--audio", str(excerpt), "-k", "2"])
    assert res.exit_code == 0 and "tone300.wav @ 00:" in res.output.splitlines()[0]
    res = run.invoke(cli, ["--index", idx, "--json", "search", "a 3000 hz tone", "--route", "audio",
                           "--granularity", "parent", "-k", "1"])
    hit = json.loads(res.output.splitlines()[0])
    assert hit["modality"] == "audio" and hit["uri"].endswith("tone3000.wav") and hit["parent_id"] is None


def test_cli_counts_unembedded_and_names_the_missing_model(mixed: Path, excerpt: Path, tmp_path: Path) -> None:
    run = CliRunner()
    idx = str(tmp_path / "plain")
    out = run.invoke(cli, ["--index", idx, "-q", "add", str(mixed), "--model", "fake", "--workers", "0"])
    assert out.exit_code == 0 and "3 audio files are stored without embeddings: this index has no audio model" in out.output
    res = run.invoke(cli, ["--index", idx, "search", "--audio", str(excerpt)])
    assert res.exit_code == 2 and "--audio-model hf:" in res.output
