"""``colpali:``: multi-vector page encoders (ColPali, ColQwen2) through transformers' native classes.

ColPali (Faysse et al., "ColPali: Efficient Document Retrieval with Vision Language Models",
ICLR 2025, arXiv 2407.01449) embeds a page *image* with a vision-language model and keeps one
L2-normalised vector per output token (image patches plus the prompt's tokens); a text query
keeps one vector per token too. Pages are scored by late interaction (ColBERT's MaxSim,
Khattab & Zaharia 2020)::

    score(Q, D) = sum_i max_j <q_i, d_j>

``colpali:<hub id or local folder>``, e.g. ``colpali:vidore/colpali-v1.3-hf`` or
``colpali:vidore/colqwen2-v1.0-hf``: the checkpoint's ``config.json`` ``model_type`` picks
``ColPaliForRetrieval``/``ColPaliProcessor`` (``colpali``) or ``ColQwen2ForRetrieval``/
``ColQwen2Processor`` (``colqwen2``). A local folder (``save_pretrained``) never touches the
network; a hub id loads from the local Hugging Face cache, else from the hub, and fails with a
:class:`~omniret.errors.ModelError` that names the model and the fix when neither can be had.

How it fits the encoder registry: it is registered under ``colpali`` with kind ``multivector``.
It is not a single-vector :class:`~omniret.encoders.base.Encoder` (it returns a matrix per input),
so it cannot be an index's main ``model``; it is an index's optional *page model*
(``omniret.open(path, page_model="colpali:...")``, see :mod:`omniret.spaces.pages`), built with
:func:`omniret.encoders.registry.create_page_model`.

Token selection: every position the processor marks in the attention mask is kept (image
patches, the prompt's special and text tokens, and the query-augmentation tokens ColPali/ColQwen
append to queries, which were trained to contribute); padding positions are dropped. This is
what the reference scoring (``score_retrieval``, zero-padded) computes, without the padding rows.

Page layout (:meth:`ColPaliEncoder.encode_pages_with_layout`): where a page's image-patch tokens sit
among its kept rows and the grid they form, so a MaxSim match can be mapped back to a region of the
page (:func:`omniret.spaces.pages.matched_region`). The image tokens are the rows whose input id is
the processor's ``image_token_id`` (one contiguous run). ColQwen2 (Qwen2-VL dynamic resolution):
the image is resized whole to ``(h, w)`` patches of 14 px (``image_grid_thw``) and each
``merge × merge`` block of patches becomes one token, in row-major order over the
``(h / merge, w / merge)`` merged grid. ColPali (PaliGemma): the image is resized whole to a square
and its ``image_seq_length`` tokens form a ``√n × √n`` row-major grid at the start of the sequence.
In both, cell ``(r, c)`` of an ``R × C`` grid covers the fraction ``[c/C, (c+1)/C] × [r/R, (r+1)/R]``
of the page (no crop, no padding). The one exception: Qwen2-VL refuses images over 200:1, so a page
over :data:`MAX_PAGE_ASPECT` : 1 is cut to its centred window of that shape first
(:func:`omniret.media.image.bound_aspect`), and its region boxes are fractions of that window.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from omniret.encoders.base import PageLayout, l2_normalize, pick_device
from omniret.errors import ModelError

_log = logging.getLogger(__name__)

DEFAULT_PAGE_MODEL = "colpali:vidore/colqwen2-v1.0-hf"
#: pages longer than this many times their width (or wider than tall) keep only their centre
MAX_PAGE_ASPECT = 100

#: model_type → (model class, processor class) in transformers
_FAMILIES = {"colpali": ("ColPaliForRetrieval", "ColPaliProcessor"),
             "colqwen2": ("ColQwen2ForRetrieval", "ColQwen2Processor")}
#: the space name multi-vector page embeddings are stored under (``<index>/multivector/pages``)
PAGE_SPACE = "pages"


def _fix(ref: str) -> str:
    return (f"download it on a machine with network (huggingface-cli download {ref}), or save it with "
            f"save_pretrained to a folder and pass 'colpali:<folder>'")


def _read_config(ref: str) -> dict[str, Any]:
    """The checkpoint's config.json: a local folder, the local HF cache, or the hub."""
    from omniret.encoders.hf import _config

    return _config(ref, scheme="colpali", unreachable=(
        f"page model 'colpali:{ref}' cannot be loaded: its weights are not on this machine and the hub "
        f"cannot be reached ({{error}}); {_fix(ref)}"))  # {error}: filled in by _config


