"""Multilingual open_clip models (an XLM-RoBERTa text tower, as ``xlm-roberta-base-ViT-B-32``) through
``openclip:local-dir:``: a tiny random-init checkpoint whose text tower is a transformers
``XLMRobertaModel`` and whose tokenizer is a sentencepiece-style Unigram model trained here on
captions in six languages, both loaded by open_clip's own HF code path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from omniret.encoders.registry import create

CAPTIONS = [
    "a cat on a sofa", "eine Katze auf dem Sofa", "un gato en el sofá", "un chat sur le canapé",
    "ソファの上の猫", "沙发上的猫", "a red bicycle", "ein rotes Fahrrad", "una bicicleta roja",
    "un vélo rouge", "赤い自転車", "一辆红色自行车",
]


def _tokenizer(folder: Path) -> None:
    """An XLM-R style fast tokenizer (Unigram, <s> </s> <pad> <unk> <mask>) saved to ``folder``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import XLMRobertaTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok.train_from_iterator(CAPTIONS * 20, trainers.UnigramTrainer(vocab_size=200, special_tokens=specials,
                                                                  unk_token="<unk>"))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = XLMRobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", mask_token="<mask>", cls_token="<s>", sep_token="</s>")
    fast.save_pretrained(str(folder))


@pytest.fixture(scope="module")
def tiny_xlmr_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import open_clip
    import torch
    from safetensors.torch import save_file
    from transformers import XLMRobertaConfig

    d = tmp_path_factory.mktemp("tiny_xlmr_clip")
    _tokenizer(d)
    XLMRobertaConfig(vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=80, pad_token_id=1).save_pretrained(str(d))
    model_cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
        # the layout of open_clip's xlm-roberta-base-ViT-B-32 config, pointing at the local tower
        "text_cfg": {"hf_model_name": str(d), "hf_tokenizer_name": str(d), "hf_pooler_type": "mean_pooler",
                     "hf_model_pretrained": False, "context_length": 32},
    }
    torch.manual_seed(0)
    clip = open_clip.CustomTextCLIP(embed_dim=16, vision_cfg=model_cfg["vision_cfg"], text_cfg=model_cfg["text_cfg"])
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(d / "open_clip_model.safetensors"))
    (d / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": {}}))
    return d


def test_xlmr_tower_loads_and_embeds_every_language(tiny_xlmr_clip: Path, sample_images: dict) -> None:
    enc = create(f"openclip:local-dir:{tiny_xlmr_clip}", device="cpu", batch_size=4)
    assert enc.dim == 16 and enc.image_size == 32
    t = enc.encode_text(CAPTIONS)
    assert t.shape == (len(CAPTIONS), 16) and t.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    assert len({tuple(np.round(r, 5)) for r in t}) == len(CAPTIONS)  # every script tokenised, none collapsed
    v = enc.encode_images([sample_images["chelsea"], sample_images["coffee"]])
    assert v.shape == (2, 16)
    # batching does not change results (the XLM-R attention mask handles padding)
    np.testing.assert_allclose(enc.encode_text(CAPTIONS[4:5]), t[4:5], atol=1e-5)


def test_xlmr_weights_are_the_saved_ones(tiny_xlmr_clip: Path) -> None:
    import open_clip
    import torch

    enc = create(f"openclip:local-dir:{tiny_xlmr_clip}", device="cpu")
    got = enc.encode_text(["沙发上的猫"])
    model = open_clip.create_model(f"local-dir:{tiny_xlmr_clip}").eval()  # XLM-R has dropout
    tok = open_clip.get_tokenizer(f"local-dir:{tiny_xlmr_clip}")
    with torch.inference_mode():
        ref = model.encode_text(tok(["沙发上的猫"])).numpy()
    np.testing.assert_allclose(got, ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=1e-5)


def test_xlmr_index_roundtrip(tiny_xlmr_clip: Path, tmp_path: Path, sample_images: dict) -> None:
    """An index built with the multilingual CLIP answers a Japanese query and reopens with no flags."""
    import omniret

    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("chelsea", "coffee", "rocket"):
        sample_images[name].save(folder / f"{name}.png")
    name = f"openclip:local-dir:{tiny_xlmr_clip}"
    with omniret.open(tmp_path / "idx", model=name, device="cpu") as idx:
        assert idx.add([str(folder)], workers=0).new == 3
        hits = idx.search("ソファの上の猫", k=3)
    assert len(hits) == 3
    with omniret.open(tmp_path / "idx") as idx:
        assert idx.encoder.name == name
        assert [h.id for h in idx.search("ソファの上の猫", k=3)] == [h.id for h in hits]
