"""Prepare builders and loaders on tiny fixtures (real package data only where installed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from omniret.errors import OmniretError
from omniret.eval import openclipart, prepare


def _clip(i: int, subjects: tuple[str, ...], path: str = "") -> openclipart.ClipArt:
    return openclipart.ClipArt(f"x/{i}", path or f"/tmp/{i}.png", f"title {i}", subjects)


def test_composed_queries_follow_the_keyword_rule() -> None:
    corpus = [_clip(0, ("cat", "black")), _clip(1, ("cat", "white")), _clip(2, ("cat", "white", "fat")),
              _clip(3, ("dog", "black")), _clip(4, ("dog", "red"))]
    queries, qrels = prepare.composed_queries(corpus, max_queries=100, seed=0)
    got = {(q.extra["reference_id"], q.content): set(qrels[q.id]) for q in queries}
    assert got[("x/0", "white")] == {"x/1", "x/2"}
    assert got[("x/1", "black")] == {"x/0"} and got[("x/3", "red")] == {"x/4"}
    assert all(q.extra["reference_id"] not in qrels[q.id] for q in queries)
    few, _ = prepare.composed_queries(corpus, max_queries=2, seed=0)
    assert len(few) == 2


def _write_set(folder: Path, corpus: list[openclipart.ClipArt]) -> None:
    folder.mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as f:
        f.writelines(json.dumps({**c.__dict__, "subjects": list(c.subjects)}) + "\n" for c in corpus)
    for task, (qs, rel) in (("title", openclipart.title_task(corpus)), ("keyword", openclipart.keyword_task(corpus, 1))):
        (folder / f"queries_{task}.jsonl").write_text("".join(json.dumps({"qid": q, "text": t}) + "\n" for q, t in qs.items()))
        (folder / f"qrels_{task}.jsonl").write_text(
            "".join(json.dumps({"qid": q, "doc_id": d, "rel": 1}) + "\n" for q, ds in rel.items() for d in ds))


def test_openclipart_loader_subsets_and_tasks(tmp_path: Path) -> None:
    corpus = [_clip(i, ("cat", "black" if i % 2 else "white")) for i in range(10)]
    _write_set(tmp_path / "oca", corpus)
    full = prepare.load_prepared(tmp_path / "oca", task="title")
    assert len(full.corpus) == 10 and len(full.queries) == 10 and full.corpus[0].metadata["title"] == "title 0"
    sub = prepare.load_prepared(tmp_path / "oca", task="title", subset=4, seed=1)
    assert len(sub.corpus) == 4 and len(sub.queries) == 4  # queries without an image left are dropped
    assert sub.corpus == prepare.load_prepared(tmp_path / "oca", task="title", subset=4, seed=1).corpus
    comp = prepare.load_prepared(tmp_path / "oca", task="composed")
    assert comp.task == "composed" and comp.queries and comp.queries[0].content in ("black", "white")
    with pytest.raises(OmniretError, match="unknown Open Clip Art task"):
        prepare.load_prepared(tmp_path / "oca", task="nope")


def test_pdf_headings_from_toc_lines() -> None:
    pages = [["Contents", "1 Introduction . . . . . 2", "1.1 Usage of things . . . . 3", "2 Options . . . . . 3",
              "9 Missing part . . . . 9"],
             ["1 Introduction", "text"], ["1.1 Usage of things", "more", "2 Options"]]
    assert prepare.pdf_headings(pages) == [("Introduction", 1), ("Usage of things", 2), ("Options", 2)]


def test_sounds_builder_on_a_fixture_folder(tmp_path: Path) -> None:
    src = tmp_path / "pkg" / "sounds" / "animals"
    src.mkdir(parents=True)
    for name in ("cat", "dog"):
        (src / f"{name}.mp3").write_bytes(b"ID3")
    counts = prepare.prepare_sounds(tmp_path / "out", tmp_path / "pkg")
    assert counts == {"sounds": 2, "queries": 4}
    ds = prepare.load_prepared(tmp_path / "out")
    assert {d.id for d in ds.corpus} == {"cat", "dog"} and ds.qrels["s0000"] == {"cat": 1.0}
    with pytest.raises(OmniretError, match="no sounds"):
        prepare.prepare_sounds(tmp_path / "o2", tmp_path / "out")


def test_pdfs_builder_on_the_installed_texlive_docs(texdoc: Path, tmp_path: Path) -> None:
    """On texlive's PDFs where scripts/test-data.sh unpacks them (the ``texdoc`` fixture)."""
    counts = prepare.prepare_pdfs(tmp_path / "pdfs", texdoc, max_pdfs=3)
    assert counts["pdfs"] >= 1 and counts["queries"] >= 3
    ds = prepare.load_prepared(tmp_path / "pdfs")
    assert all(Path(d.content).is_file() for d in ds.corpus)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None or not Path("/usr/share/openclipart").is_dir(),
                    reason="needs apt-get install openclipart-png openclipart-svg")
def test_openclipart_builder_on_the_installed_package(tmp_path: Path) -> None:
    counts = prepare.prepare_openclipart(Path("/usr/share/openclipart"), tmp_path / "oca")
    assert counts["images"] > 1000 and counts["title_queries"] > 100
