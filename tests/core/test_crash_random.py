"""Issue 13: a randomized crash test. At least 50 SIGKILLs at random moments across ``add``, ``remove`` and
uploads to a running ``omniret serve``; after every kill the index must be intact, hold every committed
file exactly once with no orphan items or vectors, and at the end ``omniret check`` is clean, FAISS agrees
with the database after a reopen, and a re-run of ``add`` completes the job.

Starting a fresh Python for each of 50+ runs would cost most of the time budget in imports, so a *zygote*
subprocess imports omniret (and the server) once and forks one child per run; each child runs the real
code (``Index.add``, ``Index.remove``, the ``omniret serve`` command) and is killed with SIGKILL by this
test. The zygote never touches SQLite or FAISS itself, so every child starts clean.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import omniret
from omniret.tasks.check import check_index

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")]

TOKEN = "crash-test-token-0123456789"
KILLS = 52

ZYGOTE = r"""
import json, os, random, sys
sys.path.insert(0, {tests!r})
from omniret.encoders.registry import EncoderEntry, register
register(EncoderEntry("fake", "fakes:create", "test", "fake"))
import omniret, omniret.index, omniret.store.embedded, omniret.server.app, omniret.cli.main, uvicorn  # noqa: preload

def child(cmd):
    if cmd["op"] == "add":
        with omniret.open(cmd["index"], model="fake") as idx:
            idx.add(cmd["corpus"], workers=0, commit_every=2, batch_size=2)
    elif cmd["op"] == "remove":
        with omniret.open(cmd["index"]) as idx:
            for path in cmd["paths"]:
                idx.remove([path])
    elif cmd["op"] == "serve":
        sys.argv = ["omniret", "--index", cmd["index"], "serve", "--token", {token!r}, "--port", str(cmd["port"]),
                    "--log-level", "error"]
        omniret.cli.main.main()

