"""ONNX query towers: an encoder's query side exported once, then run by onnxruntime without torch.

A search from a fresh process (the CLI) needs only one tower of the model — the text tower for a
text query — yet loading the model through torch costs seconds before the first token (importing torch
alone takes seconds on a small machine). Exported once to ONNX next to the index
(:mod:`omniret.encoders.query_cache`), the tower runs under onnxruntime with the Rust ``tokenizers``
library: no torch, no transformers, no sentence-transformers in the query process.

- Export side (needs torch, runs once): :func:`export_sentence_transformer` writes a
  sentence-transformers model (transformer, pooling, dense, normalise: the whole ``forward``) as one
  graph plus its fast tokenizer; :func:`export_module` writes any image module. Each export is
  checked against the torch model on probe inputs (:func:`check_close`) and refused when they differ.
- Run side: :class:`TextTower` (tokenize → graph → unit vectors) and :class:`ImageTower` (a stacked
  batch of preprocessed pixels → the graph's outputs); :class:`OnnxQueryEncoder` wraps them as an
  :class:`~omniret.encoders.base.Encoder` for queries, with the base encoder's names and space.
- The contract an encoder implements to take part: :class:`~omniret.encoders.base.QueryTowers`
  (``Encoder.query_towers()``).

Threads: each session runs with the query policy's intra-op thread count (:func:`omniret.threads.query_threads`,
one by default), the same reasoning as torch's: a batch of one is latency-bound.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omniret.encoders.base import Encoder, ImagePreprocessor, l2_normalize
from omniret.errors import ModelError
from omniret.items import Modality, Role

#: texts every text export is checked on: short, empty-ish, padded in a batch, unicode, past max length
PROBE_TEXTS = (
    "a cat",
    "  A photo of a red bicycle leaning on a wall.  ",
    "x",
    "Schöne Grüße aus Zürich — 日本語のテキスト, émojis 🚀",
    "rocket launch " * 200,
)
#: the largest |difference| allowed between an export and its torch model on the probes (float32 math)
TOLERANCE = 1e-4


class CacheDamaged(ModelError):
    """A cached tower file is missing, truncated or does not match its recorded checksum."""


# -- run side -------------------------------------------------------------------------------------
def session(model: bytes | Path) -> Any:
    """An onnxruntime CPU session over ``model`` (a file, which loads faster than its bytes), with the
    query thread policy."""
    import onnxruntime as ort

    from omniret.threads import query_threads

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = query_threads() or 0
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), opts,
                                providers=["CPUExecutionProvider"])


class TextTower:
    """Texts → unit vectors with an exported sentence-transformers graph and its fast tokenizer.

    ``spec``: ``inputs`` (graph input names), ``max_length``, ``lowercase``, ``prompt`` (prepended to
    each text, as sentence-transformers does), ``pad_id``.
    """

    def __init__(self, model: bytes | Path, tokenizer_json: bytes, spec: Mapping[str, Any]) -> None:
        from tokenizers import Tokenizer

        self.spec = dict(spec)
        self._session = session(model)
        tok = Tokenizer.from_str(tokenizer_json.decode("utf-8"))
        tok.enable_truncation(int(spec["max_length"]))
        tok.enable_padding(pad_id=int(spec.get("pad_id", 0)), pad_token=str(spec.get("pad_token", "[PAD]")))
        self._tok = tok

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        prompt, lower = str(self.spec.get("prompt") or ""), bool(self.spec.get("lowercase"))
        prepared = [prompt + t for t in texts]
        encs = self._tok.encode_batch([t.lower() if lower else t for t in prepared])
        arrays = {"input_ids": [e.ids for e in encs], "attention_mask": [e.attention_mask for e in encs],
                  "token_type_ids": [e.type_ids for e in encs]}
        feed = {name: np.asarray(arrays[name], dtype=np.int64) for name in self.spec["inputs"]}
        return l2_normalize(self._session.run(None, feed)[0])


class ImageTower:
    """A stacked batch of preprocessed pixels ``(n, C, H, W)`` → the graph's outputs (float32 arrays)."""

    def __init__(self, model: bytes | Path) -> None:
        self._session = session(model)
        self._input = self._session.get_inputs()[0].name

    def __call__(self, pixels: np.ndarray) -> list[np.ndarray]:
        outs = self._session.run(None, {self._input: np.ascontiguousarray(pixels, dtype=np.float32)})
        return [np.asarray(o, dtype=np.float32) for o in outs]


