"""Every example in README.md, and every example in the CLI's ``--help`` texts, runs as written.

The README's code blocks are extracted and run on sample data in a scratch home folder (the user's
``~``, also the working folder): real pictures from scikit-image and scikit-learn, a few notes, a real
texlive PDF (the ``texdoc`` fixture), a real animal sound. Shell lines run through the real click
command (``omniret ...`` in this process, so the offline model loads once per session); the Python
snippet runs as written. A line whose comment says ``network:`` (model weights to download) or
``needs:`` (a system package) is parsed against the CLI's options only. The install commands are
checked against pyproject.toml, not run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
NOT_HERE = re.compile(r"#.*\b(network|needs):")


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    marker: str | None  # the HTML comment right above the fence (``<!-- run-command -->``), if any
    line: int


def blocks(text: str) -> list[Block]:
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = re.match(r"^```(\w+)\s*$", lines[i])
        if not m:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        prev = lines[i - 1].strip() if i else ""
        marker = prev[4:-3].strip() if prev.startswith("<!--") and prev.endswith("-->") else None
        out.append(Block(m.group(1), "\n".join(lines[i + 1 : end]) + "\n", marker, i + 1))
        i = end + 1
    return out


def shell_commands(code: str) -> Iterator[tuple[str, list[list[str]]]]:
    """Each non-empty line: ``(line, [argv, ...])`` with ``&&`` splitting it into commands."""
    for raw in code.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars="&")
        lexer.whitespace_split = True
        parts: list[list[str]] = [[]]
        for tok in lexer:
            if tok == "&&":
                parts.append([])
            else:
                parts[-1].append(os.path.expanduser(tok) if tok.startswith("~/") else tok)
        yield line, [p for p in parts if p]


def parse_only(args: list[str]) -> click.Command:
    """Parse ``omniret ARGS`` down to the leaf command (options and choices checked; nothing runs)."""
    from omniret.cli.main import cli

    cmd: click.Command = cli
    ctx = cli.make_context("omniret", list(args))
    while isinstance(cmd, click.Group):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, sub, rest = cmd.resolve_command(ctx, rest)
        assert sub is not None and name is not None, args
        try:
            ctx = sub.make_context(name, rest, parent=ctx)
        except click.BadParameter as e:
            if "does not exist" not in str(e):  # data that is not on this machine is fine; bad syntax is not
                raise
        cmd = sub
    return cmd


# -- the scratch home -------------------------------------------------------------------------------
def _write_home(home: Path, texdoc: Path | None) -> None:
    from skimage import data
    from sklearn.datasets import load_sample_images

    pics = home / "Pictures"
    pics.mkdir(parents=True)
    for name, arr in (("cat.jpg", data.chelsea()), ("jacket.jpg", data.astronaut()), ("rocket.jpg", data.rocket()),
                      ("coffee.jpg", data.coffee()), ("bike.jpg", data.stereo_motorcycle()[0])):
        Image.fromarray(np.asarray(arr)).convert("RGB").save(pics / name)
    Image.fromarray(load_sample_images().images[0]).save(pics / "temple.jpg")  # scikit-learn's china.jpg
    (pics / "diagram.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
                                      '<circle cx="32" cy="32" r="20" fill="red"/></svg>')
    notes = home / "notes"
    (notes / "2024").mkdir(parents=True)
    (notes / "pets.md").write_text("# Pets\n\nOur cat sleeps on the sofa all day. The dog chases birds.\n")
    (notes / "space.txt").write_text("The rocket lifted off at dawn, carrying a satellite into orbit.\n")
    (notes / "2024" / "report.md").write_text("# March report\n\nInvoice 2024-17 for the garden work is paid.\n")
    (notes / "2024" / "budget.md").write_text("# Budget\n\nThe budget for travel and books this year.\n")
    papers = home / "papers"
    papers.mkdir()
    if texdoc is not None:
        shutil.copy(texdoc / "carlisle" / "ltxtable.pdf", papers / "ltxtable.pdf")  # 3 pages: long tables
    music = home / "Music"
    music.mkdir()
    from mediagen import animal_sounds_dir  # type: ignore[import-not-found]

    sounds = animal_sounds_dir()
    if sounds is not None:
        shutil.copy(sounds / "dog.mp3", music / "dog.mp3")
    (home / "past_queries.txt").write_text("a dog\nred shoes\nmountain lake\na rocket\n")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A scratch ``~`` (also the working folder), and one offline model for the whole module."""
    import sys

    for helpers in ("media2", "server"):
        sys.path.insert(0, str(ROOT / "tests" / helpers))
    try:
        texdoc: Path | None = request.getfixturevalue("texdoc")
    except pytest.skip.Exception:
        texdoc = None
    h = tmp_path_factory.mktemp("home")
    _write_home(h, texdoc)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(h))
        mp.setenv("XDG_CACHE_HOME", str(h / ".cache"))
        for var in ("OMNIRET_INDEX", "OMNIRET_CACHE"):
            mp.delenv(var, raising=False)
        mp.chdir(h)
        _one_model_per_session(mp)
        yield h


