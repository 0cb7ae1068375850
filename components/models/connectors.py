"""Vision-to-language connectors (projectors), chosen by name from a recipe."""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from components.models.blocks import MLP


def linear_connector(vision_dim: int, lm_dim: int) -> nn.Module:
    """LLaVA-1.0: a single linear projection of each patch feature."""
    return nn.Linear(vision_dim, lm_dim)


def mlp2x_gelu_connector(vision_dim: int, lm_dim: int) -> nn.Module:
    """LLaVA-1.5: two linear layers with a GELU between, both at the LM width."""
    return nn.Sequential(nn.Linear(vision_dim, lm_dim), nn.GELU(), nn.Linear(lm_dim, lm_dim))


class SwiGLUAdapter(nn.Module):
    """CogVLM: project to the LM width, LayerNorm and GELU, then a SwiGLU feed-forward (gate * up -> down)."""

    def __init__(self, vision_dim: int, lm_dim: int, hidden: int | None = None) -> None:
        super().__init__()
        self.proj = nn.Linear(vision_dim, lm_dim, bias=False)
        self.norm = nn.LayerNorm(lm_dim)
        self.act = nn.GELU()
        self.swiglu = MLP(lm_dim, hidden or 4 * lm_dim, "swiglu")

    def forward(self, x: Tensor) -> Tensor:
        return self.swiglu(self.act(self.norm(self.proj(x))))  # (B, N, lm_dim)


class QFormerConnector(nn.Module):
    """BLIP-2 / MiniGPT-4: the Q-Former's query outputs, projected linearly to the LM width, are the
    image's tokens: (B, N, vision_dim) -> (B, num_queries, lm_dim), whatever N is."""

    def __init__(self, qformer: nn.Module, lm_dim: int) -> None:
        super().__init__()
        self.qformer = qformer
        self.proj = nn.Linear(qformer.cfg.dim, lm_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.qformer(x))  # (B, Q, lm_dim)


CONNECTORS: dict[str, Callable[[int, int], nn.Module]] = {
    "linear": linear_connector,
    "mlp2x_gelu": mlp2x_gelu_connector,
    "swiglu_adapter": SwiGLUAdapter,
}


def build_connector(name: str, vision_dim: int, lm_dim: int) -> nn.Module:
    """(B, N, vision_dim) -> (B, N, lm_dim) projector registered under `name`. The query-based
    connectors (qformer, resampler) have configs of their own: see builders.build_connector_for."""
    if name not in CONNECTORS:
        allowed = ", ".join(sorted([*CONNECTORS, "qformer", "resampler"]))
        raise ValueError(f"unknown connector {name!r}; allowed connectors: {allowed}")
    return CONNECTORS[name](vision_dim, lm_dim)
