"""Global options after the command: ``omniret add --index X DIR`` works, for every command."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from omniret.cli.common import Settings
from omniret.cli.main import cli

#: every command, by its path under ``omniret``, with the arguments it needs to parse
COMMANDS: dict[tuple[str, ...], list[str]] = {
    ("add",): ["somedir"],
    ("index",): ["somedir"],
    ("search",): ["a query"],
    ("bank",): [],
    ("remove",): ["some-id"],
    ("info",): [],
    ("check",): [],
    ("ask",): ["a question"],
    ("align",): ["--pairs", __file__],
    ("models",): [],
    ("demo",): [],
    ("daemon",): [],
    ("classify",): [],
    ("upgrade",): [],
    ("serve",): [],
    ("eval",): [],
    ("eval", "prepare"): ["pdfs", "out"],
    ("eval", "run"): ["."],
    ("export",): ["out.parquet"],
    ("import",): [__file__],
    ("mcp",): [],
}

AFTER = ["--index", "after-idx", "--json", "-q", "--debug", "--device", "cpu", "--batch-size", "7",
         "--no-query-cache", "--no-daemon"]


def _all_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    out = set()
    for name, cmd in group.commands.items():
        out.add((*prefix, name))
        if isinstance(cmd, click.Group):
            out |= _all_paths(cmd, (*prefix, name))
    return out


def test_the_table_names_every_command() -> None:
    assert _all_paths(cli) == {p for p in COMMANDS if _exists(p)}, "add new commands to COMMANDS"


def _exists(path: tuple[str, ...]) -> bool:
    cmd: click.Command = cli
    for name in path:
        if not isinstance(cmd, click.Group) or name not in cmd.commands:
            return False
        cmd = cmd.commands[name]
    return True


def _context(path: tuple[str, ...], before: list[str], after: list[str]) -> click.Context:
    ctx = cli.make_context("omniret", [*before, *path])
    cmd: click.Command = cli
    for i, name in enumerate(path):
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
        args = [*after, *COMMANDS[path]] if i == len(path) - 1 else list(path[i + 1 :])
        ctx = cmd.make_context(name, args, parent=ctx, resilient_parsing=False)
    return ctx


@pytest.mark.parametrize("path", sorted(p for p in COMMANDS if _exists(p)), ids=" ".join)
def test_every_command_takes_global_options_after_it(path: tuple[str, ...]) -> None:
    ctx = _context(path, ["--index", "before-idx"], AFTER)
    s = ctx.find_object(Settings)
    own_index = any("--index" in p.opts and not str(p.name).startswith("omniret_global_") for p in ctx.command.params)
    assert isinstance(s, Settings)
    assert (s.json, s.quiet, s.debug, s.device, s.batch_size) == (True, True, True, "cpu", 7)
    assert (s.query_cache, s.daemon) == (False, False)  # on/off switches keep their meaning after the command
    # the command's own --index (serve, eval run) keeps its meaning; elsewhere the one after the command wins
    assert s.index == ("before-idx" if own_index else "after-idx")


def test_options_before_the_command_still_count_when_others_come_after() -> None:
    ctx = _context(("search",), ["--index", "before-idx", "--device", "cuda:1", "--no-daemon"], ["--json"])
    s = ctx.find_object(Settings)
    assert (s.index, s.device, s.json, s.quiet, s.daemon) == ("before-idx", "cuda:1", True, False, False)
    s = _context(("info",), ["--no-daemon"], ["--daemon"]).find_object(Settings)
    assert s.daemon is True  # after the command wins


def test_bad_values_after_the_command_are_usage_errors(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["info", "--batch-size", "0"])
    assert r.exit_code == 2 and "--batch-size" in r.output


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_new_user_session_with_options_after_the_command(tmp_path: Path, corpus: Path) -> None:
    idx = str(tmp_path / "idx")
    code, out, err = run("add", "--index", idx, str(corpus), "--model", "fake", "--workers", "0", "-q", "--json")
    assert code == 0, err
    assert json.loads(out)["new"] == 7 and (Path(idx) / "omniret.db").exists()
    code, out, _ = run("search", "rocket launch satellites", "--index", idx, "--json", "-k", "1")
    assert code == 0 and json.loads(out)["uri"].endswith("rockets.md")
    code, out, _ = run("info", "--json", "--index", idx)
    assert code == 0 and json.loads(out)["items"] == 10
    code, out, _ = run("bank", "--from-items", "--index", idx, "--json")
    assert code == 0 and json.loads(out)["query_bank"] > 0
    code, out, _ = run("classify", "--labels", "red,blue", "--modality", "image", "--index", idx, "--json")
    assert code == 0 and len(out.splitlines()) == 4
    code, out, _ = run("remove", str(corpus / "red.png"), "--index", idx, "--json")
    assert code == 0 and json.loads(out)["removed"] == 1
    # --index after the command wins over one before it
    code, out, _ = run("--index", str(tmp_path / "other"), "info", "--index", idx, "--json")
    assert code == 0 and json.loads(out)["items"] == 9
    code, _, err = run("info", "--index", str(tmp_path / "none"))
    assert code == 2 and "no omniret index" in err


def test_debug_after_the_command_shows_the_traceback(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["info", "--index", str(tmp_path / "none"), "--debug"])
    assert r.exit_code != 0 and r.exception is not None and "no omniret index" in str(r.exception)