def _one_model_per_session(mp: pytest.MonkeyPatch) -> None:
    """``registry.create`` memoised, so every command and snippet shares one loaded offline model."""
    from omniret.encoders import auto, registry

    real = registry.create
    cache: dict[tuple[str, str], Any] = {}

    def create(name: str, **kwargs: Any) -> Any:
        key = (name, json.dumps(kwargs, sort_keys=True, default=str))
        if key not in cache:
            cache[key] = real(name, **kwargs)
        return cache[key]

    mp.setattr(registry, "create", create)
    mp.setattr(auto, "create_encoder", create)


def run_cli(args: list[str]) -> tuple[int, str, str]:
    from omniret.cli.main import cli

    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


# -- what a documented command must show --------------------------------------------------------------
def _check(line: str, args: list[str], out: str, home: Path) -> None:
    cmd = next(a for a in args if not a.startswith("-"))
    if cmd in ("add", "index"):
        assert re.search(r"\d+ new", out), out
    elif cmd == "search":
        assert out.strip() and "no results" not in out, (line, out)
        if "--json" in args:
            assert all("uri" in json.loads(x) for x in out.splitlines()), out
        if "a cat on a sofa" in args:
            assert "cat.jpg" in out or "pets.md" in out, out
        if "--image" in args and "--compose" not in args:
            assert "Pictures/cat.jpg" in out.splitlines()[0], out  # the example itself ranks first
        if "--granularity" in args and (home / "papers" / "ltxtable.pdf").exists():
            assert "ltxtable.pdf: " in out and "· 3 pages" in out, out
    elif cmd == "bank":
        assert "query bank: 4 queries" in out, out
    elif cmd == "classify":
        assert len(out.splitlines()) >= 5 and ": cat " in out, out
    elif cmd == "remove":
        assert "removed 1 item(s)" in out, out
    elif cmd == "info":
        assert "model: offline" in out and "items:" in out, out
    elif cmd == "models":
        assert "offline" in out and "openclip:" in out, out


def _serve(args: list[str], mp: pytest.MonkeyPatch) -> dict[str, Any]:
    """``omniret serve ...`` as written, with uvicorn.run answering two requests on a free port, then stopping."""
    import httpx
    import uvicorn
    from srv_helpers import LiveServer  # type: ignore[import-not-found]

    seen: dict[str, Any] = {}

    def run(app: Any, host: str, port: int, **kwargs: Any) -> None:
        seen["asked"] = (host, port)
        with LiveServer(app) as live:
            seen["health"] = httpx.get(live.url + "/healthz", timeout=60).json()
            seen["search"] = httpx.post(live.url + "/search", json={"text": "a cat", "k": 3}, timeout=120).json()

    mp.setattr(uvicorn, "run", run)
    code, _, err = run_cli(args)
    assert code == 0, err
    return seen


