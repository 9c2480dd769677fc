"""The optional LLM router against a local fake OpenAI-compatible server (no network)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import omniret
from omniret.errors import QueryError
from omniret.items import Modality
from omniret.query import routing


class FakeLLM:
    """Serves canned replies in order (the last one repeats); records every request body."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, str]] = []
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, **body})
                status, content = outer.replies[min(len(outer.requests), len(outer.replies)) - 1]
                payload = content if status != 200 or content.startswith("!") else json.dumps(
                    {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})
                data = payload.lstrip("!").encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    t = threading.Thread(target=fake.server.serve_forever, daemon=True)
    t.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture(scope="module")
def index_dir(mixed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("llmidx") / "idx"
    with omniret.open(d, model="fake", audio_model="fake-clap") as index:
        index.add(mixed, workers=0)
    return d


def test_router_routes_to_the_answered_modality(llm: FakeLLM, index_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    llm.replies = [(200, "Image")]
    monkeypatch.setenv(routing.ROUTER_URL_ENV, llm.url)
    with omniret.open(index_dir) as index:
        hits = index.search("something green", route="llm", k=20)
    assert hits and {h.modality for h in hits} == {Modality.IMAGE}
    (req,) = llm.requests
    assert req["path"] == "/v1/chat/completions" and req["max_tokens"] == 1
    assert "something green" in req["messages"][0]["content"]


def test_router_retries_then_routes(llm: FakeLLM, index_dir: Path) -> None:
    llm.replies = [(500, "!{}"), (200, "!not json"), (200, "audio")]
    with omniret.open(index_dir) as index:
        index.router_url = llm.url
        hits = index.search("a 300 hz tone", route="llm", k=5)
    assert len(llm.requests) == 3
    assert hits and {h.modality for h in hits} == {Modality.AUDIO} and Path(hits[0].uri).name == "tone300.wav"


def test_router_unknown_answers_fall_back_to_auto(llm: FakeLLM, index_dir: Path) -> None:
    llm.replies = [(200, "banana")]
    with omniret.open(index_dir) as index:
        index.router_url = llm.url
        routed = index.search("a low hum at 300 hz", route="llm", k=10)
        auto = index.search("a low hum at 300 hz", route="auto", k=10)
    assert len(llm.requests) == routing.ROUTER_RETRIES
    assert [h.id for h in routed] == [h.id for h in auto] and len({h.modality for h in routed}) > 1


def test_router_granularity_from_the_class(llm: FakeLLM, index_dir: Path) -> None:
    llm.replies = [(200, "paragraph")]
    with omniret.open(index_dir) as index:
        index.router_url = llm.url
        hits = index.search("tomato soup", route="llm", k=3)
    assert Path(hits[0].uri).name == "note1.txt" and all(h.modality is Modality.TEXT for h in hits)


def test_router_needs_an_endpoint(index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(routing.ROUTER_URL_ENV, raising=False)
    with omniret.open(index_dir) as index, pytest.raises(QueryError, match=routing.ROUTER_URL_ENV):
        index.search("red", route="llm")


def test_parse_answer() -> None:
    assert routing.parse_answer(" Video.") == "video"
    assert routing.parse_answer("para") == "paragraph"  # a truncated one-token answer
    assert routing.parse_answer("d") == "document"
    assert routing.parse_answer("maybe") is None and routing.parse_answer("") is None
    assert routing.route_from_label("clip").modalities == frozenset({Modality.VIDEO})
    assert routing.route_from_label("document").granularity == "root"
    assert routing.route_from_label("no").modalities is None


def test_merge_keeps_the_best_score_per_item() -> None:
    ids, scores = routing.merge([(["a", "b"], np.array([1.0, 3.0])), (["a", "c"], np.array([5.0, np.nan]))])
    assert ids == ["a", "b", "c"] and scores[:2].tolist() == [5.0, 3.0] and scores[2] == -np.inf


def test_parse_route_and_granularity() -> None:
    assert routing.parse_route("AUDIO").modalities == frozenset({Modality.AUDIO})
    assert routing.parse_route("all").force_all and routing.needs_calibration(routing.parse_route("all"), 1)
    assert not routing.needs_calibration(routing.parse_route("auto"), 1)
    assert routing.needs_calibration(routing.parse_route("auto"), 2)
    assert routing.parse_granularity(None, True) == "parent" and routing.parse_granularity("ROOT", False) == "root"
    with pytest.raises(QueryError, match="granularity"):
        routing.parse_granularity("page", False)
