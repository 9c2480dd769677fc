"""``openclip:...``: CLIP-family models (CLIP, SigLIP, MobileCLIP, CoCa…) through open_clip's own loader.

Names:

- ``openclip:<arch>/<pretrained>``: a built-in architecture and a pretrained tag
  (``openclip:ViT-B-32-256/datacomp_s34b_b86k``) or a checkpoint file (``openclip:ViT-B-32//ckpt.pt``);
- ``openclip:local-dir:<path>``: a folder with ``open_clip_config.json`` (``model_cfg`` +
  ``preprocess_cfg``) and the weights (``open_clip_model.safetensors`` or another file open_clip finds);
- ``openclip:hf-hub:<org>/<repo>``: a Hugging Face repository in the same layout.

``dim`` and ``image_size`` come from the model config (built in, the local JSON, or the hub's small
config file), never from loading the weights. MobileCLIP / FastViT image towers are re-parameterised
for inference (timm's ``reparameterize_model``: train-time branches folded into single convolutions).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omniret.encoders.base import Encoder, ImagePreprocessor, l2_normalize, pick_device
from omniret.errors import ModelError
from omniret.items import Modality, Role

log = logging.getLogger(__name__)

#: weight file names open_clip looks for in a hub repository, in its order of preference
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin")

_FIX = (
    "Fix: run once on a machine with network so the weights are cached, point to a folder with "
    "'openclip:local-dir:<path>' (open_clip_config.json + weights), or use model='offline'"
)


class OpenClipPreprocess:
    """Picklable open_clip eval transform (resize, centre crop, normalise) returning float32 CHW numpy.

    With the default shortest-side resize, extreme aspect ratios are first cut to their centre
    (:func:`omniret.media.image.bound_aspect`): the same output, with a bounded resize.

    Holds only the preprocessing config; the torchvision transform is rebuilt lazily in each process.
    """

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = dict(cfg)
        self._tf: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"cfg": self.cfg}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.cfg, self._tf = state["cfg"], None

    def __call__(self, image: Any) -> np.ndarray:
        if self._tf is None:
            from open_clip.transform import PreprocessCfg, image_transform_v2

            cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in self.cfg.items()}
            self._tf = image_transform_v2(PreprocessCfg(**cfg), is_train=False)
        if self.cfg.get("resize_mode", "shortest") == "shortest":  # "squash"/"longest" resize to a bounded size
            from omniret.media.image import bound_aspect

            image = bound_aspect(image)
        return np.ascontiguousarray(self._tf(image).numpy(), dtype=np.float32)

    def __repr__(self) -> str:
        return f"OpenClipPreprocess({self.cfg})"


def _parse(rest: str) -> tuple[str, str, str | None]:
    """``rest`` → ``(kind, model_name for open_clip, pretrained)`` with kind in builtin/local-dir/hf-hub."""
    import open_clip

    if not rest:
        raise ModelError("openclip needs a model: openclip:<arch>/<pretrained>, openclip:local-dir:<path> "
                         "or openclip:hf-hub:<repo>, e.g. openclip:ViT-B-32-256/datacomp_s34b_b86k")
    if rest.startswith("local-dir:"):
        path = Path(rest[len("local-dir:"):]).expanduser()
        if not (path / "open_clip_config.json").is_file():
            raise ModelError(f"openclip:{rest}: no open_clip_config.json in {path}; the folder needs "
                             "open_clip_config.json (with 'model_cfg') and the weights (.safetensors)")
        return "local-dir", f"local-dir:{path.resolve()}", None
    if rest.startswith("hf-hub:"):
        if not rest[len("hf-hub:"):].strip("/"):
            raise ModelError("openclip:hf-hub: needs a repository, e.g. openclip:hf-hub:timm/MobileCLIP2-S2-OpenCLIP")
        return "hf-hub", rest, None
    arch, _, tag = rest.partition("/")
    if arch not in open_clip.list_models():
        raise ModelError(f"unknown open_clip architecture {arch!r} in 'openclip:{rest}'; see "
                         "open_clip.list_models(), e.g. ViT-B-32-256, MobileCLIP2-S2, ViT-SO400M-14-SigLIP2")
    if not tag:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise ModelError(f"'openclip:{rest}' names no pretrained weights; use openclip:{arch}/<tag> with a tag "
                         f"from {tags or '(none known)'} or a checkpoint path")
    if tag not in open_clip.list_pretrained_tags_by_model(arch) and not Path(tag).is_file():
        raise ModelError(f"'openclip:{rest}': {tag!r} is neither a pretrained tag of {arch} "
                         f"({', '.join(open_clip.list_pretrained_tags_by_model(arch)) or 'none'}) nor a file")
    return "builtin", arch, tag


def hub_files(arch: str, tag: str) -> tuple[str, tuple[str, ...]] | None:
    """``(repo_id, candidate weight filenames)`` of a built-in ``arch``/``tag`` hosted on the HF hub."""
    import open_clip

    hub = (open_clip.get_pretrained_cfg(arch, tag) or {}).get("hf_hub", "")
    if not hub:
        return None
    repo, filename = os.path.split(hub) if not hub.endswith("/") else (hub.rstrip("/"), "")
    return repo, ((filename,) if filename else WEIGHT_FILES)


def cached_file(repo: str, files: Sequence[str]) -> str | None:
    """The local path of the first of ``files`` in the Hugging Face cache, else None (no network)."""
    from huggingface_hub import try_to_load_from_cache

    for f in files:
        hit = try_to_load_from_cache(repo, f)
        if isinstance(hit, str):
            return hit
    return None


def hub_reachable(repo: str, files: Sequence[str], timeout: float = 3.0) -> str | None:
    """One short, retry-free probe of the hub: the first of ``files`` that exists there, else None."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return None
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    for f in files:
        try:
            get_hf_file_metadata(hf_hub_url(repo, f), timeout=timeout, retry_on_errors=False)
            return f
        except Exception as e:  # no network, no such file, hub down: all mean "not this one"
            log.debug("%s/%s not reachable: %s", repo, f, e)
    return None


