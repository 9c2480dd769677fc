"""The shared types of an ``add`` run: options, the report, decode tasks and decoded files.

:mod:`omniret.ingest.run` (the single-machine pipeline), :mod:`omniret.ingest.gpu` (the nvJPEG
path) and :mod:`omniret.ingest.ray` (the distributed one) all speak these types, so each imports
them from here and none of them imports another to get them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omniret.encoders.base import ImagePreprocessor
from omniret.ingest.media import MediaConfig, MediaPayload
from omniret.items import Item, Modality, make_id

#: modalities the single-machine ingest decodes (audio, video and PDFs: see :mod:`omniret.ingest.media`)
DECODED_MODALITIES = frozenset(Modality)


@dataclass(frozen=True)
class IngestOptions:
    """Knobs of one ``add`` run (frozen; parsed once at the edge)."""

    workers: int | None = None  # decode threads; None = auto, 0 = decode in the calling thread
    batch_size: int = 32  # encoder batch
    commit_every: int = 256  # items per commit (files are never split across commits, except paged documents)
    commit_pages: int = 24  # a paged document (PDF) commits every this many pages; a killed add resumes after them
    include_hidden: bool = False
    confine: tuple[str, ...] = ()  # only files whose real path is under these folders (symlinks out are skipped)
    prune: bool = False  # delete items of files that are gone
    retry_failed: bool = False  # decode again files that failed before and did not change
    max_pixels: int | None = 178_956_970
    chunk_chars: int = 800
    chunk_overlap: int = 150
    audio_window: float = 10.0  # seconds; audio windows overlap by audio_window - audio_hop
    audio_hop: float = 5.0
    max_audio_seconds: float | None = 3 * 3600.0
    video_segment_seconds: float = 10.0
    video_frames_per_segment: int = 8  # frames sampled at 1 fps, uniformly thinned to this many (spec §12)
    max_video_seconds: float | None = 4 * 3600.0
    video_segments: str = "fixed"  # "scenes": cut at shot boundaries (omniret.media.scenes), capped at the length above
    video_scene_threshold: float = 27.0  # mean HSV difference (0-255) of a cut (PySceneDetect ContentDetector)
    video_ocr: bool = False  # OCR the kept frames; the text is searchable (BM25 + text vector)
    pdf_ocr: bool = True  # OCR pages that have no text layer (RapidOCR)
    pdf_blocks: bool = True  # index layout blocks as children of their page
    pdf_max_pages: int | None = None
    torch_threads: int | None = None  # None: max(1, cores - decode workers) or $OMNIRET_TORCH_THREADS; 0: torch's own


@dataclass
class AddReport:
    """What an ``add`` did. ``failed`` lists ``(uri, reason)``; ``skipped`` the walk's refusals;
    ``unembedded`` counts items stored without a vector (audio without an audio model, blank pages)."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    items: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    unembedded: int = 0
    #: items stored without a vector, by modality: ``{"audio": files, "document": pages}``
    unembedded_by: dict[str, int] = field(default_factory=dict)
    #: files that failed before and did not change, not tried again (``retry_failed`` tries them)
    not_retried: int = 0

    def count_unembedded(self, items: list[Item]) -> None:
        """Count the committed ``items`` stored without a vector (``metadata["embedded"] is False``)."""
        for it in items:
            if it.metadata.get("embedded") is False:
                self.unembedded += 1
                self.unembedded_by[it.modality.value] = self.unembedded_by.get(it.modality.value, 0) + 1

    @property
    def indexed_nothing(self) -> bool:
        """Files were tried and every one failed: nothing of this run is searchable."""
        return bool(self.failed) and self.items == 0

    def notes(self, *, has_audio_model: bool = False) -> list[str]:
        """Plain-language notes on what was stored without a vector and why (see :func:`unembedded_notes`)."""
        notes = unembedded_notes(self.unembedded_by, has_audio_model=has_audio_model)
        if self.not_retried:
            notes.append(f"{self.not_retried} file(s) failed before and did not change, so they were not tried "
                         "again (`omniret info` lists why; --retry-failed tries them)")
        return notes

    def to_dict(self) -> dict[str, Any]:
        return {
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "items": self.items,
            "failed": [{"uri": u, "reason": r} for u, r in self.failed],
            "skipped": [{"uri": u, "reason": r} for u, r in self.skipped],
            "seconds": round(self.seconds, 3),
            "unembedded": self.unembedded,
            "unembedded_by": dict(self.unembedded_by),
            "not_retried": self.not_retried,
        }


