"""Page hits carry the matched region's box: cell geometry, the MaxSim winner → cell → box rule on synthetic
matrices, the image-token layout the tiny random-init ColQwen2 records, and its persistence in an index."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import omniret
from omniret.encoders import registry
from omniret.encoders.colpali import ColPaliEncoder
from omniret.errors import QueryError
from omniret.spaces.multivector import MultiVectorIndex, PageLayout
from omniret.spaces.pages import cell_box, matched_region

QUERY = "tables that break across pages"


def _rows(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    m = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


# -- geometry ----------------------------------------------------------------------------------------

def test_cell_box_geometry() -> None:
    assert cell_box(0, 0, 2, 4) == (0.0, 0.0, 0.25, 0.5)
    assert cell_box(1, 3, 2, 4) == (0.75, 0.5, 1.0, 1.0)
    assert cell_box(2, 1, 5, 2) == (0.5, 0.4, 1.0, 0.6)  # row → y (top-left origin), col → x
    boxes = [cell_box(r, c, 3, 7) for r in range(3) for c in range(7)]
    assert sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in boxes) == pytest.approx(1.0)  # the cells tile the page
    assert all(0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 for x0, y0, x1, y1 in boxes)
    for bad in ((3, 0), (0, 7), (-1, 0)):
        with pytest.raises(QueryError, match="outside"):
            cell_box(*bad, 3, 7)


def test_a_query_token_equal_to_one_patch_gives_exactly_that_cell() -> None:
    page, lay = _rows(30), PageLayout(4, 5, 2)  # rows 4..13 are a 5 x 2 grid of image tokens
    for r, c in [(0, 0), (3, 1), (4, 0), (2, 1)]:
        got = matched_region(page[[4 + r * 2 + c]], page, lay)
        assert got == {"bbox": list(cell_box(r, c, 5, 2)), "cells": 1, "grid": [5, 2], "tokens": 1}
    assert matched_region(page[[20, 2]], page, lay) is None  # winners are prompt/text rows: no region


def test_region_rule_keeps_cells_within_half_the_best_contribution() -> None:
    page, lay = _rows(30, seed=1), PageLayout(4, 5, 2)
    a, b = 4 + 0 * 2 + 0, 4 + 4 * 2 + 1  # cells (0, 0) and (4, 1)
    q = page[[a, a, a, b, b, 25]]  # cell (0, 0) explains 3.0 of the score, (4, 1) 2.0; row 25 is a text token
    got = matched_region(q, page, lay)
    assert got is not None and got["bbox"] == [0.0, 0.0, 1.0, 1.0] and got["cells"] == 2 and got["tokens"] == 5
    only = matched_region(q, page, lay, keep=0.7)
    assert only is not None and only["bbox"] == list(cell_box(0, 0, 5, 2)) and only["tokens"] == 3
    with pytest.raises(QueryError, match="keep"):
        matched_region(q, page, lay, keep=0.0)


def test_multivector_stores_layouts_and_checks_them(tmp_path: Path) -> None:
    mv = MultiVectorIndex(tmp_path, "pages", 16)
    mv.add(["a", "b"], [_rows(30), _rows(12, seed=2)], [PageLayout(4, 5, 2), None])
    with pytest.raises(QueryError, match="does not fit"):
        mv.add(["c"], [_rows(10)], [PageLayout(4, 5, 2)])  # 4 + 10 rows > 10
    with pytest.raises(QueryError, match="layouts"):
        mv.add(["c"], [_rows(10)], [None, None])
    mv.add(["c"], [_rows(20, seed=3)])  # no layouts: unknown
    again = MultiVectorIndex(tmp_path, "pages", 16)
    assert (again.layout("a"), again.layout("b"), again.layout("c")) == (PageLayout(4, 5, 2), None, None)
    again.remove(["b"])
    again.compact()
    assert sorted(p.name for p in (tmp_path / "multivector" / "pages").glob("seg-*.layout.npy")) == \
        ["seg-000003.layout.npy"]
    assert MultiVectorIndex(tmp_path, "pages", 16).layout("a") == PageLayout(4, 5, 2)


# -- the tiny ColQwen2 ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def enc(colqwen_dir: Path) -> ColPaliEncoder:
    return registry.create_page_model(f"colpali:{colqwen_dir}", device="cpu")  # type: ignore[no-any-return]


def test_colqwen_layout_is_the_merged_image_grid(enc: ColPaliEncoder) -> None:
    from skimage import data

    pages = [Image.fromarray(data.page()).convert("RGB"), Image.new("RGB", (200, 300), "white"),
             Image.fromarray(data.coffee())]
    mats, layouts = enc.encode_pages_with_layout(pages)
    _, proc = enc._load()
    inputs = proc.process_images(images=pages, return_tensors="pt")
    merge = proc.image_processor.merge_size
    for m, lay, ids, mask, thw in zip(mats, layouts, inputs["input_ids"], inputs["attention_mask"],
                                      inputs["image_grid_thw"], strict=True):
        assert lay is not None
        kept = ids[mask.bool()].numpy()
        image_rows = np.flatnonzero(kept == proc.image_token_id)
        assert list(image_rows) == list(range(lay.start, lay.start + lay.rows * lay.cols))
        assert (lay.rows, lay.cols) == (int(thw[1]) // merge, int(thw[2]) // merge)
        assert len(m) == len(kept)
    assert layouts[0] is not None and layouts[0].rows < layouts[0].cols  # 191 x 384 (h x w): landscape
    assert layouts[1] is not None and layouts[1].rows > layouts[1].cols  # 300 x 200: portrait
    for got, want in zip(mats, enc.encode_pages(pages), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    # one known patch of a real page matrix as the query: its cell is the region
    m, lay = mats[0], layouts[0]
    r, c = lay.rows - 1, lay.cols // 2
    got = matched_region(m[[lay.start + r * lay.cols + c]], m, lay)
    assert got is not None and got["bbox"] == list(cell_box(r, c, lay.rows, lay.cols)) and got["cells"] == 1


# -- in an index -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(texdoc: Path, colqwen_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    docs = tmp_path_factory.mktemp("rdocs")
    shutil.copy(texdoc / "amsmath" / "amsxtra.pdf", docs / "amsxtra.pdf")  # 2 pages
    d = tmp_path_factory.mktemp("ridx") / "idx"
    with omniret.open(d, model="fake", page_model=f"colpali:{colqwen_dir}") as index:
        assert index.add(docs, workers=0).failed == []
    return d


def _check_region(h: omniret.Hit) -> None:
    reg = h.metadata["region"]
    x0, y0, x1, y1 = reg["bbox"]
    assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 and reg["cells"] >= 1 and reg["tokens"] >= 1
    rows, cols = reg["grid"]
    assert rows > cols  # a portrait page
    assert x0 * cols == pytest.approx(round(x0 * cols)) and y1 * rows == pytest.approx(round(y1 * rows))  # grid lines
    assert h.span is not None and h.metadata["page"] == h.span[0]  # and the page number


def test_page_hits_carry_their_region_and_it_persists(built: Path, tmp_path: Path) -> None:
    with omniret.open(built) as index:
        ps = index.page_space
        assert ps is not None
        hits = index.search_pages(QUERY, k=2)
        assert len(hits) == 2
        q = ps.query_tokens(QUERY)
        for h in hits:
            _check_region(h)
            layout = ps.mv.layout(h.id)
            assert layout is not None and h.metadata["region"] == matched_region(q, ps.mv.tokens(h.id), layout)
        merged = index.search(QUERY, route="document", k=3)
        marked = [h for h in merged if "matched_by" in h.metadata]
        assert marked and all("region" in h.metadata for h in marked)
        assert not any("region" in h.metadata for h in merged if "matched_by" not in h.metadata)
        first = {h.id: h.metadata["region"] for h in hits}
    with omniret.open(built) as again:  # persisted with the matrices
        assert {h.id: h.metadata["region"] for h in again.search_pages(QUERY, k=2)} == first
    old = tmp_path / "old"
    shutil.copytree(built, old)
    for f in (old / "multivector" / "pages").glob("*.layout.npy"):
        f.unlink()  # a folder written before layouts were recorded: still readable, hits without a region
    with omniret.open(old) as idx:
        hits = idx.search_pages(QUERY, k=2)
        assert len(hits) == 2 and not any("region" in h.metadata for h in hits)


def test_cli_json_shows_the_region(built: Path) -> None:
    from omniret.cli.main import cli

    res = CliRunner().invoke(cli, ["--index", str(built), "--json", "search", QUERY, "--route", "document", "-k", "2"])
    assert res.exit_code == 0, res.output
    hits = [json.loads(line) for line in res.stdout.splitlines()]
    assert any("region" in h["metadata"] and len(h["metadata"]["region"]["bbox"]) == 4 for h in hits)
