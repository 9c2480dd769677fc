"""``omniret classify`` and ``omniret upgrade`` through click, with --json output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from tasks_helpers import write_image

from omniret.cli.main import EXIT_USER_ERROR, cli
from omniret.cli.tasks import classify_cmd, upgrade_cmd


@pytest.fixture(autouse=True)
def _commands() -> Iterator[None]:
    added = [c for c in (classify_cmd, upgrade_cmd) if c.name not in cli.commands]
    for c in added:
        cli.add_command(c)
    yield
    for c in added:
        cli.commands.pop(c.name or "", None)


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def idx(tmp_path: Path, animal_notes: Path) -> str:
    path = str(tmp_path / "idx")
    code, _, _ = run("--index", path, "-q", "add", str(animal_notes), "--model", "fake", "--workers", "0")
    assert code == 0
    return path


def test_classify_json_and_write(idx: str, tmp_path: Path) -> None:
    code, out, _ = run("--index", idx, "--json", "classify", "--labels", "cat,dog,horse,parrot,goldfish",
                       "--templates", "none", "-k", "2")
    assert code == 0
    rows = [json.loads(x) for x in out.splitlines()]
    assert len(rows) == 10 and all(len(r["labels"]) == 2 for r in rows)
    assert all(Path(r["uri"]).stem.startswith(r["best"]) for r in rows)
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("# animals\ncat\ndog\n", encoding="utf-8")
    code, out, _ = run("--index", idx, "--json", "classify", "--labels-file", str(labels_file), "--templates", "none",
                       "--write", "--where", "name=cat0.txt")
    assert code == 0 and [json.loads(x)["best"] for x in out.splitlines()] == ["cat"]
    code, out, _ = run("--index", idx, "--json", "search", "number", "--where", "class=cat")
    assert code == 0 and [Path(json.loads(x)["uri"]).name for x in out.splitlines()] == ["cat0.txt"]


def test_classify_descriptions_threshold_and_human_output(idx: str, tmp_path: Path) -> None:
    desc = tmp_path / "d.json"
    desc.write_text(json.dumps({"cat": ["a cat, a small pet"], "dog": "a dog, a loyal pet"}), encoding="utf-8")
    code, out, _ = run("--index", idx, "classify", "--labels", "cat,dog", "--descriptions", str(desc),
                       "--templates", "none", "--threshold", "0.99", "--temperature", "1")
    assert code == 0 and out.count(": -") == 10  # nothing passes the threshold at temperature 1


def test_classify_files_mode(idx: str, tmp_path: Path) -> None:
    f = tmp_path / "loose"
    f.mkdir()
    (f / "note.txt").write_text("parrot parrot parrot", encoding="utf-8")
    write_image(f / "pic.png", (200, 10, 10))
    code, out, err = run("--index", idx, "--json", "classify", "--labels", "cat,parrot", "--templates", "none",
                         str(f / "note.txt"), str(f / "pic.png"))
    assert code == 0, err
    rows = {Path(r["uri"]).name: r for r in map(json.loads, out.splitlines())}
    assert rows["note.txt"]["best"] == "parrot" and rows["note.txt"]["id"] is None and "pic.png" in rows


def test_classify_errors(idx: str) -> None:
    code, _, err = run("--index", idx, "classify")
    assert code == EXIT_USER_ERROR and "--labels" in err
    code, _, err = run("--index", idx, "classify", "--labels", "cat,cat")
    assert code == EXIT_USER_ERROR and "duplicates" in err


def test_upgrade_fit_resume_switch(tmp_path: Path, mixed_corpus: Path) -> None:
    path = str(tmp_path / "up")
    assert run("--index", path, "-q", "add", str(mixed_corpus), "--model", "fake", "--workers", "0")[0] == 0
    code, out, _ = run("--index", path, "--json", "upgrade", "--to", "fake2", "--pairs", "100")
    assert code == 0
    rep = json.loads(out)
    assert rep["event"] == "upgrade" and rep["pairs"] == 100 and rep["recall"]["new_to_old"]["10"] >= 0.9
    code, out, _ = run("--index", path, "--json", "upgrade", "--resume", "--limit", "30")
    assert code == 0 and json.loads(out)["embedded"] == 30 and not json.loads(out)["switched"]
    code, out, _ = run("--index", path, "upgrade", "--resume")
    assert code == 0 and "switched to the new model" in out
    code, out, _ = run("--index", path, "--json", "info")
    assert json.loads(out)["model"] == "fake2"
    code, _, err = run("--index", path, "upgrade")
    assert code == EXIT_USER_ERROR and "--to MODEL" in err


def test_classify_write_keeps_the_display_label_of_pages(texdoc: Path, tmp_path: Path) -> None:
    """Regression: --write used to overwrite ``label``, so PDF hits read "cat (…/natnotes.pdf)"."""
    import shutil

    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(texdoc / "carlisle" / "ltxtable.pdf", docs / "ltxtable.pdf")
    path = str(tmp_path / "idx")
    assert run("--index", path, "-q", "add", str(docs), "--model", "fake", "--workers", "0")[0] == 0
    code, out, _ = run("--index", path, "--json", "classify", "--labels", "table,bird", "--templates", "none",
                       "--write")
    assert code == 0 and out
    code, out, _ = run("--index", path, "search", "table", "-k", "3", "--where", "class=table")
    assert code == 0 and "ltxtable.pdf p. " in out and "table (" not in out
    code, out, _ = run("--index", path, "--json", "search", "longtable", "-k", "5", "--where", "class=table")
    hits = [json.loads(x) for x in out.splitlines()]
    assert hits and all(h["metadata"]["class"] == "table" for h in hits)
    pages = [h for h in hits if "page" in h["metadata"]]
    assert pages and all(h["metadata"]["label"] == f"ltxtable.pdf p. {h['metadata']['page']}" for h in pages)
    code, out, _ = run("--index", path, "search", "longtable", "--granularity", "root", "-k", "1")  # the document
    assert code == 0 and "ltxtable.pdf: ltxtable: longtable meets tabularx · 3 pages  (" in out, out
    code, out, _ = run("--index", path, "--json", "search", "longtable", "--granularity", "root")
    assert code == 0 and json.loads(out.splitlines()[0])["label"].endswith(" · 3 pages")
    code, _, err = run("--index", path, "classify", "--labels", "a,b", "--write", "--key", "label")
    assert code == EXIT_USER_ERROR and "display label" in err
