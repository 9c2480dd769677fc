"""Ray ingest feeds the page space: PDFs added through ray_add get the same page matrices and layouts as
the single-machine path (a tiny random-init ColQwen2 rebuilt in the encoder actor from its folder)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import omniret
from omniret.ingest.work import IngestOptions
from omniret.items import Modality

ray = pytest.importorskip("ray")
from omniret.ingest.ray import RayOptions, ray_add  # noqa: E402


@pytest.fixture(scope="module")
def docs(texdoc: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = texdoc
    d = tmp_path_factory.mktemp("docs")
    shutil.copy(base / "amsmath" / "amsxtra.pdf", d / "amsxtra.pdf")  # 2 pages
    shutil.copy(base / "carlisle" / "ltxtable.pdf", d / "ltxtable.pdf")  # 3 pages
    (d / "note.txt").write_text("A note about long tables in LaTeX documents.\n")
    return d


@pytest.fixture(scope="module")
def colqwen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from multivector.tiny_colqwen import build

    return build(tmp_path_factory.mktemp("colqwen2") / "ckpt")


def _pages(idx: omniret.Index) -> list[str]:
    return sorted(it.id for it in idx.store.iter_items()
                  if it.modality is Modality.DOCUMENT and "page" in it.metadata and "block" not in it.metadata)


@pytest.mark.slow  # ~45 s on 2 cores, most of it starting Ray and its actors
def test_ray_add_embeds_pages_like_the_local_ingest(local_ray: None, docs: Path, colqwen: Path,
                                                     tmp_path: Path) -> None:
    model, src = f"colpali:{colqwen}", tmp_path / "src"
    shutil.copytree(docs, src)
    with omniret.open(tmp_path / "local", model="fake", page_model=model) as ref:
        assert ref.add([str(src)], workers=0).failed == []
        rps = ref.page_space
        assert rps is not None
        want = {i: (rps.mv.tokens(i), rps.mv.layout(i)) for i in rps.mv.ids()}
    with omniret.open(tmp_path / "ray", model="fake", page_model=model) as idx:
        report = ray_add([str(src)], idx, IngestOptions(), ray_options=RayOptions(files_per_batch=2, decode_batch=1))
        assert report.failed == [] and report.new == 3
        ps = idx.page_space
        assert ps is not None and sorted(ps.mv.ids()) == _pages(idx) == sorted(want) and len(ps) == 5
        for i, (mat, layout) in want.items():
            np.testing.assert_array_equal(ps.mv.tokens(i), mat)  # the same float16 rows, bit for bit
            assert ps.mv.layout(i) == layout and layout is not None
        hits = idx.search_pages("tables that break across pages", k=2)
        assert len(hits) == 2 and all("region" in h.metadata for h in hits)
        # a removed file through Ray (prune): its pages leave the multi-vector stage
        (src / "ltxtable.pdf").unlink()
        ray_add([str(src)], idx, IngestOptions(prune=True))
        assert len(ps) == 2 and sorted(ps.mv.ids()) == _pages(idx)
