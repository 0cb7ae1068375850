"""HF transformers' BLIP at toy sizes, and the copying of its weights into ours, for the parity tests.

Our MED keeps its three mode tokens ([CLS], [ENC], [DEC]) beside the word table;
HF's BLIP reads them as ordinary tokens, so they are the last three entries of
its vocabulary and a text starts with one (`hf_ids`).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import BlipConfig, BlipTextConfig, BlipTextModel

from components.models.config import MedConfig, VisionConfig
from components.models.med import MODES, MedTextTransformer
from components.models.vision import VisionTransformer

CFG = MedConfig(dim=32, depth=2, heads=4, mlp_ratio=2.0, max_text_len=15)
IMAGE_DIM, VOCAB, PAD = 24, 50, 0
VISION = VisionConfig(image_size=32, patch_size=8, dim=IMAGE_DIM, depth=2, heads=4, mlp_ratio=2.0)


def text_config() -> BlipTextConfig:
    """BLIP's text model with cross-attention (HF builds it when is_decoder is set)."""
    return BlipTextConfig(
        vocab_size=VOCAB + len(MODES), hidden_size=CFG.dim, encoder_hidden_size=IMAGE_DIM, intermediate_size=CFG.mlp_hidden,
        num_hidden_layers=CFG.depth, num_attention_heads=CFG.heads, max_position_embeddings=CFG.max_text_len + 1,
        pad_token_id=PAD, bos_token_id=VOCAB + MODES.index("decoder"), sep_token_id=None, is_decoder=True, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, label_smoothing=0.1,
    )


def blip_config() -> BlipConfig:
    """A whole BLIP: our VISION's tower and CFG's text transformer."""
    vision = dict(
        hidden_size=VISION.dim, intermediate_size=VISION.mlp_hidden, num_hidden_layers=VISION.depth,
        num_attention_heads=VISION.heads, image_size=VISION.image_size, patch_size=VISION.patch_size, attention_dropout=0.0,
    )
    return BlipConfig(text_config=text_config().to_dict(), vision_config=vision, projection_dim=16, image_text_hidden_size=16)


def randomise_layer_norms(model: nn.Module) -> nn.Module:
    """HF initialises LayerNorms to (1, 0); random ones make a comparison meaningful."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layernorm" in name.lower() or "layer_norm" in name:
                p.normal_(1.0 if name.endswith("weight") else 0.0, 0.1)
    return model.eval()


def text_reference() -> BlipTextModel:
    torch.manual_seed(0)
    return randomise_layer_norms(BlipTextModel(text_config(), add_pooling_layer=False))


def hf_ids(mode: str, ids: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.full((len(ids), 1), VOCAB + MODES.index(mode)), ids], dim=1)


def linear(dst: nn.Module, h: dict[str, torch.Tensor], name: str) -> None:
    dst.load_state_dict({"weight": h[f"{name}.weight"], "bias": h[f"{name}.bias"]})


def copy_med_weights(ours: MedTextTransformer, h: dict[str, torch.Tensor], self_attention: str, prefix: str = "") -> None:
    """HF's text weights (state dict `h`, keys under `prefix`) into ours; HF's one self-attention into
    our encoders' (`self_attention`) or our decoder's (`decoder_self_attention`)."""

    def attention(layer, name: str) -> None:
        dst = layer.attention
        linear(dst.query, h, f"{name}.self.query")
        dst.key_value.weight.copy_(torch.cat([h[f"{name}.self.key.weight"], h[f"{name}.self.value.weight"]]))
        dst.key_value.bias.copy_(torch.cat([h[f"{name}.self.key.bias"], h[f"{name}.self.value.bias"]]))
        linear(dst.proj, h, f"{name}.output.dense")
        linear(layer.norm, h, f"{name}.output.LayerNorm")

    with torch.no_grad():
        words = h[f"{prefix}embeddings.word_embeddings.weight"]
        ours.word_embedding.weight.copy_(words[:VOCAB])
        ours.mode_tokens.copy_(words[VOCAB:])
        ours.position_embedding.weight.copy_(h[f"{prefix}embeddings.position_embeddings.weight"])
        linear(ours.input_norm, h, f"{prefix}embeddings.LayerNorm")
        for i, layer in enumerate(ours.layers):
            name = f"{prefix}encoder.layer.{i}"
            attention(getattr(layer, self_attention), f"{name}.attention")
            attention(layer.cross_attention, f"{name}.crossattention")
            linear(layer.feed_forward.fc_in, h, f"{name}.intermediate.dense")
            linear(layer.feed_forward.fc_out, h, f"{name}.output.dense")
            linear(layer.feed_forward.norm, h, f"{name}.output.LayerNorm")


def copy_vision_weights(ours: VisionTransformer, h: dict[str, torch.Tensor], prefix: str = "vision_model.") -> None:
    """HF's BLIP vision model into our ViT: the same pre-norm blocks, fused qkv and final norm."""
    with torch.no_grad():
        linear(ours.patch_embed, h, f"{prefix}embeddings.patch_embedding")
        ours.cls_token.copy_(h[f"{prefix}embeddings.class_embedding"])
        ours.pos_embed.copy_(h[f"{prefix}embeddings.position_embedding"])
        for i, block in enumerate(ours.blocks):
            name = f"{prefix}encoder.layers.{i}"
            linear(block.attn_norm, h, f"{name}.layer_norm1")
            linear(block.attn.qkv, h, f"{name}.self_attn.qkv")
            linear(block.attn.proj, h, f"{name}.self_attn.projection")
            linear(block.mlp_norm, h, f"{name}.layer_norm2")
            linear(block.mlp.fc_in, h, f"{name}.mlp.fc1")
            linear(block.mlp.fc_out, h, f"{name}.mlp.fc2")
        linear(ours.norm, h, f"{prefix}post_layernorm")