# -- the tests ------------------------------------------------------------------------------------------
def test_readme_has_the_blocks_this_test_runs() -> None:
    found = blocks(README.read_text(encoding="utf-8"))
    langs = [(b.lang, b.marker) for b in found]
    assert ("bash", "run-command") in langs and ("bash", "test-command") in langs
    assert sum(b.lang == "bash" and b.marker is None for b in found) == 1
    assert sum(b.lang == "python" and b.marker is None for b in found) == 1
    assert {b.lang for b in found} <= {"bash", "python"}, "a new kind of block: teach this test to run it"
    assert {b.marker for b in found} <= {None, "run-command", "test-command", "example"}, "an unknown marker"
    assert sum(b.marker == "example" for b in found) >= 7  # records, manifests, datasets, vectors, export, MCP, adapters


def test_every_shell_example_runs(home: Path) -> None:
    (block,) = [b for b in blocks(README.read_text(encoding="utf-8")) if b.lang == "bash" and b.marker is None]
    ran = 0
    with pytest.MonkeyPatch.context() as mp:
        for line, commands in shell_commands(block.code):
            for argv in commands:
                assert argv[0] == "omniret", f"README line {line!r}: not an omniret command"
                if NOT_HERE.search(line):
                    parse_only(argv[1:])
                    continue
                if "serve" in argv:
                    seen = _serve(argv[1:], mp)
                    assert seen["asked"] == ("127.0.0.1", 8000) and seen["health"]["items"] > 10
                    assert seen["search"]["hits"], seen
                    ran += 1
                    continue
                code, out, err = run_cli(argv[1:])
                assert code == 0, f"README line {line!r} -> exit {code}\n{out}\n{err}"
                _check(line, argv[1:], out, home)
                ran += 1
    assert ran >= 17