print("ready", flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "wait":
        _, status = os.waitpid(cmd["pid"], 0)
        print(json.dumps({{"killed": os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9}}), flush=True)
        continue
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            sys.stdin.close()
            child(cmd)
        except BaseException as e:
            print("child error:", type(e).__name__, e, file=sys.stderr, flush=True)
            code = 1
        os._exit(code)
    print(json.dumps({{"pid": pid}}), flush=True)
"""


class Zygote:
    def __init__(self, tests: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE.format(tests=str(tests), token=TOKEN)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def ask(self, cmd: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def start(self, **cmd: Any) -> int:
        self.running = int(self.ask(cmd)["pid"])
        return self.running

    def kill(self, pid: int) -> bool:
        """SIGKILL ``pid``; True when the kill landed while it was still running."""
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return bool(self.ask({"op": "wait", "pid": pid})["killed"])

    running = 0

    def close(self) -> None:
        if self.running:  # a child left by a failing round
            try:
                os.kill(self.running, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.kill()
        self.proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def upload_loop(port: int, tag: str, acked: dict[str, str], stop: threading.Event) -> None:
    """POST one unique text file after another until the server dies; record the acknowledged ones."""
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        for i in range(1000):
            if stop.is_set():
                return
            text = f"upload {tag} number {i} zebra{tag}x{i}"
            try:
                r = client.post("/items", headers={"Authorization": f"Bearer {TOKEN}"},
                                files={"file": (f"up-{tag}-{i}.txt", text.encode(), "text/plain")})
            except httpx.HTTPError:
                return  # the server was killed mid-request: this upload is not acknowledged
            if r.status_code != 201:
                return
            acked[text] = r.json()["ids"][0]


def check_invariants(index: str, acked: dict[str, str]) -> None:
    """Intact database; every file exactly once; no orphans; every acknowledged upload present once."""
    conn = sqlite3.connect(f"file:{index}/omniret.db?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        dup = conn.execute("SELECT uri, count(*) FROM items WHERE parent_id IS NULL GROUP BY uri "
                           "HAVING count(*) > 1").fetchall()
        assert not dup, f"files indexed more than once: {dup[:3]}"
        assert not conn.execute("SELECT count(*) FROM vectors v LEFT JOIN items i ON i.id = v.item "
                                "WHERE i.id IS NULL").fetchone()[0], "vectors without an item"
        assert not conn.execute("SELECT count(*) FROM items c LEFT JOIN items p ON p.id = c.parent_id "
                                "WHERE c.parent_id IS NOT NULL AND p.id IS NULL").fetchone()[0], "orphan chunks"
        assert not conn.execute("SELECT count(*) FROM items i WHERE i.parent_id IS NOT NULL AND NOT EXISTS "
                                "(SELECT 1 FROM vectors v WHERE v.item = i.id)").fetchone()[0], "chunk without vector"
        assert not conn.execute("SELECT count(*) FROM sources s WHERE s.error IS NULL AND NOT EXISTS "
                                "(SELECT 1 FROM items i WHERE i.uri = s.uri)").fetchone()[0], "state without items"
        assert not conn.execute("SELECT count(*) FROM items i WHERE i.parent_id IS NULL AND NOT EXISTS "
                                "(SELECT 1 FROM sources s WHERE s.uri = i.uri)").fetchone()[0], "items without state"
        for text, item_id in acked.items():
            n = conn.execute("SELECT count(*) FROM items WHERE text = ?", (text,)).fetchone()[0]
            assert n == 1, f"acknowledged upload {text!r} is there {n} times"
            assert conn.execute("SELECT count(*) FROM items WHERE id = ?", (item_id,)).fetchone()[0] == 1
    finally:
        conn.close()


def test_random_sigkills_across_add_remove_and_uploads(tmp_path: Path) -> None:
    rng = random.Random(13)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    files = []
    for i in range(40):
        p = corpus / f"note{i:02d}.txt"
        p.write_text(f"note {i} about subject {i % 7}: " + " ".join(f"w{i}x{j}" for j in range(30)), encoding="utf-8")
        files.append(str(p))
    index = str(tmp_path / "idx")
    with omniret.open(index, model="fake") as idx:  # the index exists before the server first starts
        idx.add(files[:2], workers=0)
    env = {**os.environ, "OMNIRET_FAKE_DELAY": "0.04", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    zygote = Zygote(Path(__file__).resolve().parents[1], env)
    acked: dict[str, str] = {}
    kills = {"add": 0, "remove": 0, "upload": 0}
    # the longest random delay before each operation's kill; shrunk after a run that finished before its kill
    # and grown after one caught mid-run, so the kills land on a fast machine (where a remove of 12 files or an
    # add with little left to do takes a fraction of a second) as on a slow one
    window = {"add": 1.2, "remove": 1.2, "upload": 1.5}
    try:
        for round_ in range(400):
            if sum(kills.values()) >= KILLS and min(kills.values()) >= 10:
                break
            # always in turn: each remove leaves files for the next add to index again (an add run again and
            # again with nothing to do finishes at once on a fast machine and is never caught mid-run)
            op = ("add", "remove", "upload")[round_ % 3]
            if op == "upload":
                port = free_port()
                pid = zygote.start(op="serve", index=index, port=port)
                if not wait_for_port(port):
                    zygote.kill(pid)
                    pytest.fail("omniret serve did not start")
                stop = threading.Event()
                t = threading.Thread(target=upload_loop, args=(port, str(round_), acked, stop), daemon=True)
                t.start()
                time.sleep(rng.uniform(0.1, window[op]))
                killed = zygote.kill(pid)
                stop.set()
                t.join(30)
            else:
                cmd = ({"op": "add", "index": index, "corpus": str(corpus)} if op == "add" else
                       {"op": "remove", "index": index, "paths": rng.sample(files, 12)})
                pid = zygote.start(**cmd)
                time.sleep(rng.uniform(0.0, window[op]))
                killed = zygote.kill(pid)
            kills[op] += killed
            window[op] = min(window[op] * 1.1, 2.0) if killed else max(window[op] * 0.7, 0.02)
            check_invariants(index, acked)
    finally:
        zygote.close()
    print(f"SIGKILLs that landed mid-run: {kills} in {round_ + 1} runs; {len(acked)} uploads acknowledged")
    assert sum(kills.values()) >= KILLS and min(kills.values()) >= 10, kills
    assert acked, "no upload was ever acknowledged"
    assert check_index(index) == [], "omniret check found problems"
    with omniret.open(index) as idx:  # FAISS after reopen agrees with the database, and add finishes the job
        assert idx.check() == []
        idx.add(str(corpus), workers=0)
        n_files = len({it.uri for it in idx.store.iter_items() if it.parent_id is None})
        assert n_files >= len(files) + len(acked)  # (an upload killed after its commit is there, unacknowledged)
        for path in files:
            hits = idx.search(Path(path).read_text(encoding="utf-8"), k=1)
            assert hits[0].uri == path
        for text, item_id in acked.items():
            hit = idx.search(text, k=1)[0]
            assert idx.get(item_id) is not None and item_id in (hit.id, hit.parent_id)
    check_invariants(index, acked)
    assert check_index(index) == []