class ColPaliEncoder:
    """A ColPali-family page encoder. Weights load lazily on the first encode.

    ``encode_pages(images)`` and ``encode_queries(texts)`` return one ``(n_i, dim)`` float32 matrix
    per input, rows L2-normalised, padding dropped (see the module docstring).
    """

    kind = "multivector"

    def __init__(self, ref: str, *, device: str | None = None, batch_size: int = 4, page_size: int = 448) -> None:
        if not ref:
            raise ModelError(f"colpali: give a checkpoint, e.g. {DEFAULT_PAGE_MODEL!r} or 'colpali:/path/to/saved/model'")
        if batch_size < 1:
            raise ModelError(f"colpali: batch_size must be >= 1, got {batch_size}")
        if page_size < 28:
            raise ModelError(f"colpali: page_size (the rendered page's short side in pixels) must be >= 28, got {page_size}")
        cfg = _read_config(ref)
        self.family = str(cfg.get("model_type", ""))
        if self.family not in _FAMILIES:
            raise ModelError(f"colpali:{ref}: model_type {self.family!r} is not a page retriever; choose a "
                             f"{' or '.join(sorted(_FAMILIES))} checkpoint (e.g. {DEFAULT_PAGE_MODEL})")
        self.ref = ref
        self.name = f"colpali:{ref}"
        self.space = PAGE_SPACE
        self.dim = int(cfg.get("embedding_dim") or 128)
        self.page_size = int(page_size)
        self.batch_size = int(batch_size)
        self._device_arg = device
        self._model: Any = None
        self._proc: Any = None
        self._lock = threading.Lock()

    def config(self) -> dict[str, Any]:
        """Constructor arguments recorded in the manifest (the device is chosen per machine)."""
        return {"batch_size": self.batch_size, "page_size": self.page_size}

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._model is None:
                self._model, self._proc = _load_model(self.ref, self.family, pick_device(self._device_arg))
            return self._model, self._proc

    def _run(self, inputs: Any) -> list[np.ndarray]:
        """Forward one processed batch; the attended rows of each sequence, re-normalised in float32."""
        import torch

        model, _ = self._load()
        param = next(model.parameters())
        moved = {k: v.to(param.device, param.dtype) if v.is_floating_point() else v.to(param.device)
                 for k, v in inputs.items()}
        with torch.inference_mode():
            emb = model(**moved).embeddings.float().cpu().numpy()
        mask = inputs["attention_mask"].cpu().numpy().astype(bool)
        return [l2_normalize(e[m]) for e, m in zip(emb, mask, strict=True)]

    def _layouts(self, inputs: Any) -> list[PageLayout | None]:
        """Per page of a processed batch: its image tokens' first kept row and grid (module docstring)."""
        _, proc = self._load()
        ids = inputs["input_ids"].cpu().numpy()
        mask = inputs["attention_mask"].cpu().numpy().astype(bool)
        thw = inputs["image_grid_thw"].cpu().numpy() if "image_grid_thw" in inputs else None
        out: list[PageLayout | None] = []
        for b in range(len(ids)):
            pos = np.flatnonzero(ids[b][mask[b]] == proc.image_token_id)
            if thw is not None:
                merge = int(proc.image_processor.merge_size)
                rows, cols = int(thw[b][1]) // merge, int(thw[b][2]) // merge
            else:
                rows = cols = math.isqrt(len(pos))
            contiguous = len(pos) > 0 and int(pos[-1] - pos[0]) + 1 == len(pos)
            if not contiguous or rows * cols != len(pos) or (thw is not None and int(thw[b][0]) != 1):
                _log.warning("%s: %d image tokens do not form one %dx%d grid; page hits get no region box",
                             self.name, len(pos), rows, cols)
                out.append(None)
            else:
                out.append(PageLayout(int(pos[0]), rows, cols))
        return out

    def encode_pages(self, images: Sequence[Any]) -> list[np.ndarray]:
        """Page images (RGB PIL) → one ``(tokens, dim)`` float32 matrix each, rows L2-normalised."""
        return self.encode_pages_with_layout(images)[0]

    def encode_pages_with_layout(self, images: Sequence[Any]) -> tuple[list[np.ndarray], list[PageLayout | None]]:
        """:meth:`encode_pages` plus each page's :class:`~omniret.spaces.multivector.PageLayout` (``None`` when the
        processor's image tokens do not form one grid; see the module docstring)."""
        from omniret.media.image import bound_aspect

        _, proc = self._load()
        mats: list[np.ndarray] = []
        layouts: list[PageLayout | None] = []
        for i in range(0, len(images), self.batch_size):
            part = [bound_aspect(im, MAX_PAGE_ASPECT).convert("RGB") for im in images[i : i + self.batch_size]]
            inputs = proc.process_images(images=part, return_tensors="pt")
            mats.extend(self._run(inputs))
            layouts.extend(self._layouts(inputs))
        return mats, layouts

    def encode_queries(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Query texts → one ``(tokens, dim)`` float32 matrix each (with the augmentation tokens)."""
        for t in texts:
            if not isinstance(t, str) or not t.strip():
                raise ModelError(f"{self.name}: query texts must be non-empty strings, got {t!r}")
        _, proc = self._load()
        out: list[np.ndarray] = []
        for i in range(0, len(texts), 16):
            out.extend(self._run(proc.process_queries(text=list(texts[i : i + 16]), return_tensors="pt")))
        return out


def _load_model(ref: str, family: str, device: str) -> tuple[Any, Any]:
    import transformers

    model_cls, proc_cls = (getattr(transformers, n) for n in _FAMILIES[family])
    local = os.path.isdir(ref)
    try:
        model = model_cls.from_pretrained(ref, local_files_only=local)
        proc = proc_cls.from_pretrained(ref, local_files_only=local)
    except Exception as e:
        if local:
            raise ModelError(f"colpali:{ref}: cannot load the {family} model or its processor "
                             f"({type(e).__name__}: {e}); a local folder needs both (model.save_pretrained + "
                             "processor.save_pretrained)") from e
        raise ModelError(f"page model 'colpali:{ref}' cannot be loaded ({type(e).__name__}); {_fix(ref)}") from e
    model = model.to(device).eval()
    if device.startswith("cuda"):  # VLM activations overflow float16; bfloat16 is what these were trained in
        import torch

        model = model.to(torch.bfloat16)
    return model, proc


def create(rest: str = "", **kwargs: Any) -> ColPaliEncoder:
    """``colpali:<hub id or folder>``: ColPali / ColQwen2 multi-vector page encoder (a page model, not a main model)."""
    return ColPaliEncoder(rest, **kwargs)
