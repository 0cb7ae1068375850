import pytest
import torch

from components.models.builders import build_llava
from components.models.config import LanguageModelConfig, VisionConfig
from components.models.family import ModelConfig

VISION = VisionConfig(image_size=16, patch_size=4, dim=32, depth=2, heads=2)
LM = LanguageModelConfig(dim=32, depth=2, heads=2, mlp_hidden=64, max_seq_len=64)
VOCAB, IMAGE, PAD = 50, 49, 0
N = VISION.num_patches


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_llava(ModelConfig(vision=VISION, language_model=LM, connector="mlp2x_gelu"), VOCAB, IMAGE, PAD).double()


def batch():
    """Right-padded: sample 0 has an image at position 2, sample 1 is text only."""
    ids = torch.tensor([[5, 6, IMAGE, 7, 8], [9, 10, 11, PAD, PAD]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    labels = torch.tensor([[-100, -100, -100, 7, 8], [9, 10, 11, -100, -100]])
    pixels = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    has_image = torch.tensor([True, False])
    return ids, mask, pixels, has_image, labels


def test_submodule_names(model):
    assert {n for n, _ in model.named_children()} == {"vision", "connector", "language_model"}


def test_image_features_use_patch_tokens_of_selected_layer(model):
    pixels = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    expected = model.connector(model.vision.hidden_states(pixels, -2)[:, 1:])
    feats = model.image_features(pixels)
    assert feats.shape == (2, N, LM.dim)
    torch.testing.assert_close(feats, expected)


def test_splice_places_features_where_image_token_stood(model):
    ids, mask, pixels, has_image, labels = batch()
    embeds, new_mask, pos, new_labels, _ = model.build_inputs(ids, mask, pixels, has_image, labels)
    L = 5 - 1 + N
    assert embeds.shape == (2, L, LM.dim) and new_mask.shape == new_labels.shape == (2, L)
    text = model.language_model.embed(ids)
    feats = model.image_features(pixels[:1])[0]
    torch.testing.assert_close(embeds[0, :2], text[0, :2])
    torch.testing.assert_close(embeds[0, 2 : 2 + N], feats)
    torch.testing.assert_close(embeds[0, 2 + N :], text[0, 3:])
    assert new_labels[0].tolist() == [-100] * (2 + N) + [7, 8]
    assert new_mask[0].tolist() == [1] * L
    assert pos[0].tolist() == list(range(L))


def test_sample_without_image_passes_through(model):
    ids, mask, pixels, has_image, labels = batch()
    embeds, new_mask, pos, new_labels, _ = model.build_inputs(ids, mask, pixels, has_image, labels)
    text = model.language_model.embed(ids)
    torch.testing.assert_close(embeds[1, :3], text[1, :3])
    assert (embeds[1, 3:] == 0).all()
    assert new_mask[1].tolist() == [1, 1, 1] + [0] * (len(new_mask[1]) - 3)
    assert new_labels[1, :3].tolist() == [9, 10, 11] and (new_labels[1, 3:] == -100).all()


def test_left_padding_kept(model):
    ids = torch.tensor([[PAD, PAD, 9, IMAGE, 10], [5, 6, IMAGE, 7, 8]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    pixels = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    embeds, new_mask, pos, _, _ = model.build_inputs(ids, mask, pixels, torch.tensor([True, True]), padding_side="left")
    assert new_mask[0].tolist() == [0, 0] + [1] * (2 + N)
    assert pos[0, 2:].tolist() == list(range(2 + N))
    torch.testing.assert_close(embeds[0, 3 : 3 + N], model.image_features(pixels[:1])[0])


def test_image_token_count_is_checked(model):
    ids, mask, pixels, _, _ = batch()
    with pytest.raises(ValueError, match="sample 1: has_image=True needs exactly 1"):
        model.build_inputs(ids, mask, pixels, torch.tensor([True, True]))
    two = ids.clone()
    two[0, 0] = IMAGE
    with pytest.raises(ValueError, match="found 2"):
        model.build_inputs(two, mask, pixels, torch.tensor([True, False]))


def test_loss_finite_and_reaches_connector(model):
    ids, mask, pixels, has_image, labels = batch()
    assert model(ids, mask, pixels, has_image)["logits"].shape == (2, 5 - 1 + N, VOCAB)
    out = model(ids, mask, pixels, has_image, labels)
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    for p in model.connector.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert model.vision.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_loss_is_mean_next_token_cross_entropy(model):
    ids, mask, pixels, has_image, labels = batch()
    out = model(ids, mask, pixels, has_image, labels)
    logits = model(ids, mask, pixels, has_image)["logits"]  # every position, the reference
    # targets: sample 0 predicts 7 at pos 2+N and 8 at 3+N; sample 1 predicts 10, 11
    logp = logits.log_softmax(-1)
    picks = [logp[0, 1 + N, 7], logp[0, 2 + N, 8], logp[1, 0, 10], logp[1, 1, 11]]
    torch.testing.assert_close(out["loss"], -torch.stack(picks).mean())


def test_a_resampler_connector_gives_every_image_its_fixed_number_of_tokens():
    """Qwen-VL: the 16 patch tokens become num_queries (4) image tokens in the LM's sequence."""
    torch.manual_seed(0)
    cfg = ModelConfig(vision=VISION, language_model=LM, connector="resampler", resampler={"num_queries": 4, "heads": 2})
    llava = build_llava(cfg, VOCAB, IMAGE, PAD)
    assert N == 16
    ids = torch.tensor([[1, IMAGE, 5, 6]])
    embeds, mask, positions, labels, _ = llava.build_inputs(
        ids, torch.ones_like(ids), torch.randn(1, 3, 16, 16), torch.tensor([1]), labels=ids.clone()
    )
    assert embeds.shape == (1, 3 + 4, LM.dim)
    assert labels[0, 1:5].eq(-100).all() and positions[0].tolist() == list(range(7))


def test_any_resolution_images_become_a_global_view_and_an_unpadded_tile_map_with_row_separators():
    """LLaVA-1.6: a 16 x 32 image in a 1 x 2 grid of 16-pixel tiles is 16 global tokens, then a 4 x 8
    map with a separator ending each of its 4 rows: 52 tokens; a square image fills the grid's middle."""
    torch.manual_seed(0)
    cfg = ModelConfig(vision=VISION, language_model=LM, connector="mlp2x_gelu", anyres_pinpoints=[[16, 32], [32, 16]])
    llava = build_llava(cfg, VOCAB, IMAGE, PAD)
    pixels = torch.randn(2, 3, 3, 16, 16)
    sizes = torch.tensor([[16, 32], [16, 16]])
    features = llava.image_features(pixels, sizes)
    assert [f.shape[0] for f in features] == [16 + 4 * 9, 16 + 4 * 5]
    assert torch.equal(features[0][16 + 8], llava.image_newline)  # the end of the map's first row
    ids = torch.tensor([[1, IMAGE, 5], [IMAGE, 6, 7]])
    spliced = llava.build_inputs(ids, torch.ones_like(ids), pixels, torch.tensor([1, 1]), image_sizes=sizes)
    assert spliced.embeds.shape[1] == 2 + 52 and spliced.image_mask.sum(1).tolist() == [52, 36]
    loss = llava(ids, torch.ones_like(ids), pixels, torch.tensor([1, 1]), labels=ids.clone(), image_sizes=sizes)["loss"]
    loss.backward()
    assert llava.image_newline.grad is not None and llava.image_newline.grad.abs().sum() > 0
