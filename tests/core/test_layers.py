"""The package layers of ARCHITECTURE.md hold: no module imports a higher layer (lazy imports and
``TYPE_CHECKING`` imports included), packages of one layer do not import each other, and there is no
import circle between modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "omniret"
ARCH = Path(__file__).resolve().parents[2] / "ARCHITECTURE.md"


def _layers() -> list[set[str]]:
    """The layer table of ARCHITECTURE.md, lowest first: each row's packages (``omniret.x``)."""
    text = ARCH.read_text(encoding="utf-8")
    block = text.split("<!-- layers:start -->", 1)[1].split("<!-- layers:end -->", 1)[0]
    rows = [line for line in block.splitlines() if re.match(r"^\|\s*\d+\s*\|", line)]
    out = []
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        out.append(set(re.findall(r"`(omniret(?:\.\w+)?)`", cells[1])))
    return out


def _modules() -> dict[str, Path]:
    out = {}
    for p in SRC.rglob("*.py"):
        parts = p.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every omniret module ``name`` imports anywhere in its file (top level, functions, TYPE_CHECKING)."""

    def resolve(dotted: str) -> str | None:
        parts = dotted.split(".")
        while parts:
            if ".".join(parts) in known:
                return ".".join(parts)
            parts.pop()
        return None

    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            subs = [f"{mod}.{a.name}" for a in node.names if resolve(f"{mod}.{a.name}") == f"{mod}.{a.name}"]
            targets = subs if len(subs) == len(node.names) else [mod, *subs]
        else:
            continue
        for t in targets:
            r = resolve(t) if t.startswith("omniret") else None
            if r and r != name:
                out.add(r)
    return out


def _package(module: str, layers: list[set[str]]) -> str:
    """The layer entry a module belongs to: ``omniret.x`` for anything under it, else ``omniret``."""
    parts = module.split(".")
    pkg = ".".join(parts[:2])
    return pkg if any(pkg in layer for layer in layers) else "omniret"


def test_every_package_is_in_the_layer_table() -> None:
    layers = _layers()
    named = set().union(*layers)
    present = {_package(m, [{".".join(m.split(".")[:2])}]) for m in _modules()}
    assert present - named == set(), "add these packages/modules to the layer table of ARCHITECTURE.md"
    assert named - present == set(), "the layer table names packages that do not exist"


def test_no_module_imports_a_higher_layer_or_a_sibling_package() -> None:
    layers = _layers()
    rank = {pkg: i for i, layer in enumerate(layers) for pkg in layer}
    mods = _modules()
    bad = []
    for name, path in sorted(mods.items()):
        src = _package(name, layers)
        for dep in sorted(_imports(name, path, mods)):
            dst = _package(dep, layers)
            if dst != src and rank[dst] >= rank[src]:
                bad.append(f"{name} (layer {rank[src]}) imports {dep} (layer {rank[dst]})")
    assert bad == []


def test_no_import_circles() -> None:
    mods = _modules()
    graph = {name: _imports(name, path, mods) for name, path in mods.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(v: str, stack: list[str]) -> None:
        state[v] = 1
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                cycles.append([*stack[stack.index(w):], w])
            elif w not in state:
                visit(w, [*stack, w])
        state[v] = 2

    for v in sorted(graph):
        if v not in state:
            visit(v, [v])
    assert cycles == []


def test_the_checker_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    """The scan is not fooled by the ways cycles hide (a lazy import in a function, TYPE_CHECKING)."""
    mod = tmp_path / "m.py"
    mod.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from omniret.index import Index\n"
                   "def f():\n    from omniret.cli import main\n")
    known = {"omniret.index": mod, "omniret.cli": mod, "omniret.cli.main": mod, "omniret.items": mod}
    assert _imports("omniret.query.m", mod, known) == {"omniret.index", "omniret.cli.main"}


@pytest.mark.parametrize("allowed", [{"__init__.py", "index.py", "items.py", "errors.py", "threads.py"}])
def test_top_level_holds_only_the_core_modules(allowed: set[str]) -> None:
    top = {p.name for p in SRC.glob("*.py")}
    assert top == allowed
