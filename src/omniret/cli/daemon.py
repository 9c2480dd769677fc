"""``omniret daemon``: a resident query process that ``omniret search`` uses while it runs.

It keeps one index open — its query towers (or model) loaded, its FAISS index built — and answers
searches over a unix socket, so a search from the command line costs a Python start and a round trip.
``omniret search`` tries the socket first (a connect that fails costs microseconds) and searches in
its own process when no daemon answers, so the daemon is never needed for correct results.

- Socket: ``<tempdir>/omniret-<uid>/<hash of the index's absolute path>.sock``, in a folder only this
  user may enter (mode 0700, checked): other users cannot query the index through it, and the path
  stays short whatever the index folder (unix socket paths are limited to ~100 bytes).
- Protocol: one JSON line each way per connection. Request ``{"v": 1, "cwd": ..., "search": {...}}``
  (the keyword arguments of :meth:`omniret.index.Index.search`; the daemon runs it in the client's
  working directory, so relative paths and globs mean the same) or ``{"v": 1, "stop": true}``. Reply
  ``{"hits": [Hit.to_dict(), ...]}``, ``{"error": message}`` for a bad query (the client prints it
  and exits 2, as in-process) or ``{"fallback": reason}`` (the client searches itself).
- Lifetime: exits after ``idle`` seconds without a request, on ``omniret daemon --stop``, on SIGTERM,
  and when the index's manifest changes (another model, an upgrade): the request that notices it is
  answered ``fallback``. Commits by other processes (``omniret add``) are seen by the next search
  (the store watches SQLite's ``data_version``).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from omniret.errors import OmniretError

PROTOCOL = 1
CONNECT_TIMEOUT = 0.5
REPLY_TIMEOUT = 300.0
DEFAULT_IDLE = 600.0


def socket_path(index: str) -> Path:
    """Where the daemon of ``index`` listens (see the module docstring)."""
    key = hashlib.sha256(os.path.abspath(index).encode("utf-8")).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"omniret-{os.getuid()}" / f"{key}.sock"


def _private_dir(folder: Path, create: bool) -> bool:
    """Whether ``folder`` is this user's and closed to others (made so when ``create``)."""
    if create:
        folder.mkdir(mode=0o700, exist_ok=True)
    try:
        st = folder.lstat()
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def _exchange(path: Path, request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    """Send one request; the reply, or None when nothing answers at ``path``."""
    if not path.exists() or not _private_dir(path.parent, create=False):
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(str(path))
        except OSError:
            return None  # a socket file left by a daemon that died
        sock.settimeout(timeout)
        sock.sendall(json.dumps(request).encode("utf-8") + b"\n")
        with sock.makefile("rb") as f:
            line = f.readline()
    try:
        reply = json.loads(line)
    except ValueError:
        return None
    return reply if isinstance(reply, dict) else None


def remote_search(index: str, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The daemon's answer — ``hits`` (as dicts), ``notes`` (why an empty search found nothing) and
    ``language_note`` — or None when none answers (search in-process then). Raises
    :class:`OmniretError` for a query the daemon refused as bad."""
    try:
        reply = _exchange(socket_path(index), {"v": PROTOCOL, "cwd": os.getcwd(), "search": kwargs}, REPLY_TIMEOUT)
    except OSError:
        return None
    if reply is None or "fallback" in reply:
        return None
    if "error" in reply:
        raise OmniretError(str(reply["error"]))
    if not isinstance(reply.get("hits"), list):
        return None
    return {"hits": reply["hits"], "notes": [str(n) for n in reply.get("notes") or []],
            "language_note": reply.get("language_note")}


def stop(index: str) -> bool:
    """Ask the index's daemon to exit; whether one answered."""
    try:
        return _exchange(socket_path(index), {"v": PROTOCOL, "stop": True}, 10.0) is not None
    except OSError:
        return False


def serve(idx: Any, index: str, idle: float = DEFAULT_IDLE, ready: Any = None) -> None:
    """Answer searches for ``idx`` until ``idle`` seconds pass without one (see the module docstring).
    ``ready(path)`` is called once the socket listens."""
    path = socket_path(index)
    if not _private_dir(path.parent, create=True):
        raise OmniretError(f"{path.parent} is not a private folder of this user; remove it or set TMPDIR")
    if _exchange(path, {"v": PROTOCOL, "ping": True}, 5.0) is not None:
        raise OmniretError(f"a daemon already serves {index}; stop it with `omniret --index {index} daemon --stop`")
    manifest = idx.store.manifest()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
        path.unlink(missing_ok=True)
        srv.bind(str(path))
        srv.listen(16)
        srv.settimeout(min(idle, 5.0))
        if ready is not None:
            ready(path)
        last = time.monotonic()
        try:
            while time.monotonic() - last < idle:
                try:
                    conn, _ = srv.accept()
                except TimeoutError:
                    continue
                last = time.monotonic()
                with conn:
                    if not _answer(conn, idx, manifest):
                        break
        finally:
            path.unlink(missing_ok=True)


def _answer(conn: socket.socket, idx: Any, manifest: Any) -> bool:
    """Serve one connection; False when the daemon should exit."""
    conn.settimeout(30.0)
    with conn.makefile("rb") as f:
        line = f.readline()
    try:
        req = json.loads(line)
    except ValueError:
        return True
    if not isinstance(req, dict) or req.get("v") != PROTOCOL:
        reply, go_on = {"fallback": f"protocol {PROTOCOL} expected"}, True
    elif req.get("stop"):
        reply, go_on = {"stopped": True}, False
    elif req.get("ping"):
        reply, go_on = {"pong": True}, True
    elif idx.store.manifest() != manifest:
        reply, go_on = {"fallback": "the index changed model; restart the daemon"}, False
    else:
        reply, go_on = _search(idx, req), True
    conn.sendall(json.dumps(reply, default=str).encode("utf-8") + b"\n")
    return go_on


def _search(idx: Any, req: dict[str, Any]) -> dict[str, Any]:
    cwd = os.getcwd()
    try:
        os.chdir(req.get("cwd") or cwd)
        kwargs = dict(req.get("search") or {})
        hits = idx.search(**kwargs)
        text = kwargs.get("text")
        return {"hits": [h.to_dict() for h in hits], "notes": [] if hits else idx.unembedded_notes(),
                "language_note": idx.language_note(text) if isinstance(text, str) and text else None}
    except OmniretError as e:
        return {"error": str(e)}
    except Exception as e:  # a bug or a broken index: the client searches itself and shows the real error
        return {"fallback": f"{type(e).__name__}: {e}"}
    finally:
        os.chdir(cwd)


def start_detached(s: Any, idle: float, wait: float = 900.0) -> Path:
    """Start ``omniret daemon`` for ``s.index`` in a new session (it outlives this process) and return
    its socket once it answers. Its log goes to ``daemon.log`` beside the socket."""
    import subprocess
    import sys

    path = socket_path(s.index)
    _private_dir(path.parent, create=True)
    args = [sys.executable, "-m", "omniret.cli.main", "--index", os.path.abspath(s.index), "-q", "daemon",
            "--idle", str(idle)]
    if s.device:
        args[3:3] = ["--device", s.device]
    if not s.query_cache:
        args.insert(3, "--no-query-cache")
    with open(path.with_suffix(".log"), "ab") as log:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if _exchange(path, {"v": PROTOCOL, "ping": True}, 5.0) is not None:
            return path
        if proc.poll() is not None:
            raise OmniretError(f"the daemon exited with code {proc.returncode}; see {path.with_suffix('.log')}")
        time.sleep(0.1)
    raise OmniretError(f"the daemon did not answer within {wait:g} s; see {path.with_suffix('.log')}")
