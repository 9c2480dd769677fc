"""Issue 13.3 (symlink escape from ``serve --root``) and 13.7 (DNS rebinding, absolute server paths)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from srv_helpers import auth, make_image  # type: ignore[import-not-found]

import omniret
from omniret.server.app import create_app
from omniret.server.settings import ServerSettings
from omniret.sources.walk import walk

SECRET = "the launch codes are 0000 and nobody must read them"


@pytest.fixture
def escape(tmp_path: Path, corpus: Path) -> Path:
    """``corpus/sub`` gets links that point out of the root: a file, a folder, and a file inside a linked folder."""
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "secret.txt").write_text(SECRET, encoding="utf-8")
    (outside / "deep" / "more.txt").write_text(SECRET + " (deep)", encoding="utf-8")
    make_image(outside / "private.png", (1, 2, 3))
    os.symlink(outside / "secret.txt", corpus / "sub" / "x.txt")
    os.symlink(outside / "private.png", corpus / "sub" / "leak.png")
    os.symlink(outside / "deep", corpus / "sub" / "linked")
    os.symlink(corpus / "red.png", corpus / "sub" / "inside.png")  # a link that stays inside is fine
    return outside


def test_walk_confined_skips_links_out_of_the_folder(corpus: Path, escape: Path) -> None:
    res = walk([str(corpus / "sub")], confine=[str(corpus)])
    uris = {f.uri for f in res.files}
    assert not any(u.startswith(str(escape)) for u in uris)
    assert str(corpus / "red.png") in uris  # reached through the inside link
    reasons = {s.uri: s.reason for s in res.skipped}
    for out in ("secret.txt", "private.png", "deep"):
        assert "outside the allowed folders" in reasons[str(escape / out)]
    unconfined = {f.uri for f in walk([str(corpus / "sub")]).files}
    assert str(escape / "secret.txt") in unconfined  # the CLI's own adds still follow links


def test_symlink_outside_root_is_refused(client: TestClient, corpus: Path, escape: Path) -> None:
    r = client.post("/items", json={"paths": ["sub"]}, headers=auth())
    assert r.status_code == 201, r.text
    failed = " ".join(f["reason"] for f in r.json()["failed"])
    assert "outside the allowed folders" in failed and str(escape) not in r.text
    r = client.post("/search", json={"text": "launch codes nobody must read", "k": 50})
    assert SECRET not in r.text and "secret" not in r.text
    index: omniret.Index = client.app.state.service.index  # type: ignore[attr-defined]
    assert not [it for it in index.store.iter_items() if it.uri.startswith(str(escape))]


def test_symlink_swapped_in_after_indexing_is_not_served(client: TestClient, corpus: Path, escape: Path) -> None:
    """The index recorded ``corpus/<x>.png``; replacing it by a link out must not make /media serve the target."""
    hit = client.post("/search", json={"text": "green", "k": 1, "modality": ["image"]}).json()["hits"][0]
    target = corpus / hit["name"]
    target.unlink()
    os.symlink(escape / "private.png", target)
    for route in ("media", "thumbs"):
        r = client.get(f"/{route}/{hit['id']}")
        assert r.status_code == 403 and "symbolic link" in r.json()["error"], (route, r.text)
    # a folder in the path swapped for a link is caught the same way
    note = client.post("/search", json={"text": "pasta basil", "k": 1, "modality": ["text"]}).json()["hits"][0]
    os.rename(corpus / "sub", corpus / "sub.real")
    os.symlink(corpus / "sub.real", corpus / "sub")
    assert client.get(f"/media/{note['id']}").status_code == 403


def test_server_side_add_without_roots_is_disabled(index: omniret.Index) -> None:
    with TestClient(create_app(index, ServerSettings(token="t" * 12))) as c:
        r = c.post("/items", json={"paths": ["/etc"]}, headers={"Authorization": "Bearer " + "t" * 12})
    assert r.status_code == 403 and "--root" in r.json()["error"]


# -- 13.7: DNS rebinding and absolute server paths --------------------------------------------------
def test_dns_rebinding_host_is_refused(index: omniret.Index) -> None:
    settings = ServerSettings.from_options(bind="127.0.0.1", allow_hosts=["photos.lan", "*.home.arpa"])
    app = create_app(index, settings)
    for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST.", "photos.lan", "nas.home.arpa:80"):
        with TestClient(app, base_url=f"http://{host}") as c:
            assert c.get("/healthz").status_code == 200, host
    for host in ("evil.example", "evil.example:8000", "localhost.evil.example", "home.arpa.evil", "127.0.0.2.nip.io"):
        with TestClient(app, base_url=f"http://{host}") as c:
            r = c.post("/search", json={"text": "cats"})
            assert r.status_code == 400 and "--allow-host" in r.json()["error"], (host, r.text)
            assert c.get("/").status_code == 400 and c.get("/media/x").status_code == 400


def test_host_allow_list_defaults_follow_the_bind_address() -> None:
    assert ServerSettings.from_options(bind="127.0.0.1").allowed_hosts == ("localhost", "127.0.0.1", "::1")
    assert ServerSettings.from_options(bind="::1").allowed_hosts == ("localhost", "127.0.0.1", "::1")
    assert ServerSettings.from_options(bind="0.0.0.0").allowed_hosts == ()  # any name: warned about by serve
    assert ServerSettings.from_options(bind="0.0.0.0", allow_hosts=["nas.lan"]).allowed_hosts == ("nas.lan",)
    assert ServerSettings.from_options(bind="127.0.0.1", allow_hosts=["*"]).allowed_hosts == ()
    with pytest.raises(omniret.OmniretError, match="not a host name"):
        ServerSettings.from_options(bind="127.0.0.1", allow_hosts=["http://x/"])


def test_serve_allow_host_option(index: omniret.Index, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from click.testing import CliRunner

    from omniret.server.cli import serve_command

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    index.close()
    r = CliRunner().invoke(serve_command, ["--index", index.path, "--allow-host", "photos.lan"])
    assert r.exit_code == 0, r.output
    app = seen["app"]
    assert app.state.settings.allowed_hosts == ("localhost", "127.0.0.1", "::1", "photos.lan")  # type: ignore[attr-defined]
    with TestClient(app, base_url="http://evil.example") as c:  # type: ignore[arg-type]
        assert c.get("/healthz").status_code == 400
    app.state.service.close()  # type: ignore[attr-defined]


def test_hits_carry_no_absolute_server_paths(client: TestClient, corpus: Path, tmp_path: Path) -> None:
    up = client.post("/items", files={"file": ("holiday photo.png", (corpus / "red.png").read_bytes(), "image/png")},
                     headers=auth())
    assert up.status_code == 201
    hits = client.post("/search", json={"text": "red cats pasta", "k": 50}).json()["hits"]
    uris = {h["uri"] for h in hits}
    assert "corpus/red.png" in uris and "corpus/sub/cats.txt" in uris
    assert any(u.startswith("uploads/") and u.endswith("/holiday photo.png") for u in uris)
    assert not any(u.startswith("/") or str(tmp_path) in u for u in uris)
    item = client.get(f"/items/{hits[0]['id']}").json()
    assert item["uri"] == hits[0]["uri"]
    labels = client.post("/classify", json={"labels": ["red", "blue"], "k": 1}).json()["results"]
    assert labels and not any(str(tmp_path) in str(r.get("uri")) for r in labels)


def test_hits_are_relative_to_the_sources_without_roots(index: omniret.Index, corpus: Path) -> None:
    with TestClient(create_app(index, ServerSettings())) as c:
        uris = {h["uri"] for h in c.post("/search", json={"text": "rocket", "k": 20}).json()["hits"]}
    assert "corpus/sub/rockets.md" in uris and not any(u.startswith("/") for u in uris)
