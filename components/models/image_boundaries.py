"""KOSMOS-1's `<image>` ... `</image>`: each image's embeddings stand between two learned embeddings.

The decoder then sees where an image starts and ends in an interleaved document,
however many images it holds. The two embeddings are a part of their own
(`image_boundaries`), so a freeze plan can train them with the connector.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

INIT_STD = 0.02  # as the token embeddings they sit among


class ImageBoundaries(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.begin = nn.Parameter(torch.randn(dim) * INIT_STD)
        self.end = nn.Parameter(torch.randn(dim) * INIT_STD)

    def forward(self, features: Tensor) -> Tensor:
        """(N, D) image tokens -> (N + 2, D): `<image>`, the tokens, `</image>`."""
        return torch.cat([self.begin[None].to(features.dtype), features, self.end[None].to(features.dtype)])
