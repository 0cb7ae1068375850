"""Uni-Perceiver: modality tokenizers in front of one shared encoder, and its tasks."""

import pytest
import torch

from components.models.builders import build_uni_perceiver
from components.models.config import UniPerceiverConfig, VisionConfig
from components.models.family import ModelConfig
from components.training.losses import clip_loss, unicl_loss
import torch.nn.functional as F

from components.training.uniperceiver_tasks import (
    ClassPrompts,
    TaskSampler,
    captioning_loss,
    classification_loss,
    mask_tokens,
    mlm_loss,
    retrieval_loss,
)

VOCAB, PAD = 40, 0
CFG = ModelConfig(
    vision=VisionConfig(image_size=16, patch_size=4, dim=32, depth=2, heads=2), clip_embed_dim=16,
    uni_perceiver=UniPerceiverConfig(dim=32, depth=2, heads=2, max_text_len=12, max_frames=3),
)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_uni_perceiver(CFG, VOCAB, PAD).double().eval()


def batch():
    torch.manual_seed(1)
    ids = torch.randint(1, VOCAB, (3, 6))
    mask = torch.tensor([[1] * 6, [1] * 6, [1, 1, 1, 1, 0, 0]])
    return {"pixel_values": torch.randn(3, 3, 16, 16, dtype=torch.float64), "text_ids": ids * mask, "text_mask": mask}


def test_every_modality_is_one_unit_vector_from_the_same_encoder(model):
    b = batch()
    images, texts = model.encode_image(b["pixel_values"]), model.encode_text(b["text_ids"], b["text_mask"])
    videos = model.encode_video(torch.randn(2, 3, 3, 16, 16, dtype=torch.float64))
    for emb, rows in ((images, 3), (texts, 3), (videos, 2)):
        assert emb.shape == (rows, 16) and torch.allclose(emb.norm(dim=-1), torch.ones(rows, dtype=torch.float64))
    assert {n for n, _ in model.named_children()} >= {"blocks", "token_embed", "patch_embed", "type_embed"}


def test_frames_carry_their_order_and_a_video_is_not_an_image(model):
    frames = torch.randn(1, 2, 3, 16, 16, dtype=torch.float64)
    forward, backward = model.encode_video(frames), model.encode_video(frames.flip(1))
    assert not torch.allclose(forward, backward)  # temporal embeddings: the same frames in another order differ
    assert not torch.allclose(model.encode_video(frames[:, :1]), model.encode_image(frames[:, 0]))  # type embeddings
    with pytest.raises(ValueError, match="4 frames, but max_frames is 3"):
        model.encode_video(torch.randn(1, 4, 3, 16, 16, dtype=torch.float64))


def test_a_caption_reads_its_image_and_its_past_only_and_the_image_never_reads_the_caption(model):
    b = batch()
    image, image_mask = model.image_tokens(b["pixel_values"])
    n = image.shape[1]

    def outputs(ids):
        text, text_mask = model.text_tokens(ids, b["text_mask"])
        return model.encode(torch.cat([image, text], 1), torch.cat([image_mask, text_mask], 1), causal_from=n)

    changed = b["text_ids"].clone()
    changed[:, 3] = (changed[:, 3] + 1) % VOCAB
    before, after = outputs(b["text_ids"]), outputs(changed)
    torch.testing.assert_close(before[:, : 1 + n + 3], after[:, : 1 + n + 3])  # <SPE>, image, caption tokens 0-2 unchanged
    assert not torch.allclose(before[:, 1 + n + 3], after[:, 1 + n + 3])


def test_masking_picks_real_tokens_and_at_least_one_per_text():
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    masked = mask_tokens(mask, 0.01, torch.Generator().manual_seed(0))
    assert (masked.sum(-1) >= 1).all() and not (masked & ~mask.bool()).any()


def test_each_task_trains_the_shared_encoder(model):
    model.train()
    for loss_of in (retrieval_loss, lambda m, b: mlm_loss(m, b, torch.Generator().manual_seed(0)), captioning_loss):
        model.zero_grad()
        loss = loss_of(model, batch())
        assert torch.isfinite(loss)
        loss.backward()
        assert model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_the_sampler_draws_the_same_tasks_for_the_same_seed_and_only_weighted_ones(model):
    def drawn(sampler, steps=12):
        return [next(iter(sampler(model, batch())[1])) for _ in range(steps)]

    assert drawn(TaskSampler({"retrieval": 1, "mlm": 1, "captioning": 1}, seed=3)) == drawn(TaskSampler({"retrieval": 1, "mlm": 1, "captioning": 1}, seed=3))
    assert set(drawn(TaskSampler({"retrieval": 1, "mlm": 1, "captioning": 1}, seed=3))) == {"retrieval_loss", "mlm_loss", "captioning_loss"}
    assert set(drawn(TaskSampler({"retrieval": 0, "mlm": 1}), 6)) == {"mlm_loss"}
    with pytest.raises(ValueError, match="of the tasks retrieval, mlm, captioning, classification"):
        TaskSampler({"detection": 1})
    with pytest.raises(ValueError, match="classification task needs the class prompts"):
        TaskSampler({"classification": 1})


def test_retrieval_with_image_label_data_counts_pairs_of_one_label_as_positives(model):
    b = batch() | {"pair_labels": torch.tensor([4, 4, 7])}  # the first two pairs share a label
    image, text = model.encode_image(b["pixel_values"]), model.encode_text(b["text_ids"], b["text_mask"])
    assert torch.allclose(retrieval_loss(model, b), unicl_loss(image, text, model.scale(), b["pair_labels"]))
    assert not torch.allclose(retrieval_loss(model, b), clip_loss(image, text, model.scale()))
    assert torch.allclose(retrieval_loss(model, batch()), clip_loss(image, text, model.scale()))  # no labels: CLIP's loss


def prompts(classes: int = 2, templates: int = 2) -> ClassPrompts:
    """Random 'class names in templates': rows class by class, each text 5 tokens."""
    torch.manual_seed(2)
    ids = torch.randint(1, VOCAB, (classes * templates, 5))
    return ClassPrompts(ids, torch.ones_like(ids), templates)


def test_classification_scores_single_object_scenes_against_every_class_mean_over_templates(model):
    b = batch() | {"object_classes": torch.tensor([1, -1, 0])}  # the second scene has several objects
    p = prompts()
    names = model.encode_text(p.text_ids, p.text_mask)
    targets = F.normalize(torch.stack([names[0:2].mean(0), names[2:4].mean(0)]), dim=-1)
    image = model.encode_image(b["pixel_values"][[0, 2]])
    expected = F.cross_entropy(model.scale() * image @ targets.t(), torch.tensor([1, 0]))
    assert torch.allclose(classification_loss(model, b, p), expected)
    assert classification_loss(model, batch() | {"object_classes": torch.tensor([-1, -1, -1])}, p) is None


def test_the_sampler_falls_back_to_retrieval_when_no_scene_can_be_classified(model):
    sampler = TaskSampler({"classification": 1}, class_prompts=prompts())
    assert next(iter(sampler(model, batch() | {"object_classes": torch.tensor([0, -1, 1])})[1])) == "classification_loss"
    assert next(iter(sampler(model, batch() | {"object_classes": torch.tensor([-1, -1, -1])})[1])) == "retrieval_loss"


def test_class_prompts_are_one_row_per_class_and_template():
    with pytest.raises(ValueError, match="one row per class and template"):
        ClassPrompts(torch.ones(3, 4, dtype=torch.long), torch.ones(3, 4, dtype=torch.long), 2)
