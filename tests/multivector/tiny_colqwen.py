"""A random-init tiny ColQwen2 checkpoint (model + Qwen2-VL image processor + a BPE tokenizer trained
offline with the ``tokenizers`` library), written with ``save_pretrained`` so tests load it through the
real ``colpali:<dir>`` loader. Import it by path (``sys.path``), never through ``conftest``."""

from __future__ import annotations

from pathlib import Path

#: the special tokens ColQwen2Processor's prompts use (Qwen2-VL's chat and vision markers)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
            "<|image_pad|>", "<|video_pad|>"]

_CORPUS = [
    "Query: what does the page say about fonts and layout?",
    "Describe the image. user",
    "LaTeX documentation for packages, classes, fonts, tables, figures and bibliographies.",
    "The quick brown fox jumps over the lazy dog. Volcanoes, penguins and sourdough bread.",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?'\"()[]{}-_/\\",
]


def build_tokenizer() -> object:
    """A byte-level BPE (vocab ~400) trained on a few sentences, as a Qwen2 fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS, trainer)
    return Qwen2TokenizerFast(tokenizer_object=tok, pad_token="<|endoftext|>", eos_token="<|im_end|>",
                              unk_token=None, bos_token=None)


def build(d: Path, *, embedding_dim: int = 16, max_pixels: int = 112 * 112) -> Path:
    """Write the checkpoint to ``d``: 1-layer text model (hidden 32), 1-block vision tower (embed 32).

    ``max_pixels`` bounds the image processor's resize (Qwen2-VL's dynamic resolution), so a page
    becomes at most ``max_pixels / 28**2`` merged patch tokens (16 by default).
    """
    import torch
    from transformers import ColQwen2Config, ColQwen2ForRetrieval, ColQwen2Processor, Qwen2VLImageProcessor

    torch.manual_seed(0)
    tok = build_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIALS}  # type: ignore[attr-defined]
    vocab = len(tok)  # type: ignore[arg-type]
    text = dict(vocab_size=vocab, bos_token_id=None, eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                num_key_value_heads=1, max_position_embeddings=512,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]})
    vision = dict(depth=1, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=14,
                  spatial_merge_size=2, temporal_patch_size=2, in_channels=3)
    vlm = dict(model_type="qwen2_vl", text_config=text, vision_config=vision,
               image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
               vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    cfg = ColQwen2Config(vlm_config=vlm, embedding_dim=embedding_dim)
    model = ColQwen2ForRetrieval(cfg).eval()
    d.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(d)
    images = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=max_pixels)
    ColQwen2Processor(image_processor=images, tokenizer=tok).save_pretrained(d)
    return d
