"""The Q-Former against HF transformers' Blip2QFormerModel, and its attention masks."""

import pytest
import torch

from components.models.config import QFormerConfig
from components.models.qformer import QFormer, qformer_self_attention_mask

transformers = pytest.importorskip("transformers")
from transformers import Blip2QFormerConfig, Blip2QFormerModel  # noqa: E402

CFG = QFormerConfig(num_queries=4, dim=32, depth=3, heads=4, mlp_ratio=2.0, cross_attention_every=2, max_text_len=16)
IMAGE_DIM, VOCAB, PAD = 24, 50, 0


def reference() -> Blip2QFormerModel:
    torch.manual_seed(0)
    config = Blip2QFormerConfig(
        hidden_size=CFG.dim, num_hidden_layers=CFG.depth, num_attention_heads=CFG.heads, intermediate_size=CFG.mlp_hidden,
        cross_attention_frequency=CFG.cross_attention_every, encoder_hidden_size=IMAGE_DIM, use_qformer_text_input=True,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, attn_implementation="eager",
    )
    model = Blip2QFormerModel(config).eval()
    with torch.no_grad():  # HF initialises LayerNorms to (1, 0); random ones make the comparison meaningful
        for name, p in model.named_parameters():
            if "LayerNorm" in name or "layernorm" in name:
                p.normal_(1.0 if name.endswith("weight") else 0.0, 0.1)
    return model


def copy_weights(ours: QFormer, hf: Blip2QFormerModel) -> None:
    h = hf.state_dict()

    def attention(layer, prefix: str) -> None:
        dst = layer.attention
        dst.query.weight.copy_(h[f"{prefix}.attention.query.weight"])
        dst.query.bias.copy_(h[f"{prefix}.attention.query.bias"])
        dst.key_value.weight.copy_(torch.cat([h[f"{prefix}.attention.key.weight"], h[f"{prefix}.attention.value.weight"]]))
        dst.key_value.bias.copy_(torch.cat([h[f"{prefix}.attention.key.bias"], h[f"{prefix}.attention.value.bias"]]))
        dst.proj.load_state_dict({"weight": h[f"{prefix}.output.dense.weight"], "bias": h[f"{prefix}.output.dense.bias"]})
        layer.norm.load_state_dict({"weight": h[f"{prefix}.output.LayerNorm.weight"], "bias": h[f"{prefix}.output.LayerNorm.bias"]})

    def feed_forward(dst, prefix: str, suffix: str) -> None:
        dst.fc_in.load_state_dict({"weight": h[f"{prefix}.intermediate{suffix}.dense.weight"], "bias": h[f"{prefix}.intermediate{suffix}.dense.bias"]})
        dst.fc_out.load_state_dict({"weight": h[f"{prefix}.output{suffix}.dense.weight"], "bias": h[f"{prefix}.output{suffix}.dense.bias"]})
        dst.norm.load_state_dict({"weight": h[f"{prefix}.output{suffix}.LayerNorm.weight"], "bias": h[f"{prefix}.output{suffix}.LayerNorm.bias"]})

    with torch.no_grad():
        ours.input_norm.load_state_dict({"weight": h["layernorm.weight"], "bias": h["layernorm.bias"]})
        for i, layer in enumerate(ours.layers):
            prefix = f"encoder.layer.{i}"
            attention(layer.self_attention, f"{prefix}.attention")
            if layer.cross_attention is not None:
                attention(layer.cross_attention, f"{prefix}.crossattention")
            feed_forward(layer.query_feed_forward, prefix, "_query")
            feed_forward(layer.text_feed_forward, prefix, "")


@pytest.fixture(scope="module")
def pair():
    hf = reference()
    torch.manual_seed(1)
    ours = QFormer(CFG, IMAGE_DIM, VOCAB, PAD).eval()
    copy_weights(ours, hf)
    return ours, hf


def test_cross_attention_layers_follow_the_frequency(pair):
    ours, hf = pair
    assert [layer.cross_attention is not None for layer in ours.layers] == [l.has_cross_attention for l in hf.encoder.layer]
    assert [layer.cross_attention is not None for layer in ours.layers] == [True, False, True]


def test_queries_alone_match_hf(pair):
    ours, hf = pair
    image = torch.randn(2, 9, IMAGE_DIM)
    with torch.no_grad():
        expected = hf(query_embeds=ours.query_tokens.expand(2, -1, -1), encoder_hidden_states=image).last_hidden_state
        got = ours(image)
    assert got.shape == (2, CFG.num_queries, CFG.dim)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_queries_and_padded_text_match_hf_with_bidirectional_mask(pair):
    ours, hf = pair
    image = torch.randn(2, 9, IMAGE_DIM)
    ids = torch.randint(1, VOCAB, (2, 6))
    text_mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    ids = ids * text_mask  # padding id where the mask is 0
    Q = CFG.num_queries
    with torch.no_grad():
        embeds = torch.cat([ours.query_tokens.expand(2, -1, -1), ours.embed_text(ids)], dim=1)
        full_mask = torch.cat([torch.ones(2, Q, dtype=torch.long), text_mask], dim=1)
        expected = hf(query_embeds=embeds, query_length=Q, attention_mask=full_mask, encoder_hidden_states=image).last_hidden_state
        got = ours(image, ids, text_mask, mask_kind="bidirectional")
    real = full_mask.bool()  # padded positions are garbage in both
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-5)


def test_masks_let_each_stream_see_what_its_objective_allows():
    text_mask = torch.tensor([[1, 1, 0]])
    Q = 2
    uni = qformer_self_attention_mask("unimodal", Q, text_mask)[0, 0]
    bi = qformer_self_attention_mask("bidirectional", Q, text_mask)[0, 0]
    causal = qformer_self_attention_mask("multimodal_causal", Q, text_mask)[0, 0]
    # rows = who attends, columns = to whom; order: q0 q1 t0 t1 t2(pad)
    assert uni[:Q, Q:].sum() == 0 and uni[Q:Q + 2, :Q].sum() == 0
    assert bi[:Q + 2, :Q + 2].all() and not bi[:Q + 2, Q + 2].any()
    assert causal[:Q, Q:].sum() == 0  # queries never read the caption they will be asked to generate
    assert causal[Q:, :Q].all()  # text reads every query
    assert causal[Q, Q + 1] == 0 and causal[Q + 1, Q] == 1  # t0 cannot see t1, t1 sees t0
    assert all(m.diagonal().all() for m in (uni, bi, causal))  # no empty row, even for padding
    with pytest.raises(ValueError, match="allowed: unimodal, bidirectional, multimodal_causal"):
        qformer_self_attention_mask("causal", Q, text_mask)


def test_text_tokens_under_the_causal_mask_ignore_later_tokens(pair):
    ours, _ = pair
    image = torch.randn(1, 9, IMAGE_DIM)
    ids = torch.randint(1, VOCAB, (1, 5))
    changed = ids.clone()
    changed[0, 4] = (ids[0, 4] % (VOCAB - 1)) + 1
    with torch.no_grad():
        a = ours(image, ids, mask_kind="multimodal_causal")
        b = ours(image, changed, mask_kind="multimodal_causal")
    Q = CFG.num_queries
    torch.testing.assert_close(a[:, : Q + 4], b[:, : Q + 4])
    assert not torch.allclose(a[:, Q + 4], b[:, Q + 4])


def test_text_stream_alone_has_no_queries(pair):
    ours, _ = pair
    ids = torch.randint(1, VOCAB, (2, 5))
    with torch.no_grad():
        out = ours(None, ids, use_queries=False, mask_kind="unimodal")
    assert out.shape == (2, 5, CFG.dim)
