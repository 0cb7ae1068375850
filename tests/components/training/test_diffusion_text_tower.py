"""The diffusion stage's freeze plan decides whether the caption's text tower learns: frozen (as registered) it gets
no gradient and builds no graph; named trainable it learns with the transformer."""

from __future__ import annotations

import torch

from components.models.builders import build_text_to_video
from components.models.config import DiffusionConfig, DiTConfig, TextEncoderConfig, VideoAutoencoderConfig
from components.models.family import ModelConfig
from components.training.diffusion_losses import denoising_loss, encode_videos
from components.training.freeze import apply_freeze_plan


def tiny_model():
    torch.manual_seed(0)
    cfg = ModelConfig(
        text_encoder=TextEncoderConfig(dim=16, depth=1, heads=2, max_len=16), clip_embed_dim=8,
        video_autoencoder=VideoAutoencoderConfig(hidden=8, groups=4),
        diffusion=DiffusionConfig(dit=DiTConfig(dim=16, depth=2, heads=2)),
    )
    return build_text_to_video(cfg, vocab_size=40, pad_id=0)


def loss_after_backward(trainable: list[str]):
    model = tiny_model()
    apply_freeze_plan(model, trainable)
    with torch.no_grad():  # a transformer whose output depends on the caption, not adaLN-Zero's zeros
        for name, p in model.dit.named_parameters():
            if "modulation" in name or name.startswith("final") or "cross.proj" in name:
                p.normal_(0, 0.05)
    videos = torch.rand(2, 3, 1, 16, 16) * 2 - 1
    ids, mask = torch.randint(1, 40, (2, 5)), torch.ones(2, 5, dtype=torch.long)
    loss = denoising_loss(model, encode_videos(model, videos), ids, mask, drop=torch.zeros(2, dtype=torch.bool))
    loss.backward()
    return model


def test_a_frozen_text_tower_gets_no_gradient_and_a_trainable_one_does():
    frozen = loss_after_backward(["dit"])
    assert all(p.grad is None for p in frozen.text.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in frozen.dit.parameters())

    trained = loss_after_backward(["dit", "text"])
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trained.text.parameters()), "the tower the plan trains learns"
    assert all(p.grad is None for p in trained.autoencoder.parameters())
