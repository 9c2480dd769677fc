"""``omniret daemon`` (issue 14.2): searches answered by a resident process give what an in-process
search gives, bad queries fail the same way, and the CLI falls back to itself whenever no daemon (or a
stale one) answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from omniret.cli import daemon
from omniret.cli.main import cli
from omniret.index import Index


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Sockets under this test's own temp folder."""
    base = tmp_path / "sock"
    base.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    return base


@pytest.fixture
def served(tmp_path: Path, corpus: Path, private_tmp: Path) -> Iterator[tuple[str, Index, threading.Thread]]:
    path = str(tmp_path / "idx")
    idx = Index.open(path, model="fake")
    idx.add(str(corpus), workers=0)
    listening = threading.Event()
    th = threading.Thread(target=daemon.serve, args=(Index.open(path), path, 60.0, lambda p: listening.set()),
                          daemon=True)
    th.start()
    assert listening.wait(30)
    yield path, idx, th
    daemon.stop(path)
    th.join(10)
    idx.close()


def _search(path: str, *args: str) -> tuple[int, list[dict]]:
    res = CliRunner().invoke(cli, ["--index", path, "--json", "search", *args])
    return res.exit_code, [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]


def test_the_daemon_answers_as_the_index_does(served, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, idx, _ = served
    answers: list = []
    real = daemon.remote_search
    monkeypatch.setattr(daemon, "remote_search", lambda i, kw: answers.append(real(i, kw)) or answers[-1])
    code, hits = _search(path, "a cat likes to sleep", "-k", "5")
    assert code == 0 and len(answers) == 1 and answers[0] is not None  # the daemon answered
    want = idx.search("a cat likes to sleep", k=5)
    assert [(h["id"], h["score"]) for h in hits] == [(h.id, h.score) for h in want]
    assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
    # relative paths mean what they mean in the client's folder
    monkeypatch.chdir(corpus)
    code, hits = _search(path, "--image", "red.png", "-k", "1")
    assert code == 0 and hits[0]["uri"].endswith("red.png")
    code, hits = _search(path, "rocket", "--glob", "*/sub/*", "--modality", "text", "-k", "3")
    assert code == 0 and hits and all("/sub/" in h["uri"] for h in hits)


def test_a_bad_query_fails_as_in_process(served) -> None:
    path, _, _ = served
    res = CliRunner().invoke(cli, ["--index", path, "search", "x", "--hubness", "qbnorm"])
    assert res.exit_code == 2 and "query bank" in res.output
    local = CliRunner().invoke(cli, ["--index", path, "--no-daemon", "search", "x", "--hubness", "qbnorm"])
    assert local.exit_code == 2 and local.output == res.output


def test_commits_by_others_are_seen(served, tmp_path: Path) -> None:
    path, idx, _ = served
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "zebra.txt").write_text("A zebra has black and white stripes.")
    idx.add(str(tmp_path / "new"), workers=0)
    code, hits = _search(path, "a zebra with stripes", "-k", "1")
    assert code == 0 and hits[0]["uri"].endswith("zebra.txt")


def test_a_model_change_sends_the_client_back_and_stops_the_daemon(served, monkeypatch) -> None:
    path, idx, th = served
    idx.store.set_manifest({**idx.store.manifest(), "note": "changed"})
    assert daemon.remote_search(path, {"text": "cat", "k": 3}) is None  # fallback: the client searches itself
    th.join(10)
    assert not th.is_alive() and not daemon.socket_path(path).exists()
    code, hits = _search(path, "cat", "-k", "3")  # in-process now
    assert code == 0 and len(hits) == 3


def test_no_daemon_no_problem(tmp_path: Path, corpus: Path, private_tmp: Path) -> None:
    path = str(tmp_path / "idx")
    Index.open(path, model="fake").add(str(corpus), workers=0)
    sock = daemon.socket_path(path)
    sock.parent.mkdir(mode=0o700)
    sock.write_text("")  # a socket file left by a daemon that was killed
    assert daemon.remote_search(path, {"text": "cat"}) is None
    code, hits = _search(path, "cat", "-k", "2")
    assert code == 0 and len(hits) == 2


