"""``omniret mcp`` end to end with the official SDK's client: stdio (the server as a subprocess started
by the client) and streamable HTTP (uvicorn in a thread, bearer token, Host check)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from agentkit import COLOURS
from PIL import Image

mcp = pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters, stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.shared._httpx_utils import create_mcp_http_client  # noqa: E402

HERE = Path(__file__).resolve().parent
TOOLS = {"search", "get_item", "open_item", "add", "classify", "info"}


def _png(rgb: tuple[int, int, int]) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), rgb).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


async def _call(s: ClientSession, tool: str, **args: Any) -> tuple[Any, list[Any]]:
    r = await s.call_tool(tool, args)
    assert not r.is_error, r.content[0].text
    return json.loads(r.content[0].text), r.content[1:]


async def _error(s: ClientSession, tool: str, **args: Any) -> str:
    r = await s.call_tool(tool, args)
    assert r.is_error
    return str(r.content[0].text)


async def exercise(s: ClientSession, base: Path, note: str) -> None:
    """What an agent does: every tool, with hits' pointers and thumbnails."""
    await s.initialize()
    assert {t.name for t in (await s.list_tools()).tools} == TOOLS
    info, _ = await _call(s, "info")
    assert info["model"] == "fake" and info["writes"] is True and "fake-clap-32" in info["spaces"]
    assert str(base) not in json.dumps(info)  # no server paths

    data, extra = await _call(s, "search", query="rocket launch satellites", k=3, modality=["text"])
    assert data["hits"][0]["uri"].endswith("rockets.md") and not data["hits"][0]["uri"].startswith("/")
    assert extra == []  # text hits have no picture

    data, extra = await _call(s, "search", image_base64=_png(COLOURS["red"]), k=2, modality=["image"])
    assert data["hits"][0]["uri"].endswith("red.png")
    images = [c for c in extra if c.type == "image"]
    assert images and images[0].mime_type == "image/jpeg"
    thumb = Image.open(io.BytesIO(base64.b64decode(images[0].data)))
    assert thumb.format == "JPEG" and abs(thumb.getpixel((5, 5))[0] - 220) < 30  # the red picture

    data, _ = await _call(s, "search", query="but green", image_base64=_png(COLOURS["red"]), compose="weimo", k=2,
                          thumbnails=False)
    assert len(data["hits"]) == 2
    data, _ = await _call(s, "search", query="300 hz hum", k=3, modality=["audio"])
    windows = [h for h in data["hits"] if h["parent_id"] is not None]
    assert windows and {"start", "end"} <= set(windows[0]["timestamp"]) and "@" in windows[0]["label"]
    data, extra = await _call(s, "search", query="LaTeX news issue", k=5, modality=["document"], where={"page": 1})
    page = data["hits"][0]
    assert page["page"] == 1 and page["uri"].endswith("news.pdf")
    blocks = await _call(s, "search", query="never existed", k=20, modality=["document"], path_glob="*news.pdf")
    bbox = blocks[0]["hits"][0]["bbox"]  # the matched block on its page, as fractions of the page
    assert len(bbox) == 4 and all(0.0 <= v <= 1.0 for v in bbox) and bbox[0] < bbox[2] and bbox[1] < bbox[3]

    item, _ = await _call(s, "get_item", id=page["id"])
    assert item["id"] == page["id"] and item["page"] == 1
    red = (await _call(s, "search", image_base64=_png(COLOURS["red"]), k=1, thumbnails=False))[0]["hits"][0]
    item, pics = await _call(s, "get_item", id=red["id"])
    assert item["uri"].endswith("red.png") and [c.type for c in pics] == ["text", "image"]
    parent = next(h for h in (await _call(s, "search", query="pasta tomato", k=5))[0]["hits"]
                  if h["uri"].endswith("cooking.txt"))
    opened, _ = await _call(s, "open_item", id=parent["parent_id"] or parent["id"])
    assert "salted water" in opened["text"] and opened["truncated"] is False
    assert "no item with id" in await _error(s, "get_item", id="nope")

    (base / "inbox" / note).write_text("A cat sleeps in the sun on the windowsill.")
    added, _ = await _call(s, "add", paths=[str(base / "inbox")])
    assert added["new"] == 1 and added["failed"] == []
    data, _ = await _call(s, "search", query="cat sleeps windowsill", k=4, modality=["text"])
    assert any(h["uri"].endswith(note) for h in data["hits"][:2]), data  # (the other transport's note ties)
    assert "outside the server's allowed roots" in await _error(s, "add", paths=["/etc"])
    classified, _ = await _call(s, "classify", labels=["red", "blue", "green"], modality=["image"])
    assert len(classified["results"]) == 3
    assert "give a query" in await _error(s, "search", k=3)


