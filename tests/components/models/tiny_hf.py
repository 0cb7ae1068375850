"""Tiny pretrained-looking HF transformers directories, built from configs and saved as safetensors:
what a user downloads (config.json, model.safetensors, tokenizer.json), a few thousand parameters big."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

VISION_SIZES = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2, image_size=32, patch_size=8)
LM_SIZES = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                max_position_embeddings=512)
# what the tokenizers learn from: the words of Shapes captions and questions, so encodings are short
CORPUS = [
    "USER: How many shapes are there? ASSISTANT: 2",
    "a red circle left of a blue square and a green triangle, small and large",
    "Is there a yellow star? yes no What colour is the shape at the top right? purple orange",
    "Where is the cyan triangle? [[120, 340, 560, 780]] bottom left top right middle",
]


def _tokenizer(special: list[str], vocab_size: int = 300) -> Tokenizer:
    """A byte-level BPE with the given special tokens (a Llama-family one has <unk>, <s>, </s>)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(CORPUS * 4, trainer=trainer)
    return tokenizer


def save_clip(directory: Path, whole: bool = False, image_mean: list[float] | None = None) -> Path:
    """A CLIP vision tower; `whole`: a CLIPModel with both towers, as openai/clip-vit-* checkpoints are;
    `image_mean`: write a preprocessor_config.json with these statistics."""
    from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    if whole:
        text = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=64,
                    bos_token_id=0, eos_token_id=1)
        model = CLIPModel(CLIPConfig(vision_config=VISION_SIZES, text_config=text, projection_dim=8))
    else:
        model = CLIPVisionModel(CLIPVisionConfig(**VISION_SIZES))
    model.save_pretrained(directory)
    if image_mean is not None:
        (directory / "preprocessor_config.json").write_text(
            json.dumps({"image_mean": image_mean, "image_std": [0.25, 0.5, 0.75], "do_normalize": True})
        )
    return directory


def save_siglip(directory: Path) -> Path:
    from transformers import SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(1)
    SiglipVisionModel(SiglipVisionConfig(**VISION_SIZES)).save_pretrained(directory)
    return directory


def save_llama(directory: Path) -> Path:
    """A Llama causal LM whose tokenizer has <unk>, <s>, </s> (mmops adds <pad> and <image>)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(2)
    tokenizer = _tokenizer(["<unk>", "<s>", "</s>"])
    LlamaForCausalLM(LlamaConfig(**LM_SIZES, vocab_size=tokenizer.get_vocab_size())).save_pretrained(directory)
    tokenizer.save(str(directory / "tokenizer.json"))
    return directory


def save_qwen2(directory: Path) -> Path:
    """A Qwen2 causal LM with tied embeddings and a padded vocabulary (larger than its tokenizer's),
    whose tokenizer has none of mmops' special tokens."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(3)
    tokenizer = _tokenizer(["<|endoftext|>"])
    config = Qwen2Config(**LM_SIZES, vocab_size=tokenizer.get_vocab_size() + 16, tie_word_embeddings=True)
    Qwen2ForCausalLM(config).save_pretrained(directory)
    tokenizer.save(str(directory / "tokenizer.json"))
    return directory
