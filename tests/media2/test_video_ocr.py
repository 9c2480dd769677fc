"""OCR of sampled video frames (RapidOCR, real PP-OCR models from the wheel): the text of a segment is
found by BM25 and by its text vector, at the segment's timestamps."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from mediagen import make_video
from PIL import Image, ImageDraw, ImageFont

import omniret
from omniret.items import make_id
from omniret.media.video import frame_text

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("rapidocr_onnxruntime") is None and importlib.util.find_spec("rapidocr") is None,
    reason="OCR engine missing: pip install rapidocr_onnxruntime")

SIZE = (640, 360)


def word_card(word: str) -> Image.Image:
    """Black text on white with Pillow's default font, large."""
    im = Image.new("RGB", SIZE, "white")
    ImageDraw.Draw(im).text((40, 120), word, fill="black", font=ImageFont.load_default(size=96))
    return im


@pytest.fixture(scope="module")
def captioned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """rocket 0-4 s, a card reading "Volcano" 4-9 s, cat 9-13 s."""
    from skimage import data

    rocket, cat = Image.fromarray(data.rocket()), Image.fromarray(data.chelsea())
    d = tmp_path_factory.mktemp("ocrvid")
    return make_video(d / "talk.mp4", [(rocket, 4), (word_card("Volcano"), 5), (cat, 4)], size=SIZE)


def test_frame_text_dedupes_consecutive_frames() -> None:
    volcano, penguin = word_card("Volcano"), word_card("Penguin")
    assert frame_text([volcano, volcano.copy(), penguin, volcano]).split("\n") == ["Volcano", "Penguin", "Volcano"]
    assert frame_text([Image.new("RGB", SIZE, "white")]) == ""


def test_ocr_text_is_searchable_at_its_timestamp(captioned: Path, tmp_path: Path) -> None:
    with omniret.open(tmp_path / "idx", model="fake") as index:
        report = index.add(captioned, workers=0, video_segments="scenes", video_ocr=True, video_frames_per_segment=3)
        assert report.failed == []
        store = index.store
        parent = store.get([make_id(str(captioned))])[0]
        assert parent.metadata["ocr_segments"] == 1 and parent.metadata["segments"] == 3
        # BM25 (FTS5): the word finds the segment itself, which spans the card's seconds
        (seg_id, _), *_ = store.lexical("volcano", 5, None)
        seg = store.get([seg_id])[0]
        assert seg.parent_id == parent.id and seg.metadata["ocr"] == "Volcano" and seg.text == "Volcano"
        assert abs(seg.span[0] - 4.0) <= 1.0 and abs(seg.span[1] - 9.0) <= 1.0
        assert seg.metadata["label"].startswith("talk.mp4 @ 00:0")
        # the text space: the OCR child holds the text's vector and rolls up to the segment
        child_id = make_id(str(captioned), part=f"s{seg.metadata['segment']}ocr")
        child = store.get([child_id])[0]
        assert child.parent_id == seg.id and child.span == seg.span and child.text is None
        np.testing.assert_allclose(store.vectors("fake-64", [child_id])[0],
                                   index.encoder.encode_text(["Volcano"])[0], atol=2e-3)
        dense = index.search("volcano", k=1, modality="video", granularity="parent")
        assert dense[0].id == seg.id and dense[0].span == seg.span
        hybrid = index.search("volcano", k=1, modality="video", hybrid="rrf")
        assert hybrid[0].id in (seg.id, child_id) and hybrid[0].span == seg.span
        # the other segments read nothing
        others = [it for it in store.iter_items() if it.parent_id == parent.id and it.id != seg.id]
        assert len(others) == 2 and all(it.text is None and "ocr" not in it.metadata for it in others)


def test_ocr_is_off_by_default(captioned: Path, tmp_path: Path) -> None:
    with omniret.open(tmp_path / "idx", model="fake") as index:
        index.add(captioned, workers=0, video_segments="scenes", video_frames_per_segment=3)
        assert index.store.lexical("volcano", 5, None) == []
        assert all(it.text is None for it in index.store.iter_items())


def test_cli_flags(captioned: Path, tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from omniret.cli.main import cli

    idx, run = str(tmp_path / "idx"), CliRunner()
    out = run.invoke(cli, ["--index", idx, "-q", "add", str(captioned), "--model", "fake", "--workers", "0",
                           "--video-segments", "scenes", "--video-ocr"])
    assert out.exit_code == 0, out.output
    res = run.invoke(cli, ["--index", idx, "--json", "search", "volcano", "--hybrid", "rrf", "--modality", "video",
                           "-k", "1"])
    assert res.exit_code == 0, res.output
    hit = json.loads(res.output.strip().splitlines()[-1])
    assert abs(hit["span"][0] - 4.0) <= 1.0 and abs(hit["span"][1] - 9.0) <= 1.0, hit


def test_one_segment_video_carries_its_text(tmp_path: Path) -> None:
    path = make_video(tmp_path / "card.mp4", [(word_card("Penguin"), 3)], size=SIZE)
    with omniret.open(tmp_path / "idx", model="fake") as index:
        index.add(path, workers=0, video_ocr=True, video_frames_per_segment=2)
        fid = make_id(str(path))
        (video,) = index.store.get([fid])
        assert video.parent_id is None and video.text == "Penguin" and video.metadata["ocr"] == "Penguin"
        (child,) = index.store.get([make_id(str(path), part="s0ocr")])
        assert child.parent_id == fid and child.span == video.span
        assert index.store.lexical("penguin", 3, None)[0][0] == fid
