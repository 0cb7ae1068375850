import math

import torch
import torch.nn.functional as F

from components.training.losses import clip_loss
from components.training.stage_module import lr_factor
from components.training.config import OptimizerConfig


def direct_clip_loss(image: torch.Tensor, text: torch.Tensor, scale: float) -> float:
    """The CLIP objective written out pair by pair: -log softmax of the matching pair, both directions."""
    n = len(image)
    total = 0.0
    for i in range(n):
        sims_i2t = [scale * float(image[i] @ text[j]) for j in range(n)]
        sims_t2i = [scale * float(text[i] @ image[j]) for j in range(n)]
        total += -(sims_i2t[i] - math.log(sum(math.exp(s) for s in sims_i2t)))
        total += -(sims_t2i[i] - math.log(sum(math.exp(s) for s in sims_t2i)))
    return total / (2 * n)


def test_clip_loss_matches_direct_computation():
    torch.manual_seed(0)
    image = F.normalize(torch.randn(5, 8, dtype=torch.float64), dim=-1)
    text = F.normalize(torch.randn(5, 8, dtype=torch.float64), dim=-1)
    scale = torch.tensor(1 / 0.07, dtype=torch.float64)
    assert math.isclose(float(clip_loss(image, text, scale)), direct_clip_loss(image, text, float(scale)), rel_tol=1e-9)


def test_clip_loss_is_low_for_matching_pairs_and_high_for_shuffled():
    torch.manual_seed(0)
    emb = F.normalize(torch.randn(16, 32), dim=-1)
    matched = clip_loss(emb, emb, torch.tensor(100.0))
    shuffled = clip_loss(emb, emb.roll(1, dims=0), torch.tensor(100.0))
    assert matched < 0.01 < 5 < shuffled


def test_learning_rate_warms_up_then_decays_to_the_floor():
    cfg = OptimizerConfig(lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, cfg, 100) == 0.1
    assert lr_factor(9, cfg, 100) == 1.0
    assert math.isclose(lr_factor(10, cfg, 100), 1.0)
    assert math.isclose(lr_factor(100, cfg, 100), 0.1)
    assert lr_factor(50, cfg, 100) < lr_factor(20, cfg, 100)
