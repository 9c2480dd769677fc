"""rerank='maxsim': PDF page candidates re-scored by exact MaxSim of the page model's token matrices
(tiny random-init ColQwen2 over real texlive PDFs; checked against the page space's own exact search)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import omniret
from omniret.methods.late_interaction import maxsim_naive

QUERY = "tables that break across pages"


@pytest.fixture(scope="module")
def paged(texdoc: Path, colqwen_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("paged")
    shutil.copy(texdoc / "carlisle" / "ltxtable.pdf", d / "ltxtable.pdf")  # 3 pages
    (d / "note.txt").write_text("A note about long tables in LaTeX and how they break across pages.\n")
    with omniret.open(d / "idx", model="fake", page_model=f"colpali:{colqwen_dir}") as idx:
        assert idx.add([str(d / "ltxtable.pdf"), str(d / "note.txt")], workers=0).failed == []
    return d / "idx"


def test_maxsim_rerank_orders_pages_by_exact_maxsim(paged: Path) -> None:
    with omniret.open(paged) as idx:
        first = idx.search(QUERY, k=20, route="all")
        again = idx.search(QUERY, k=20, route="all", rerank="maxsim", rerank_depth=20)
        ps = idx.page_space
        assert sorted(h.id for h in again) == sorted(h.id for h in first)
        pages = [h for h in again if h.id in ps.mv]
        assert len(pages) == 3
        tokens = ps.query_tokens(QUERY)
        exact = {h.id: maxsim_naive(tokens, ps.mv.tokens(h.id)) for h in pages}
        got = [h.metadata["rerank_score"] for h in pages]
        np.testing.assert_allclose(got, [exact[h.id] for h in pages], rtol=1e-4)
        assert got == sorted(got, reverse=True)  # pages in MaxSim order, in the slots pages held
        slots = [i for i, h in enumerate(first) if h.id in ps.mv]
        assert [i for i, h in enumerate(again) if h.id in ps.mv] == slots
        for i, h in enumerate(first):  # everything else keeps its place and has no re-rank score
            if h.id not in ps.mv:
                assert again[i].id == h.id and "rerank_score" not in again[i].metadata
