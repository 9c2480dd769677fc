"""Issue 13.1 end to end with the real offline model: the files the issue names no longer exhaust memory.

Before the fix: ``POST /search`` with a 475-byte 1×100000 PNG drove the process to 19.5 GB (OOM-killed);
a 124-byte 1×10000 PNG to 3.2 GB for 26 s; ``omniret add`` of a 132-byte 1×12000 PNG to 3.5 GB.
Each check runs in a child process and measures its peak RSS (``VmHWM``) before and after; the search
runs with the address space capped so a regression fails with a MemoryError, not the OOM killer.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.slow

#: the growth of peak RSS one request may cause (the offline model itself is ~1 GB, loaded before)
MAX_GROWTH_MB = 300


def _png(path: Path, size: tuple[int, int]) -> Path:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "PNG")
    path.write_bytes(buf.getvalue())
    return path


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "TOKENIZERS_PARALLELISM": "false"}


_SEARCH = textwrap.dedent("""
    import json, resource, sys
    from fastapi.testclient import TestClient
    from omniret.server.app import create_app
    from omniret.server.settings import ServerSettings

    def hwm():
        return next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")) // 1024

    index, files = sys.argv[1], sys.argv[2:]
    out = {}
    with TestClient(create_app(index, ServerSettings()), raise_server_exceptions=False) as c:
        warm = open(files[0], "rb").read()
        assert c.post("/search", files={"file": ("warm.png", warm, "image/png")}).status_code == 200
        vm = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (vm + (3 << 30), resource.RLIM_INFINITY))
        for f in files[1:]:
            before = hwm()
            r = c.post("/search", files={"file": (f.rsplit("/", 1)[-1], open(f, "rb").read(), "image/png")})
            out[f] = {"status": r.status_code, "growth_mb": hwm() - before, "hits": len(r.json().get("hits", []))}
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def offline_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import omniret

    root = tmp_path_factory.mktemp("bounds")
    corpus = root / "corpus"
    corpus.mkdir()
    _png(corpus / "red.png", (64, 64))
    with omniret.open(str(root / "idx"), model="offline", device="cpu") as ix:
        ix.add(str(corpus), workers=0)
    return root / "idx"


def test_tall_thin_png_search_is_bounded(offline_index: Path, tmp_path: Path) -> None:
    files = [_png(tmp_path / "warm.png", (80, 60)), _png(tmp_path / "tall100k.png", (1, 100_000)),
             _png(tmp_path / "tall10k.png", (1, 10_000)), _png(tmp_path / "wide100k.png", (100_000, 1))]
    assert (tmp_path / "tall100k.png").stat().st_size < 600  # the 476-byte kind of file
    proc = subprocess.run([sys.executable, "-c", _SEARCH, str(offline_index), *map(str, files)],
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    for f, r in res.items():
        assert r["status"] == 200 and r["hits"] == 1, (f, r)
        assert r["growth_mb"] < MAX_GROWTH_MB, (f, r)


_ADD = textwrap.dedent("""
    import atexit, sys
    from omniret.cli.main import main

    def peak():
        mb = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")) // 1024
        print("PEAK_MB", mb, file=sys.stderr)

    atexit.register(peak)
    sys.argv = ["omniret", *sys.argv[1:]]
    main()
""")


def test_tall_thin_png_add_is_bounded(offline_index: Path, tmp_path: Path) -> None:
    """``omniret add`` of a 1×12000 PNG peaks like the same command on an ordinary image."""
    import shutil

    import omniret

    index = tmp_path / "idx"
    shutil.copytree(offline_index, index)
    peaks = []
    for f in (_png(tmp_path / "small.png", (120, 90)), _png(tmp_path / "tall12k.png", (1, 12_000))):
        proc = subprocess.run([sys.executable, "-c", _ADD, "--index", str(index), "-q", "add", "--workers", "0",
                               str(f)], capture_output=True, text=True, env=_env(), timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        peaks.append(int(proc.stderr.rsplit("PEAK_MB", 1)[1].split()[0]))
    with omniret.open(str(index)) as ix:
        assert ix.store.count() == 3  # red.png, small.png and the 1×12000 strip, all indexed
    assert peaks[1] - peaks[0] < MAX_GROWTH_MB, peaks
