"""Media decoding and validation, one module per modality; bad input raises :class:`MediaError`.

:func:`decode` dispatches on the modality: images → :func:`~omniret.media.image.load_image`
(an RGB ``PIL.Image.Image``); text → :func:`~omniret.media.text.load_text` (a
:class:`~omniret.media.text.TextDocument`, the sequence of its chunks); audio →
:func:`~omniret.media.audio.load_audio` (an :class:`~omniret.media.audio.AudioClip`); video →
:func:`~omniret.media.video.load_video` (a :class:`~omniret.media.video.DecodedVideo`); PDF →
:func:`~omniret.media.pdf.iter_pages` (a lazy iterator of :class:`~omniret.media.pdf.PdfPage`); other documents
(HTML, Word, PowerPoint, Excel, EPUB, OpenDocument text, e-mail; the registry :mod:`~omniret.media.formats`) →
:func:`~omniret.media.formats.read_document` (a :class:`~omniret.media.document.StructuredDoc`). Heavy imports (Pillow, numpy, charset-normalizer) happen on
first use, not on ``import omniret.media``.
May import ``methods`` and the core (``items``, ``errors``); never models or storage.
"""

from __future__ import annotations

import os
from typing import Any

from omniret.errors import MediaError, OmniretError
from omniret.items import Modality

_OPTIONS: dict[Modality, frozenset[str]] = {
    Modality.IMAGE: frozenset({"target_size", "max_pixels"}),
    Modality.TEXT: frozenset({"max_chars", "overlap", "max_bytes", "strip_markup"}),
}

_OPTIONS[Modality.AUDIO] = frozenset({"sample_rate", "keep_samples", "max_seconds"})
_OPTIONS[Modality.VIDEO] = frozenset({"sample_fps", "segment_seconds", "frames_per_segment", "max_segments",
                                      "target_size", "audio_rate", "max_seconds", "segments", "scene_threshold",
                                      "scene_min_seconds", "ocr"})
_OPTIONS[Modality.DOCUMENT] = frozenset({"ocr", "ocr_dpi", "blocks", "render", "image_size", "max_pages",
                                         "password"})
#: options of the structured-document readers (HTML, Office, OpenDocument, EPUB, e-mail: media.formats)
_DOC_OPTIONS = frozenset({"chunk_chars", "chunk_overlap", "max_bytes", "max_unpacked", "max_rows", "max_depth"})
_PENDING: dict[Modality, str] = {}


def decode(path: str | os.PathLike[str], modality: Modality | str, **opts: Any) -> Any:
    """Decode ``path`` as ``modality``: a ``PIL.Image.Image`` (RGB), a ``TextDocument``, an ``AudioClip``,
    a ``DecodedVideo`` or an iterator of ``PdfPage`` (see the module docstring).

    ``opts`` go to the modality's loader (images: ``target_size``, ``max_pixels``; text:
    ``max_chars``, ``overlap``, ``max_bytes``, ``strip_markup``). Raises :class:`MediaError` for bad
    input or a modality without a decoder, :class:`OmniretError` for an unknown option.
    """
    uri = os.fspath(path)
    mod = Modality.parse(modality)
    if mod in _PENDING:
        raise MediaError(uri, _PENDING[mod])
    if mod is Modality.DOCUMENT and _structured(uri):
        return _decode_document(uri, opts)
    unknown = set(opts) - _OPTIONS[mod]
    if unknown:
        raise OmniretError(
            f"unknown option(s) {', '.join(sorted(unknown))} for {mod.value} decoding; "
            f"choose from {', '.join(sorted(_OPTIONS[mod]))}"
        )
    if mod is Modality.IMAGE:
        from omniret.media.image import load_image

        return load_image(uri, **opts)
    if mod is Modality.AUDIO:
        from omniret.media.audio import load_audio

        return load_audio(uri, **opts)
    if mod is Modality.VIDEO:
        from omniret.media.video import VideoOptions, load_video

        return load_video(uri, VideoOptions(**opts))
    if mod is Modality.DOCUMENT:
        from omniret.media.pdf import PdfOptions, iter_pages, open_pdf

        open_pdf(uri, opts.get("password"))  # fail now, not on the first page
        return iter_pages(uri, PdfOptions(**opts))
    from omniret.media.text import load_text

    return load_text(uri, **opts)


def _structured(uri: str) -> bool:
    """A document of the structured formats (by extension); anything else is tried as a PDF."""
    from omniret.media.formats import format_for

    fmt = format_for(uri)
    return fmt is not None and fmt.walk and fmt.name != "pdf"


def _decode_document(uri: str, opts: dict[str, Any]) -> Any:
    from omniret.media.document import DocOptions
    from omniret.media.formats import read_document

    unknown = set(opts) - _DOC_OPTIONS
    if unknown:
        raise OmniretError(f"unknown option(s) {', '.join(sorted(unknown))} for document decoding; "
                           f"choose from {', '.join(sorted(_DOC_OPTIONS))}")
    return read_document(uri, DocOptions(**opts))


__all__ = ["decode"]
