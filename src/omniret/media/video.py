"""Video decoding with PyAV: frames sampled at 1 fps, grouped into fixed-length segments, plus the audio track.

Sampling follows CLIP4Clip (spec §12): frames are taken at ``sample_fps`` (1 frame a second, the
first frame at or after each tick), and a segment with more than ``frames_per_segment`` of them
keeps a uniform subset, ``np.linspace(0, n - 1, num=N, dtype=int)``
(:func:`~omniret.search.late_interaction.uniform_frame_indices`, ``slice_framepos = 2``).

Memory stays bounded: only the current segment's sampled frames (at most ``segment_seconds *
sample_fps`` small RGB images, short side ``target_size``) are held while decoding, and each kept
frame is handed to ``frame_fn`` (e.g. an encoder's preprocessor) as soon as its segment closes.
Very long videos get longer segments so that there are at most ``max_segments``.

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

_TRUNCATION_RATIO = 0.9


@dataclass
class VideoSegment:
    """``[start, end)`` seconds of a video and the outputs of ``frame_fn`` on its kept frames."""

    start: float
    end: float
    frame_times: list[float] = field(default_factory=list)
    frames: list[Any] = field(default_factory=list)


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


def load_video(
    path: str | os.PathLike[str],
    options: VideoOptions = VideoOptions(),  # noqa: B008 - frozen, shared safely
    frame_fn: Callable[[Any], Any] | None = None,
) -> DecodedVideo:
    """Decode ``path`` into segments of sampled frames (``frame_fn(PIL image)`` each, the image itself by default)."""
    uri = os.fspath(path)
    if options.sample_fps <= 0 or options.segment_seconds <= 0 or options.frames_per_segment < 1:
        raise MediaError(uri, "sample_fps, segment_seconds and frames_per_segment must be positive")
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
        segments, last_t = _sample(uri, container, stream, seg_len, options, frame_fn or _identity)
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
    uri: str, container: Any, stream: Any, seg_len: float, options: VideoOptions, frame_fn: Callable[[Any], Any]
) -> tuple[list[VideoSegment], float]:
    """Walk the decoded frames once; keep one per ``1/sample_fps`` tick; close segments as time passes."""
    import av

    from omniret.search.late_interaction import uniform_frame_indices

    step = 1.0 / options.sample_fps
    segments: list[VideoSegment] = []
    pending: list[tuple[float, Any]] = []
    seg_idx, next_tick, last_t, n_frames = 0, 0.0, 0.0, 0

    def close(idx: int) -> None:
        keep = uniform_frame_indices(len(pending), options.frames_per_segment)
        seg = VideoSegment(round(idx * seg_len, 3), round((idx + 1) * seg_len, 3))
        for i in keep:
            t, im = pending[int(i)]
            seg.frame_times.append(round(t, 3))
            seg.frames.append(frame_fn(im))
        segments.append(seg)
        pending.clear()

    try:
        for frame in container.decode(stream):
            n_frames += 1
            t = float(frame.time) if frame.time is not None else n_frames / float(stream.average_rate or 1)
            last_t = max(last_t, t)
            if t + 1e-6 < next_tick:
                continue
            idx = int(t // seg_len)
            if pending and idx != seg_idx:
                close(seg_idx)
            seg_idx = idx
            pending.append((t, _to_image(frame, options.target_size)))
            next_tick = (math.floor(t / step + 1e-6) + 1) * step
    except av.error.FFmpegError as e:
        if not n_frames:
            raise MediaError(uri, f"corrupt video stream ({e})") from e
        raise MediaError(uri, f"corrupt video after {last_t:.1f} s ({e})") from e
    if pending:
        close(seg_idx)
    if not segments:
        raise MediaError(uri, "video stream has no frames (zero-length)")
    for a, b in zip(segments, segments[1:], strict=False):  # make segments contiguous over gaps
        a.end = b.start
    return segments, last_t


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
