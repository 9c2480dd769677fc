"""Ingest of audio, video and PDFs: what a worker decodes, and the items a decoded file becomes.

The pipeline (:mod:`omniret.ingest.run`) calls :func:`decode_media` in its decode threads and
:func:`media_items` in the encoding process. Items and their vectors:

- **audio**: the recording (``AUDIO``) with windows (default 10 s, 50 % overlap) as children,
  ``span = (t0, t1)`` seconds. Vectors only when an audio-capable encoder is given (CLAP): each
  window embedded, the recording = meanP of its windows (spec §12 pooling). Without one, only
  the recording's record is stored (name, duration, sample rate) and counted as un-embedded.
- **video**: the video (``VIDEO``) with segments as children (fixed-length, or cut at shot
  boundaries with ``video_segments="scenes"``, :mod:`omniret.media.scenes`), ``span`` in seconds.
  Each segment = meanP of its sampled frames through the image encoder (CLIP4Clip, Luo et al.
  2022); the video = meanP of its segments. With an audio encoder the segments' audio (and the
  whole track) are also embedded in the audio space, on the same items. With ``video_ocr=True`` the
  text read on a segment's kept frames is the segment's ``text`` (BM25) and ``metadata["ocr"]``, and
  is embedded by the text encoder on a child item of the segment (``metadata["source"] = "ocr"``).
- **documents** (PDF; :mod:`omniret.ingest.documents`): the document (``DOCUMENT``), one child per
  page (``span = (page, page)``, ``text`` = the page's text layer or OCR), layout blocks as children
  of their page (``metadata["bbox"]``, fractions of the page, origin top-left; identical block texts
  are stored once a page), and a section item per section, a child of the page where it starts.
  Pages, blocks and sections are embedded **by their text** in the main space (a section by its
  heading title): on a text page, text models (MiniLM in the offline model, CLIP's text tower) match
  a query far better than an embedding of the rendered page does, and the text is what a heading
  query is about. Pages with no text at all (even after OCR) are embedded by their rendered image
  instead, when the encoder embeds images; only those pages carry pixels from the worker, which
  keeps a thousands-of-pages PDF bounded in memory.

**Document item conventions** (every paged or sectioned format — PDF, HTML, DOCX, PPTX, EPUB… —
follows them, so search, roll-ups and the web page treat them alike):

- ``metadata["page"]``: the 1-based page (slide, sheet) of a page, block or section item;
- ``metadata["section"]``: the section path as a list of titles from the top, e.g.
  ``["2 Package management", "2.7 Tips", "Apt pinning"]``, on pages (the section in force at the
  page's first body block), blocks (the section they belong to) and section items (their own path);
  absent where the document has no structure;
- ``metadata["role"]``: ``"toc" | "index" | "header" | "footer" | "boilerplate"`` on navigation and
  boilerplate pages/blocks; absent for body content. Default searches keep these from crowding the
  results; they stay findable (``where={"role": "toc"}``, ``granularity="item"``);
- ``metadata["bbox"]``: a block's (or located heading's) box ``[x0, y0, x1, y1]``, fractions of the
  page, origin top-left; ``metadata["block"]``: its index on the page;
- section items carry ``metadata["heading"]`` (the title) and ``metadata["level"]`` (0 = top); their
  ``text`` is the path joined by `` › `` (BM25) and their vector embeds the title;
- ``metadata["label"]``: how a hit reads (``"manual.pdf p. 12"``).

A recording or video short enough for one window/segment gets no children: the file item
carries the vector and the span.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omniret.ingest.documents import MIN_BLOCK_CHARS, PageData, SectionData, decode_pdf, document_items
from omniret.items import Item, Modality, make_id
from omniret.media.document import StructuredDoc

__all__ = ["MIN_BLOCK_CHARS", "MediaConfig", "MediaPayload", "MediaWork", "PageData", "SectionData",
           "decode_media", "media_items"]
#: pixels travel from the workers as float16 (half the memory of float32; encoders take float32)
PIXEL_DTYPE = np.float16


@dataclass(frozen=True)
class MediaConfig:
    """The audio/video/PDF knobs a worker needs (picklable)."""

    audio_rate: int | None = None  # None: no audio model, decode only to validate and measure
    audio_window: float = 10.0
    audio_hop: float = 5.0
    max_audio_seconds: float | None = 3 * 3600.0
    video_segment_seconds: float = 10.0
    video_frames_per_segment: int = 8
    max_video_seconds: float | None = 4 * 3600.0
    video_segments: str = "fixed"  # "fixed" | "scenes" (cut at shot boundaries, see omniret.media.scenes)
    video_scene_threshold: float = 27.0
    video_ocr: bool = False  # OCR the kept frames of each segment (RapidOCR)
    pdf_ocr: bool = True
    pdf_blocks: bool = True
    pdf_max_pages: int | None = None
    image_size: int = 224
    page_size: int | None = None  # with a page model: render every PDF page (short side, px) for it


@dataclass
class SegmentData:
    start: float
    end: float
    frame_times: list[float]
    pixels: np.ndarray  # (k, C, H, W) PIXEL_DTYPE
    ocr: str = ""  # text read on the kept frames (video_ocr=True)


@dataclass
class MediaPayload:
    """What a worker sends back for one audio, video or PDF file."""

    meta: dict[str, Any] = field(default_factory=dict)
    audio: np.ndarray | None = None  # mono float32 at the audio model's rate (recording or video track)
    audio_rate: int = 0
    spans: list[tuple[float, float]] = field(default_factory=list)  # audio windows
    segments: list[SegmentData] = field(default_factory=list)
    pages: list[PageData] = field(default_factory=list)
    sections: list[SectionData] = field(default_factory=list)  # of a paged document, in document order
    doc: StructuredDoc | None = None  # HTML, Office, EPUB, e-mail: omniret.ingest.structured

    def n_items(self) -> int:
        return (1 + len(self.spans) + len(self.segments) + sum(bool(s.ocr) for s in self.segments)
                + sum(1 + len(p.blocks) for p in self.pages) + len(self.sections)
                + (self.doc.pieces() if self.doc is not None else 0))


# -- decoding (worker side) -------------------------------------------------------------------------
def decode_media(uri: str, modality: Modality, cfg: MediaConfig, preprocess: Any) -> MediaPayload:
    """Decode one audio, video or PDF file into a :class:`MediaPayload`; raises ``MediaError``."""
    if modality is Modality.AUDIO:
        return _decode_audio(uri, cfg)
    if modality is Modality.VIDEO:
        return _decode_video(uri, cfg, preprocess)
    return _decode_pdf(uri, cfg, preprocess)


def _decode_audio(uri: str, cfg: MediaConfig) -> MediaPayload:
    from omniret.media.audio import DEFAULT_SAMPLE_RATE, load_audio, window_spans

    keep = cfg.audio_rate is not None
    clip = load_audio(uri, sample_rate=cfg.audio_rate or DEFAULT_SAMPLE_RATE, keep_samples=keep,
                      max_seconds=cfg.max_audio_seconds)
    spans = window_spans(clip.duration, cfg.audio_window, cfg.audio_hop)
    return MediaPayload(meta=clip.metadata(), audio=clip.samples, audio_rate=clip.sample_rate,
                        spans=spans if len(spans) > 1 else [])


def _decode_video(uri: str, cfg: MediaConfig, preprocess: Any) -> MediaPayload:
    from omniret.media.video import VideoOptions, load_video

    opts = VideoOptions(segment_seconds=cfg.video_segment_seconds, frames_per_segment=cfg.video_frames_per_segment,
                        target_size=cfg.image_size, audio_rate=cfg.audio_rate, max_seconds=cfg.max_video_seconds,
                        segments=cfg.video_segments, scene_threshold=cfg.video_scene_threshold, ocr=cfg.video_ocr)
    video = load_video(uri, opts, frame_fn=lambda im: np.asarray(preprocess(im), dtype=PIXEL_DTYPE))
    segs = [SegmentData(s.start, s.end, s.frame_times, np.stack(s.frames), s.ocr) for s in video.segments]
    audio = video.audio
    meta = {**video.metadata(), "segmentation": cfg.video_segments}
    if cfg.video_ocr:
        meta["ocr_segments"] = sum(bool(s.ocr) for s in segs)
    return MediaPayload(meta=meta, segments=segs,
                        audio=audio.samples if audio is not None else None,
                        audio_rate=audio.sample_rate if audio is not None else 0)


def _decode_pdf(uri: str, cfg: MediaConfig, preprocess: Any) -> MediaPayload:
    meta, pages, sections = decode_pdf(uri, cfg, preprocess, PIXEL_DTYPE)
    return MediaPayload(meta=meta, pages=pages, sections=sections)


# -- items (encoding side) --------------------------------------------------------------------------
@dataclass
class MediaWork:
    """A decoded media file as items plus what to embed: ``texts``/``pixels``/``waves`` are
    ``(item id, input)``; ``frames`` maps a segment id to its frames; ``pools`` lists
    ``(item id, child ids, space kind)`` to mean-pool after the children are embedded."""

    items: list[Item] = field(default_factory=list)
    texts: list[tuple[str, str]] = field(default_factory=list)
    pixels: list[tuple[str, np.ndarray]] = field(default_factory=list)
    frames: list[tuple[str, np.ndarray]] = field(default_factory=list)
    waves: list[tuple[str, np.ndarray]] = field(default_factory=list)
    pools: list[tuple[str, list[str], str]] = field(default_factory=list)
    unembedded: int = 0
    pages: list[tuple[str, bytes]] = field(default_factory=list)  # (page id, PNG) for the page model


def clock(t: float) -> str:
    """Seconds as ``mm:ss`` (``h:mm:ss`` from an hour on)."""
    s = int(round(t))
    h, m, sec = s // 3600, s % 3600 // 60, s % 60
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


def span_label(name: str, t0: float, t1: float) -> str:
    """``talk.mp4 @ 01:23–01:33``: how a hit on a window or segment reads."""
    return f"{name} @ {clock(t0)}–{clock(t1)}"


def media_items(uri: str, modality: Modality, payload: MediaPayload, base: dict[str, Any],
                common: dict[str, Any], has_audio_model: bool, pages: tuple[int, int] | None = None) -> MediaWork:
    """Items and embedding work for one decoded file. ``base`` is the file's metadata (name, size),
    ``common`` the Item fields every item of the file shares (content hash, mtime). ``pages``: of a paged
    document, only the pages numbered ``first..last`` (a part of a document committed in parts)."""
    if modality is Modality.AUDIO:
        return _audio_items(uri, payload, base, common, has_audio_model)
    if modality is Modality.VIDEO:
        return _video_items(uri, payload, base, common, has_audio_model)
    work = MediaWork()
    document_items(uri, payload, base, common, work, pages)
    return work


def _audio_items(uri: str, p: MediaPayload, base: dict[str, Any], common: dict[str, Any], embed: bool) -> MediaWork:
    work, fid, name = MediaWork(), make_id(uri), base["name"]
    duration = float(p.meta["duration"])
    meta = {**base, **p.meta, "windows": len(p.spans), "label": span_label(name, 0.0, duration)}
    if not embed:
        meta["embedded"] = False
        work.items.append(Item(fid, uri, Modality.AUDIO, span=(0.0, duration), metadata=meta, **common))
        work.unembedded = 1
        return work
    from omniret.media.audio import slice_window

    assert p.audio is not None  # decoded with samples when an audio model is present
    work.items.append(Item(fid, uri, Modality.AUDIO, span=(0.0, duration), metadata=meta, **common))
    if not p.spans:
        work.waves.append((fid, p.audio))
        return work
    ids = []
    for i, (t0, t1) in enumerate(p.spans):
        wid = make_id(uri, part=f"w{i}")
        ids.append(wid)
        work.items.append(Item(wid, uri, Modality.AUDIO, parent_id=fid, span=(t0, t1), metadata={
            "name": name, "window": i, "label": span_label(name, t0, t1)}, **common))
        work.waves.append((wid, slice_window(p.audio, p.audio_rate, (t0, t1))))
    work.pools.append((fid, ids, "audio"))
    return work


def _video_items(uri: str, p: MediaPayload, base: dict[str, Any], common: dict[str, Any], embed_audio: bool) -> MediaWork:
    from omniret.media.audio import slice_window

    work, fid, name = MediaWork(), make_id(uri), base["name"]
    duration = float(p.meta["duration"])
    meta = {**base, **p.meta, "label": span_label(name, 0.0, duration)}
    single = len(p.segments) == 1
    ocr1 = p.segments[0].ocr if single and p.segments else ""
    work.items.append(Item(fid, uri, Modality.VIDEO, span=(0.0, duration), text=ocr1 or None,
                           metadata={**meta, "ocr": ocr1} if ocr1 else meta, **common))
    ids = []
    for i, seg in enumerate(p.segments):
        sid = fid if single else make_id(uri, part=f"s{i}")
        if not single:
            ids.append(sid)
            seg_meta: dict[str, Any] = {"name": name, "segment": i, "frame_times": seg.frame_times,
                                        "label": span_label(name, seg.start, seg.end)}
            if seg.ocr:
                seg_meta["ocr"] = seg.ocr
            work.items.append(Item(sid, uri, Modality.VIDEO, parent_id=fid, span=(seg.start, seg.end),
                                   text=seg.ocr or None, metadata=seg_meta, **common))
        work.frames.append((sid, seg.pixels))
        if seg.ocr:
            _ocr_item(work, uri, sid, i, seg, name, common)
        if embed_audio and p.audio is not None:
            wave = slice_window(p.audio, p.audio_rate, (seg.start, seg.end))
            if len(wave) >= p.audio_rate // 10:  # under 0.1 s of sound is not worth a vector
                work.waves.append((sid, wave))
    if not single:
        work.pools.append((fid, ids, "image"))
        if work.waves:
            work.pools.append((fid, [w[0] for w in work.waves], "audio"))
    return work


def _ocr_item(work: MediaWork, uri: str, sid: str, i: int, seg: SegmentData, name: str, common: dict[str, Any]) -> None:
    """The text read on a segment's frames, embedded by the text encoder as a child of the segment.

    The segment's own vector is its frames' meanP and its ``text`` (BM25) is the OCR text; this child
    carries the text's vector in the main space (as a page's text does), with no ``text`` of its own
    (BM25 would count it twice), the segment's span and label: a dense text hit on it rolls up to
    the segment (``granularity="parent"``).
    """
    oid = make_id(uri, part=f"s{i}ocr")
    work.items.append(Item(oid, uri, Modality.VIDEO, parent_id=sid, span=(seg.start, seg.end), metadata={
        "name": name, "segment": i, "ocr": seg.ocr, "source": "ocr",
        "label": span_label(name, seg.start, seg.end)}, **common))
    work.texts.append((oid, seg.ocr))
