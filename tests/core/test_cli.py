"""The ``omniret`` command: every command, human and --json output, error mapping."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from omniret.cli.main import EXIT_USER_ERROR, cli


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_add_search_info_remove_json(tmp_path: Path, corpus: Path) -> None:
    idx = str(tmp_path / "idx")
    code, out, _ = run("--index", idx, "--json", "-q", "add", str(corpus), "--model", "fake", "--workers", "0")
    assert code == 0
    summary = json.loads(out)
    assert summary["new"] == 7 and summary["model"] == "fake" and summary["failed"] == []

    code, out, _ = run("--index", idx, "--json", "search", "rocket launch satellites", "-k", "3")
    assert code == 0
    lines = [json.loads(x) for x in out.splitlines()]
    assert len(lines) == 3 and lines[0]["rank"] == 1 and lines[0]["uri"].endswith("rockets.md")
    assert {"id", "score", "modality", "uri", "parent_id", "metadata"} <= set(lines[0])

    code, out, _ = run("--index", idx, "--json", "search", "--image", str(corpus / "red.png"), "-k", "1",
                       "--modality", "image")
    assert code == 0 and json.loads(out)["uri"].endswith("red.png")

    code, out, _ = run("--index", idx, "--json", "search", "x", "--where", "name=blue.png")
    assert code == 0 and [json.loads(x)["uri"].split("/")[-1] for x in out.splitlines()] == ["blue.png"]

    code, out, _ = run("--index", idx, "--json", "info")
    info = json.loads(out)
    assert code == 0 and info["model"] == "fake" and info["items"] == 10

    code, out, _ = run("--index", idx, "--json", "remove", str(corpus / "red.png"))
    assert code == 0 and json.loads(out)["removed"] == 1


def test_human_output(tmp_path: Path, corpus: Path) -> None:
    idx = str(tmp_path / "idx")
    code, out, _ = run("--index", idx, "-q", "index", str(corpus), "--model", "fake", "--workers", "0")
    assert code == 0 and "7 new" in out
    code, out, _ = run("--index", idx, "search", "cats sleep", "-k", "2")
    assert code == 0 and out.startswith("  1. ")
    code, out, _ = run("--index", idx, "info")
    assert code == 0 and "model: fake" in out
    code, out, _ = run("models")
    assert code == 0 and "offline" in out and "openclip:" in out


def test_errors_are_one_line_with_nonzero_exit(tmp_path: Path) -> None:
    code, _, err = run("--index", str(tmp_path / "none"), "search", "x")
    assert code == EXIT_USER_ERROR and err.startswith("error: no omniret index") and "Traceback" not in err
    code, _, err = run("--index", str(tmp_path / "i"), "add", str(tmp_path / "missing"), "--model", "fake")
    assert code == EXIT_USER_ERROR and "path not found" in err
    code, _, err = run("--index", str(tmp_path / "i2"), "add", str(tmp_path), "--model", "bogus")
    assert code == EXIT_USER_ERROR and "unknown model" in err
    code, _, err = run("--index", str(tmp_path / "i"), "search")
    assert code == EXIT_USER_ERROR and "QUERY" in err


def test_env_var_selects_index(tmp_path: Path, corpus: Path, monkeypatch) -> None:
    monkeypatch.setenv("OMNIRET_INDEX", str(tmp_path / "envidx"))
    code, _, _ = run("-q", "add", str(corpus / "sub"), "--model", "fake", "--workers", "0")
    assert code == 0 and (tmp_path / "envidx" / "omniret.db").exists()


def test_method_options_and_bank(tmp_path: Path, corpus: Path) -> None:
    idx = str(tmp_path / "idx")
    assert run("--index", idx, "-q", "add", str(corpus), "--model", "fake", "--workers", "0")[0] == 0
    code, _, err = run("--index", idx, "search", "cats", "--hubness", "qbnorm")
    assert code == EXIT_USER_ERROR and "query bank" in err
    qfile = tmp_path / "queries.txt"
    qfile.write_text("a sleepy cat\nrocket in orbit\n\npasta with sauce\n")
    code, out, _ = run("--index", idx, "--json", "bank", "--queries", str(qfile))
    assert code == 0 and json.loads(out)["query_bank"] == 3
    for flags in (["--hubness", "qbnorm"], ["--hubness", "dbnorm"], ["--gap", "calibrate"], ["--hybrid", "rrf"],
                  ["--negative", "pasta"]):
        code, out, err = run("--index", idx, "--json", "search", "cats sleep in the sun", "-k", "3", *flags)
        assert code == 0, (flags, err)
        assert len(out.splitlines()) == 3
    code, out, _ = run("--index", idx, "--json", "search", "but green", "--image", str(corpus / "red.png"),
                       "--compose", "weimo", "-k", "2")
    assert code == 0 and len(out.splitlines()) == 2
    code, out, _ = run("--index", idx, "--json", "search", "--expr", f'"rocket" -"pasta" +{corpus / "blue.png"}')
    assert code == 0 and out
    code, _, err = run("--index", idx, "search", "x", "--gap", "center", "--hubness", "is")
    assert code == EXIT_USER_ERROR and "exclusive" in err


def test_demo_writes_into_the_user_cache_not_the_current_folder(tmp_path: Path, monkeypatch) -> None:
    cwd, cache = tmp_path / "checkout", tmp_path / "xdg"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("OMNIRET_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    code, out, _ = run("--json", "demo", "--model", "fake")
    assert code == 0, out
    first = json.loads(out.splitlines()[0])
    assert first["index"] == str(cache / "omniret" / "demo" / "index") and first["new"] > 10
    assert list(cwd.iterdir()) == []  # nothing left in the working directory
    assert (cache / "omniret" / "demo" / "index" / "omniret.db").is_file()
    code, out, _ = run("demo", "--model", "fake", "--dir", str(tmp_path / "here"))
    assert code == 0 and (tmp_path / "here" / "samples" / "chelsea.png").is_file() and "search 'a cat'" in out
