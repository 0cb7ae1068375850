import pytest
import torch
from torch import nn

from components.models.connectors import CONNECTORS, build_connector


def test_linear_is_one_linear():
    conn = build_connector("linear", 24, 32)
    assert isinstance(conn, nn.Linear)
    assert (conn.in_features, conn.out_features) == (24, 32)
    assert conn(torch.randn(2, 5, 24)).shape == (2, 5, 32)


def test_mlp2x_gelu_layers():
    conn = build_connector("mlp2x_gelu", 24, 32)
    layers = list(conn)
    assert [type(m) for m in layers] == [nn.Linear, nn.GELU, nn.Linear]
    assert (layers[0].in_features, layers[0].out_features) == (24, 32)
    assert (layers[2].in_features, layers[2].out_features) == (32, 32)
    assert conn(torch.randn(2, 5, 24)).shape == (2, 5, 32)


def test_unknown_connector_lists_allowed():
    with pytest.raises(ValueError) as err:
        build_connector("perceiver", 24, 32)
    message = str(err.value)
    assert "'perceiver'" in message
    for name in CONNECTORS:
        assert name in message


def test_mlp2x_gelu_matches_hf_llava_projector():
    transformers = pytest.importorskip("transformers")
    from transformers.models.llava.modeling_llava import LlavaMultiModalProjector

    config = transformers.LlavaConfig(
        vision_config={"model_type": "clip_vision_model", "hidden_size": 24},
        text_config={"model_type": "llama", "hidden_size": 32, "num_attention_heads": 2, "num_key_value_heads": 2},
        projector_hidden_act="gelu",
    )
    torch.manual_seed(0)
    hf = LlavaMultiModalProjector(config).eval()
    ours = build_connector("mlp2x_gelu", 24, 32).eval()
    ours[0].load_state_dict(hf.linear_1.state_dict())
    ours[2].load_state_dict(hf.linear_2.state_dict())
    x = torch.randn(2, 5, 24)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf(x), atol=1e-6, rtol=1e-6)


def test_swiglu_adapter_is_projection_norm_gelu_then_swiglu():
    torch.manual_seed(0)
    conn = build_connector("swiglu_adapter", 24, 16).eval()
    x = torch.randn(2, 5, 24)
    with torch.no_grad():
        h = torch.nn.functional.gelu(torch.nn.functional.layer_norm(x @ conn.proj.weight.T, (16,), conn.norm.weight, conn.norm.bias))
        expected = (torch.nn.functional.silu(h @ conn.swiglu.gate.weight.T) * (h @ conn.swiglu.up.weight.T)) @ conn.swiglu.down.weight.T
        torch.testing.assert_close(conn(x), expected)
    assert conn.swiglu.gate.out_features == 64  # 4x the LM width by default