class OnnxQueryEncoder(Encoder):
    """The query side of ``base`` over ONNX towers: the same name, space and dim, no torch.

    ``text``/``image`` build their tower on first use (a text query never reads the image graph);
    ``image_post`` turns the image graph's outputs into vectors. A modality without a tower goes to
    ``base`` (which loads its model as usual).
    """

    def __init__(self, base: Encoder, *, text: Callable[[], TextTower] | None = None,
                 image: Callable[[], ImageTower] | None = None,
                 image_post: Callable[[list[np.ndarray]], np.ndarray] | None = None,
                 text_post: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.base = base
        self.name, self.space, self.dim = base.name, base.space, base.dim
        self.modalities, self.image_size, self.audio_rate = base.modalities, base.image_size, base.audio_rate
        self._factories: dict[str, Callable[[], Any] | None] = {"text": text, "image": image}
        self._towers: dict[str, Any] = {}
        self._image_post, self._text_post = image_post, text_post
        self._lock = threading.Lock()

    def config(self) -> dict[str, Any]:
        return self.base.config()

    def has_tower(self, modality: Modality) -> bool:
        key = "text" if modality is Modality.TEXT else "image" if modality is Modality.IMAGE else ""
        return self._factories.get(key) is not None

    def _tower(self, kind: str) -> Any:
        """The ``kind`` tower, built on first use. Any failure to build it (a damaged file, a graph this
        onnxruntime cannot run: an index folder copied from another machine) is :class:`CacheDamaged`."""
        with self._lock:
            if kind not in self._towers:
                factory = self._factories[kind]
                assert factory is not None  # callers check has_tower first
                try:
                    self._towers[kind] = factory()
                except CacheDamaged:
                    raise
                except Exception as e:
                    raise CacheDamaged(f"the ONNX {kind} tower cannot be loaded here ({type(e).__name__}: {e})") from e
            return self._towers[kind]

    def encode_text(self, texts: Sequence[str], *, role: Role = Role.QUERY) -> np.ndarray:
        if not self.has_tower(Modality.TEXT) or role is not Role.QUERY:  # the tower holds the query prompt
            return self.base.encode_text(texts, role=role)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._tower("text")(list(texts))
        return self._text_post(out) if self._text_post is not None else out

    def image_preprocessor(self) -> ImagePreprocessor:
        return self.base.image_preprocessor()

    def encode_pixels(self, pixels: np.ndarray, *, role: Role = Role.DOCUMENT) -> np.ndarray:
        if not self.has_tower(Modality.IMAGE) or self._image_post is None:
            return self.base.encode_pixels(pixels, role=role)
        if len(pixels) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._image_post(self._tower("image")(pixels))


# -- export side (torch) ----------------------------------------------------------------------------
def check_close(name: str, got: np.ndarray, want: np.ndarray, tol: float = TOLERANCE) -> None:
    """Raise :class:`ModelError` unless the export's output matches the torch model's within ``tol``."""
    got, want = np.asarray(got, dtype=np.float32), np.asarray(want, dtype=np.float32)
    if got.shape != want.shape:
        raise ModelError(f"the ONNX {name} tower gives shape {got.shape}, the model {want.shape}; not used")
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    if not err <= tol:
        raise ModelError(f"the ONNX {name} tower differs from the model by {err:.2e} (> {tol:g}); not used")


def export_module(module: Any, example: Any, path: Path, input_names: Sequence[str], output_names: Sequence[str],
                  dynamic: Mapping[str, Mapping[int, str]]) -> None:
    """``torch.onnx.export`` of ``module`` (eval mode, no grad) with dynamic axes; warnings silenced.

    Uses the TorchScript exporter, which needs no extra package (the dynamo exporter needs onnxscript);
    the graph is checked against the module by the caller.
    """
    import warnings

    import torch

    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), example, str(path), input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes={k: dict(v) for k, v in dynamic.items()},
                          opset_version=17, dynamo=False)


def export_sentence_transformer(model: Any, folder: Path, *, prompt: str = "") -> dict[str, Any]:
    """Write a ``SentenceTransformer``'s whole forward as ``text.onnx`` plus its ``tokenizer.json`` and
    return the :class:`TextTower` spec. Raises :class:`ModelError` when the model cannot be exported
    faithfully (no fast tokenizer, a pooling that drops the prompt, outputs that differ)."""
    import torch

    first = model[0]
    tokenizer = getattr(first, "tokenizer", None)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ModelError("the text model has no fast (Rust) tokenizer; its query tower cannot run without it")
    for mod in model:
        if getattr(mod, "include_prompt", True) is False and prompt:
            raise ModelError("the model pools without its prompt tokens; not exported")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer("x")]

    class _Forward(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.st = model

        def forward(self, *args: Any) -> Any:
            return self.st(dict(zip(names, args, strict=True)))["sentence_embedding"]

    example = tokenizer(["a photo of a cat", "x"], padding=True, return_tensors="pt")
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"embedding": {0: "batch"}}
    export_module(_Forward(), tuple(example[n].cpu() for n in names), folder / "text.onnx", names, ["embedding"], axes)
    (folder / "tokenizer.json").write_text(backend.to_str(), encoding="utf-8")
    return {"inputs": names, "max_length": int(model.max_seq_length or tokenizer.model_max_length),
            "lowercase": bool(getattr(first, "do_lower_case", False)), "prompt": prompt,
            "pad_id": int(tokenizer.pad_token_id or 0), "pad_token": str(tokenizer.pad_token or "[PAD]")}
