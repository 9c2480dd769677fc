"""Segments at scene cuts: the content rule on its own, on a PyAV video of real photos, and through ingest + search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mediagen import make_video
from PIL import Image

import omniret
from omniret.errors import MediaError, OmniretError
from omniret.media import decode
from omniret.media.scenes import ShotSplitter, content_score, hsv_signature, scene_starts


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    from skimage import data

    return {"rocket": Image.fromarray(data.rocket()), "cat": Image.fromarray(data.chelsea()),
            "coffee": Image.fromarray(data.coffee())}


@pytest.fixture(scope="module")
def uneven(photos: dict[str, Image.Image], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """rocket 0-3 s, cat 3-11 s, coffee 11-17 s (uneven shots, none on the 10 s grid)."""
    d = tmp_path_factory.mktemp("scenes")
    return make_video(d / "uneven.mp4", [(photos["rocket"], 3), (photos["cat"], 8), (photos["coffee"], 6)])


def test_content_score_is_the_mean_hsv_difference() -> None:
    a = np.zeros((2, 2, 3), dtype=np.float32)
    b = a.copy()
    b[0, 0] = [30, 60, 90]  # one pixel of four changes: channel means 7.5, 15, 22.5
    assert content_score(a, a) == 0.0
    assert content_score(a, b) == pytest.approx((7.5 + 15 + 22.5) / 3)
    with pytest.raises(MediaError, match="hsv_signature"):
        content_score(a, np.zeros((3, 2, 3), dtype=np.float32))


def test_cut_rule_threshold_min_and_max_length() -> None:
    dark, light = np.zeros((4, 4, 3), np.float32), np.full((4, 4, 3), 100.0, np.float32)
    sigs = [dark, dark, light, dark, dark, dark, dark, dark, dark, dark, dark, dark, dark]
    times = [float(t) for t in range(len(sigs))]
    # cut at 2 (score 100); 3 is only 1 s later (< min 2 s): no cut; 13 s long → split at 2 + 5 and 7 + 5
    assert scene_starts(times, sigs, threshold=27.0, min_seconds=2.0, max_seconds=5.0) == [0.0, 2.0, 7.0, 12.0]
    # a threshold above the score: only the length cap splits
    assert scene_starts(times, sigs, threshold=101.0, min_seconds=2.0, max_seconds=5.0) == [0.0, 5.0, 10.0]
    assert scene_starts(times, sigs, threshold=27.0, min_seconds=0.0, max_seconds=100.0) == [0.0, 2.0, 3.0]
    with pytest.raises(MediaError, match="threshold > 0"):
        ShotSplitter(threshold=0.0)


def test_real_photos_score_far_above_the_threshold(photos: dict[str, Image.Image]) -> None:
    r, c = hsv_signature(photos["rocket"]), hsv_signature(photos["cat"])
    assert r.shape[1] == 64 and content_score(r, c) > 27.0
    assert content_score(c, hsv_signature(photos["cat"].resize((300, 200)))) < 5.0


def test_scene_segments_follow_the_shots(uneven: Path) -> None:
    fixed = decode(uneven, "video")
    assert [(s.start, s.end) for s in fixed.segments] == [(0.0, 10.0), (10.0, 17.0)]
    video = decode(uneven, "video", segments="scenes")
    starts = [s.start for s in video.segments]
    assert len(starts) == 3 and starts[0] == 0.0
    assert abs(starts[1] - 3.0) <= 1.0 and abs(starts[2] - 11.0) <= 1.0  # ± one sample at 1 fps
    assert [s.end for s in video.segments] == [starts[1], starts[2], 17.0]
    for seg in video.segments:  # every kept frame lies inside its segment
        assert all(seg.start <= t < seg.end for t in seg.frame_times)


def test_long_shot_is_split_at_the_fixed_length(photos: dict[str, Image.Image], tmp_path: Path) -> None:
    path = make_video(tmp_path / "long.mp4", [(photos["cat"], 23), (photos["rocket"], 4)])
    video = decode(path, "video", segments="scenes", segment_seconds=10.0)
    starts = [s.start for s in video.segments]
    assert starts[:3] == [0.0, 10.0, 20.0] and len(starts) == 4 and abs(starts[3] - 23.0) <= 1.0


def test_unknown_mode_is_refused(uneven: Path, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="choose from fixed, scenes"):
        decode(uneven, "video", segments="shots")
    with omniret.open(tmp_path / "idx", model="fake") as index, pytest.raises(OmniretError, match="video_segments"):
        index.add(uneven, workers=0, video_segments="shots")


def test_scene_segments_through_ingest_and_search(uneven: Path, photos: dict[str, Image.Image], tmp_path: Path) -> None:
    with omniret.open(tmp_path / "idx", model="fake") as index:
        report = index.add(uneven, workers=0, video_segments="scenes", video_frames_per_segment=4)
        assert report.failed == [] and report.items == 4
        segs = sorted((it for it in index.store.iter_items() if it.parent_id), key=lambda i: i.span)
        assert len(segs) == 3 and segs[-1].span[1] == 17.0
        parent = next(it for it in index.store.iter_items() if it.parent_id is None)
        assert parent.metadata["segmentation"] == "scenes" and parent.metadata["segments"] == 3
        for name, (t0, t1) in {"rocket": (0, 3), "cat": (3, 11), "coffee": (11, 17)}.items():
            photos[name].save(tmp_path / f"{name}.png")
            hit = index.search(image=tmp_path / f"{name}.png", k=1, modality="video")[0]
            assert hit.parent_id == parent.id
            assert abs(hit.span[0] - t0) <= 1.0 and abs(hit.span[1] - t1) <= 1.0, (name, hit.span)


def test_a_cut_just_after_a_length_split_is_kept() -> None:
    a, b = np.zeros((4, 4, 3), np.float32), np.full((4, 4, 3), 100.0, np.float32)
    times = [float(t) for t in range(14)]
    sigs = [a] * 11 + [b] * 3  # one 11 s shot, then a cut at 11: split at 10, cut at 11 (1 s later)
    assert scene_starts(times, sigs, threshold=27.0, min_seconds=2.0, max_seconds=10.0) == [0.0, 10.0, 11.0]