def _env() -> dict[str, str]:
    return {"PYTHONPATH": os.environ.get("PYTHONPATH", ""), "OMNIRET_TORCH_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false"}


def test_stdio_end_to_end(agent_index: tuple[Path, Path]) -> None:
    idx, base = agent_index
    params = StdioServerParameters(command=sys.executable, env=_env(),
                                   args=[str(HERE / "mcp_launcher.py"), "--index", str(idx), "mcp",
                                         "--root", str(base / "inbox")])

    async def main() -> None:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
            await exercise(s, base, "cats-stdio.txt")

    asyncio.run(asyncio.wait_for(main(), timeout=600))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_streamable_http_end_to_end(agent_index: tuple[Path, Path], tmp_path: Path) -> None:
    import uvicorn

    import omniret
    from omniret.mcp.server import build_server, http_app
    from omniret.mcp.tools import Tools
    from omniret.server.service import Service
    from omniret.server.settings import ServerSettings

    idx_path, base = agent_index
    settings = ServerSettings.from_options(roots=[str(base / "inbox")], bind="127.0.0.1")
    svc = Service(omniret.open(str(idx_path)), settings, owns_index=True)
    token = "s3cret-token-for-tests"
    app = http_app(build_server(Tools(svc)), host="127.0.0.1", token=token, allowed_hosts=settings.allowed_hosts)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        import httpx

        assert httpx.post(url, json={}).status_code == 401  # no token
        bad_host = httpx.post(url, json={}, headers={"Host": "evil.example", "Authorization": f"Bearer {token}"})
        assert bad_host.status_code == 400  # DNS rebinding: not a loopback name

        async def main() -> None:
            client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
            async with client, streamable_http_client(url, http_client=client) as (read, write), \
                    ClientSession(read, write) as s:
                await exercise(s, base, "cats-http.txt")

        asyncio.run(asyncio.wait_for(main(), timeout=600))
    finally:
        server.should_exit = True
        thread.join(30)
        svc.close()


def test_cli_http_transport_reaches_uvicorn(agent_index: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """``omniret mcp --transport http`` as typed: the command builds its app and hands it to uvicorn on
    the asked address (a non-loopback bind warns)."""
    import uvicorn
    from click.testing import CliRunner

    from omniret.cli.main import cli

    idx, base = agent_index
    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: seen.update(app=app, host=host, port=port))
    res = CliRunner().invoke(cli, ["--index", str(idx), "mcp", "--transport", "http", "--host", "0.0.0.0",
                                   "--port", "8765", "--token", "s3cret-token-for-tests", "--allow-host", "*",
                                   "--root", str(base / "inbox")])
    assert res.exit_code == 0, res.output
    assert seen["host"] == "0.0.0.0" and seen["port"] == 8765 and seen["app"] is not None
    assert "reachable from other machines" in res.output


@pytest.mark.parametrize(("command", "extra", "module"), [("serve", "server", "uvicorn"), ("mcp", "mcp", "mcp")])
def test_a_missing_extra_is_named_with_its_pip_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       command: str, extra: str, module: str) -> None:
    """A base install (no server or mcp extra) gets the pip command, not a ModuleNotFoundError traceback."""
    import importlib.util

    from click.testing import CliRunner

    from omniret.cli.main import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    res = CliRunner().invoke(cli, ["--index", str(tmp_path / "idx"), command])
    assert res.exit_code == 2, res.output
    assert f"pip install 'omniret[{extra}]'" in res.output and module in res.output