def test_a_shared_socket_folder_is_refused(tmp_path: Path, private_tmp: Path) -> None:
    folder = daemon.socket_path(str(tmp_path)).parent
    folder.mkdir(mode=0o777)
    os.chmod(folder, 0o777)
    assert daemon.remote_search(str(tmp_path), {"text": "cat"}) is None
    with pytest.raises(Exception, match="private"):
        daemon.serve(object(), str(tmp_path), 1.0)


def test_idle_daemon_exits(tmp_path: Path, corpus: Path, private_tmp: Path) -> None:
    path = str(tmp_path / "idx")
    Index.open(path, model="fake").add(str(corpus), workers=0)
    th = threading.Thread(target=daemon.serve, args=(Index.open(path), path, 1.0), daemon=True)
    th.start()
    th.join(20)
    assert not th.is_alive() and not daemon.socket_path(path).exists()


@pytest.mark.slow
def test_detached_daemon_with_the_offline_model(tmp_path: Path) -> None:
    """The real thing: `omniret daemon --detach`, then a search whose process loads neither numpy nor
    the model, with the hits of an in-process search."""
    from omniret.cli.demo import write_samples

    samples, index = tmp_path / "samples", tmp_path / "idx"
    write_samples(samples)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
           "TMPDIR": str(tmp_path)}
    omniret = [sys.executable, "-m", "omniret.cli.main", "--index", str(index)]
    subprocess.run([*omniret, "-q", "add", str(samples), "--model", "offline"], check=True, env=env, timeout=1800)
    subprocess.run([*omniret, "daemon", "--detach", "--idle", "900"], check=True, env=env, timeout=1800)
    try:
        probe = ("import json, sys\nfrom omniret.cli.main import cli\n"
                 f"sys.argv = ['omniret', '--index', {str(index)!r}, '--json', 'search', 'a cat', '-k', '5']\n"
                 "try:\n    cli(prog_name='omniret')\nexcept SystemExit:\n    pass\n"
                 "print(json.dumps(sorted(m for m in ('numpy', 'onnxruntime', 'torch') if m in sys.modules)))\n")
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=1500)
        lines = out.stdout.splitlines()
        assert json.loads(lines[-1]) == [], out.stderr
        remote = [json.loads(line) for line in lines[:-1]]
        local = subprocess.run([*omniret, "--no-daemon", "--json", "search", "a cat", "-k", "5"], env=env,
                               capture_output=True, text=True, timeout=1500, check=True).stdout.splitlines()
        assert [(h["id"], round(h["score"], 5)) for h in remote] == \
               [(h["id"], round(h["score"], 5)) for h in map(json.loads, local)]
    finally:
        subprocess.run([*omniret, "daemon", "--stop"], env=env, timeout=60)


def test_the_daemon_says_why_a_search_found_nothing(tmp_path: Path, corpus: Path, private_tmp: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The notes of an in-process search come through the daemon too: items stored without embeddings
    (a sound in an index without an audio model) and a query in a language an English-only model does
    not read."""
    import numpy as np
    import soundfile as sf

    folder = tmp_path / "files"
    folder.mkdir()

    sf.write(folder / "hum.wav", np.sin(np.linspace(0, 2000, 16000)).astype("float32"), 16000)
    path = str(tmp_path / "idx")
    with Index.open(path, model="fake") as idx:
        idx.add(str(folder), workers=0)
        local = CliRunner().invoke(cli, ["--index", path, "--no-daemon", "search", "a humming sound"])
    assert local.exit_code == 0 and "no results" in local.output and "stored without embeddings" in local.output
    listening = threading.Event()
    th = threading.Thread(target=daemon.serve, args=(Index.open(path), path, 60.0, lambda p: listening.set()),
                          daemon=True)
    th.start()
    assert listening.wait(30)
    try:
        answers: list = []
        real = daemon.remote_search
        monkeypatch.setattr(daemon, "remote_search", lambda i, kw: answers.append(real(i, kw)) or answers[-1])
        res = CliRunner().invoke(cli, ["--index", path, "search", "a humming sound"])
        assert answers and answers[0] is not None  # the daemon answered
        assert res.exit_code == 0 and res.output == local.output
    finally:
        daemon.stop(path)
        th.join(10)
