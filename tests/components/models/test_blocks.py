import torch

from components.models.blocks import MLP, Attention, RMSNorm, RotaryEmbedding, TransformerBlock, apply_rotary


def test_rmsnorm_unit_rms():
    x = torch.randn(3, 5, 16) * 7
    y = RMSNorm(16)(x)
    torch.testing.assert_close(y.pow(2).mean(-1), torch.ones(3, 5), rtol=1e-4, atol=1e-4)


def test_rotary_scores_depend_only_on_relative_position():
    rope = RotaryEmbedding(8, theta=10000.0)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(pq, pk):
        cq, sq = rope(torch.tensor([[pq]]))
        ck, sk = rope(torch.tensor([[pk]]))
        return (apply_rotary(q, cq, sq) * apply_rotary(k, ck, sk)).sum()

    torch.testing.assert_close(score(5, 2), score(13, 10))
    assert not torch.allclose(score(5, 2), score(5, 4))
    # position 0 is the identity rotation
    c0, s0 = rope(torch.zeros(1, 1, dtype=torch.long))
    torch.testing.assert_close(apply_rotary(q, c0, s0), q)


def test_attention_kv_cache_matches_full_pass():
    torch.manual_seed(0)
    attn = Attention(16, 2, rotary=True)
    rope = RotaryEmbedding(8)
    x = torch.randn(2, 6, 16)
    pos = torch.arange(6).expand(2, 6)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    full, (k, v) = attn(x, causal, rope(pos))
    assert k.shape == v.shape == (2, 2, 6, 8)
    first, cache = attn(x[:, :4], causal[:4, :4], rope(pos[:, :4]))
    rest, (k2, v2) = attn(x[:, 4:], causal[4:], rope(pos[:, 4:]), kv_cache=cache)
    torch.testing.assert_close(torch.cat([first, rest], 1), full)
    torch.testing.assert_close(k2, k)
    torch.testing.assert_close(v2, v)


def test_mlp_kinds_and_block_shapes():
    assert [type(m).__name__ for m in MLP(8, 16, "gelu").children()] == ["Linear", "Linear"]
    assert len(list(MLP(8, 16, "swiglu").children())) == 3
    block = TransformerBlock(16, 2, 32, "swiglu", "rmsnorm", rotary=False)
    out, (k, v) = block(torch.randn(2, 5, 16))
    assert out.shape == (2, 5, 16) and k.shape == (2, 2, 5, 8)
