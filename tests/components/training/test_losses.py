import math

import pytest

import torch
import torch.nn.functional as F

from components.models.llava import IGNORE_INDEX, answer_weights, next_token_loss, target_loss
from components.training.losses import clip_loss, unicl_loss
from components.training.stage_module import lr_factor
from components.training.config import OptimizerConfig


def direct_clip_loss(image: torch.Tensor, text: torch.Tensor, scale: float, negatives: torch.Tensor | None = None) -> float:
    """The CLIP objective written out pair by pair: -log softmax of the matching pair, both directions;
    hard negatives are extra candidates for each image only."""
    n = len(image)
    candidates = text if negatives is None else torch.cat([text, negatives])
    total = 0.0
    for i in range(n):
        sims_i2t = [scale * float(image[i] @ candidates[j]) for j in range(len(candidates))]
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


def test_clip_loss_with_hard_negatives_matches_direct_computation():
    torch.manual_seed(1)
    image, text, negatives = (F.normalize(torch.randn(n, 8, dtype=torch.float64), dim=-1) for n in (4, 4, 3))
    scale = torch.tensor(20.0, dtype=torch.float64)
    got = float(clip_loss(image, text, scale, negatives))
    assert math.isclose(got, direct_clip_loss(image, text, 20.0, negatives), rel_tol=1e-9)
    assert got > float(clip_loss(image, text, scale))  # extra candidates can only make the task harder


def test_a_hard_negative_equal_to_the_caption_halves_the_image_side_odds():
    emb = torch.eye(6)
    scale = torch.tensor(100.0)
    plain = float(clip_loss(emb, emb, scale))
    same = float(clip_loss(emb, emb, scale, negative_emb=emb))  # each image now has two perfect captions
    assert math.isclose(same - plain, math.log(2) / 2, rel_tol=1e-3)


def direct_unicl_loss(image: torch.Tensor, text: torch.Tensor, labels: list[int], scale: float) -> float:
    """UniCL written out: each image averages -log p over the texts of its label, each text over the images."""
    n = len(image)
    total = 0.0
    for i in range(n):
        positives = [j for j in range(n) if labels[j] == labels[i]]
        i2t = [scale * float(image[i] @ text[j]) for j in range(n)]
        t2i = [scale * float(text[i] @ image[j]) for j in range(n)]
        log_z_i2t, log_z_t2i = math.log(sum(map(math.exp, i2t))), math.log(sum(map(math.exp, t2i)))
        total += sum(-(i2t[j] - log_z_i2t) for j in positives) / len(positives)
        total += sum(-(t2i[j] - log_z_t2i) for j in positives) / len(positives)
    return total / (2 * n)


def test_unicl_loss_matches_direct_computation_with_shared_labels():
    torch.manual_seed(2)
    image, text = (F.normalize(torch.randn(6, 8, dtype=torch.float64), dim=-1) for _ in range(2))
    labels = [0, 1, 0, 2, 1, 0]
    got = float(unicl_loss(image, text, torch.tensor(10.0, dtype=torch.float64), torch.tensor(labels)))
    assert math.isclose(got, direct_unicl_loss(image, text, labels, 10.0), rel_tol=1e-9)


def test_unicl_with_distinct_labels_is_clip():
    torch.manual_seed(3)
    image, text, negatives = (F.normalize(torch.randn(n, 8, dtype=torch.float64), dim=-1) for n in (5, 5, 2))
    scale, labels = torch.tensor(15.0, dtype=torch.float64), torch.arange(5)
    assert math.isclose(float(unicl_loss(image, text, scale, labels)), float(clip_loss(image, text, scale)), rel_tol=1e-9)
    assert math.isclose(float(unicl_loss(image, text, scale, labels, negatives)), float(clip_loss(image, text, scale, negatives)), rel_tol=1e-9)


def test_unicl_pulls_together_what_clip_pushes_apart():
    """Moving text 1 towards image 0 raises CLIP's loss, and UniCL's when the pairs share a label lowers it."""
    image = torch.eye(3)
    apart = torch.eye(3)
    closer = F.normalize(torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]]), dim=-1)
    scale = torch.tensor(5.0)

    def change(labels: list[int]) -> float:
        return float(unicl_loss(image, closer, scale, torch.tensor(labels)) - unicl_loss(image, apart, scale, torch.tensor(labels)))

    assert change([0, 0, 1]) < 0 < change([0, 1, 2])


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


def test_answer_weighting_gives_each_answer_equal_weight():
    targets = torch.tensor([[IGNORE_INDEX, 5, 6, IGNORE_INDEX, 7], [1, 2, 3, 4, IGNORE_INDEX]])
    weights = answer_weights(targets)
    assert weights.tolist() == [[0.0, 0.5, 0.5, 0.0, 1.0], [0.25, 0.25, 0.25, 0.25, 0.0]]
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 10)
    labels = torch.cat([torch.full((2, 1), IGNORE_INDEX), targets], dim=1)
    per_token = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 10), targets.reshape(-1), reduction="none").view(2, 5)
    answers = [per_token[0, 1:3].mean(), per_token[0, 4], per_token[1, :4].mean()]
    torch.testing.assert_close(next_token_loss(logits, labels, "answer"), torch.stack(answers).mean())
    torch.testing.assert_close(next_token_loss(logits, labels, "token"), per_token[targets != IGNORE_INDEX].mean())


