"""Issue 13.11, the server's parts: deep JSON, booleans as numbers, long upload names, slow headers."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from srv_helpers import TOKEN, LiveServer, auth, png_bytes  # type: ignore[import-not-found]

import omniret
from omniret.errors import QueryError
from omniret.server.app import create_app
from omniret.server.protocol import header_timeout_protocol
from omniret.server.settings import ServerSettings

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture
def live(index: omniret.Index, settings: ServerSettings) -> LiveServer:
    roomy = ServerSettings(token=settings.token, roots=settings.roots, max_upload_bytes=4 << 20)
    with LiveServer(create_app(index, roomy), http=header_timeout_protocol(0.5)) as srv:
        yield srv


def test_deep_json_body_is_a_clear_400(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as c:  # one keep-alive connection for all of it
        for route in ("/search", "/classify", "/items"):
            r = c.post(route, content=DEEP, headers={"content-type": "application/json", **auth()})
            assert r.status_code == 400 and "nested too deeply" in r.json()["error"], (route, r.text)
        deep_where = b'{"text": "x", "where": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_000 + b"}"
        r = c.post("/search", content=deep_where, headers={"content-type": "application/json"})
        assert r.status_code == 400 and "nested too deeply" in r.json()["error"]
        r = c.post("/search", data={"text": "x", "where": "[" * 100_000 + "]" * 100_000},
                   files={"file": ("q.png", png_bytes((1, 2, 3)), "image/png")})
        assert r.status_code == 400 and "'where'" in r.json()["error"]
        assert c.post("/search", json={"text": "cats"}).status_code == 200  # the connection still serves


def test_bool_k_is_refused(client: TestClient, index: omniret.Index) -> None:
    for body in ({"text": "cats", "k": True}, {"text": "cats", "k": False}, {"text": "cats", "candidates": True},
                 {"text": "cats", "alpha": True, "compose": "sum"}):
        r = client.post("/search", json=body)
        assert r.status_code == 422 and "not true/false" in r.json()["error"], (body, r.text)
    r = client.post("/classify", json={"labels": ["a", "b"], "k": True})
    assert r.status_code == 422
    r = client.post("/search", data={"text": "cats", "k": "2"}, files={"x": ("x.txt", b"", "text/plain")})
    assert r.status_code == 200 and len(r.json()["hits"]) == 2  # form fields are strings: "2" still works
    for k in (True, False, 2.0, "3"):
        with pytest.raises(QueryError, match="k must be a positive integer"):
            index.search("cats", k=k)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="candidates must be a positive integer"):
        index.search("cats", candidates=True)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="k must be a positive integer"):
        index.store.search(index.encoder.space, index.embed_query("cats")[None], k=True)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="k must be a positive integer"):
        index.classify(["a", "b"], k=True)  # type: ignore[arg-type]


def test_long_upload_name_keeps_its_extension(client: TestClient, index: omniret.Index) -> None:
    name = "holiday " + "very long name " * 30 + ".png"
    r = client.post("/items", files={"file": (name, png_bytes((9, 90, 200)), "image/png")}, headers=auth())
    assert r.status_code == 201, r.text
    item = index.get(r.json()["ids"][0])
    base = item.uri.rsplit("/", 1)[-1]
    assert base.endswith(".png") and len(base) <= 120 and base.startswith("holiday very long name")


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server closes ``sock`` (recv gives EOF or a reset), waiting up to its timeout."""
    try:
        while chunk := sock.recv(4096):
            if chunk.startswith(b"HTTP/1.1 "):
                return False  # answered: not what a partial request should get
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def test_slow_partial_request_gets_header_timeout(live: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", live.port), timeout=20) as s:
        s.sendall(b"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for i in range(5):  # a header line every 0.2 s: each byte used to reset uvicorn's only timer
            time.sleep(0.2)
            try:
                s.sendall(b"X-Slow-%d: 1\r\n" % i)
            except OSError:
                break
        assert _closed_by_server(s)
    with socket.create_connection(("127.0.0.1", live.port), timeout=20) as s:
        assert _closed_by_server(s)  # a connection that sends nothing is closed too
    with httpx.Client(base_url=live.url, timeout=20) as c:  # keep-alive pauses between requests are fine
        assert c.get("/healthz").status_code == 200
        time.sleep(1.0)
        assert c.post("/search", json={"text": "cats"}).status_code == 200


def test_serve_uses_the_header_timeout(index: omniret.Index, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from click.testing import CliRunner

    from omniret.server.cli import serve_command
    from omniret.server.protocol import KEEP_ALIVE_S, HeaderTimeoutProtocol

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.setenv("OMNIRET_TOKEN", TOKEN)
    index.close()
    assert CliRunner().invoke(serve_command, ["--index", index.path]).exit_code == 0
    assert issubclass(seen["http"], HeaderTimeoutProtocol)  # type: ignore[arg-type]
    # idle keep-alive connections outlive httpx's 5 s client expiry: the client closes them, never a race
    assert seen["timeout_keep_alive"] == KEEP_ALIVE_S > 5
    seen["app"].state.service.close()  # type: ignore[attr-defined]
