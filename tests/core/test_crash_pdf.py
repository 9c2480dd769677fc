"""SIGKILL an ``add`` of a large real PDF (texlive's 516-page hyperref manual) mid-file: the pages it
committed stay, the index is consistent, and a re-run continues inside the file without duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import omniret
from omniret.ingest.documents import PARTIAL
from omniret.items import make_id

SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from omniret.encoders.registry import EncoderEntry, register
register(EncoderEntry("fake", "fakes:create", "test", "fake"))
import omniret
idx = omniret.open({index!r}, model="fake")
idx.add({pdf!r}, workers=0, commit_pages=16, pdf_ocr=False)
print("done", flush=True)
"""


def _pages_done(index: str, uri: str) -> int:
    from omniret.store import open_store

    if not Path(index, "omniret.db").exists():
        return 0
    store = open_store(index)
    try:
        doc = store.get([make_id(uri)])[0]
        return int(doc.metadata.get(PARTIAL, {}).get("pages_done", 0)) if doc is not None else 0
    finally:
        store.close()


def _page_numbers(idx: omniret.Index, uri: str) -> list[int]:
    return [int(it.metadata["page"]) for it in idx.store.iter_items()
            if it.uri == uri and "page" in it.metadata and "block" not in it.metadata and "heading" not in it.metadata]


@pytest.mark.slow
def test_sigkill_mid_pdf_keeps_finished_pages_and_rerun_completes(texdoc: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "hyperref.pdf"
    pdf.write_bytes((texdoc / "hyperref" / "hyperref.pdf").read_bytes())
    uri = os.path.realpath(pdf)
    index = str(tmp_path / "idx")
    env = {**os.environ, "OMNIRET_FAKE_TEXT_DELAY": "0.002"}  # ~25 texts a page: ~0.8 s per 16-page part
    script = SCRIPT.format(tests=str(Path(__file__).resolve().parents[1]), index=index, pdf=str(pdf))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE)
    deadline = time.monotonic() + 900  # decoding 516 pages first takes ~20 s idle, minutes on a busy machine
    while _pages_done(index, uri) < 32 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _pages_done(index, uri)
    assert 32 <= done < 516, f"the kill should land mid-file, after some parts: {done} pages done"

    with omniret.open(index, model="fake") as idx:
        assert uri not in idx.store.source_states()  # not indexed yet: the next add takes it up again
        kept = _page_numbers(idx, uri)
        assert sorted(kept) == list(range(1, done + 1))  # the finished pages, each once
        ids = [it.id for it in idx.store.iter_items() if it.uri == uri and it.parent_id is not None]
        assert not np.isnan(idx.store.vectors(idx.encoder.space, ids)).any()  # and their vectors
        hits = idx.search("hyperref", k=3)
        assert hits and all(h.metadata["page"] <= done for h in hits)

        report = idx.add(str(pdf), workers=0, commit_pages=16, pdf_ocr=False)
        assert report.failed == [] and report.new == 1
        pages = _page_numbers(idx, uri)
        assert sorted(pages) == list(range(1, 517))  # every page once: resumed, no duplicates
        ids = [it.id for it in idx.store.iter_items() if it.uri == uri]
        assert len(ids) == len(set(ids)) and max(Counter(ids).values()) == 1
        doc = idx.get(make_id(uri))
        assert doc is not None and PARTIAL not in doc.metadata and idx.store.source_states()[uri].error is None
        again = idx.add(str(pdf), workers=0)
        assert again.unchanged == 1 and again.items == 0
