"""Video decoding with PyAV: frames sampled at 1 fps, grouped into segments, plus the audio track.

Sampling follows CLIP4Clip (spec §12): frames are taken at ``sample_fps`` (1 frame a second, the
first frame at or after each tick), and a segment with more than ``frames_per_segment`` of them
keeps a uniform subset, ``np.linspace(0, n - 1, num=N, dtype=int)``
(:func:`~omniret.methods.late_interaction.uniform_frame_indices`, ``slice_framepos = 2``).

Memory stays bounded: only the current segment's sampled frames (at most ``segment_seconds *
sample_fps`` small RGB images, short side ``target_size``) are held while decoding, and each kept
frame is handed to ``frame_fn`` (e.g. an encoder's preprocessor) as soon as its segment closes.
Very long videos get longer segments so that there are at most ``max_segments``.

Segments are fixed-length (``segments="fixed"``: ``[k * segment_seconds, (k + 1) * segment_seconds)``)
or follow the shots (``segments="scenes"``: a new segment at each scene cut found on the sampled
frames by the content rule of :mod:`omniret.media.scenes` — mean HSV difference >= ``scene_threshold``
(27, PySceneDetect's ContentDetector default), at least ``scene_min_seconds`` apart — and a shot
longer than ``segment_seconds`` split every ``segment_seconds``).

With ``ocr=True`` the kept frames of each segment are also read by RapidOCR (the engine of
:mod:`omniret.media.pdf`), at ``OCR_SIZE`` pixels on the short side; lines already read on the
previous kept frame are not repeated, so a static caption counts once (:func:`frame_text`).

Bad input raises :class:`MediaError`: no video stream, no decodable frame (zero-length),
corrupt data, or a decoded length well short of the declared one (truncated file).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from omniret.errors import MediaError
from omniret.media._io import file_size, open_binary
from omniret.media.audio import AudioClip, _open_av, declared_seconds, decode_stream_mono
from omniret.media.scenes import DEFAULT_MIN_SECONDS, DEFAULT_THRESHOLD, ShotSplitter, hsv_signature

_TRUNCATION_RATIO = 0.9
#: short side (pixels) of the frames given to OCR: 224 px thumbnails are too small to read captions
OCR_SIZE = 720
SEGMENT_MODES = ("fixed", "scenes")
#: frames closer than this (mean absolute grey difference, 0-255) are the same picture for OCR
SAME_FRAME = 1.0
#: OCR lines with fewer letters and digits than this are dropped (a stray "D" read on a photo)
MIN_OCR_CHARS = 2


@dataclass
class VideoSegment:
    """``[start, end)`` seconds of a video and the outputs of ``frame_fn`` on its kept frames."""

    start: float
    end: float
    frame_times: list[float] = field(default_factory=list)
    frames: list[Any] = field(default_factory=list)
    ocr: str = ""  # text read on the kept frames (``ocr=True``), one line a line


@dataclass
class DecodedVideo:
    """A decoded video: its segments (in order), stream facts, and the audio track when asked for."""

    duration: float
    width: int
    height: int
    fps: float
    codec: str
    segments: list[VideoSegment]
    has_audio: bool
    audio: AudioClip | None = None

    def metadata(self) -> dict[str, Any]:
        """What a hit can show about the video."""
        return {"duration": round(self.duration, 3), "width": self.width, "height": self.height,
                "fps": round(self.fps, 3), "codec": self.codec, "has_audio": self.has_audio,
                "segments": len(self.segments)}


@dataclass(frozen=True)
class VideoOptions:
    sample_fps: float = 1.0
    segment_seconds: float = 10.0
    frames_per_segment: int = 8
    max_segments: int = 360
    target_size: int | None = 224
    audio_rate: int | None = None  # decode the audio track at this rate (None: only note whether it exists)
    max_seconds: float | None = 4 * 3600.0
    segments: str = "fixed"  # "fixed" | "scenes" (cut at shot boundaries, capped at segment_seconds)
    scene_threshold: float = DEFAULT_THRESHOLD
    scene_min_seconds: float = DEFAULT_MIN_SECONDS
    ocr: bool = False  # read text on the kept frames (RapidOCR)


def load_video(
    path: str | os.PathLike[str],
    options: VideoOptions = VideoOptions(),  # noqa: B008 - frozen, shared safely
    frame_fn: Callable[[Any], Any] | None = None,
) -> DecodedVideo:
    """Decode ``path`` into segments of sampled frames (``frame_fn(PIL image)`` each, the image itself by default)."""
    uri = os.fspath(path)
    if options.sample_fps <= 0 or options.segment_seconds <= 0 or options.frames_per_segment < 1:
        raise MediaError(uri, "sample_fps, segment_seconds and frames_per_segment must be positive")
    if options.segments not in SEGMENT_MODES:
        raise MediaError(uri, f"unknown segments mode {options.segments!r}; choose from {', '.join(SEGMENT_MODES)}")
    with open_binary(uri) as f:
        if file_size(f) == 0:
            raise MediaError(uri, "empty file (0 bytes)")
        head = f.read(64)
    container = _open_av(uri, head)
    with container:
        if not container.streams.video:
            raise MediaError(uri, "no video stream (is it an audio file with a video extension?)")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        declared = declared_seconds(container, stream)
        if declared is not None and options.max_seconds is not None and declared > options.max_seconds:
            raise MediaError(uri, f"video too long: {declared:.0f} s exceeds the limit of "
                                  f"{options.max_seconds:.0f} s; raise max_video_seconds")
        seg_len = options.segment_seconds
        if declared and declared / seg_len > options.max_segments:
            seg_len = math.ceil(declared / options.max_segments)
        segments, last_t = _sample(uri, container, stream, seg_len, declared, options, frame_fn or _identity)
        fps = float(stream.average_rate or 0)
        info = (int(stream.codec_context.width or 0), int(stream.codec_context.height or 0), stream.codec_context.name)
        has_audio = bool(container.streams.audio)
    duration = last_t + (1.0 / fps if fps else 0.0)
    if declared and duration < _TRUNCATION_RATIO * declared and declared - duration > 1.0:
        raise MediaError(uri, f"truncated video: decoded {duration:.2f} s of {declared:.2f} s")
    if declared:
        duration = min(duration, declared)
    if duration > segments[-1].start:  # the last segment ends where the video does
        segments[-1].end = round(duration, 3)
    audio = _audio_track(uri, head, options) if has_audio and options.audio_rate else None
    return DecodedVideo(duration, info[0], info[1], fps, info[2], segments, has_audio, audio)


def _identity(x: Any) -> Any:
    return x


def _sample(
    uri: str, container: Any, stream: Any, seg_len: float, declared: float | None, options: VideoOptions,
    frame_fn: Callable[[Any], Any],
) -> tuple[list[VideoSegment], float]:
    """Walk the decoded frames once; keep one per ``1/sample_fps`` tick; close segments as time passes
    (``segments="fixed"``: on the ``seg_len`` grid; ``"scenes"``: at shot cuts, see :mod:`~omniret.media.scenes`)."""
    import av

    step = 1.0 / options.sample_fps
    cutter = _cutter(options, seg_len, declared)
    segments: list[VideoSegment] = []
    pending: list[tuple[float, Any, Any]] = []  # (time, image, full-size image for OCR or None)
    seg_start, next_tick, last_t, n_frames = 0.0, 0.0, 0.0, 0
    try:
        for frame in container.decode(stream):
            n_frames += 1
            t = float(frame.time) if frame.time is not None else n_frames / float(stream.average_rate or 1)
            last_t = max(last_t, t)
            if t + 1e-6 < next_tick:
                continue
            im = _to_image(frame, options.target_size)
            if cutter is None:
                start = int(t // seg_len) * seg_len
            elif cutter.feed(t, hsv_signature(im)):
                start = t
            else:
                start = seg_start
            if pending and start != seg_start:
                segments.append(_close(pending, seg_start, seg_len, options, frame_fn))
            seg_start = start
            pending.append((t, im, _to_image(frame, OCR_SIZE) if options.ocr else None))
            next_tick = (math.floor(t / step + 1e-6) + 1) * step
    except av.error.FFmpegError as e:
        if not n_frames:
            raise MediaError(uri, f"corrupt video stream ({e})") from e
        raise MediaError(uri, f"corrupt video after {last_t:.1f} s ({e})") from e
    if pending:
        segments.append(_close(pending, seg_start, seg_len, options, frame_fn))
    if not segments:
        raise MediaError(uri, "video stream has no frames (zero-length)")
    for a, b in zip(segments, segments[1:], strict=False):  # make segments contiguous over gaps
        a.end = b.start
    return segments, last_t


def _cutter(options: VideoOptions, seg_len: float, declared: float | None) -> ShotSplitter | None:
    """The shot splitter of ``segments="scenes"`` (``None`` for fixed segments)."""
    if options.segments == "fixed":
        return None
    min_len = options.scene_min_seconds
    if declared:  # never more than max_segments segments: the shortest one grows with the video
        min_len = max(min_len, declared / options.max_segments)
    return ShotSplitter(options.scene_threshold, min(min_len, seg_len), seg_len)


def _close(pending: list[tuple[float, Any, Any]], start: float, seg_len: float, options: VideoOptions,
           frame_fn: Callable[[Any], Any]) -> VideoSegment:
    """The segment of the ``pending`` samples (cleared): ``frames_per_segment`` of them kept uniformly."""
    from omniret.methods.late_interaction import uniform_frame_indices

    keep = [int(i) for i in uniform_frame_indices(len(pending), options.frames_per_segment)]
    seg = VideoSegment(round(start, 3), round(start + seg_len, 3))
    for i in keep:
        t, im, _ = pending[i]
        seg.frame_times.append(round(t, 3))
        seg.frames.append(frame_fn(im))
    if options.ocr:
        seg.ocr = frame_text([pending[i][2] for i in keep])
    pending.clear()
    return seg


def frame_text(images: list[Any]) -> str:
    """The text RapidOCR reads on ``images`` (frames in time order), lines in reading order.

    Lines are grouped as on a scanned page (:func:`omniret.media.pdf.group_blocks`); a line already
    read on the previous frame is skipped (captions and slides stay on screen for many frames), lines
    of fewer than ``MIN_OCR_CHARS`` letters or digits are dropped (misreads of textures), and
    a frame whose grey thumbnail differs from the previous one by less than ``SAME_FRAME`` (mean
    absolute difference, 0-255: codec noise) is not read again.
    """
    import numpy as np

    from omniret.media.pdf import group_blocks, ocr_image

    out: list[str] = []
    prev: set[str] = set()
    prev_thumb: Any = None
    for im in images:
        thumb = np.asarray(im.convert("L").resize((160, max(1, round(160 * im.size[1] / max(im.size[0], 1))))),
                           dtype=np.float32)
        if prev_thumb is not None and thumb.shape == prev_thumb.shape \
                and float(np.abs(thumb - prev_thumb).mean()) < SAME_FRAME:
            continue  # the same picture: the same text, already taken
        prev_thumb = thumb
        w, h = im.size
        runs = [((x0 / w, y0 / h, x1 / w, y1 / h), t.strip()) for (x0, y0, x1, y1), t, _ in ocr_image(im) if t.strip()]
        lines = [b.text for b in group_blocks(runs) if sum(c.isalnum() for c in b.text) >= MIN_OCR_CHARS]
        out += [x for x in lines if " ".join(x.lower().split()) not in prev]
        prev = {" ".join(x.lower().split()) for x in lines}
    return "\n".join(out)


def _to_image(frame: Any, target_size: int | None) -> Any:
    """An RGB PIL image of ``frame``, downscaled so its short side is ``target_size`` (never upscaled)."""
    w, h = frame.width, frame.height
    if target_size and min(w, h) > target_size:
        s = target_size / min(w, h)
        w, h = max(1, round(w * s)), max(1, round(h * s))
        return frame.reformat(width=w, height=h, format="rgb24").to_image()
    return frame.to_image()


def _audio_track(uri: str, head: bytes, options: VideoOptions) -> AudioClip | None:
    """The first audio track at ``options.audio_rate``; ``None`` when it decodes to nothing."""
    import av

    assert options.audio_rate is not None  # checked by the caller
    container = _open_av(uri, head)
    with container:
        stream = container.streams.audio[0]
        try:
            parts, n = decode_stream_mono(container, stream, options.audio_rate, True, options.max_seconds, uri)
        except av.error.FFmpegError as e:
            raise MediaError(uri, f"corrupt audio track ({e})") from e
        if n == 0:
            return None
        import numpy as np

        samples = np.concatenate(parts)
        return AudioClip(samples, options.audio_rate, n / options.audio_rate, int(stream.rate or 0),
                         int(stream.channels or 0), stream.codec_context.name)
