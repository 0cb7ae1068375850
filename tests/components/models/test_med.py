"""BLIP's MED text transformer against HF transformers' BlipTextModel, mode by mode, and its masks."""

import pytest
import torch

from components.models.config import MedConfig
from components.models.med import MODES, MedTextTransformer, med_attention_mask

transformers = pytest.importorskip("transformers")
from transformers import BlipTextConfig, BlipTextModel  # noqa: E402

CFG = MedConfig(dim=32, depth=2, heads=4, mlp_ratio=2.0, max_text_len=15)
IMAGE_DIM, VOCAB, PAD = 24, 50, 0


def reference() -> BlipTextModel:
    """BLIP's text model with cross-attention (HF builds it when is_decoder is set), our three mode
    tokens as its last three vocabulary entries."""
    torch.manual_seed(0)
    config = BlipTextConfig(
        vocab_size=VOCAB + len(MODES), hidden_size=CFG.dim, encoder_hidden_size=IMAGE_DIM, intermediate_size=CFG.mlp_hidden,
        num_hidden_layers=CFG.depth, num_attention_heads=CFG.heads, max_position_embeddings=CFG.max_text_len + 1,
        pad_token_id=PAD, is_decoder=True, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, attn_implementation="eager",
    )
    model = BlipTextModel(config, add_pooling_layer=False).eval()
    with torch.no_grad():  # HF initialises LayerNorms to (1, 0); random ones make the comparison meaningful
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                p.normal_(1.0 if name.endswith("weight") else 0.0, 0.1)
    return model


def copy_weights(ours: MedTextTransformer, hf: BlipTextModel, self_attention: str) -> None:
    """HF's weights into ours; HF's one self-attention into our encoders' or our decoder's."""
    h = hf.state_dict()

    def linear(dst, name: str) -> None:
        dst.load_state_dict({"weight": h[f"{name}.weight"], "bias": h[f"{name}.bias"]})

    def attention(layer, prefix: str) -> None:
        dst = layer.attention
        linear(dst.query, f"{prefix}.self.query")
        dst.key_value.weight.copy_(torch.cat([h[f"{prefix}.self.key.weight"], h[f"{prefix}.self.value.weight"]]))
        dst.key_value.bias.copy_(torch.cat([h[f"{prefix}.self.key.bias"], h[f"{prefix}.self.value.bias"]]))
        linear(dst.proj, f"{prefix}.output.dense")
        linear(layer.norm, f"{prefix}.output.LayerNorm")

    with torch.no_grad():
        words = h["embeddings.word_embeddings.weight"]
        ours.word_embedding.weight.copy_(words[:VOCAB])
        ours.mode_tokens.copy_(words[VOCAB:])
        ours.position_embedding.weight.copy_(h["embeddings.position_embeddings.weight"])
        linear(ours.input_norm, "embeddings.LayerNorm")
        for i, layer in enumerate(ours.layers):
            prefix = f"encoder.layer.{i}"
            attention(getattr(layer, self_attention), f"{prefix}.attention")
            attention(layer.cross_attention, f"{prefix}.crossattention")
            linear(layer.feed_forward.fc_in, f"{prefix}.intermediate.dense")
            linear(layer.feed_forward.fc_out, f"{prefix}.output.dense")
            linear(layer.feed_forward.norm, f"{prefix}.output.LayerNorm")


def inputs():
    torch.manual_seed(2)
    ids = torch.randint(1, VOCAB, (2, 7))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]])
    return ids * mask, mask, torch.randn(2, 10, IMAGE_DIM)


def hf_ids(mode: str, ids: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.full((len(ids), 1), VOCAB + MODES.index(mode)), ids], dim=1)


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_matches_hf(mode):
    hf = reference()
    ours = MedTextTransformer(CFG, IMAGE_DIM, VOCAB, PAD).eval()
    copy_weights(ours, hf, "decoder_self_attention" if mode == "decoder" else "self_attention")
    ids, mask, image = inputs()
    full_mask = torch.cat([torch.ones(2, 1, dtype=torch.long), mask], dim=1)
    with torch.no_grad():
        expected = hf(
            hf_ids(mode, ids), attention_mask=full_mask, encoder_hidden_states=None if mode == "text" else image,
            is_decoder=mode == "decoder",
        ).last_hidden_state
        got = ours(ids, mask, mode, None if mode == "text" else image)
    real = full_mask.bool()  # padded positions are garbage in both
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-5)


def test_decoder_and_encoders_share_all_but_self_attention():
    ours = MedTextTransformer(CFG, IMAGE_DIM, VOCAB, PAD)
    ids, mask, image = inputs()
    with torch.no_grad():
        before = {mode: ours(ids, mask, mode, image) for mode in ("encoder", "decoder")}
        for p in ours.layers[0].decoder_self_attention.parameters():
            p.add_(0.5)
        after = {mode: ours(ids, mask, mode, image) for mode in ("encoder", "decoder")}
    torch.testing.assert_close(after["encoder"], before["encoder"])  # the encoders never read the decoder's weights
    assert not torch.allclose(after["decoder"], before["decoder"])


def test_the_decoder_does_not_see_later_tokens_and_the_encoder_does():
    ours = MedTextTransformer(CFG, IMAGE_DIM, VOCAB, PAD).eval()
    ids, mask, image = inputs()
    changed = ids.clone()
    changed[:, 4] = (changed[:, 4] % (VOCAB - 1)) + 1
    with torch.no_grad():
        decoder, decoder_changed = ours(ids, mask, "decoder", image), ours(changed, mask, "decoder", image)
        encoder, encoder_changed = ours(ids, mask, "encoder", image), ours(changed, mask, "encoder", image)
    torch.testing.assert_close(decoder_changed[:, :5], decoder[:, :5])  # the mode token and text tokens 0..3
    assert not torch.allclose(encoder_changed[:, :5], encoder[:, :5])
    assert med_attention_mask("decoder", mask)[1, 0, 6, 7] == False  # a padded key  # noqa: E712


def test_grounded_modes_need_the_image():
    ours = MedTextTransformer(CFG, IMAGE_DIM, VOCAB, PAD)
    ids, mask, _ = inputs()
    with pytest.raises(ValueError, match="the encoder mode reads the image"):
        ours(ids, mask, "encoder")
    with pytest.raises(ValueError, match="longer than max_text_len=15"):
        ours(torch.ones(1, 16, dtype=torch.long))
