"""Random-init tiny CLAP and CLIP checkpoints (model + feature extractor / image processor + a byte-level
BPE tokenizer written from scratch), saved with ``save_pretrained`` so tests load them through the real
``hf:`` loader."""

from __future__ import annotations

import json
from pathlib import Path


def byte_symbols() -> list[str]:
    """GPT-2 byte-level BPE's printable stand-in for each of the 256 bytes (its base vocabulary)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def build(d: Path) -> Path:
    """Write the checkpoint to ``d``: no merges, so every byte is one token (enough for tests)."""
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizer

    torch.manual_seed(0)
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>", *byte_symbols()])}
    d.mkdir(parents=True, exist_ok=True)
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")
    tok = RobertaTokenizer(str(d / "vocab.json"), str(d / "merges.txt"))
    cfg = ClapConfig(text_config=dict(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=37, max_position_embeddings=130, pad_token_id=1),
                     audio_config=dict(depths=[1, 1], num_attention_heads=[2, 2], patch_embeds_hidden_size=16,
                                       hidden_size=32, projection_dim=16),
                     projection_dim=16)
    model = ClapModel(cfg).eval()
    fe = ClapFeatureExtractor(truncation="rand_trunc")
    model.save_pretrained(d)
    ClapProcessor(feature_extractor=fe, tokenizer=tok).save_pretrained(d)
    return d


def build_clip(d: Path) -> Path:
    """A tiny CLIP (32x32 images, 16-d space) with a CLIP BPE tokenizer of single bytes (with ``</w>`` forms)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    torch.manual_seed(0)
    syms = byte_symbols()
    vocab = {t: i for i, t in enumerate([*syms, *(s + "</w>" for s in syms), "<|startoftext|>", "<|endoftext|>"])}
    d.mkdir(parents=True, exist_ok=True)
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(d / "vocab.json"), str(d / "merges.txt"))
    n = len(vocab)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=n, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                         max_position_embeddings=77, bos_token_id=n - 2, eos_token_id=n - 1, pad_token_id=n - 1),
        vision_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                           image_size=32, patch_size=8),
        projection_dim=16,
    )
    CLIPModel(cfg).eval().save_pretrained(d)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tok).save_pretrained(d)
    return d
