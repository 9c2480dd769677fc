"""Issue 13 (2): a file name that is not valid UTF-8 must not stop an ``add``.

Python reads such a name as a string with lone surrogates (``os.fsdecode``, ``surrogateescape``); ids,
the store, the FTS text and every output must take it, and ids of valid names must not change.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from builders import make_image  # type: ignore[import-not-found]
from click.testing import CliRunner

import omniret
from omniret.cli.main import cli
from omniret.items import make_id, path_bytes


def _bad_name_corpus(root: Path) -> tuple[Path, str, str]:
    """A folder with a non-UTF-8 text file and image beside good files; returns (root, bad text, bad image)."""
    root.mkdir()
    raw = os.fsencode(root)
    with open(raw + b"/caf\xe9 notes.txt", "wb") as f:
        f.write(b"A rocket launch sends satellites into orbit.")
    make_image(Path(os.fsdecode(raw + b"/photo-\xff\xfe.png")), (200, 30, 30))
    (root / "cats.txt").write_text("Cats like to sleep in the sun.", encoding="utf-8")
    make_image(root / "green.png", (30, 200, 40))
    return root, os.fsdecode(raw + b"/caf\xe9 notes.txt"), os.fsdecode(raw + b"/photo-\xff\xfe.png")


def test_make_id_of_valid_names_is_unchanged() -> None:
    """Stored indexes keep working: a valid-UTF-8 URI hashes exactly as before (its UTF-8 bytes)."""
    for uri, part in [("/data/photos/beach.jpg", None), ("/d/café.txt", "3"), ("/d/日本.pdf", "p1")]:
        key = uri if part is None else f"{uri}#{part}"
        assert make_id(uri, part=part) == hashlib.blake2b(key.encode("utf-8"), digest_size=10).hexdigest()
    assert len(make_id("/d/beach.jpg")) == 20


def test_make_id_of_non_utf8_name_hashes_its_bytes() -> None:
    uri = os.fsdecode(b"/d/caf\xe9.txt")
    assert path_bytes(uri) == b"/d/caf\xe9.txt" == os.fsencode(uri)
    assert make_id(uri) == hashlib.blake2b(b"/d/caf\xe9.txt", digest_size=10).hexdigest()
    assert make_id(uri) != make_id("/d/caf\u00e9.txt")  # the UTF-8 name é is another file
    assert len({make_id(uri, part=str(i)) for i in range(3)}) == 3
    assert make_id("lone \ud800 surrogate")  # not a file name, but never a crash


def test_non_utf8_file_name_does_not_stop_add(tmp_path: Path) -> None:
    root, bad_txt, bad_png = _bad_name_corpus(tmp_path / "corpus")
    with omniret.open(str(tmp_path / "idx"), model="fake") as idx:
        report = idx.add(str(root), workers=0)
        assert report.failed == [] and report.new == 4
        uris = {it.uri for it in idx.store.iter_items()}
        assert {bad_txt, bad_png, str(root / "cats.txt"), str(root / "green.png")} <= uris
        assert idx.get(make_id(bad_png)).uri == bad_png
        hits = idx.search("rocket launch satellites", k=1)
        assert hits[0].uri == bad_txt and os.fsencode(hits[0].uri).endswith(b"/caf\xe9 notes.txt")
        assert [h.uri for h in idx.search("x", k=5, path_glob="*/photo-*")] == [bad_png]
        assert idx.add(str(root), workers=0).unchanged == 4  # change detection finds the same names again
        assert idx.remove([bad_txt]) == 2  # the file and its chunk
        assert bad_txt not in idx.store.source_states()


def test_non_utf8_file_name_with_decode_workers(tmp_path: Path) -> None:
    """The same through the worker processes (paths cross a process boundary)."""
    root, _, bad_png = _bad_name_corpus(tmp_path / "corpus")
    with omniret.open(str(tmp_path / "idx"), model="fake") as idx:
        report = idx.add(str(root), workers=1)
        assert report.failed == [] and report.new == 4
        assert idx.get(make_id(bad_png)) is not None


def test_non_utf8_file_name_in_cli_json_output(tmp_path: Path) -> None:
    """``--json`` writes the name's undecodable bytes as ``\\udcXX`` escapes: ``json.loads`` and
    ``os.fsencode`` give the exact bytes back (not a ``?``)."""
    root, bad_txt, _ = _bad_name_corpus(tmp_path / "corpus")
    idx = str(tmp_path / "idx")
    r = CliRunner().invoke(cli, ["--index", idx, "--json", "-q", "add", str(root), "--model", "fake",
                                 "--workers", "0"], catch_exceptions=False)
    assert r.exit_code == 0 and json.loads(r.stdout)["new"] == 4
    r = CliRunner().invoke(cli, ["--index", idx, "--json", "search", "rocket launch", "-k", "1"],
                           catch_exceptions=False)
    assert r.exit_code == 0 and "\\udce9" in r.stdout
    hit = json.loads(r.stdout)
    assert hit["uri"] == bad_txt and os.fsencode(hit["uri"]) == os.fsencode(root) + b"/caf\xe9 notes.txt"
    r = CliRunner().invoke(cli, ["--index", idx, "search", "rocket launch", "-k", "1"], catch_exceptions=False)
    assert r.exit_code == 0 and "notes.txt" in r.stdout


def test_non_utf8_file_name_in_server_responses(tmp_path: Path) -> None:
    """The HTTP API answers (the name shown with U+FFFD, valid UTF-8) and serves the file by id."""
    from fastapi.testclient import TestClient

    from omniret.server.app import create_app
    from omniret.server.settings import ServerSettings

    root, _, _ = _bad_name_corpus(tmp_path / "corpus")
    token = "t" * 24
    with omniret.open(str(tmp_path / "idx"), model="fake") as idx:
        idx.add(str(root), workers=0)
        app = create_app(idx, ServerSettings(token=token, roots=(str(root),)))
        with TestClient(app, raise_server_exceptions=False) as c:
            auth = {"Authorization": f"Bearer {token}"}
            r = c.post("/search", json={"text": "rocket launch satellites", "k": 1}, headers=auth)
            assert r.status_code == 200, r.text
            hit = r.json()["hits"][0]
            assert hit["name"] == "caf\ufffd notes.txt"
            media = c.get(hit["media_url"], headers=auth)
            assert media.status_code == 200 and b"rocket launch" in media.content
