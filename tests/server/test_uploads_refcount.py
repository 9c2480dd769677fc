"""Issue 13.4: uploads are content-addressed and reference-counted by the index; leftovers of killed
uploads are cleaned when the server starts."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image
from srv_helpers import TOKEN, auth, png_bytes  # type: ignore[import-not-found]

import omniret
from omniret.server.app import create_app
from omniret.server.settings import ServerSettings


def _upload(client: TestClient, name: str, data: bytes) -> object:
    return client.post("/items", files={"file": (name, data, "application/octet-stream")}, headers=auth())


def _upload_dir(index: omniret.Index) -> Path:
    return Path(os.path.realpath(index.path)) / "uploads"


def test_deleting_one_of_two_identical_uploads_keeps_the_other(client: TestClient, index: omniret.Index) -> None:
    data = png_bytes((10, 200, 90))
    a, b = _upload(client, "a.png", data), _upload(client, "b.png", data)
    assert a.status_code == b.status_code == 201, (a.text, b.text)  # type: ignore[attr-defined]
    (ida,), (idb,) = a.json()["ids"], b.json()["ids"]  # type: ignore[attr-defined]
    assert ida != idb
    folder = Path(index.get(ida).uri).parent
    assert Path(index.get(idb).uri).parent == folder  # one content-addressed folder
    assert client.delete(f"/items/{ida}", headers=auth()).json() == {"removed": 1}
    r = client.get(f"/media/{idb}")
    assert r.status_code == 200 and r.content == data
    assert client.get(f"/thumbs/{idb}").status_code == 200
    assert not (folder / "a.png").exists() and (folder / "b.png").exists()
    assert client.delete(f"/items/{idb}", headers=auth()).status_code == 200
    assert not folder.exists()  # the last reference gone: the folder goes too


def test_failed_upload_equal_to_an_indexed_file_deletes_nothing_indexed(client: TestClient,
                                                                         index: omniret.Index) -> None:
    data = png_bytes((200, 100, 10))
    before = index.store.count()
    (item_id,) = _upload(client, "kept.png", data).json()["ids"]  # type: ignore[attr-defined]
    kept = Path(index.get(item_id).uri)
    for name in ("kept.bin", "kept.txt", "kept.png.pdf"):  # same bytes, a name that cannot be indexed
        r = _upload(client, name, data)
        assert r.status_code == 400, (name, r.text)  # type: ignore[attr-defined]
        assert not (kept.parent / name).exists()
    assert kept.read_bytes() == data and client.get(f"/media/{item_id}").status_code == 200
    # the same bytes and name again: the same file and item, still there
    r = _upload(client, "kept.png", data)
    assert r.status_code == 201 and r.json()["ids"] == [item_id] and kept.exists()  # type: ignore[attr-defined]
    assert index.store.count() == before + 1


def test_killed_upload_orphans_are_cleaned_at_startup(index: omniret.Index, settings: ServerSettings) -> None:
    """The leftovers a kill leaves, made by the real code: received but never placed (killed mid-body), placed
    but never committed (killed during add); an indexed upload and a young leftover are kept."""
    with TestClient(create_app(index, settings)) as c:
        (kept_id,) = _upload(c, "kept.png", png_bytes((1, 2, 3))).json()["ids"]  # type: ignore[attr-defined]
        svc = c.app.state.service  # type: ignore[attr-defined]
        half = svc.receive_upload(io.BytesIO(b"\x89PNG half of a body"), "half.png")
        never = svc.uploads.place(svc.receive_upload(io.BytesIO(_noise_png()), "never.png"))
        young = svc.receive_upload(io.BytesIO(b"in flight"), "young.png")
    old = time.time() - 3600
    for p in (half.tmp, never, Path(index.get(kept_id).uri)):
        os.utime(p, (old, old))
    with TestClient(create_app(index, settings)) as c:
        assert not half.tmp.exists() and not never.exists() and not never.parent.exists()
        assert young.tmp.exists()  # may belong to an upload in flight in another server process
        assert c.get(f"/media/{kept_id}").status_code == 200
    without_token = ServerSettings(roots=settings.roots)
    os.utime(young.tmp, (old, old))
    with TestClient(create_app(index, without_token)):
        assert young.tmp.exists()  # a read-only server does not touch the upload folder
    assert sorted(p.name for p in _upload_dir(index).rglob("*")) == sorted(
        [Path(index.get(kept_id).uri).parent.name, "kept.png", young.tmp.name])


def _noise_png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_upload_token_still_required(client: TestClient) -> None:
    r = client.post("/items", files={"file": ("a.png", png_bytes((1, 1, 1)), "image/png")},
                    headers={"Authorization": f"Bearer {TOKEN}x"})
    assert r.status_code == 401
