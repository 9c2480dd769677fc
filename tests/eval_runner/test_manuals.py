"""The manuals set: heading → page judgements from real outlines, page-level runs, the TF-IDF baseline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from omniret.errors import OmniretError
from omniret.eval import baselines, manuals, prepare, runner
from omniret.eval.datasets.base import EvalQuery, page_ref
from omniret.items import Hit, Modality
from omniret.media.pdf import open_pdf


def test_heading_queries_drop_numbering_and_too_short_titles() -> None:
    assert manuals.heading_query("2.7.3  Apt   pinning") == "Apt pinning"
    assert manuals.heading_query("Chapter 4 Installation") == "Installation"
    assert manuals.heading_query("A.1 Options") == "Options"
    assert manuals.heading_query("A Brief Introduction") == "A Brief Introduction"
    assert manuals.heading_query("1.2 Ab") is None and manuals.heading_query("3.1 42") is None


def test_judgements_pool_pages_of_equal_titles_across_manuals() -> None:
    queries, counts = manuals.manual_judgements({"a.pdf": [("1 Syntax", 3), ("2 Examples", 5), ("Syntax", 9)],
                                                 "b.pdf": [("Syntax", 2), ("Ok", 1)]})
    assert counts == {"headings": 5, "queries": 2}
    by_text = {q["text"]: q["relevant"] for q in queries}
    assert by_text == {"Examples": ["a.pdf#p5"], "Syntax": ["a.pdf#p3", "a.pdf#p9", "b.pdf#p2"]}
    assert page_ref("a.pdf#p12") == ("a.pdf", 12) and page_ref("a.pdf") is None


@pytest.fixture
def page_set(texdoc: Path, tmp_path: Path) -> Path:
    """Two real texlive manuals (one stripped of its outline) as a page-level judged set."""
    root = tmp_path / "set"
    root.mkdir()
    src = texdoc / "carlisle" / "ltxtable.pdf"
    shutil.copy(texdoc / "amsmath" / "amsxtra.pdf", root / "amsxtra.pdf")
    manuals.strip_outline(src, root / "ltxtable.pdf")
    assert open_pdf(root / "ltxtable.pdf").outline == () and open_pdf(root / "ltxtable.pdf").pages == 3
    queries = [{"id": "q0", "text": "longtable meets tabularx", "relevant": ["ltx#p1"]},
               {"id": "q1", "text": "amsxtra accents", "relevant": ["amsxtra.pdf#p1", "amsxtra.pdf#p2"]}]
    corpus = [{"id": "ltx", "document": "ltxtable.pdf"}, {"id": "amsxtra.pdf", "document": "amsxtra.pdf"}]
    prepare.write_jsonl_set(root, corpus, queries)
    return root


def test_page_level_set_loads_and_rejects_pages_of_unknown_documents(page_set: Path) -> None:
    ds = prepare.load_prepared(page_set)
    assert ds.page_level and len(ds.corpus) == 2
    bad = page_set / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "text": "t", "relevant": ["nope.pdf#p1"]}) + "\n")
    with pytest.raises(OmniretError, match="not in the corpus"):
        from omniret.eval.datasets.jsonl import load

        load(bad, corpus=page_set / "corpus.jsonl")


def test_hits_map_to_pages_and_tfidf_ranks_pages(page_set: Path) -> None:
    ds = prepare.load_prepared(page_set)
    uri = str((page_set / "ltxtable.pdf").resolve())
    page = Hit("i", 1.0, Modality.DOCUMENT, uri, metadata={"page": 2})
    whole = Hit("d", 1.0, Modality.DOCUMENT, uri, metadata={})
    assert runner.hit_doc(page, {uri: "ltx"}, True) == "ltx#p2" and runner.hit_doc(whole, {uri: "ltx"}, True) == "ltx"
    assert runner.hit_doc(page, {uri: "ltx"}, False) == "ltx"
    texts = baselines.page_texts(ds)
    assert sorted(texts) == ["amsxtra.pdf#p1", "amsxtra.pdf#p2", "ltx#p1", "ltx#p2", "ltx#p3"]
    run = baselines.tfidf_run(texts, [EvalQuery("q", "longtable tabularx", Modality.TEXT)], depth=50)
    assert next(iter(run["q"])).startswith("ltx#p") and all(v > 0 for v in run["q"].values())


def test_run_eval_scores_pages_with_the_default_search(page_set: Path, tmp_path: Path) -> None:
    ds = prepare.load_prepared(page_set)
    cfg = runner.EvalConfig(model="fake", methods=("raw", "items", "tfidf"), bank_fraction=0.0,
                            cache_dir=str(tmp_path / "cache"))
    result = runner.run_eval(ds, cfg)
    assert result.n_corpus == 2 + 5 and result.test_queries == ["q0", "q1"]  # documents + their pages
    for m in result.methods:
        ids = {d for docs in m.run.values() for d in docs}
        assert ids and all(page_ref(d) is not None for d in ids), m.method  # every ranked unit is a page
        assert 0.0 <= m.metrics["recall@5"] <= 1.0
    tfidf = next(m for m in result.methods if m.method == "tfidf")
    assert tfidf.metrics["recall@1"] == 1.0  # the words of both queries are on their pages
