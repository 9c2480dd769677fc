"""Paged documents commit in parts: split points, the partial marker, resuming after the committed
pages, starting over when the file changed (fake encoder, a generated 10-page PDF)."""

from __future__ import annotations

import os
from pathlib import Path

from mediagen import write_text_pdf

import omniret
from omniret.ingest.documents import PARTIAL
from omniret.ingest.run import decode_file, encode_parts, resume_point, split_file
from omniret.ingest.work import DEFERRED_HASH, DecodeConfig, DecodeTask
from omniret.items import Modality, make_id


def _pdf(path: Path, word: str = "alpha") -> Path:
    return write_text_pdf(path, [[(f"Section {i} about {word}", 18), (f"Body text {i} of the {word} manual.", 11)]
                                 for i in range(1, 11)])


def _decoded(pdf: Path):  # type: ignore[no-untyped-def]
    st = pdf.stat()
    task = DecodeTask(os.path.realpath(pdf), Modality.DOCUMENT, st.st_size, st.st_mtime_ns, DEFERRED_HASH)
    return decode_file(task, DecodeConfig(None, None, None, 800, 150))


def test_split_points_and_the_partial_marker(tmp_path: Path) -> None:
    d = _decoded(_pdf(tmp_path / "m.pdf"))
    parts = split_file(d, 4)
    assert [p.pages for p in parts] == [(1, 4), (5, 8), (9, 10)] and [p.weight for p in parts] == [4, 4, 2]
    assert [(p.first, p.last) for p in parts] == [(True, False), (False, False), (False, True)]
    assert [p.pages for p in split_file(d, 4, done=8)] == [(9, 10)] and not split_file(d, 4, done=8)[0].first
    assert [p.pages for p in split_file(d, 4, done=10)] == [(10, 10)]  # only the state is left to write

    with omniret.open(tmp_path / "idx", model="fake") as idx:
        idx.store.commit(encode_parts(parts[:2], idx.encoder, 8))  # as if killed after two parts
        doc = idx.get(make_id(d.task.uri))
        assert doc is not None and doc.metadata[PARTIAL] == {"pages_done": 8, "content_hash": d.task.content_hash}
        assert d.task.uri not in idx.store.source_states()
        assert resume_point(idx.store, d) == 8
        report = idx.add(str(tmp_path / "m.pdf"), workers=0, commit_pages=4)
        assert report.new == 1 and report.failed == []
        pages = sorted(it.metadata["page"] for it in idx.store.iter_items() if "page" in it.metadata
                       and "block" not in it.metadata and "heading" not in it.metadata)
        assert pages == list(range(1, 11))
        assert PARTIAL not in idx.get(make_id(d.task.uri)).metadata  # type: ignore[union-attr]


def test_a_changed_file_starts_over(tmp_path: Path) -> None:
    pdf = _pdf(tmp_path / "m.pdf")
    d = _decoded(pdf)
    with omniret.open(tmp_path / "idx", model="fake") as idx:
        idx.store.commit(encode_parts(split_file(d, 4)[:1], idx.encoder, 8))
        _pdf(pdf, "beta")  # rewritten before the next add: the committed pages are stale
        report = idx.add(str(pdf), workers=0, commit_pages=4)
        assert report.new == 1
        items = [it for it in idx.store.iter_items() if it.uri == d.task.uri]
        texts = [it.text or "" for it in items]
        assert not any("alpha" in t for t in texts) and sum("beta" in t for t in texts) > 10
        pages = [it for it in items if "page" in it.metadata and "block" not in it.metadata and "heading" not in it.metadata]
        assert sorted(p.metadata["page"] for p in pages) == list(range(1, 11))