def unembedded_notes(counts: dict[str, int], *, has_audio_model: bool = False) -> list[str]:
    """Why items are stored without embeddings, one sentence per modality with the fix.

    ``counts``: modality -> number of items stored by metadata only (audio: whole recordings; document:
    PDF pages with no text layer where OCR found nothing).
    """
    out = []
    n = counts.get("audio", 0)
    if n:
        why = ("the audio model could not embed them" if has_audio_model else
               "this index has no audio model; add one with --audio-model hf:<local CLAP folder> "
               "(omniret add --audio-model ... PATHS embeds them then)")
        out.append(f"{n} audio file{'s are' if n != 1 else ' is'} stored without embeddings: {why}")
    n = counts.get("document", 0)
    if n:
        out.append(f"{n} PDF page{'s are' if n != 1 else ' is'} stored without embeddings: no text layer, and OCR "
                   "found no text (OCR needs rapidocr-onnxruntime)")
    for mod, n in sorted(counts.items()):
        if mod not in ("audio", "document") and n:
            out.append(f"{n} {mod} item(s) are stored without embeddings")
    return out


@dataclass(frozen=True)
class DecodeTask:
    uri: str
    modality: Modality
    size: int
    mtime_ns: int
    content_hash: str


@dataclass
class DecodedFile:
    """A file after decoding: pixels for an image, chunks for a text file, a media payload for audio,
    video and PDFs, or the failure reason."""

    task: DecodeTask
    error: str | None = None
    pixels: np.ndarray | None = None
    chunks: list[tuple[str, int, int]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    media: MediaPayload | None = None


@dataclass(frozen=True)
class DecodeConfig:
    """Everything a decode worker needs (picklable)."""

    preprocess: ImagePreprocessor | None
    target_size: int | None
    max_pixels: int | None
    chunk_chars: int
    chunk_overlap: int
    media: MediaConfig = field(default_factory=MediaConfig)


#: content hash placeholder of a new file: it is hashed where its bytes are read for decoding
#: (in a decode worker, or the GPU path's reader threads), not in a separate serial pass
DEFERRED_HASH = ""



def file_items(d: DecodedFile) -> list[Item]:
    """The items a decoded file becomes: one image item, or a parent plus one item per text chunk."""
    t = d.task
    name = os.path.basename(t.uri)
    mtime = t.mtime_ns / 1e9
    base = {"name": name, "size": t.size, **d.meta}
    fid = make_id(t.uri)
    if t.modality is Modality.IMAGE:
        return [Item(fid, t.uri, Modality.IMAGE, metadata=base, content_hash=t.content_hash, mtime=mtime)]
    first = d.chunks[0][0] if d.chunks else ""
    # the parent carries no text of its own (its chunks do; duplicating it would skew BM25): only a preview
    parent = Item(fid, t.uri, Modality.TEXT, metadata={**base, "chunks": len(d.chunks), "preview": first[:200]},
                  content_hash=t.content_hash, mtime=mtime)
    children = [
        Item(make_id(t.uri, part=str(i)), t.uri, Modality.TEXT, parent_id=fid, span=(float(s), float(e)),
             text=txt, metadata={"name": name, "chunk": i}, content_hash=t.content_hash, mtime=mtime)
        for i, (txt, s, e) in enumerate(d.chunks)
    ]
    return [parent, *children]
