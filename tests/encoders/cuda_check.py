"""CUDA check of the encoders, for a machine with a GPU (not collected by pytest; CI has no GPU).

Checks that with ``device=None`` each encoder picks CUDA, runs in fp16 there, and agrees with fp32 on
the CPU: the offline image path (EfficientNet-Lite0 + ConSE with the shipped class table), a tiny
random-init open_clip model through ``local-dir:``, and a tiny sentence-transformers model through
``st:<path>``. Usage: ``PYTHONPATH=src python tests/encoders/cuda_check.py [tokenizer_dir]``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from conftest import TINY_OPENCLIP_CFG  # noqa: E402

from omniret.encoders.registry import create  # noqa: E402


def _images() -> list[Image.Image]:
    from skimage import data
    from sklearn.datasets import load_sample_images

    out = [Image.fromarray(getattr(data, n)()).convert("RGB") for n in ("chelsea", "coffee", "astronaut", "rocket")]
    return out + [Image.fromarray(a) for a in load_sample_images().images]


def _agree(name: str, a: np.ndarray, b: np.ndarray, floor: float) -> dict:
    cos = np.sum(a * b, axis=1)
    ok = bool(cos.min() > floor and a.dtype == b.dtype == np.float32)
    print(f"{name}: min cosine cpu-fp32 vs cuda-fp16 {cos.min():.5f} (floor {floor}) -> {'OK' if ok else 'FAIL'}")
    return {"check": name, "min_cos": float(cos.min()), "ok": ok}


def check_offline(images: list[Image.Image]) -> list[dict]:
    cpu, gpu = create("offline", device="cpu"), create("offline")
    assert gpu.device == "cuda", gpu.device
    pre = cpu.image_preprocessor()
    px = np.stack([pre(im) for im in images])
    res = [_agree("offline images", cpu.encode_pixels(px), gpu.encode_pixels(px), 0.99)]
    assert next(gpu._image_model().parameters()).dtype == torch.float16
    top_c = cpu.image_probabilities(px).argmax(1)
    top_g = gpu.image_probabilities(px).argmax(1)
    res.append({"check": "offline top-1 agreement", "ok": bool((top_c == top_g).mean() >= 0.85),
                "agree": float((top_c == top_g).mean())})
    big = np.repeat(px, 64, axis=0)[:512]
    gpu.encode_pixels(big[:64])
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    gpu.encode_pixels(big)
    torch.cuda.synchronize()
    res.append({"check": "offline cuda images/s (batch 64, 512 images)", "ok": True,
                "value": round(len(big) / (time.perf_counter() - t0), 1)})
    return res


def check_openclip(images: list[Image.Image], tmp: Path) -> list[dict]:
    import open_clip
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = open_clip.CLIP(**TINY_OPENCLIP_CFG)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / "open_clip_model.safetensors"))
    (tmp / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_OPENCLIP_CFG}))
    cpu, gpu = create(f"openclip:local-dir:{tmp}", device="cpu"), create(f"openclip:local-dir:{tmp}")
    texts = ["a cat", "a cup of coffee", "a rocket"]
    res = [_agree("openclip text", cpu.encode_text(texts), gpu.encode_text(texts), 0.99),
           _agree("openclip images", cpu.encode_images(images), gpu.encode_images(images), 0.99)]
    from omniret.encoders.openclip import _input_dtype

    res.append({"check": "openclip runs fp16 on cuda", "ok": _input_dtype(gpu._model.visual) == torch.float16})
    return res


def check_st(tok_dir: Path, tmp: Path) -> list[dict]:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    BertModel(cfg).save_pretrained(tmp / "hf")
    tok.save_pretrained(tmp / "hf")
    word = Transformer(str(tmp / "hf"), max_seq_length=64)
    SentenceTransformer(modules=[word, Pooling(32, pooling_mode="mean")], device="cpu").save(str(tmp / "st"))
    cpu, gpu = create(f"st:{tmp / 'st'}", device="cpu"), create(f"st:{tmp / 'st'}")
    texts = ["a cat", "a cup of coffee", "a rocket launch"]
    return [_agree("st text", cpu.encode_text(texts), gpu.encode_text(texts), 0.99)]


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device")
        return 2
    images = _images()
    results = check_offline(images)
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        results += check_openclip(images, Path(a))
        if len(sys.argv) > 1:
            results += check_st(Path(sys.argv[1]), Path(b))
    print(json.dumps({"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "results": results}))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
