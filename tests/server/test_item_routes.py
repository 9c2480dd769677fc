"""Items, media, thumbnails, system routes, tokens, roots, CORS and the serve command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from srv_helpers import TOKEN, auth, png_bytes  # type: ignore[import-not-found]

import omniret
from omniret.server.app import create_app
from omniret.server.settings import ServerSettings


def first_hit(client: TestClient, text: str, modality: str) -> dict[str, Any]:
    r = client.post("/search", json={"text": text, "k": 1, "modality": [modality]})
    assert r.status_code == 200
    return r.json()["hits"][0]  # type: ignore[no-any-return]


def test_get_item_and_unknown_ids(client: TestClient) -> None:
    hit = first_hit(client, "rocket", "text")
    r = client.get(f"/items/{hit['id']}")
    assert r.status_code == 200 and r.json()["id"] == hit["id"] and r.json()["parent_id"]
    assert client.get(f"/items/{hit['parent_id']}").json()["name"] == "rockets.md"
    for bad in ("nope", "0" * 20, "x" * 500):
        assert client.get(f"/items/{bad}").status_code == 404
        assert client.get(f"/media/{bad}").status_code == 404
        assert client.get(f"/thumbs/{bad}").status_code == 404


def test_media_serves_the_file_with_range_requests(client: TestClient, corpus: Path) -> None:
    hit = first_hit(client, "red", "image")
    data = (corpus / hit["name"]).read_bytes()
    r = client.get(hit["media_url"])
    assert r.status_code == 200 and r.content == data and r.headers["content-type"] == "image/png"
    assert "sandbox" in r.headers["content-security-policy"]
    r = client.get(hit["media_url"], headers={"Range": "bytes=10-29"})
    assert r.status_code == 206 and r.content == data[10:30]
    assert r.headers["content-range"] == f"bytes 10-29/{len(data)}"
    assert client.get(hit["media_url"], headers={"Range": f"bytes={len(data) + 10}-"}).status_code == 416
    text = first_hit(client, "cats", "text")
    r = client.get(text["media_url"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")


def test_media_never_serves_a_path_from_the_request(client: TestClient) -> None:
    for attempt in ("..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "../../etc/passwd", "%2e%2e", "%00"):
        r = client.get(f"/media/{attempt}")
        assert r.status_code == 404 and "root:" not in r.text
        assert client.get(f"/thumbs/{attempt}").status_code == 404
    assert client.get("/static/../../../../etc/passwd").status_code == 404


def test_media_of_a_vanished_file_is_404(client: TestClient, corpus: Path) -> None:
    hit = first_hit(client, "yellow", "image")
    (corpus / hit["name"]).unlink()
    r = client.get(hit["media_url"])
    assert r.status_code == 404 and str(corpus) not in r.text


def test_thumbnails_are_small_jpegs_cached_under_the_index(client: TestClient, index: omniret.Index) -> None:
    hit = first_hit(client, "blue", "image")
    r = client.get(hit["thumb_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    cached = list((Path(index.path) / "thumbs").glob("*.jpg"))
    assert len(cached) == 1
    with Image.open(cached[0]) as im:
        assert im.format == "JPEG" and max(im.size) <= 256
    assert client.get(hit["thumb_url"]).content == r.content
    text = first_hit(client, "cats", "text")
    r = client.get(f"/thumbs/{text['id']}")
    assert r.status_code == 404 and "no picture" in r.json()["error"]


def test_write_routes_need_the_token(client: TestClient) -> None:
    hit = first_hit(client, "red", "image")
    files = {"file": ("new.png", png_bytes((10, 10, 10)), "image/png")}
    assert client.post("/items", files=files).status_code == 401
    r = client.post("/items", files=files, headers={"Authorization": "Bearer wrong-token-xx"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert client.post("/items", files=files, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.delete(f"/items/{hit['id']}").status_code == 401
    assert client.get(f"/items/{hit['id']}").status_code == 200


def test_writes_disabled_without_a_token(index: omniret.Index) -> None:
    with TestClient(create_app(index, ServerSettings())) as c:
        r = c.post("/items", json={"paths": ["x"]}, headers=auth())
        assert r.status_code == 403 and "--token" in r.json()["error"]
        assert c.delete("/items/abc", headers=auth()).status_code == 403
        assert c.get("/healthz").json()["writes_enabled"] is False


def test_upload_adds_searchable_items_and_delete_removes_them(client: TestClient, index: omniret.Index) -> None:
    purple = (120, 20, 160)
    files = [("file", ("../../purple pic.png", png_bytes(purple), "image/png")),
             ("file", ("notes.txt", b"Zebras graze on the savanna at dawn.", "text/plain"))]
    r = client.post("/items", files=files, headers=auth())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["new"] == 2 and len(body["ids"]) == 2 and body["failed"] == []
    uploads = Path(index.path) / "uploads"
    stored = sorted(p.name for p in uploads.glob("*/*"))
    assert stored == ["notes.txt", "purple pic.png"]  # no folders from the client's file name
    q = client.post("/search", files={"file": ("q.png", png_bytes(purple), "image/png")}, data={"k": "1"})
    assert q.json()["hits"][0]["id"] in body["ids"]
    assert client.post("/search", json={"text": "zebras savanna", "k": 1}).json()["hits"][0]["name"] == "notes.txt"
    image_id = q.json()["hits"][0]["id"]
    r = client.delete(f"/items/{image_id}", headers=auth())
    assert r.status_code == 200 and r.json()["removed"] == 1
    assert client.get(f"/items/{image_id}").status_code == 404
    assert sorted(p.name for p in uploads.glob("*/*")) == ["notes.txt"]
    assert client.delete(f"/items/{image_id}", headers=auth()).status_code == 404


def test_upload_of_garbage_is_400_and_not_kept(client: TestClient, index: omniret.Index) -> None:
    files = {"file": ("fake.png", b"\x00\x01 definitely not a png" * 10, "image/png")}
    r = client.post("/items", files=files, headers=auth())
    assert r.status_code == 400 and "fake.png" in r.json()["error"] and index.path not in r.text
    assert not list((Path(index.path) / "uploads").glob("*/*"))
    assert client.post("/items", files={"other": ("a.txt", b"x")}, headers=auth()).status_code == 400
    assert client.post("/items", data={"x": "1"}, headers=auth()).status_code == 415
    big = {"file": ("big.png", b"0" * (300 * 1024), "image/png")}
    assert client.post("/items", files=big, headers=auth()).status_code == 413


def test_add_by_path_only_under_roots(client: TestClient, corpus: Path, tmp_path: Path) -> None:
    extra = corpus / "more"
    extra.mkdir()
    (extra / "owl.txt").write_text("An owl hoots at night in the forest.")
    r = client.post("/items", json={"paths": [str(extra)]}, headers=auth())
    assert r.status_code == 201 and r.json()["new"] == 1
    r = client.post("/items", json={"paths": ["more/owl.txt"]}, headers=auth())  # relative to the root
    assert r.status_code == 201 and r.json()["unchanged"] == 1
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (corpus / "link").symlink_to(outside)
    for p in (str(outside), "../outside", str(corpus / "link"), "/etc/passwd", str(corpus / ".." / "outside")):
        r = client.post("/items", json={"paths": [p]}, headers=auth())
        assert r.status_code == 403, p
        assert str(tmp_path) not in r.text
    assert client.post("/items", json={"paths": ["nope.txt"]}, headers=auth()).status_code == 404
    assert client.post("/items", json={"paths": []}, headers=auth()).status_code == 422
    assert client.post("/items", json={"paths": "x"}, headers=auth()).status_code == 422


def test_healthz_models_metrics_docs(client: TestClient) -> None:
    h = client.get("/healthz").json()
    assert h == {"status": "ok", "items": 10, "model": "fake", "writes_enabled": True}
    models = client.get("/models").json()
    from omniret.encoders.registry import entries

    assert [m["prefix"] for m in models["models"]] == [e.prefix for e in entries()]
    assert models["current"] == "fake"
    client.post("/search", json={"text": "cats"})
    client.get("/items/unknown")
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    samples = {(s.labels.get("route"), s.labels.get("status")): s.value
               for s in families["omniret_http_requests"].samples if s.name.endswith("_total")}
    assert samples[("/search", "200")] == 1 and samples[("/items/{item_id}", "404")] == 1
    assert families["omniret_index_items"].samples[0].value == 10
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/search", "/classify", "/items", "/items/{item_id}", "/media/{item_id}", "/thumbs/{item_id}",
            "/models", "/healthz", "/metrics"} <= set(spec["paths"])


def test_page_and_security_headers(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "<form" in r.text and "/static/app.js" in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200
    assert r.headers["x-content-type-options"] == "nosniff"


def test_cors_off_by_default_and_on_when_configured(index: omniret.Index) -> None:
    hdr = {"Origin": "https://evil.example"}
    with TestClient(create_app(index, ServerSettings())) as c:
        assert "access-control-allow-origin" not in c.get("/healthz", headers=hdr).headers
    with TestClient(create_app(index, ServerSettings(cors_origins=("https://ok.example",)))) as c:
        assert c.get("/healthz", headers={"Origin": "https://ok.example"}).headers[
            "access-control-allow-origin"] == "https://ok.example"
        assert "access-control-allow-origin" not in c.get("/healthz", headers=hdr).headers


def test_settings_validation(tmp_path: Path) -> None:
    from omniret.errors import OmniretError

    with pytest.raises(OmniretError, match="at least 8"):
        ServerSettings(token="short")
    with pytest.raises(OmniretError, match="not an existing folder"):
        ServerSettings.from_options(roots=[str(tmp_path / "missing")])
    s = ServerSettings.from_options(env={"OMNIRET_TOKEN": "from-the-env-123"}, max_upload_mb=2)
    assert s.token == "from-the-env-123" and s.max_upload_bytes == 2 * 1024 * 1024
    assert ServerSettings.from_options(token="flag-token-1234", env={"OMNIRET_TOKEN": "env-token-1234"}).token \
        == "flag-token-1234"


def test_serve_command(tmp_path: Path, index: omniret.Index, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from omniret.server.cli import serve_command

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.setenv("OMNIRET_TOKEN", "env-token-12345")
    index.close()
    r = CliRunner().invoke(serve_command, ["--index", index.path, "--root", str(corpus), "--port", "9123"])
    assert r.exit_code == 0, r.output
    assert seen["host"] == "127.0.0.1" and seen["port"] == 9123
    settings = seen["app"].state.settings
    assert settings.token == "env-token-12345" and settings.roots == (os.path.realpath(corpus),)
    seen["app"].state.service.close()
    r = CliRunner().invoke(serve_command, ["--index", str(tmp_path / "none")])
    assert r.exit_code == 2 and "no omniret index" in r.output
    r = CliRunner().invoke(serve_command, ["--index", index.path, "--host", "0.0.0.0"])
    assert r.exit_code == 0 and "reachable from other machines" in r.output
    seen["app"].state.service.close()
