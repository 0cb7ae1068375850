import torch

from components.models.builders import build_blip
from components.models.config import MedConfig, VisionConfig
from components.training.blip_losses import blip_losses


def tiny_blip():
    torch.manual_seed(0)
    return build_blip(VisionConfig(image_size=32, patch_size=8, dim=32, depth=2, heads=2), MedConfig(dim=32, depth=2, heads=2), 60, 0, 16)


def batch():
    torch.manual_seed(1)
    ids = torch.randint(1, 60, (4, 6))
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0
    return torch.randn(4, 3, 32, 32), ids * mask, mask


def test_every_part_learns_from_the_three_losses():
    model = tiny_blip()
    losses = blip_losses(model, *batch())
    assert set(losses) == {"itc", "itm", "lm", "loss", "itm_acc"}
    assert torch.isclose(losses["loss"], losses["itc"] + losses["itm"] + losses["lm"])
    losses["loss"].backward()
    for part in ("vision", "text", "image_projection", "text_projection", "itm_head", "lm_head", "logit_scale"):
        grads = [p.grad for n, p in model.named_parameters() if n.split(".")[0] == part]
        assert grads and all(g is not None for g in grads), part
    # the decoder's own self-attention learns from LM alone, the encoders' from ITC and ITM
    assert model.text.layers[0].decoder_self_attention.attention.query.weight.grad.abs().sum() > 0
    assert model.text.layers[0].self_attention.attention.query.weight.grad.abs().sum() > 0


def test_the_caption_loss_reads_only_earlier_tokens():
    model = tiny_blip().eval()
    pixels, ids, mask = batch()
    with torch.no_grad():
        features = model.image_features(pixels)
        logits = model.caption_logits(features, ids, mask)  # position t predicts ids[:, t]
        changed = ids.clone()
        changed[:, 3] = (changed[:, 3] % 58) + 1
        logits_changed = model.caption_logits(features, changed, mask)
    assert logits.shape == (4, 6, 60)
    torch.testing.assert_close(logits_changed[:, :4], logits[:, :4])  # predicting tokens 0..3 never sees token 3
    assert not torch.allclose(logits_changed[:, 4:], logits[:, 4:])


def test_caption_negatives_join_each_images_texts_in_itc_and_only_there():
    from components.training.matching import itc_loss

    model = tiny_blip().eval()
    pixels, ids, mask = batch()
    torch.manual_seed(2)
    negative_ids = torch.randint(1, 60, (4, 6))
    negative_mask = torch.ones_like(negative_ids)
    torch.manual_seed(3)
    plain = blip_losses(model, pixels, ids, mask)
    torch.manual_seed(3)  # the same hard-negative draws for ITM
    with_negatives = blip_losses(model, pixels, ids, mask, negative_ids, negative_mask)
    assert with_negatives["itc"] > plain["itc"]  # more texts to tell the caption from
    torch.testing.assert_close(with_negatives["lm"], plain["lm"])
    with torch.no_grad():
        features = model.image_features(pixels)
        image = model.image_embedding(features)
        similarity = image @ model.encode_text(ids, mask).t()
        negative = image @ model.encode_text(negative_ids, negative_mask).t()
        expected = itc_loss(similarity, model.scale(), negative)
        logits = torch.cat([similarity, negative], dim=1) * model.scale()
        by_hand = (torch.nn.functional.cross_entropy(logits, torch.arange(4)) + torch.nn.functional.cross_entropy((similarity * model.scale()).t(), torch.arange(4))) / 2
    torch.testing.assert_close(with_negatives["itc"], expected)
    torch.testing.assert_close(expected, by_hand)
