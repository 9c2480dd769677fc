"""schemathesis against the app's OpenAPI spec, in-process (ASGI): no generated request gets a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from srv_helpers import TOKEN, build_corpus  # type: ignore[import-not-found]

import omniret
from omniret.server.app import create_app
from omniret.server.settings import ServerSettings

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from omniret.encoders.registry import EncoderEntry, register

    register(EncoderEntry("fake", "fakes:create", "deterministic test encoder", "fake"))
    root: Path = tmp_path_factory.mktemp("fuzz")
    corpus = build_corpus(root / "corpus")
    idx = omniret.open(str(root / "idx"), model="fake")
    idx.add(str(corpus), workers=0)
    yield create_app(idx, ServerSettings(token=TOKEN, roots=(str(corpus),), max_upload_bytes=128 * 1024))
    idx.close()


def test_no_5xx_on_generated_requests(app: object) -> None:
    from hypothesis import given

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9

    for op in operations:
        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: object) -> None:
            for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
                response = case.call(headers=headers)  # type: ignore[attr-defined]
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.path}: {response.status_code} {response.text[:200]}")  # type: ignore[attr-defined]

        run()
    assert not failures, failures[:10]
