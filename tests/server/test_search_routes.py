"""POST /search (JSON and multipart) and POST /classify through FastAPI's TestClient."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from srv_helpers import COLORS, TOKEN, auth, png_bytes  # type: ignore[import-not-found]

import omniret
from omniret.index import Index
from omniret.items import Hit
from omniret.server.app import create_app
from omniret.server.service import accepted_keywords
from omniret.server.settings import ServerSettings


def names(resp: Any) -> list[str]:
    return [h["name"] for h in resp.json()["hits"]]


def test_text_search_returns_hits_with_urls(client: TestClient) -> None:
    r = client.post("/search", json={"text": "a rocket launch sends satellites", "k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["hits"][0]["name"] == "rockets.md" and body["hits"][0]["modality"] == "text"
    assert body["hits"][0]["text"] and body["hits"][0]["thumb_url"] is None
    assert body["hits"][0]["media_url"] == f"/media/{body['hits'][0]['id']}"
    assert len(body["hits"]) == 3 and body["took_ms"] >= 0
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_filters_modality_and_glob(client: TestClient) -> None:
    r = client.post("/search", json={"text": "cats", "k": 10, "modality": ["image"]})
    assert r.status_code == 200 and r.json()["hits"]
    assert {h["modality"] for h in r.json()["hits"]} == {"image"}
    assert all(h["thumb_url"] == f"/thumbs/{h['id']}" for h in r.json()["hits"])
    r = client.post("/search", json={"text": "cats", "k": 10, "path_glob": "*.md"})
    assert r.status_code == 200 and r.json()["hits"] and all(n.endswith(".md") for n in names(r))
    r = client.post("/search", json={"text": "cats", "where": {"name": "yellow.png"}})
    assert names(r) == ["yellow.png"]


@pytest.mark.parametrize("body, status", [
    ({"text": "x", "k": 0}, 422),
    ({"text": "x", "k": "many"}, 422),
    ({"text": "x", "k": 100000}, 422),
    ({"text": 42}, 422),
    ({"text": "x", "modality": ["smell"]}, 422),
    ({"text": "x", "bogus": 1}, 422),
    ({"text": "x", "where": {"a": {"nested": 1}}}, 422),
    ([1, 2, 3], 422),
    ({}, 400),
    ({"text": "   "}, 400),
])
def test_bad_json_bodies_are_4xx_with_a_message(client: TestClient, body: Any, status: int) -> None:
    r = client.post("/search", json=body)
    assert r.status_code == status, r.text
    assert r.json()["status"] == status and r.json()["error"]


def test_malformed_json_and_wrong_content_type(client: TestClient) -> None:
    r = client.post("/search", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    r = client.post("/search", content=b"text=cats", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


def test_upload_image_alone_finds_the_same_image(client: TestClient) -> None:
    files = {"file": ("query.png", png_bytes(COLORS["green"]), "image/png")}
    r = client.post("/search", files=files, data={"k": "2", "modality": "image"})
    assert r.status_code == 200, r.text
    assert names(r)[0] == "green.png" and r.json()["hits"][0]["score"] == pytest.approx(1.0, abs=1e-2)


def test_non_image_and_empty_uploads_are_400_without_server_paths(client: TestClient) -> None:
    r = client.post("/search", files={"file": ("evil.png", b"#!/bin/sh\necho hi\n" * 20, "image/png")})
    assert r.status_code == 400
    msg = r.json()["error"]
    assert "evil.png" in msg and "/tmp" not in msg and "omniret-query" not in msg
    r = client.post("/search", files={"file": ("empty.png", b"", "image/png")})
    assert r.status_code == 400 and "empty" in r.json()["error"]


def test_oversized_upload_is_413_declared_or_streamed(client: TestClient) -> None:
    big = b"\x89PNG" + b"0" * (300 * 1024)
    r = client.post("/search", files={"file": ("big.png", big, "image/png")})
    assert r.status_code == 413 and "--max-upload-mb" in r.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(40):
            yield b"x" * 10_000

    r = client.post("/search", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_sound_upload_is_recognised(client: TestClient, index: omniret.Index) -> None:
    wav = b"RIFF" + (36).to_bytes(4, "little") + b"WAVEfmt " + b"\x00" * 28
    r = client.post("/search", files={"file": ("moo.wav", wav, "audio/wav")})
    if "audio" in inspect.signature(index.search).parameters:
        assert r.status_code in (200, 400)
    else:
        assert r.status_code == 400 and "sound" in r.json()["error"]


def test_method_options_missing_in_this_library_are_400(client: TestClient, index: omniret.Index) -> None:
    params = accepted_keywords(index.search)  # named parameters + the flat SearchKnobs
    assert params is not None and {"k", "modality", "hubness", "image", "options"} <= params
    for body in ({"text": "cats", "hubness": "is"}, {"text": "cats", "like": ["abc"]},
                 {"text": "cats", "hybrid": "rrf"}, {"text": "cats", "gap": "center"}):
        r = client.post("/search", json=body)
        option = next(k for k in body if k != "text")
        if option not in params:
            assert r.status_code == 400 and option in r.json()["error"]
        else:
            assert r.status_code in (200, 400)


class RecordingIndex(Index):
    """An Index whose search and classify take every option and record what they were given."""

    calls: list[dict[str, Any]]

    def search(self, text: str | None = None, **kwargs: Any) -> list[Hit]:  # type: ignore[override]
        self.calls.append({"text": text, **kwargs})
        image = kwargs.get("image")
        if image is not None:
            assert open(image, "rb").read(4) == b"\x89PNG"  # the upload, saved to a real file
        return super().search(text or None, image=None if text else image, k=kwargs["k"])

    def classify(self, labels: list[str], *, where: Any = None, ids: Any = None, k: int = 1,
                 threshold: float | None = None, templates: Any = "clip80", descriptions: Any = None,
                 write: bool = False) -> list[dict[str, Any]]:
        self.calls.append({"labels": labels, "k": k, "write": write, "ids": ids})
        return [{"id": "x", "labels": [{"label": labels[0], "score": 0.5}]}]


@pytest.fixture
def recording(index: omniret.Index, settings: ServerSettings) -> Iterator[tuple[TestClient, RecordingIndex]]:
    rec = RecordingIndex(index.store, index.encoder, index.path)
    rec.calls = []
    with TestClient(create_app(rec, settings), raise_server_exceptions=False) as c:
        yield c, rec


def test_only_options_the_client_set_are_passed(recording: tuple[TestClient, RecordingIndex]) -> None:
    client, rec = recording
    assert client.post("/search", json={"text": "cats"}).status_code == 200
    assert rec.calls[-1] == {"text": "cats", "k": 10}
    body = {"text": "cats", "k": 3, "hubness": "qbnorm", "gap": "center", "hybrid": "rrf", "rollup": False,
            "like": ["a", "b"], "compose": "weimo", "alpha": 0.3, "beta": 0.7}
    assert client.post("/search", json=body).status_code == 200
    assert rec.calls[-1] == body


def test_composed_multipart_passes_image_and_text(recording: tuple[TestClient, RecordingIndex]) -> None:
    client, rec = recording
    files = {"file": ("q.png", png_bytes(COLORS["red"]), "image/png")}
    r = client.post("/search", files=files, data={"text": "in blue", "compose": "pdv", "alpha": "0.5",
                                                  "modality": "image,text", "where": '{"name": "red.png"}'})
    assert r.status_code == 200, r.text
    call = rec.calls[-1]
    assert call["text"] == "in blue" and call["compose"] == "pdv" and call["alpha"] == 0.5
    assert call["modality"] == ["image", "text"] and call["where"] == {"name": "red.png"}
    assert call["image"].endswith(".png")
    r = client.post("/search", files=files, data={"where": "not json"})
    assert r.status_code == 400 and "where" in r.json()["error"]


def test_classify(recording: tuple[TestClient, RecordingIndex], client: TestClient) -> None:
    rec_client, rec = recording
    r = rec_client.post("/classify", json={"labels": ["cat", "dog"], "k": 2})
    assert r.status_code == 200 and r.json()["results"][0]["labels"][0]["label"] == "cat"
    assert rec.calls[-1]["k"] == 2 and rec.calls[-1]["write"] is False
    assert rec_client.post("/classify", json={"labels": ["cat"], "write": True}).status_code == 401
    r = rec_client.post("/classify", json={"labels": ["cat"], "write": True}, headers=auth())
    assert r.status_code == 200 and rec.calls[-1]["write"] is True
    assert rec_client.post("/classify", json={"labels": []}).status_code == 422
    if not hasattr(Index, "classify"):
        r = client.post("/classify", json={"labels": ["cat"]})
        assert r.status_code == 400 and "classif" in r.json()["error"]


def test_internal_errors_hide_tracebacks_and_paths(index: omniret.Index, settings: ServerSettings,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    def boom(*a: Any, **k: Any) -> list[Hit]:
        raise RuntimeError(f"exploded reading {index.path}/secret.db")

    monkeypatch.setattr(index, "search", boom)
    with TestClient(create_app(index, settings), raise_server_exceptions=False) as c:
        r = c.post("/search", json={"text": "cats"})
    assert r.status_code == 500
    assert "secret" not in r.text and "Traceback" not in r.text and str(index.path) not in r.text
    assert "id " in r.json()["error"]
    assert "exploded" in caplog.text  # logged server-side


def test_library_errors_are_scrubbed_of_paths(client: TestClient) -> None:
    r = client.post("/search", json={"text": "x", "path_glob": "*", "mtime_min": 5, "mtime_max": 1})
    assert r.status_code in (200, 400)
    assert TOKEN not in r.text
