"""What ``omniret add`` and an empty search say: files stored without embeddings and why, skipped and
failed files by name, a non-zero exit when nothing could be indexed, a hint for an empty folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from omniret.cli.main import EXIT_USER_ERROR, cli


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_audio_without_a_model_is_explained_in_add_and_search(mixed: Path, tmp_path: Path) -> None:
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    for name in ("tone300.wav", "tone3000.wav", "noise.wav"):
        shutil.copy(mixed / name, sounds / name)
    idx = str(tmp_path / "idx")
    code, out, _ = run("--index", idx, "-q", "add", str(sounds), "--model", "fake", "--workers", "0")
    assert code == 0
    assert ("3 audio files are stored without embeddings: this index has no audio model; "
            "add one with --audio-model") in out
    code, out, _ = run("--index", idx, "search", "a dog barking")
    assert code == 0 and out.startswith("no results") and "3 audio files are stored without embeddings" in out
    code, out, _ = run("--index", idx, "--json", "info")
    assert json.loads(out)["unembedded"] == {"audio": 3}
    # attaching an audio model embeds the recordings stored without one, though their files did not change
    code, out, _ = run("--index", idx, "--json", "-q", "add", str(sounds), "--audio-model", "fake-clap",
                       "--workers", "0")
    report = json.loads(out)
    assert code == 0 and report["changed"] == 3 and report["unembedded"] == 0, report
    code, out, _ = run("--index", idx, "--json", "search", "300 hz hum", "--modality", "audio", "-k", "1")
    assert code == 0 and json.loads(out)["uri"].endswith("tone300.wav")
    code, out, _ = run("--index", idx, "--json", "info")
    assert json.loads(out)["unembedded"] == {}


def test_skipped_files_are_named_with_their_reason(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.txt").write_text("some words about the sea")
    for i in range(12):
        (d / f"f{i:02d}.xyz").write_text("?")
    idx = str(tmp_path / "idx")
    code, out, _ = run("--index", idx, "-q", "add", str(d), "--model", "fake", "--workers", "0")
    assert code == 0 and "skipped 12 file(s):" in out
    assert f"{d / 'f00.xyz'}: unsupported extension '.xyz'" in out and "f11.xyz" not in out
    assert "and 2 more (--verbose lists them all)" in out
    code, out, _ = run("--index", idx, "-q", "add", str(d), "--verbose")
    assert code == 0 and "f11.xyz" in out and "more (--verbose" not in out


def test_nothing_indexed_exits_non_zero(tmp_path: Path) -> None:
    d = tmp_path / "bad"
    d.mkdir()
    (d / "a.png").write_bytes(b"not a png at all")
    (d / "b.jpg").write_bytes(b"")
    idx = str(tmp_path / "idx")
    code, out, err = run("--index", idx, "-q", "add", str(d), "--model", "fake", "--workers", "0")
    assert code == EXIT_USER_ERROR, out
    assert "failed 2 file(s):" in out and f"{d / 'b.jpg'}: empty file" in out
    assert "nothing could be indexed: all 2 file(s) failed" in err
    (d / "c.txt").write_text("a good note")
    code, out, _ = run("--index", idx, "-q", "add", str(d))
    assert code == 0 and "1 new" in out  # one good file: partial success is a success


def test_an_empty_folder_gets_a_hint(tmp_path: Path) -> None:
    d = tmp_path / "empty"
    d.mkdir()
    code, out, _ = run("--index", str(tmp_path / "idx"), "-q", "add", str(d), "--model", "fake")
    assert code == 0 and "no files to index found in" in out and "jpg" in out and "pdf" in out


def test_a_missing_optional_library_is_named_with_its_pip_command(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``omniret add notes.csv --text-col`` without pyarrow: the pip command, exit 2, not an internal error."""
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name.split(".")[0] == "pyarrow":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    (tmp_path / "notes.csv").write_text("key,caption\nn1,a rocket launch\n")
    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    code, out, err = run("--index", str(tmp_path / "idx"), "add", str(tmp_path / "notes.csv"), "--text-col", "caption",
                         "--model", "fake")
    assert code == EXIT_USER_ERROR, (out, err)
    assert "pip install pyarrow" in err and "omniret[data]" in err and "internal error" not in err
