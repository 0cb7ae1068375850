"""A whole BLIP against HF transformers' BLIP with its weights copied in: the image-text similarity,
the ITM head on [ENC] and the LM head (BERT's transform, then the vocabulary), each from pixels and
token ids."""

import pytest
import torch

from components.models.builders import build_blip

pytest.importorskip("transformers")
from blip_reference import (  # noqa: E402
    CFG, PAD, VISION, VOCAB, blip_config, copy_med_weights, copy_vision_weights, hf_ids, linear, randomise_layer_norms,
)
from transformers import BlipForConditionalGeneration, BlipForImageTextRetrieval  # noqa: E402


def ours(hf, self_attention: str, text_prefix: str):
    model = build_blip(VISION, CFG, VOCAB, PAD, embed_dim=16).eval()
    h = hf.state_dict()
    copy_vision_weights(model.vision, h)
    copy_med_weights(model.text, h, self_attention, text_prefix)
    return model, h


def inputs():
    torch.manual_seed(2)
    ids = torch.randint(1, VOCAB, (3, 7))
    mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1] * 3 + [0] * 4])
    full_mask = torch.cat([torch.ones(3, 1, dtype=torch.long), mask], dim=1)  # the mode token is always read
    return torch.randn(3, 3, VISION.image_size, VISION.image_size), ids * mask, mask, full_mask


def retrieval_reference() -> BlipForImageTextRetrieval:
    torch.manual_seed(0)
    return randomise_layer_norms(BlipForImageTextRetrieval(blip_config()))


def test_image_text_similarity_matches_hf():
    hf = retrieval_reference()
    model, h = ours(hf, "self_attention", "text_encoder.")
    with torch.no_grad():
        linear(model.image_projection, h, "vision_proj")
        linear(model.text_projection, h, "text_proj")
    pixels, ids, mask, full_mask = inputs()
    with torch.no_grad():
        expected = hf(input_ids=hf_ids("text", ids), attention_mask=full_mask, pixel_values=pixels, use_itm_head=False).itm_score
        got = model.encode_image(pixels) @ model.encode_text(ids, mask).t()  # (images, texts)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_itm_head_on_the_grounded_encoder_matches_hf():
    hf = retrieval_reference()
    model, h = ours(hf, "self_attention", "text_encoder.")
    with torch.no_grad():
        linear(model.itm_head, h, "itm_head")
    pixels, ids, mask, full_mask = inputs()
    with torch.no_grad():
        expected = hf(input_ids=hf_ids("encoder", ids), attention_mask=full_mask, pixel_values=pixels, use_itm_head=True).itm_score
        got = model.match_logits(model.image_features(pixels), ids, mask)
    assert got.shape == (3, 2)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_lm_head_on_the_grounded_decoder_matches_hf():
    torch.manual_seed(0)
    hf = randomise_layer_norms(BlipForConditionalGeneration(blip_config()))
    model, h = ours(hf, "decoder_self_attention", "text_decoder.bert.")
    head = "text_decoder.cls.predictions"
    with torch.no_grad():
        linear(model.lm_head.dense, h, f"{head}.transform.dense")
        linear(model.lm_head.norm, h, f"{head}.transform.LayerNorm")
        model.lm_head.decoder.weight.copy_(h[f"{head}.decoder.weight"][:VOCAB])  # our mode tokens are never predicted
        model.lm_head.decoder.bias.copy_(h[f"{head}.decoder.bias"][:VOCAB])
    pixels, ids, mask, full_mask = inputs()
    with torch.no_grad():
        expected = hf(pixel_values=pixels, input_ids=hf_ids("decoder", ids), attention_mask=full_mask).logits
        got = model.caption_logits(model.image_features(pixels), ids, mask)  # position t predicts ids[:, t]
    real = mask.bool()  # HF's mode-token logits have no counterpart: ours are never predicted
    torch.testing.assert_close(got[real], expected[:, :-1, :VOCAB][real], atol=1e-5, rtol=1e-5)
