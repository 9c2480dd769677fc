"""Bounded load test of ``omniret serve`` on loopback: concurrent searches while files are added.

The server runs in its own process (uvicorn, one worker, as ``omniret serve`` runs it); this process
drives ``--clients`` concurrent HTTP clients (asyncio + httpx; each its own client with one keep-alive
connection, as separate users are) for ``--seconds`` doing JSON text searches, plus one writer that
uploads a new image (``POST /items``) every ``--add-every`` seconds.
It prints p50/p90/p99 latency, throughput and error counts as Markdown (and JSON with ``--json``).

    .venv/bin/python bench/load_bench.py --clients 50 --seconds 30            # fake encoder
    .venv/bin/python bench/load_bench.py --model offline --clients 50 --seconds 30
    .venv/bin/python bench/load_bench.py --model offline --batching both --repeats 2   # batching off vs on

``--batching`` turns the server's query micro-batching (``ServerSettings.batch_queries``) on or off;
``both`` runs the two alternately on copies of the same index, for a side-by-side comparison;
``--before-src OLD/src`` adds runs of an older checkout's server (``before``) to the rotation.

``--pool shared`` drives all searchers through one ``httpx.AsyncClient`` and its connection pool
instead. Measured on 2026-12-06: with 50 busy coroutines that pool (httpcore 1.0.9) stalls about half of
them for ~5 s once or twice a run, until the pool opens ~30 fresh connections at once, while the
server's worker threads sit idle (py-spy dumps) — the load generator's tail, not the server's; so
the default gives each simulated user its own client.

``--model fake`` uses the deterministic test encoder (``tests/fakes.py``): it measures the HTTP
layer, the store and the locks, not a neural network. ``--model offline`` runs the built-in model.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "load-bench-token-123"
WORDS = ("cat dog rocket orbit pasta basil river mountain forest owl sea beach car train city night "
         "garden flower red green blue yellow music guitar piano book paper star moon sun rain").split()


def _register_fake() -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from omniret.encoders.registry import EncoderEntry, register

    register(EncoderEntry("fake", "fakes:create", "deterministic test encoder", "fake"))


def _png(rng: np.random.Generator, size: int = 96) -> bytes:
    from PIL import Image

    arr = np.zeros((size, size, 3), dtype=np.uint8)
    arr[:] = rng.integers(0, 255, 3)
    y, x = rng.integers(0, size // 2, 2)
    arr[y:y + size // 3, x:x + size // 3] = rng.integers(0, 255, 3)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def build(folder: Path, model: str, n_images: int, n_notes: int) -> Path:
    """A corpus of generated images and notes, indexed with ``model``; returns the index folder."""
    import omniret

    rng = np.random.default_rng(0)
    corpus = folder / "corpus"
    corpus.mkdir(parents=True)
    for i in range(n_images):
        (corpus / f"img{i:04d}.png").write_bytes(_png(rng))
    for i in range(n_notes):
        words = rng.choice(WORDS, size=60)
        (corpus / f"note{i:04d}.txt").write_text(" ".join(words) + ".\n", encoding="utf-8")
    with omniret.open(str(folder / "idx"), model=model) as idx:
        idx.add(str(corpus), workers=0)
        count = idx.store.count()
    print(f"indexed {count} items with model {model}", file=sys.stderr)
    return folder / "idx"


def serve(index: str, port: int, model: str, batching: bool) -> None:
    from dataclasses import fields

    import uvicorn

    from omniret.server.app import create_app
    from omniret.server.settings import ServerSettings

    if model == "fake":
        _register_fake()
    extra: dict[str, Any] = {}
    if "batch_queries" in {f.name for f in fields(ServerSettings)}:  # absent in a --before-src checkout
        extra["batch_queries"] = batching
    try:  # as `omniret serve` runs; an older checkout (--before-src) may have neither
        from omniret.server import protocol
    except ImportError:
        protocol = None  # type: ignore[assignment]
    http: Any = protocol.header_timeout_protocol() if protocol is not None else "auto"
    keep_alive = {"timeout_keep_alive": protocol.KEEP_ALIVE_S} if hasattr(protocol, "KEEP_ALIVE_S") else {}
    settings = ServerSettings(token=TOKEN, max_upload_bytes=8 << 20, **extra)
    app = create_app(index, settings)
    svc = app.state.service
    if batching:  # report the batch sizes at exit (stderr), to see what the batcher did
        import atexit

        def report() -> None:
            sizes = np.asarray([n for b in getattr(svc.index, "_batchers", {}).values() for n in b.batch_sizes] or [0])
            print(f"batches: {len(sizes)}, mean size {sizes.mean():.1f}, max {sizes.max()}", file=sys.stderr)

        atexit.register(report)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, http=http, **keep_alive)


async def _searcher(client: Any, deadline: float, lat: list[float], errors: list[str], rng: random.Random) -> None:
    while time.perf_counter() < deadline:
        body = {"text": " ".join(rng.sample(WORDS, 3)), "k": 10}
        t0 = time.perf_counter()
        try:
            r = await client.post("/search", json=body)
            if r.status_code != 200:
                errors.append(f"search {r.status_code}: {r.text[:120]}")
            else:
                lat.append(time.perf_counter() - t0)
        except Exception as e:  # a transport error counts as an error, never stops the run
            errors.append(f"search {type(e).__name__}: {e}")


async def _writer(client: Any, deadline: float, every: float, adds: list[float], errors: list[str]) -> None:
    rng = np.random.default_rng(1)
    i = 0
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        files = {"file": (f"added{i:04d}.png", _png(rng), "image/png")}
        try:
            r = await client.post("/items", files=files, headers={"Authorization": f"Bearer {TOKEN}"})
            if r.status_code != 201:
                errors.append(f"add {r.status_code}: {r.text[:120]}")
            else:
                adds.append(time.perf_counter() - t0)
        except Exception as e:
            errors.append(f"add {type(e).__name__}: {e}")
        i += 1
        await asyncio.sleep(max(0.0, min(every - (time.perf_counter() - t0), deadline - time.perf_counter())))


async def drive(url: str, clients: int, seconds: float, add_every: float, pool: str = "per-client") -> dict[str, Any]:
    import contextlib

    import httpx

    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0))
        users = [client] * clients if pool == "shared" else [
            await stack.enter_async_context(httpx.AsyncClient(base_url=url, limits=one, timeout=60.0))
            for _ in range(clients)]
        await client.post("/search", json={"text": "warm up", "k": 10})  # loads the text model
        warm = {"file": ("warmup.png", _png(np.random.default_rng(99)), "image/png")}
        await client.post("/items", files=warm, headers={"Authorization": f"Bearer {TOKEN}"})  # the image model
        lat: list[float] = []
        adds: list[float] = []
        errors: list[str] = []
        t0 = time.perf_counter()
        deadline = t0 + seconds
        tasks = [_searcher(users[i], deadline, lat, errors, random.Random(i)) for i in range(clients)]
        tasks.append(_writer(client, deadline, add_every, adds, errors))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - t0
        health = (await client.get("/healthz")).json()
    ms = np.asarray(lat) * 1000
    pct = {p: float(np.percentile(ms, p)) if len(ms) else float("nan") for p in (50, 90, 99)}
    return {"clients": clients, "seconds": round(wall, 1), "searches": len(lat), "throughput_rps": len(lat) / wall,
            "p50_ms": pct[50], "p90_ms": pct[90], "p99_ms": pct[99], "max_ms": float(ms.max()) if len(ms) else 0,
            "adds": len(adds), "add_p50_ms": float(np.median(adds) * 1000) if adds else float("nan"),
            "errors": len(errors), "error_samples": errors[:5], "items_after": health["items"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server did not come up")


def run_one(index: Path, model: str, config: str, args: argparse.Namespace) -> dict[str, Any]:
    """Start a server on ``index`` (``config``: batching ``on`` or ``off``, or ``before``: the code of
    ``--before-src``), drive the load, stop it; the measured row."""
    port = _free_port()
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    if config == "before":
        env["PYTHONPATH"] = os.pathsep.join([args.before_src, env.get("PYTHONPATH", "")])
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(index), "--port", str(port),
                             "--model", model, "--batching", "off" if config == "before" else config], env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_up(url, proc)
        res = asyncio.run(drive(url, args.clients, args.seconds, args.add_every, args.pool))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    res.update(model=model, batching=config)
    return res


def _row(r: dict[str, Any]) -> str:
    return (f"| {r['model']} | {r['batching']} | {r['clients']} | {r['seconds']} | {r['searches']} | "
            f"{r['throughput_rps']:.1f} | {r['p50_ms']:.0f} | {r['p90_ms']:.0f} | {r['p99_ms']:.0f} | "
            f"{r['p99_ms'] / r['p50_ms']:.1f} | {r['adds']} | {r['add_p50_ms']:.0f} | {r['errors']} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="fake")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--add-every", type=float, default=1.0, help="seconds between uploads")
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--notes", type=int, default=500)
    ap.add_argument("--batching", choices=["on", "off", "both"], default="on",
                    help="query micro-batching in the server; 'both' alternates off and on runs")
    ap.add_argument("--pool", choices=["per-client", "shared"], default="per-client",
                    help="each searcher its own HTTP client (default) or all through one shared pool")
    ap.add_argument("--repeats", type=int, default=1, help="runs of each configuration (alternating)")
    ap.add_argument("--before-src", default=None,
                    help="also run the server from this src folder (a checkout of an older omniret) as 'before'")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.model, args.batching != "off")
        return
    if args.model == "fake":
        _register_fake()
    configs = {"on": ["on"], "off": ["off"], "both": ["off", "on"]}[args.batching]
    if args.before_src:
        configs.insert(0, "before")
    rows = []
    with tempfile.TemporaryDirectory(prefix="omniret-load-") as tmp:
        index = build(Path(tmp), args.model, args.images, args.notes)
        snapshot = Path(tmp) / "snapshot"
        shutil.copytree(index, snapshot)  # every run starts from the same index (uploads add to it)
        for _ in range(args.repeats):
            for config in configs:
                shutil.rmtree(index)
                shutil.copytree(snapshot, index)
                rows.append(run_one(index, args.model, config, args))
                if args.json:
                    print(json.dumps(rows[-1]), flush=True)
    print("| model | batching | clients | s | searches | req/s | p50 ms | p90 ms | p99 ms | p99/p50 | adds | "
          "add p50 ms | errors |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(_row(r))
    for r in rows:
        if r["error_samples"]:
            print(f"errors ({r['batching']}):", *r["error_samples"], sep="\n  ")


if __name__ == "__main__":
    main()
