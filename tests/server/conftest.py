"""Fixtures for the server tests: a small indexed corpus (fake encoder) and an app client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from srv_helpers import TOKEN, build_corpus  # type: ignore[import-not-found]

import omniret
from omniret.server.settings import ServerSettings


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return build_corpus(tmp_path / "corpus")


@pytest.fixture
def index(tmp_path: Path, corpus: Path) -> Iterator[omniret.Index]:
    idx = omniret.open(str(tmp_path / "idx"), model="fake")
    idx.add(str(corpus), workers=0)
    yield idx
    idx.close()


@pytest.fixture
def settings(corpus: Path) -> ServerSettings:
    return ServerSettings(token=TOKEN, roots=(str(corpus),), max_upload_bytes=256 * 1024)


@pytest.fixture
def client(index: omniret.Index, settings: ServerSettings) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from omniret.server.app import create_app

    with TestClient(create_app(index, settings), raise_server_exceptions=False) as c:
        yield c
