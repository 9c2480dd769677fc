"""A page model in an index, end to end: real texlive PDFs → ColQwen2 (tiny, random-init) page matrices in the
multi-vector stage → MUVERA + MaxSim search merged with the main space → removal → reopening.

Random weights make rankings meaningless; these tests check the mechanics against references."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import omniret
from omniret.errors import ModelMismatchError, QueryError
from omniret.index import Index
from omniret.items import Modality
from omniret.methods.gap import cohort_tnorm
from omniret.methods.late_interaction import maxsim_naive

QUERY = "tables that break across pages"


@pytest.fixture(scope="module")
def docs(texdoc: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("docs")
    shutil.copy(texdoc / "carlisle" / "ltxtable.pdf", d / "ltxtable.pdf")  # 3 pages
    shutil.copy(texdoc / "amsmath" / "amsxtra.pdf", d / "amsxtra.pdf")  # 2 pages
    (d / "note.txt").write_text("A note about long tables in LaTeX documents and how they break across pages.\n")
    return d


@pytest.fixture(scope="module")
def built(docs: Path, colqwen_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("idx") / "idx"
    with omniret.open(d, model="fake", page_model=f"colpali:{colqwen_dir}") as index:
        report = index.add(docs, workers=1)  # a decode worker process: rendered pages travel as PNG bytes
        assert report.failed == [] and report.new == 3
    return d


@pytest.fixture
def index(built: Path) -> Iterator[Index]:
    with omniret.open(built) as idx:  # no flags: the manifest restores the page model
        yield idx


def _pages(index: Index) -> list[str]:
    return sorted(it.id for it in index.store.iter_items()
                  if it.modality is Modality.DOCUMENT and "page" in it.metadata and "block" not in it.metadata)


def test_pages_are_embedded_into_the_multivector_stage(index: Index, built: Path, colqwen_dir: Path) -> None:
    manifest = index.store.manifest()
    assert manifest["page_encoder"]["name"] == f"colpali:{colqwen_dir}"
    assert manifest["page_encoder"]["dim"] == 16 and manifest["page_encoder"]["storage"] == "multivector/pages"
    ps = index.page_space
    assert ps is not None and ps.encoder.name == f"colpali:{colqwen_dir}"
    folder = built / "multivector" / "pages"
    assert (folder / "meta.json").is_file() and list(folder.glob("seg-*.tokens.npy"))
    pages = _pages(index)
    assert len(pages) == 5 and sorted(ps.mv.ids()) == pages  # every page, nothing else (no blocks, no files)
    assert index.info()["pages_embedded"] == 5 and index.info()["page_model"] == ps.encoder.name
    for pid in pages:
        m = ps.mv.tokens(pid)
        assert m.ndim == 2 and m.shape[1] == 16 and m.shape[0] > 10
        np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, atol=2e-3)  # float16 storage


def test_page_matrices_are_the_encoder_output_of_the_rendered_page(index: Index, docs: Path) -> None:
    import pypdfium2 as pdfium

    from omniret.items import make_id
    from omniret.media.pdf import render_page

    ps = index.page_space
    assert ps is not None
    doc = pdfium.PdfDocument(str(docs / "ltxtable.pdf"))
    try:
        image = render_page(doc[1], ps.encoder.page_size)
    finally:
        doc.close()
    want = ps.encoder.encode_pages([image])[0]
    got = ps.mv.tokens(make_id(str((docs / "ltxtable.pdf").resolve()), part="p2"))
    np.testing.assert_allclose(got, want.astype(np.float16).astype(np.float32), atol=1e-6)


def test_search_pages_is_brute_force_maxsim_with_enough_candidates(index: Index) -> None:
    ps = index.page_space
    assert ps is not None
    q = ps.query_tokens(QUERY)
    ref = sorted(((maxsim_naive(q, ps.mv.tokens(i)), i) for i in ps.mv.ids()), key=lambda t: -t[0])
    hits = index.search_pages(QUERY, k=5, candidates=5)
    assert [h.id for h in hits] == [i for _, i in ref]
    np.testing.assert_allclose([h.score for h in hits], [s for s, _ in ref], rtol=1e-5)
    assert all(h.span is not None and h.span[0] == h.metadata["page"] for h in hits)  # hits carry the page number
    assert [h.id for h in index.search_pages(QUERY, k=2, candidates=5)] == [i for _, i in ref[:2]]


def test_search_merges_page_hits_with_the_main_space(index: Index, colqwen_dir: Path) -> None:
    ps = index.page_space
    assert ps is not None
    hits = index.search(QUERY, k=100, granularity="item")  # as found: a page scored by the page space alone
    via_pages = [h for h in hits if h.metadata.get("matched_by") == f"colpali:{colqwen_dir}"]
    assert via_pages, "the page space contributed no hit"
    assert {h.modality for h in hits} == {Modality.DOCUMENT, Modality.TEXT}  # pages, blocks, note chunks
    # page hits are calibrated: T-norm of raw MaxSim against the cohort (all 5 pages here)
    q = ps.query_tokens(QUERY)
    raw = {i: maxsim_naive(q, ps.mv.tokens(i)) for i in ps.mv.ids()}
    cohort = np.array(list(raw.values()))
    for h in via_pages:
        assert h.span is not None and "page" in h.metadata and "block" not in h.metadata
        assert h.score == pytest.approx(float(cohort_tnorm(np.array([raw[h.id]]), cohort)[0]), rel=1e-4)


def test_routes_and_granularity(index: Index) -> None:
    docs = index.search(QUERY, route="document", k=100)
    assert docs and all(h.modality is Modality.DOCUMENT for h in docs)
    assert any("matched_by" in h.metadata for h in docs)
    for route in ("text", "image", "video"):
        assert not any("matched_by" in h.metadata for h in index.search(QUERY, route=route, k=100))
    roots = index.search(QUERY, route="document", granularity="root", k=10)
    assert sorted(h.metadata["name"] for h in roots) == ["amsxtra.pdf", "ltxtable.pdf"]
    assert all(h.parent_id is None for h in roots)
    # with the page space alone (hubness/hybrid stages exclude it) no hit is marked
    assert not any("matched_by" in h.metadata for h in index.search(QUERY, hybrid="rrf", k=100))
    only = index.search(QUERY, path_glob="*amsxtra.pdf", route="document", k=100)
    assert only and all(h.uri.endswith("amsxtra.pdf") for h in only)


def test_remove_changed_file_and_reopen(built: Path, docs: Path, texdoc: Path, colqwen_dir: Path,
                                        tmp_path: Path) -> None:
    d = tmp_path / "idx"
    shutil.copytree(built, d)
    with pytest.raises(ModelMismatchError, match="page model"):
        omniret.open(d, page_model="colpali:/some/other/model")
    with omniret.open(d) as idx:
        assert idx.remove([str(docs / "ltxtable.pdf")]) > 0
        assert idx.page_space is not None and len(idx.page_space) == 2
        assert all(h.uri.endswith("amsxtra.pdf") for h in idx.search_pages(QUERY, k=5))
    removed = json.loads((d / "multivector" / "pages" / "removed.json").read_text())
    assert len(removed) == 3
    with omniret.open(d) as idx:  # persisted
        assert idx.page_space is not None and len(idx.page_space) == 2
        assert not any("ltxtable" in h.uri for h in idx.search(QUERY, k=100))
        # a changed file with fewer pages: its old page 2 goes from the multi-vector stage too
        changed = tmp_path / "docs"
        changed.mkdir()
        shutil.copy(texdoc / "base" / "ltnews11.pdf", changed / "amsxtra.pdf")  # 1 page under the old name
        shutil.copy(docs / "amsxtra.pdf", tmp_path / "keep.pdf")
    with omniret.open(d) as idx:
        report = idx.add(changed, workers=0)
        assert report.failed == [] and report.new == 1
        assert idx.page_space is not None and len(idx.page_space) == 3  # 2 (old copy) + 1 (new file)
        assert sorted(idx.page_space.mv.ids()) == _pages(idx)
        idx.remove([str(docs / "amsxtra.pdf")])
        assert sorted(idx.page_space.mv.ids()) == _pages(idx) and len(idx.page_space) == 1


def test_index_without_a_page_model(tmp_path: Path, docs: Path) -> None:
    with omniret.open(tmp_path / "plain", model="fake") as idx:
        assert idx.page_space is None and "page_encoder" not in idx.store.manifest()
        with pytest.raises(QueryError, match="page_model"):
            idx.search_pages(QUERY)


def test_cli_page_model(docs: Path, colqwen_dir: Path, tmp_path: Path) -> None:
    from omniret.cli.main import cli

    idx = str(tmp_path / "cli")
    run = CliRunner()
    out = run.invoke(cli, ["--index", idx, "-q", "add", str(docs / "amsxtra.pdf"), "--model", "fake",
                           "--page-model", f"colpali:{colqwen_dir}", "--workers", "0"])
    assert out.exit_code == 0, out.output
    with omniret.open(idx) as index:
        assert index.page_space is not None and len(index.page_space) == 2
    res = run.invoke(cli, ["--index", idx, "--json", "search", QUERY, "--route", "document", "-k", "3"])
    assert res.exit_code == 0, res.output
    hits = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(hits) == 2 and any("matched_by" in h["metadata"] for h in hits)  # its 2 pages, each once
    bad = run.invoke(cli, ["--index", str(tmp_path / "bad"), "add", str(docs), "--model", f"colpali:{colqwen_dir}"])
    assert bad.exit_code != 0 and "page_model" in bad.output


def test_textless_page_feeds_both_spaces_from_one_render(tmp_path: Path, colqwen_dir: Path) -> None:
    """A scanned page (no text layer, OCR off): the main encoder embeds its pixels, the page model its PNG."""
    from PIL import Image
    from skimage import data

    src = tmp_path / "scan"
    src.mkdir()
    Image.fromarray(data.page()).convert("RGB").save(src / "scan.pdf", resolution=72.0)
    with omniret.open(tmp_path / "idx", model="fake", page_model=f"colpali:{colqwen_dir}") as idx:
        report = idx.add(src, workers=0, pdf_ocr=False)
        assert report.failed == [] and report.unembedded == 0
        (page,) = _pages(idx)
        assert idx.page_space is not None and idx.page_space.mv.ids() == [page]
        assert not np.isnan(idx.store.vectors(idx.encoder.space, [page])).any()
        assert idx.search_pages("a scanned page", k=1)[0].id == page
