"""The ONNX query cache (issue 14.2) with a tiny random-init sentence-transformers model: the exported
tower embeds as the model does, and the cache is never trusted when damaged, stale or unfaithful."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import cosine_rank

from omniret.encoders.base import QueryTowers, TowerFiles
from omniret.encoders.offline import OfflineEncoder
from omniret.encoders.onnx import PROBE_TEXTS, CacheDamaged, OnnxQueryEncoder
from omniret.encoders.query_cache import QueryCache
from omniret.encoders.st import SentenceTransformerEncoder
from omniret.index import Index
from omniret.items import Modality, Role
from omniret.store import open_store

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

TEXTS = ["a cat sleeping on a sofa", "the rocket lifts off", "pasta with tomato sauce", "a cat", "CATS!",
         "ünïcödé text", "one two three four five six seven eight nine ten " * 20]


@pytest.fixture(scope="module")
def prompted_st_dir(tiny_st_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with query/document prompts (as e5-style models define them)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_st_dir), device="cpu", local_files_only=True,
                                prompts={"query": "query: ", "document": "passage: "})
    out = tmp_path_factory.mktemp("prompted") / "model"
    model.save(str(out))
    return out


@pytest.fixture
def st_copy(tiny_st_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model (tests that touch its weight files)."""
    return Path(shutil.copytree(tiny_st_dir, tmp_path / "model"))


def _built(enc: SentenceTransformerEncoder, folder: Path) -> tuple[QueryCache, OnnxQueryEncoder]:
    cache = QueryCache(enc, folder)
    assert cache.state() == "missing"
    fast = cache.build()
    assert fast is not None and cache.state() == "ready", json.loads((cache.path / "meta.json").read_text())
    return cache, fast


def test_st_tower_embeds_and_ranks_as_the_model(tiny_st_dir: Path, tmp_path: Path) -> None:
    enc = SentenceTransformerEncoder(str(tiny_st_dir), device="cpu")
    _, fast = _built(enc, tmp_path)
    got, want = fast.encode_text(TEXTS), enc.encode_text(TEXTS)
    np.testing.assert_allclose(got, want, atol=1e-5)
    docs = enc.encode_text(list(PROBE_TEXTS) + TEXTS, role=Role.DOCUMENT)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(cosine_rank(g, docs), cosine_rank(w, docs))
    np.testing.assert_allclose(fast.encode_text(["one"]), enc.encode_text(["one"]), atol=1e-5)  # a batch of one


