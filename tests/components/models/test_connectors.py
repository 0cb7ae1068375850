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
        build_connector("qformer", 24, 32)
    message = str(err.value)
    assert "'qformer'" in message
    for name in CONNECTORS:
        assert name in message