@pytest.mark.parametrize("weighting", ["token", "answer"])
def test_loss_at_target_positions_equals_the_loss_over_all_logits(weighting):
    torch.manual_seed(3)
    head = torch.nn.Linear(8, 11, bias=False)
    hidden = torch.randn(3, 9, 8)
    labels = torch.full((3, 9), IGNORE_INDEX)
    labels[0, 2:4] = torch.tensor([1, 2])
    labels[0, 6:9] = torch.tensor([3, 4, 5])
    labels[2, 1] = 7  # row 1 has no targets at all
    torch.testing.assert_close(target_loss(hidden, head, labels, weighting), next_token_loss(head(hidden), labels, weighting))


def test_loss_without_targets_is_zero_and_differentiable():
    head = torch.nn.Linear(4, 5)
    hidden = torch.randn(2, 3, 4, requires_grad=True)
    loss = target_loss(hidden, head, torch.full((2, 3), IGNORE_INDEX))
    loss.backward()
    assert float(loss) == 0.0 and hidden.grad is not None


def test_lr_scale_gives_a_part_its_fraction_of_the_learning_rate():
    from components.training.config import OptimizerConfig
    from components.training.stage_module import parameter_groups

    model = torch.nn.ModuleDict({"connector": torch.nn.Linear(4, 4), "language_model": torch.nn.Linear(4, 4)})
    groups = parameter_groups(model, OptimizerConfig(lr=1e-3, weight_decay=0.1, lr_scale={"language_model": 0.1}))
    by_param = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    assert by_param[id(model["connector"].weight)] == (1e-3, 0.1)
    assert by_param[id(model["connector"].bias)] == (1e-3, 0.0)
    assert by_param[id(model["language_model"].weight)] == pytest.approx((1e-4, 0.1))
    model["language_model"].requires_grad_(False)
    with pytest.raises(ValueError, match="lr_scale names language_model, which has no trainable parameter"):
        parameter_groups(model, OptimizerConfig(lr_scale={"language_model": 0.1}))


def direct_region_word_loss(tokens: torch.Tensor, words: torch.Tensor, positive: torch.Tensor, scale: float) -> float:
    """Pair by pair: each (token, own word) against that token's negative words only."""
    total, count = 0.0, 0
    for k in range(len(tokens)):
        sims = [scale * float(tokens[k] @ words[w]) for w in range(len(words))]
        negatives = [s for s, own in zip(sims, positive[k].tolist()) if not own]
        for w in positive[k].nonzero().flatten().tolist():
            total += -(sims[w] - math.log(math.exp(sims[w]) + sum(math.exp(s) for s in negatives)))
            count += 1
    return total / count


def test_region_word_loss_matches_direct_computation():
    from components.training.losses import region_word_loss

    torch.manual_seed(2)
    tokens = F.normalize(torch.randn(6, 8, dtype=torch.float64), dim=-1)
    words = F.normalize(torch.randn(5, 8, dtype=torch.float64), dim=-1)
    positive = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 1, 0, 1], [1, 0, 0, 0, 0], [0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [1, 0, 1, 0, 0]], dtype=torch.bool)
    got = float(region_word_loss(tokens, words, positive, torch.tensor(10.0, dtype=torch.float64)))
    assert math.isclose(got, direct_region_word_loss(tokens, words, positive, 10.0), rel_tol=1e-9)


def test_own_words_do_not_compete_with_each_other():
    """A token equally close to its two own words and far from the rest loses almost nothing:
    'small' does not count against 'circle'."""
    from components.training.losses import region_word_loss

    words = torch.eye(4)
    token = F.normalize(torch.tensor([[1.0, 1.0, 0.0, 0.0]]), dim=-1)
    positive = torch.tensor([[True, True, False, False]])
    assert float(region_word_loss(token, words, positive, torch.tensor(100.0))) < 1e-6


def test_region_word_loss_without_negatives_is_finite_with_finite_gradients():
    from components.training.losses import region_word_loss

    tokens = F.normalize(torch.randn(3, 4), dim=-1).requires_grad_()
    words = F.normalize(torch.randn(2, 4), dim=-1)
    loss = region_word_loss(tokens, words, torch.ones(3, 2, dtype=torch.bool), torch.tensor(50.0))
    loss.backward()
    assert float(loss) < 1e-6 and torch.isfinite(tokens.grad).all()


def test_clip_loss_matches_hf_clip_model_with_return_loss():
    transformers = pytest.importorskip("transformers")
    config = transformers.CLIPConfig(
        text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 60},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 16, "patch_size": 8},
        projection_dim=16,
    )
    torch.manual_seed(0)
    hf = transformers.CLIPModel(config).eval()
    with torch.no_grad():
        hf.logit_scale.fill_(2.5)
        ids = torch.randint(1, 59, (4, 6))
        out = hf(input_ids=ids, pixel_values=torch.randn(4, 3, 16, 16), return_loss=True)
    ours = clip_loss(out.image_embeds, out.text_embeds, hf.logit_scale.exp())  # HF's embeds are L2-normalised
    torch.testing.assert_close(ours, out.loss, atol=1e-5, rtol=1e-5)
