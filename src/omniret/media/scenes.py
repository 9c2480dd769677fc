"""Shot-boundary (scene cut) detection on a video's sampled frames, for segments that follow the shots.

The rule is the one of PySceneDetect's ``ContentDetector`` (Castellano, PySceneDetect,
``scenedetect/detectors/content_detector.py``), written here in numpy over the frames the video
decoder samples anyway (1 a second), so no extra decoding and no OpenCV:

    sig(f)   = f in HSV (Pillow's HSV, every channel 0-255), downscaled to 64 px on its long side
    score_t  = (1/3) * sum_{c in H,S,V} mean_pixels | sig(f_t)_c - sig(f_{t-1})_c |     (0-255)
    cut at t  iff  score_t >= threshold  and  t - last_cut >= min_seconds

with ``threshold = 27`` (ContentDetector's default, ``weights = (1, 1, 1, 0)``: hue, saturation and
value, no edges) and a minimum segment length (ContentDetector's ``min_scene_len``, 15 frames at
its native rate; here in seconds because frames are sampled at 1 fps). Differences from
PySceneDetect, on purpose: hue is Pillow's 0-255 rather than OpenCV's 0-179 (a hue change scores
about 1.4x higher, which only makes colour changes easier to see), consecutive frames are the
sampled ones (1 s apart, so a fast pan can also pass the threshold; ``threshold`` is a knob), and
a shot longer than ``max_seconds`` is split every ``max_seconds`` (the fixed segment length), so a
single-shot video still gets segments of the usual length. Such a split is not a cut: the minimum
length counts from the last cut, so a real cut right after a split is still placed where it is.

A cut is placed at the time of the first sampled frame of the new shot: with sampling at 1 fps the
true cut lies within the second before it (one sample).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from omniret.errors import MediaError

#: PySceneDetect ContentDetector's default threshold on the mean HSV difference (0-255 scale)
DEFAULT_THRESHOLD = 27.0
#: shortest segment in seconds (ContentDetector's ``min_scene_len`` is 15 frames, ~0.5 s at 30 fps;
#: here 2 samples, so a one-second flash does not make a segment of its own)
DEFAULT_MIN_SECONDS = 2.0
#: long side of the downscaled frame the score is computed on
SIGNATURE_SIZE = 64


def hsv_signature(image: Any, size: int = SIGNATURE_SIZE) -> np.ndarray:
    """``(h, w, 3)`` float32 HSV of a PIL image, downscaled so its long side is ``size`` pixels."""
    w, h = image.size
    s = size / max(w, h, 1)
    small = image.convert("RGB").resize((max(1, round(w * s)), max(1, round(h * s))))
    return np.asarray(small.convert("HSV"), dtype=np.float32)


def content_score(prev: np.ndarray, cur: np.ndarray) -> float:
    """ContentDetector's frame score: the mean absolute HSV difference averaged over the 3 channels.

    ``score = (1/3) * sum_c mean |cur_c - prev_c|`` on a 0-255 scale (0: identical frames).
    """
    if prev.shape != cur.shape:
        raise MediaError("<frames>", f"frame signatures differ in shape {prev.shape} vs {cur.shape}; "
                                     "compute both with hsv_signature at the same size")
    return float(np.abs(cur - prev).mean())


@dataclass
class ShotSplitter:
    """The online cut rule (module docstring): feed sampled frames in time order, learn where segments start.

    ``threshold``: minimum content score of a cut; ``min_seconds``: no cut closer than this to the
    previous cut; ``max_seconds``: a segment is split when it reaches this length.
    """

    threshold: float = DEFAULT_THRESHOLD
    min_seconds: float = DEFAULT_MIN_SECONDS
    max_seconds: float = 10.0
    start: float = 0.0  # of the current segment
    last_cut: float = 0.0  # the last shot cut (or the first frame)
    _prev: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not self.threshold > 0 or self.min_seconds < 0 or not self.max_seconds > 0:
            raise MediaError("<video>", f"scene cuts need threshold > 0, min_seconds >= 0 and max_seconds > 0; "
                                        f"got {self.threshold}, {self.min_seconds}, {self.max_seconds}")

    def feed(self, t: float, signature: np.ndarray) -> bool:
        """Whether a new segment starts at ``t`` (a shot cut, or the current one reached ``max_seconds``)."""
        prev, self._prev = self._prev, signature
        if prev is None:
            self.start = self.last_cut = t
            return False
        if content_score(prev, signature) >= self.threshold and t - self.last_cut + 1e-6 >= self.min_seconds:
            self.start = self.last_cut = t
            return True
        if t - self.start + 1e-6 >= self.max_seconds:
            self.start = t
            return True
        return False


def scene_starts(times: list[float], signatures: list[np.ndarray], threshold: float = DEFAULT_THRESHOLD,
                 min_seconds: float = DEFAULT_MIN_SECONDS, max_seconds: float = 10.0) -> list[float]:
    """Start times of the segments of frames sampled at ``times`` (the first is ``times[0]``)."""
    splitter = ShotSplitter(threshold, min_seconds, max_seconds)
    return [t for i, (t, s) in enumerate(zip(times, signatures, strict=True)) if splitter.feed(t, s) or i == 0]