def _hub_config(repo: str) -> dict[str, Any]:
    from huggingface_hub import hf_hub_download

    path = cached_file(repo, ("open_clip_config.json",))
    if path is None:
        if hub_reachable(repo, ("open_clip_config.json",)) is None:
            raise ModelError(f"openclip:hf-hub:{repo}: open_clip_config.json is not cached and the hub "
                             f"cannot be reached. {_FIX}")
        try:
            path = hf_hub_download(repo, "open_clip_config.json")
        except Exception as e:
            raise ModelError(f"openclip:hf-hub:{repo}: cannot fetch open_clip_config.json ({e}). {_FIX}") from e
    with open(path, encoding="utf-8") as f:
        return dict(json.load(f))


def _input_dtype(module: Any) -> Any:
    """The dtype the image tower's weights run in (open_clip's fp16 keeps some parameters in fp32)."""
    import torch

    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
            return m.weight.dtype
    return next(module.parameters()).dtype


class OpenClipEncoder(Encoder):
    """An open_clip model; text and images in one space. Loads lazily on first use."""

    modalities = frozenset({Modality.TEXT, Modality.IMAGE})

    def __init__(self, model: str, *, device: str | None = None, batch_size: int = 64,
                 cache_dir: str | None = None) -> None:
        if batch_size < 1:
            raise ModelError(f"openclip: batch_size must be >= 1, got {batch_size}")
        self.kind, self.model_name, self.pretrained = _parse(model)
        self.name = "openclip:" + (self.model_name if self.kind == "local-dir" else model)
        self.space = self.name
        self._device_arg, self.batch_size, self.cache_dir = device, int(batch_size), cache_dir
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self._json = self._config_json()
        self.dim = int(self._json["model_cfg"]["embed_dim"])
        size = self._json["model_cfg"]["vision_cfg"].get("image_size", 224)
        self.image_size = int(max(size) if isinstance(size, list | tuple) else size)

    def _config_json(self) -> dict[str, Any]:
        """``{"model_cfg": ..., "preprocess_cfg": ...}`` as open_clip would resolve it, without weights."""
        import open_clip

        if self.kind == "local-dir":
            path = Path(self.model_name[len("local-dir:"):]) / "open_clip_config.json"
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise ModelError(f"{self.name}: cannot read {path}: {e}") from e
        elif self.kind == "hf-hub":
            data = _hub_config(self.model_name[len("hf-hub:"):])
        else:
            tag_cfg = open_clip.get_pretrained_cfg(self.model_name, self.pretrained or "") or {}
            data = {"model_cfg": open_clip.get_model_config(self.model_name), "preprocess_cfg": tag_cfg}
        if "model_cfg" not in data or "embed_dim" not in data["model_cfg"]:
            raise ModelError(f"{self.name}: the open_clip config has no model_cfg.embed_dim")
        return data

    def config(self) -> dict[str, Any]:
        return {}  # the registry name carries the model; config holds only extra constructor args

    @property
    def device(self) -> str:
        return pick_device(self._device_arg)

    def _preprocess_cfg(self) -> dict[str, Any]:
        from open_clip.transform import PreprocessCfg, merge_preprocess_dict

        cfg = merge_preprocess_dict(PreprocessCfg(), self._json.get("preprocess_cfg") or {})
        size = self._json["model_cfg"]["vision_cfg"].get("image_size", cfg["size"])
        cfg["size"] = tuple(size) if isinstance(size, list) else size
        return cfg

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._model is None:
                self._model, self._tokenizer = self._load_now()
            return self._model, self._tokenizer

    def _check_weights(self) -> None:
        """Fail fast (no retry loop) when hub-hosted weights are neither cached nor reachable."""
        if self.kind == "hf-hub":
            repo, files = self.model_name[len("hf-hub:"):], WEIGHT_FILES
        elif self.kind == "builtin" and self.pretrained and not Path(self.pretrained).is_file():
            found = hub_files(self.model_name, self.pretrained)
            if found is None:
                return
            repo, files = found
        else:
            return
        if cached_file(repo, files) is None and hub_reachable(repo, files) is None:
            raise ModelError(f"could not load open_clip model {self.name!r}: its weights ({repo}) are not in the "
                             f"local Hugging Face cache and the hub cannot be reached. {_FIX}")

    def _load_now(self) -> tuple[Any, Any]:
        import open_clip

        self._check_weights()
        device = self.device
        try:
            model = open_clip.create_model(
                self.model_name, pretrained=self.pretrained, device=device,
                precision="fp16" if device.startswith("cuda") else "fp32",
                require_pretrained=True, cache_dir=self.cache_dir,
                force_quick_gelu=bool((self._json.get("preprocess_cfg") or {}).get("quick_gelu", False)),
            )
            tokenizer = open_clip.get_tokenizer(self.model_name, cache_dir=self.cache_dir)
        except Exception as e:  # open_clip raises RuntimeError/FileNotFoundError/ValueError/OSError
            raise ModelError(f"could not load open_clip model {self.name!r}: {e}. {_FIX}") from e
        model.eval()
        if "mobileclip" in self.name.lower() or "fastvit" in json.dumps(self._json["model_cfg"]).lower():
            from timm.utils import reparameterize_model

            model = reparameterize_model(model, inplace=True).eval()
        return model, tokenizer

    def encode_text(self, texts: Sequence[str], *, role: Role = Role.QUERY) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        model, tokenizer = self._load()
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                tokens = tokenizer(list(texts[i : i + self.batch_size])).to(self.device)
                out.append(model.encode_text(tokens).float().cpu().numpy())
        return l2_normalize(np.concatenate(out))

    def image_preprocessor(self) -> ImagePreprocessor:
        return OpenClipPreprocess(self._preprocess_cfg())

    def encode_pixels(self, pixels: np.ndarray, *, role: Role = Role.DOCUMENT) -> np.ndarray:
        if len(pixels) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.ndim != 4 or pixels.shape[1] != 3:
            raise ModelError(f"{self.name}: expected pixels (n, 3, H, W) from image_preprocessor(), got {pixels.shape}")
        model, _ = self._load()
        dtype = _input_dtype(model.visual)
        out = []
        with torch.inference_mode():
            for i in range(0, len(pixels), self.batch_size):
                x = torch.from_numpy(pixels[i : i + self.batch_size]).to(self.device, dtype)
                out.append(model.encode_image(x).float().cpu().numpy())
        return l2_normalize(np.concatenate(out))


def create(rest: str, **kwargs: Any) -> OpenClipEncoder:
    """``openclip:<arch>/<pretrained>``, ``openclip:local-dir:<path>`` or ``openclip:hf-hub:<repo>``."""
    return OpenClipEncoder(rest, **kwargs)