def test_the_python_example_runs_as_a_script(home: Path) -> None:
    """Saved as a file and run with ``python`` as a user would: no ``if __name__ == "__main__":`` guard."""
    import subprocess
    import sys

    (block,) = [b for b in blocks(README.read_text(encoding="utf-8")) if b.lang == "python" and b.marker is None]
    script = home / "example.py"
    script.write_text(block.code + "print('labels', len(labels), 'hits', len(hits))\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    r = subprocess.run([sys.executable, str(script)], cwd=home, env=env, capture_output=True, text=True,
                       timeout=900, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    printed = r.stdout.splitlines()
    assert re.fullmatch(r"\d+ \[.*\]", printed[0]), printed[0]  # report.new, report.failed
    assert len(printed) == 7 and all(Path(x.split()[1]).suffix for x in printed[1:6])  # five image hits
    assert re.fullmatch(r"labels [1-9]\d* hits [1-9]\d*", printed[6]), printed[6]
    assert "Traceback" not in r.stderr


def _expected_prints(code: str) -> list[str]:
    """What the example says its ``print`` lines show: the comment after each (up to a `` — `` aside)."""
    out = []
    for line in code.splitlines():
        if line.lstrip().startswith("print(") and "  # " in line:
            out.append(line.split("  # ", 1)[1].split(" — ")[0].strip())
    return out


def _omniret_on_path(home: Path) -> str:
    """A ``PATH`` whose ``omniret`` runs this checkout (examples that start ``omniret`` as a subprocess, like
    an MCP client does, get the code under test and not whatever omniret is installed)."""
    import sys

    shim = home / ".bin"
    shim.mkdir(exist_ok=True)
    src = str(ROOT / "src")
    (shim / "omniret").write_text(f'#!/bin/sh\nPYTHONPATH="{src}" exec "{sys.executable}" -m omniret.cli.main "$@"\n')
    (shim / "omniret").chmod(0o755)
    return f"{shim}{os.pathsep}{os.environ.get('PATH', '')}"


def test_every_marked_example_runs(home: Path) -> None:
    """The ``<!-- example -->`` blocks (records, manifests, datasets, your own vectors, export/import, MCP,
    retrievers) run in README order in the scratch home: Python in this process (the shared offline
    model) with its ``print`` lines showing what their comments say; shell lines as ``omniret`` commands
    or ``python -c`` one-liners."""
    import contextlib
    import io
    import runpy
    import subprocess
    import sys

    examples = [b for b in blocks(README.read_text(encoding="utf-8")) if b.marker == "example"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", _omniret_on_path(home))
        for n, block in enumerate(examples):
            if block.lang == "python":
                script = home / f"example_{n}.py"
                script.write_text(block.code, encoding="utf-8")
                buf = io.StringIO()
                with contextlib.redirect_stdout(buf):
                    runpy.run_path(str(script), run_name="__main__")
                printed = [x.strip() for x in buf.getvalue().splitlines() if x.strip()]
                assert printed == _expected_prints(block.code), f"README line {block.line}: printed {printed}"
                continue
            for line, commands in shell_commands(block.code):
                for argv in commands:
                    if argv[0] == "python":
                        r = subprocess.run([sys.executable, *argv[1:]], cwd=home, capture_output=True, text=True,
                                           timeout=300, check=False)
                        assert r.returncode == 0, f"README line {line!r}: {r.stderr[-2000:]}"
                        continue
                    assert argv[0] == "omniret", f"README line {line!r}: not an omniret or python command"
                    code, out, err = run_cli(argv[1:])
                    assert code == 0, f"README line {line!r} -> exit {code}\n{out}\n{err}"
                    _check(line, argv[1:], out, home)


def test_install_and_test_commands_agree_with_the_project(home: Path) -> None:
    """The one-line installs are not run here (they build a virtualenv); their pins must satisfy
    pyproject.toml, the test extra must exist, and the command they end with must run."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    for block in blocks(README.read_text(encoding="utf-8")):
        if block.marker not in ("run-command", "test-command"):
            continue
        for _, commands in shell_commands(block.code):
            for argv in commands:
                if argv[:3] == ["python3", "-m", "venv"] or argv[-2:] == ["-p", "no:cacheprovider"]:
                    continue  # the virtualenv; this very test suite
                if argv[0].endswith("/pip"):
                    for pin in (a for a in argv[2:] if "==" in a):
                        req = Requirement(pin)
                        assert req.specifier.contains(next(iter(req.specifier)).version), pin
                        assert reqs[req.name].specifier.contains(next(iter(req.specifier)).version), pin
                    for extra in re.findall(r"\.\[([\w,]+)\]", " ".join(argv)):
                        assert set(extra.split(",")) <= set(project["optional-dependencies"]), extra
                    continue
                assert argv[0].endswith("/omniret"), argv
                code, out, err = run_cli(argv[1:])  # `omniret demo`, into the user cache
                assert code == 0, err
                assert "search 'a cat'" in out and (home / ".cache" / "omniret" / "demo" / "index").is_dir()
                assert not (home / "omniret-demo").exists()


def _help_texts() -> Iterator[tuple[str, str | None, str]]:
    from omniret.cli.main import cli

    def walk(cmd: click.Command, path: str) -> Iterator[tuple[str, str | None, str]]:
        yield path, None, cmd.help or ""
        for p in cmd.params:
            if getattr(p, "help", None):
                yield path, p.name, p.help  # type: ignore[attr-defined]
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                yield from walk(sub, f"{path} {name}")

    yield from walk(cli, "omniret")


def test_every_help_example_is_valid() -> None:
    """Commands quoted in help texts parse; the example values of --expr, --methods and --index are
    accepted by the code that reads them."""
    from omniret.eval.runner import parse_methods
    from omniret.query.pipeline import parse_expression
    from omniret.store import _split, backends

    checked = 0
    for path, name, text in _help_texts():
        for quoted in re.findall(r"`(omniret [^`]*)`", text):
            cmd = parse_only(shlex.split(quoted)[1:])
            assert cmd is not None, (path, quoted)
            checked += 1
        for example in re.findall(r"e\.g\. ([^'\s]\S*?)(?=[ ,)]|\.?$)", text) + re.findall(r"e\.g\. '(.+?)'", text):
            if name == "expr":
                terms = parse_expression(example.strip("'"), is_file=lambda s: s.endswith(".jpg"))
                assert [t.kind for t in terms] == ["text", "text", "image", "item"], terms
            elif name == "methods":
                assert parse_methods(example) == tuple(example.split(","))
            else:
                continue
            checked += 1
        if name == "index_dir":
            for uri in re.findall(r"\b([a-z-]+://\S+?)(?= |\)|$)", text):
                assert _split(uri)[0] in {b.scheme for b in backends()}, uri
                checked += 1
    assert run_cli(["models"])[0] == 0  # the command the --model helps point to
    assert checked >= 6
