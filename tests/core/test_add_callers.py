"""``add`` from every kind of caller (issue 14.1): a script without an ``if __name__ == "__main__":``
guard, ``python -`` (stdin), ``python -c``, a thread inside such a script, and an interactive session.

Each runs in its own interpreter with a timeout, as a user would run it. Decoding used to happen in
``spawn`` worker processes, which re-import ``__main__``: the guard-less script re-ran itself in every
worker (endless tracebacks) and stdin's ``<stdin>`` could not be re-imported at all (a hang).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import make_image

TESTS = Path(__file__).resolve().parents[1]
N_FILES = 9  # enough that add starts decode threads (>= 2 per worker)

#: the README's snippet, with the test encoder registered first; no main guard
SNIPPET = """\
import sys
sys.path.insert(0, {tests!r})
from omniret.encoders.registry import EncoderEntry, register
register(EncoderEntry("fake", "fakes:create", "deterministic test encoder", "fake"))
import omniret

idx = omniret.open({index!r}, model={model!r})
report = idx.add([{folder!r}], workers={workers})
print("RESULT", report.new, report.items, len(report.failed), flush=True)
"""

#: the same work from a thread started by a guard-less script
THREADED = """\
import threading
out = []
def work():
{body}
    out.append(report)
t = threading.Thread(target=work)
t.start()
t.join()
print("THREAD", len(out), flush=True)
"""


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(N_FILES):
        make_image(folder / f"p{i}.{'png' if i % 2 else 'jpg'}", (20 * i, 255 - 20 * i, 90), stripe=i % 3 == 0)
    return folder


def _run(args: list[str], tmp_path: Path, stdin: str | None = None, timeout: float = 900) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "bootstrapping phase" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.stdout


def _snippet(tmp_path: Path, photos: Path, *, workers: str = "None", model: str = "fake") -> str:
    return SNIPPET.format(tests=str(TESTS), index=str(tmp_path / "idx"), model=model, folder=str(photos),
                          workers=workers)


def _check(out: str, n: int = N_FILES) -> None:
    assert f"RESULT {n} {n} 0" in out, out


@pytest.mark.parametrize("workers", ["None", "2"])
def test_script_without_main_guard(tmp_path: Path, photos: Path, workers: str) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(_snippet(tmp_path, photos, workers=workers))
    _check(_run([sys.executable, str(script)], tmp_path))


def test_stdin(tmp_path: Path, photos: Path) -> None:
    _check(_run([sys.executable, "-"], tmp_path, stdin=_snippet(tmp_path, photos, workers="2")))


def test_dash_c(tmp_path: Path, photos: Path) -> None:
    _check(_run([sys.executable, "-c", _snippet(tmp_path, photos, workers="2")], tmp_path))


def test_thread_inside_a_guardless_script(tmp_path: Path, photos: Path) -> None:
    body = "\n".join("    " + line for line in _snippet(tmp_path, photos, workers="2").splitlines())
    script = tmp_path / "threaded.py"
    script.write_text(THREADED.format(body=body))
    out = _run([sys.executable, str(script)], tmp_path)
    _check(out)
    assert "THREAD 1" in out


def test_interactive_session(tmp_path: Path, photos: Path) -> None:
    """``python -i`` reading from a pipe: the REPL's ``__main__``, as in a notebook, has no file."""
    out = _run([sys.executable, "-i", "-q"], tmp_path, stdin=_snippet(tmp_path, photos, workers="2"))
    _check(out)


@pytest.mark.slow
def test_readme_snippet_with_the_offline_model(tmp_path: Path) -> None:
    """The README's Python example as a user saves it (no guard), on real photos with the real model."""
    from omniret.cli.demo import write_samples

    samples = tmp_path / "samples"
    write_samples(samples)
    n = sum(1 for p in samples.rglob("*") if p.is_file())
    script = tmp_path / "readme.py"
    script.write_text(_snippet(tmp_path, samples, model="offline"))
    out = _run([sys.executable, str(script)], tmp_path, timeout=1800)
    assert f"RESULT {n} " in out and out.strip().endswith(" 0"), out