def test_query_prompt_is_part_of_the_tower(prompted_st_dir: Path, tiny_st_dir: Path, tmp_path: Path) -> None:
    enc = SentenceTransformerEncoder(str(prompted_st_dir), device="cpu")
    cache, fast = _built(enc, tmp_path)
    assert json.loads((cache.path / "meta.json").read_text())["spec"]["text"]["prompt"] == "query: "
    np.testing.assert_allclose(fast.encode_text(TEXTS, role=Role.QUERY), enc.encode_text(TEXTS, role=Role.QUERY),
                               atol=1e-5)
    plain = SentenceTransformerEncoder(str(tiny_st_dir), device="cpu").encode_text(TEXTS)
    assert np.abs(fast.encode_text(TEXTS) - plain).max() > 1e-3  # the prompt changes the vectors
    # documents are not what the tower holds: they go through the model with their own prompt
    np.testing.assert_allclose(fast.encode_text(TEXTS, role=Role.DOCUMENT), enc.encode_text(TEXTS, role=Role.DOCUMENT),
                               atol=1e-6)


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_a_damaged_tower_is_never_trusted(tiny_st_dir: Path, tmp_path: Path, damage: str) -> None:
    enc = SentenceTransformerEncoder(str(tiny_st_dir), device="cpu")
    cache, _ = _built(enc, tmp_path)
    f = cache.path / "text.onnx"
    data = bytearray(f.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01  # one bit inside the weights: still a loadable model, wrong numbers
        f.write_bytes(bytes(data))
    elif damage == "truncate":
        f.write_bytes(bytes(data[: len(data) // 3]))
    else:
        f.unlink()
    fast = cache.load()
    assert fast is not None  # meta.json is intact; the file is checked when its tower is first used
    with pytest.raises(CacheDamaged):
        fast.encode_text(["a cat"])
    assert not cache.path.exists() and cache.state() == "missing"
    assert cache.build() is not None and cache.state() == "ready"


def test_a_damaged_meta_file_is_discarded(tiny_st_dir: Path, tmp_path: Path) -> None:
    enc = SentenceTransformerEncoder(str(tiny_st_dir), device="cpu")
    cache, _ = _built(enc, tmp_path)
    (cache.path / "meta.json").write_text('{"format": 1, "key": ')
    assert cache.state() == "missing" and cache.load() is None and not cache.path.exists()


def test_index_falls_back_to_the_model_and_rebuilds(tiny_st_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    enc = SentenceTransformerEncoder(str(tiny_st_dir), device="cpu")
    idx = Index(open_store(str(folder)), enc, str(folder))
    want = enc.encode_text(["a cat"])[0]
    assert idx.prepare_queries() == "ready"
    fresh = Index(open_store(str(folder)), SentenceTransformerEncoder(str(tiny_st_dir), device="cpu"), str(folder))
    np.testing.assert_allclose(fresh.embed_query("a cat"), want, atol=1e-5)
    assert fresh._query_towers() is not None and "text" in fresh._query_towers()._towers  # the tower answered
    other = Index(open_store(str(folder)), SentenceTransformerEncoder(str(tiny_st_dir), device="cpu"), str(folder))
    path = other.query_cache().path / "text.onnx"
    path.write_bytes(path.read_bytes()[:1000])
    np.testing.assert_allclose(other.embed_query("a cat"), want, atol=1e-6)  # through the model
    assert other.query_cache().state() == "missing"
    assert other.prepare_queries() == "ready"
    for i in (idx, fresh, other):
        i.close()


def test_new_weights_or_config_invalidate(st_copy: Path, tmp_path: Path) -> None:
    enc = SentenceTransformerEncoder(str(st_copy), device="cpu")
    cache, _ = _built(enc, tmp_path)
    old = cache.path
    weights = next(p for p in st_copy.rglob("*.safetensors"))
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # "new weights" under the same name
    again = QueryCache(SentenceTransformerEncoder(str(st_copy), device="cpu"), tmp_path)
    assert again.key() != cache.key() and again.state() == "missing"
    assert again.build() is not None
    assert not old.exists()  # the stale folder went with the rebuild
    # the model's constructor arguments are part of the key (offline: nothing is loaded to compute it)
    keys = {QueryCache(OfflineEncoder(**kw), tmp_path).key() for kw in ({}, {"top_k": 5}, {"blend": 0.5})}
    assert len(keys) == 3


class _Wrong(QueryTowers):
    """Towers whose export 'works' but embeds differently from the model."""

    def __init__(self, base: SentenceTransformerEncoder) -> None:
        self.base, self.exports = base, 0

    def fingerprint(self) -> dict[str, Any]:
        return {"wrong": 1}

    def reference(self) -> SentenceTransformerEncoder:
        return self.base

    def export(self, folder: Path) -> dict[str, Any]:
        self.exports += 1
        (folder / "x.bin").write_bytes(b"x")
        return {}

    def load(self, files: TowerFiles, spec: Mapping[str, Any]) -> OnnxQueryEncoder:
        def text() -> Any:
            return lambda texts: np.eye(len(texts), self.base.dim, dtype=np.float32)

        return OnnxQueryEncoder(self.base, text=text)


def test_an_unfaithful_export_is_recorded_and_not_retried(tiny_st_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    enc = SentenceTransformerEncoder(str(tiny_st_dir), device="cpu")
    wrong = _Wrong(enc)
    monkeypatch.setattr(enc, "query_towers", lambda: wrong)
    idx = Index(open_store(str(tmp_path / "idx")), enc, str(tmp_path / "idx"))
    assert idx.prepare_queries() == "failed" and idx.prepare_queries() == "failed"
    assert wrong.exports == 1
    assert "differs from the model" in json.loads((idx.query_cache().path / "meta.json").read_text())["failed"]
    np.testing.assert_allclose(idx.embed_query("a cat"), enc.encode_text(["a cat"])[0], atol=1e-6)
    idx.close()


def test_models_without_towers_are_unsupported(tmp_path: Path) -> None:
    from omniret.encoders.registry import create

    enc = create("fake")
    idx = Index(open_store(str(tmp_path / "idx")), enc, str(tmp_path / "idx"))
    assert idx.prepare_queries() == "unsupported" and not (tmp_path / "idx" / "query-cache").exists()
    assert idx.embed_query("a cat").shape == (enc.dim,)
    idx.close()


def test_the_tower_holds_its_modality_only(tiny_st_dir: Path, tmp_path: Path) -> None:
    _, fast = _built(SentenceTransformerEncoder(str(tiny_st_dir), device="cpu"), tmp_path)
    assert fast.has_tower(Modality.TEXT) and not fast.has_tower(Modality.IMAGE)


def test_a_tower_this_runtime_cannot_load_falls_back(tiny_st_dir: Path, tmp_path: Path) -> None:
    """Consistent files (checksums match) that onnxruntime refuses — e.g. an index folder copied from a
    machine with a newer onnxruntime — send the query to the model and the cache away."""
    import zlib

    folder = tmp_path / "idx"
    enc = SentenceTransformerEncoder(str(tiny_st_dir), device="cpu")
    idx = Index(open_store(str(folder)), enc, str(folder))
    assert idx.prepare_queries() == "ready"
    cache = idx.query_cache()
    junk = b"not an onnx graph" * 100
    (cache.path / "text.onnx").write_bytes(junk)
    meta = json.loads((cache.path / "meta.json").read_text())
    meta["files"]["text.onnx"] = {"size": len(junk), "crc32": zlib.crc32(junk) & 0xFFFFFFFF}
    (cache.path / "meta.json").write_text(json.dumps(meta))
    fresh = Index(open_store(str(folder)), SentenceTransformerEncoder(str(tiny_st_dir), device="cpu"), str(folder))
    np.testing.assert_allclose(fresh.embed_query("a cat"), enc.encode_text(["a cat"])[0], atol=1e-6)
    assert fresh.query_cache().state() == "missing"
    idx.close()
    fresh.close()


def test_batched_queries_go_through_the_tower_and_fall_back(tiny_st_dir: Path, tmp_path: Path) -> None:
    """Issue 13.12: with batch_queries on, the batcher fronts the ONNX tower when there is one, and a damaged
    tower still falls back to the model (through its own batcher)."""
    import threading

    folder = tmp_path / "idx"
    enc = SentenceTransformerEncoder(str(tiny_st_dir), device="cpu")
    idx = Index(open_store(str(folder)), enc, str(folder))
    assert idx.prepare_queries() == "ready"
    want = enc.encode_text(TEXTS)
    idx.close()
    idx = Index(open_store(str(folder)), SentenceTransformerEncoder(str(tiny_st_dir), device="cpu"), str(folder))
    idx.batch_queries(wait_ms=20)
    got: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, idx.embed_query(TEXTS[i])))
               for i in range(len(TEXTS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    np.testing.assert_allclose(np.stack([got[i] for i in range(len(TEXTS))]), want, atol=1e-5)
    (batcher,) = idx._batchers.values()
    assert isinstance(batcher.encoder, OnnxQueryEncoder) and sum(batcher.batch_sizes) == len(TEXTS)
    path = idx.query_cache().path / "text.onnx"
    idx.close()
    path.write_bytes(path.read_bytes()[:1000])
    idx = Index(open_store(str(folder)), SentenceTransformerEncoder(str(tiny_st_dir), device="cpu"), str(folder))
    idx.batch_queries()
    np.testing.assert_allclose(idx.embed_query("a cat"), enc.encode_text(["a cat"])[0], atol=1e-5)
    assert any(b.encoder is idx.encoder for b in idx._batchers.values())
    idx.close()
