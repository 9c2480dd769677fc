"""``omniret export`` / ``import``: an index to Parquet and back, the same items, vectors and hits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import omniret
from omniret.cli.main import cli
from omniret.errors import ModelMismatchError, OmniretError


def _build(tmp_path: Path, corpus: Path) -> tuple[str, np.ndarray]:
    path = str(tmp_path / "src")
    ext = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    with omniret.open(path, model="fake") as idx:
        idx.add(str(corpus), workers=0)
        idx.add_records([{"id": "rec-1", "text": "a violin concert", "metadata": {"tags": ["music"], "n": 2}}],
                        workers=0)
        idx.add_vectors(["x1", "x2", "rec-1"], ext, space="ext space/16")
    return path, ext


def _items(idx: omniret.Index) -> dict[str, omniret.Item]:
    return {it.id: it for it in idx.store.iter_items()}


def test_round_trip_keeps_items_vectors_and_hits(tmp_path: Path, corpus: Path) -> None:
    src, ext = _build(tmp_path, corpus)
    out = tmp_path / "export.parquet"
    r = CliRunner().invoke(cli, ["export", str(out), "--index", src, "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["columns"] == {"vector": "fake-64", "vector_ext_space_16": "ext space/16"}
    assert summary["vectors"] == {"fake-64": 8, "ext space/16": 3} and summary["items"] == 13

    table = pq.read_table(out)  # what LanceDB, Milvus or pandas see
    assert table.schema.field("vector").type == pa.list_(pa.float32(), 64)
    assert json.loads(table.schema.metadata[b"omniret.manifest"])["encoder"]["name"] == "fake"
    rows = table.to_pylist()
    parent = next(r for r in rows if r["uri"].endswith("rockets.md") and r["parent_id"] is None)
    assert parent["vector"] is None and parent["span_start"] is None  # a file's parent record has no vector
    assert json.loads(next(r for r in rows if r["id"] == "rec-1")["metadata"]) == {"n": 2, "tags": ["music"]}
    vecs = np.array([r["vector"] for r in rows if r["vector"] is not None], dtype=np.float32)
    assert vecs.shape == (8, 64) and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=2e-3)

    dst = str(tmp_path / "dst")  # a new index takes the file's model
    r = CliRunner().invoke(cli, ["--index", dst, "--json", "import", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert (json.loads(r.stdout)["new"], json.loads(r.stdout)["items"]) == (13, 13)
    with omniret.open(src) as a, omniret.open(dst) as b:
        assert b.encoder.name == "fake" and _items(a) == _items(b)
        for space in ("fake-64", "ext space/16"):
            ids = sorted(_items(a))
            assert np.array_equal(a.store.vectors(space, ids), b.store.vectors(space, ids), equal_nan=True)
        for q in ("rocket launch satellites", "violin", "pasta"):
            assert [(h.id, h.score) for h in a.search(q, k=5)] == [(h.id, h.score) for h in b.search(q, k=5)]
        hv = b.search(vector=ext[1], space="ext space/16", k=1)[0]
        assert hv.id == "x2" and b.store.manifest()["spaces"]["ext space/16"]["dim"] == 16
        again = b.import_parquet(out)  # ids are kept: a second import replaces, adds nothing
        assert (again.new, again.changed) == (0, 13) and b.store.count() == 13


def test_export_some_spaces_and_refusals(tmp_path: Path, corpus: Path) -> None:
    src, _ = _build(tmp_path, corpus)
    with omniret.open(src) as idx:
        rep = idx.export_parquet(tmp_path / "ext.parquet", spaces=["ext space/16"])
        assert rep.columns == {"vector_ext_space_16": "ext space/16"} and rep.vectors == {"ext space/16": 3}
        with pytest.raises(OmniretError, match="unknown space"):
            idx.export_parquet(tmp_path / "x.parquet", spaces=["nope"])
        assert not (tmp_path / "x.parquet").exists() and not (tmp_path / "x.parquet.part").exists()
        idx.export_parquet(tmp_path / "all.parquet")
    with omniret.open(str(tmp_path / "other"), model="fake-other") as other:
        with pytest.raises(ModelMismatchError, match="exported from an index of model 'fake'"):
            other.import_parquet(tmp_path / "all.parquet")
    pq.write_table(pa.table({"id": ["a"], "vector": [[1.0, 2.0]]}), tmp_path / "foreign.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with omniret.open(str(tmp_path / "n"), model="fake") as idx:
        with pytest.raises(OmniretError, match="not an omniret export.*add_vectors"):
            idx.import_parquet(tmp_path / "foreign.parquet")
        with pytest.raises(OmniretError, match="cannot read it as Parquet"):
            idx.import_parquet(tmp_path / "junk.parquet")
