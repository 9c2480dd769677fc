"""Media decoding and validation, one module per modality; bad input raises :class:`MediaError`.

:func:`decode` dispatches on the modality: images → :func:`~omniret.media.image.load_image`
(an RGB ``PIL.Image.Image``); text → :func:`~omniret.media.text.load_text` (a
:class:`~omniret.media.text.TextDocument`, the sequence of its chunks). Audio, video and PDF
decoders arrive with later issues. Heavy imports (Pillow, numpy, charset-normalizer) happen on
first use, not on ``import omniret.media``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from omniret.errors import MediaError, OmniretError
from omniret.items import Modality

if TYPE_CHECKING:
    from PIL.Image import Image

    from omniret.media.text import TextDocument

_OPTIONS: dict[Modality, frozenset[str]] = {
    Modality.IMAGE: frozenset({"target_size", "max_pixels"}),
    Modality.TEXT: frozenset({"max_chars", "overlap", "max_bytes", "strip_markup"}),
}

_PENDING: dict[Modality, str] = {
    Modality.AUDIO: "audio decoding (PyAV/soundfile) is not available yet; it needs the 'media' extra "
    "(pip install 'omniret[media]') and the audio decoder issue",
    Modality.VIDEO: "video decoding (PyAV) is not available yet; it needs the 'media' extra "
    "(pip install 'omniret[media]') and the video decoder issue",
    Modality.DOCUMENT: "PDF decoding (pypdfium2) is not available yet; it needs the 'media' extra "
    "(pip install 'omniret[media]') and the PDF decoder issue",
}


def decode(path: str | os.PathLike[str], modality: Modality | str, **opts: Any) -> Image | TextDocument:
    """Decode ``path`` as ``modality``: a ``PIL.Image.Image`` (RGB) or a ``TextDocument``.

    ``opts`` go to the modality's loader (images: ``target_size``, ``max_pixels``; text:
    ``max_chars``, ``overlap``, ``max_bytes``, ``strip_markup``). Raises :class:`MediaError` for bad
    input or a modality without a decoder, :class:`OmniretError` for an unknown option.
    """
    uri = os.fspath(path)
    mod = Modality.parse(modality)
    if mod in _PENDING:
        raise MediaError(uri, _PENDING[mod])
    unknown = set(opts) - _OPTIONS[mod]
    if unknown:
        raise OmniretError(
            f"unknown option(s) {', '.join(sorted(unknown))} for {mod.value} decoding; "
            f"choose from {', '.join(sorted(_OPTIONS[mod]))}"
        )
    if mod is Modality.IMAGE:
        from omniret.media.image import load_image

        return load_image(uri, **opts)
    from omniret.media.text import load_text

    return load_text(uri, **opts)


__all__ = ["decode"]
