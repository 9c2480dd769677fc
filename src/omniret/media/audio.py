"""Audio decoding: any file PyAV (FFmpeg) reads → mono float32 at a requested rate, or a :class:`MediaError`.

:func:`load_audio` returns an :class:`AudioClip`:

- WAV/FLAC/OGG go through soundfile (libsndfile) first, a fast path with no FFmpeg start-up;
  anything it refuses (MP3 on old libsndfile, M4A, a misnamed file) falls back to PyAV;
- channels are averaged to mono; the rate is converted by FFmpeg's resampler (PyAV path) or
  by a polyphase filter (``scipy.signal.resample_poly``, soundfile path);
- ``keep_samples=False`` decodes and validates the whole stream but keeps only the counts
  (duration, rate), so an index without an audio model never holds a recording in memory;
- a decoded length well short of the length the container declares is reported as
  truncated (FFmpeg decodes a cut-off MP3 without complaint); empty streams are refused;
- ``max_seconds`` bounds memory: longer recordings are refused with the fix in the reason.

:func:`window_spans` cuts a duration into fixed windows with overlap (10 s, 50 % by default),
the children an ingest indexes under the recording.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from omniret.errors import MediaError
from omniret.media._io import describe, file_size, open_binary

#: rate CLAP models expect; the default target of :func:`load_audio`
DEFAULT_SAMPLE_RATE = 48_000
#: recordings longer than this are refused unless the caller raises it (memory bound: 3 h ≈ 2 GB at 48 kHz)
DEFAULT_MAX_SECONDS = 3 * 3600.0
#: decoded / declared duration below which a stream counts as truncated
_TRUNCATION_RATIO = 0.9
_MEDIA_KINDS = frozenset({"MP3 audio", "FLAC audio", "Ogg media", "Matroska/WebM video", "an MP4/MOV file",
                          "WAV audio"})
_SOUNDFILE_EXTS = frozenset({".wav", ".flac", ".ogg", ".oga"})


@dataclass(frozen=True)
class AudioClip:
    """A decoded recording: ``samples`` is mono float32 in [-1, 1] at ``sample_rate`` (``None`` when
    decoded with ``keep_samples=False``); ``duration`` is in seconds."""

    samples: np.ndarray | None
    sample_rate: int
    duration: float
    source_rate: int
    channels: int
    codec: str

    def metadata(self) -> dict[str, Any]:
        """What a hit can show about the recording."""
        return {"duration": round(self.duration, 3), "sample_rate": self.source_rate,
                "channels": self.channels, "codec": self.codec}


def load_audio(
    path: str | os.PathLike[str],
    *,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    keep_samples: bool = True,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
) -> AudioClip:
    """Decode ``path`` to mono float32 at ``sample_rate`` Hz. Raises :class:`MediaError` with a short reason."""
    uri = os.fspath(path)
    if sample_rate < 1:
        raise MediaError(uri, f"sample_rate must be a positive number of Hz, got {sample_rate}")
    with open_binary(uri) as f:
        size = file_size(f)
        head = f.read(64)
    if size == 0:
        raise MediaError(uri, "empty file (0 bytes)")
    clip = None
    _check_wav_size(uri, head, size)
    if os.path.splitext(uri)[1].lower() in _SOUNDFILE_EXTS:
        clip = _load_soundfile(uri, sample_rate, keep_samples, max_seconds)
    if clip is None:
        clip = _load_av(uri, head, sample_rate, keep_samples, max_seconds)
    if clip.duration <= 0:
        raise MediaError(uri, "audio stream has no samples (zero-length)")
    return clip


def _check_wav_size(uri: str, head: bytes, size: int) -> None:
    """A RIFF/WAVE file whose ``data`` chunk declares more bytes than the file holds is truncated
    (libsndfile and FFmpeg both read such a file quietly up to where it stops)."""
    if not (head.startswith(b"RIFF") and head[8:12] == b"WAVE"):
        return
    with open_binary(uri) as f:
        f.seek(12)
        while True:
            hdr = f.read(8)
            if len(hdr) < 8:
                return
            kind, n = hdr[:4], int.from_bytes(hdr[4:], "little")
            if kind == b"data":
                have = size - f.tell()
                if 0 < n < 0xFFFFFFFF and have < _TRUNCATION_RATIO * n:
                    raise MediaError(uri, f"truncated WAV: {have:,} of {n:,} bytes of audio data")
                return
            f.seek(n + (n & 1), os.SEEK_CUR)


def _check_length(uri: str, seconds: float, max_seconds: float | None) -> None:
    if max_seconds is not None and seconds > max_seconds:
        raise MediaError(uri, f"recording too long: {seconds:.0f} s exceeds the limit of {max_seconds:.0f} s; "
                              "raise max_audio_seconds if you have the memory")


def _load_soundfile(uri: str, rate: int, keep: bool, max_seconds: float | None) -> AudioClip | None:
    """libsndfile fast path; ``None`` when it cannot read the file (PyAV then tries)."""
    import soundfile as sf

    try:
        info = sf.info(uri)
        _check_length(uri, info.frames / max(info.samplerate, 1), max_seconds)
        data, sr = sf.read(uri, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, TypeError, ValueError):
        return None
    if info.frames and len(data) < _TRUNCATION_RATIO * info.frames:
        raise MediaError(uri, f"truncated audio: decoded {len(data) / sr:.2f} s of {info.frames / sr:.2f} s")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    duration = len(mono) / sr
    samples = resample(mono, sr, rate) if keep else None
    return AudioClip(samples, rate, duration, int(sr), int(info.channels), info.subtype or info.format)


def resample(x: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``, Kaiser-windowed FIR) as float32."""
    if source_rate == target_rate or len(x) == 0:
        return np.ascontiguousarray(x, dtype=np.float32)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(source_rate), int(target_rate))
    return resample_poly(x, target_rate // g, source_rate // g).astype(np.float32)


def _open_av(uri: str, head: bytes) -> Any:
    import av

    try:
        return av.open(uri)
    except av.error.InvalidDataError as e:
        what = describe(head)
        if what in _MEDIA_KINDS or head[4:8] == b"ftyp":
            raise MediaError(uri, f"corrupt or truncated {what.removeprefix('an ')} (FFmpeg: {e.strerror or e})") from e
        raise MediaError(uri, f"not audio or video FFmpeg can read (looks like {what})") from e
    except av.error.EOFError as e:
        raise MediaError(uri, f"no media data: {describe(head)} that ends before its first packet "
                              "(zero-length or truncated)") from e
    except (av.error.FFmpegError, OSError) as e:
        raise MediaError(uri, f"cannot open media ({e})") from e


def declared_seconds(container: Any, stream: Any) -> float | None:
    """The duration a container declares for ``stream`` (stream header, else container), in seconds."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _load_av(uri: str, head: bytes, rate: int, keep: bool, max_seconds: float | None) -> AudioClip:
    import av

    container = _open_av(uri, head)
    with container:
        if not container.streams.audio:
            raise MediaError(uri, "no audio stream")
        stream = container.streams.audio[0]
        declared = declared_seconds(container, stream)
        if declared is not None:
            _check_length(uri, declared, max_seconds)
        try:
            parts, n = decode_stream_mono(container, stream, rate, keep, max_seconds, uri)
        except av.error.FFmpegError as e:
            raise MediaError(uri, f"corrupt audio stream ({e})") from e
        codec = stream.codec_context.name
        src_rate, channels = int(stream.rate or 0), int(stream.channels or 0)
    duration = n / rate
    if declared and duration < _TRUNCATION_RATIO * declared and declared - duration > 0.5:
        raise MediaError(uri, f"truncated audio: decoded {duration:.2f} s of {declared:.2f} s")
    samples = (np.concatenate(parts) if parts else np.zeros(0, np.float32)) if keep else None
    return AudioClip(samples, rate, duration, src_rate, channels, codec)


def decode_stream_mono(
    container: Any, stream: Any, rate: int, keep: bool, max_seconds: float | None, uri: str
) -> tuple[list[np.ndarray], int]:
    """Decode one audio stream of an open container to mono float32 chunks at ``rate``: (chunks, samples)."""
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    parts: list[np.ndarray] = []
    n = 0
    limit = None if max_seconds is None else int(max_seconds * rate)

    def take(frames: Any) -> None:
        nonlocal n
        for out in frames:
            n += out.samples
            if keep:
                parts.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))

    for frame in container.decode(stream):
        take(resampler.resample(frame))
        if limit is not None and n > limit:
            raise MediaError(uri, f"recording too long: over {max_seconds:.0f} s; raise max_audio_seconds")
    take(resampler.resample(None))
    return parts, n


def window_spans(duration: float, window: float = 10.0, hop: float = 5.0) -> list[tuple[float, float]]:
    """Fixed windows ``[t, t + window)`` every ``hop`` seconds covering ``[0, duration]``.

    The last window is shifted back to end at ``duration`` (so no window is shorter than
    ``window`` unless the whole recording is); a recording no longer than one window is one span.
    """
    if window <= 0 or hop <= 0:
        raise MediaError("<audio>", f"window and hop must be positive seconds, got {window}, {hop}")
    if duration <= window:
        return [(0.0, round(duration, 3))]
    spans = []
    t = 0.0
    while t + window < duration - 1e-6:
        spans.append((round(t, 3), round(t + window, 3)))
        t += hop
    last = (round(duration - window, 3), round(duration, 3))
    if not spans or spans[-1] != last:
        spans.append(last)
    return spans


def slice_window(samples: np.ndarray, rate: int, span: tuple[float, float]) -> np.ndarray:
    """The samples of ``span`` (seconds) in a mono recording at ``rate``."""
    a, b = int(round(span[0] * rate)), int(round(span[1] * rate))
    return samples[max(a, 0) : max(b, a + 1)]
