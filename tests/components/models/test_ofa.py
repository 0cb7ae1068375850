"""OFA: coordinate-bin location tokens, the VQ image tokenizer, and the encoder-decoder over one vocabulary."""

import pytest
import torch

from components.data.coordinate_bins import CoordinateBins, bins_of
from components.data.errors import DataError
from components.data.grounded import boxes_as_text, located_answers
from components.data.shapes_annotations import box_iou, parse_box
from components.models.builders import build_image_tokenizer, build_ofa
from components.models.config import OfaConfig, VisionConfig, VqConfig
from components.models.family import ModelConfig
from components.models.ofa import IGNORE_INDEX, middle_codes
from components.models.vq import RESTART_EVERY
from components.training.objectives import ofa_instruct, vq_tokenizer
from components.training.stage_models import ImageTokenizerOnly

TEXT_VOCAB, PAD, BOS, EOS, IMAGE = 50, 0, 1, 2, 3
CFG = ModelConfig(
    vision=VisionConfig(image_size=32, patch_size=8, dim=32, depth=2, heads=2),
    ofa=OfaConfig(dim=32, encoder_depth=2, decoder_depth=2, heads=2, max_positions=32),
    vq=VqConfig(codebook_size=16, code_dim=8, hidden=16, downsample=8),
)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_ofa(CFG, TEXT_VOCAB, IMAGE, PAD, BOS, EOS).eval()


def test_a_box_is_four_coordinate_tokens_and_reads_back_within_a_bin():
    bins = CoordinateBins(64)
    tokens = bins.location([(0.1, 0.25, 0.5, 1.0)])
    assert tokens == "<bin_006><bin_016><bin_032><bin_063>"
    text, entities = bins.read(f"it is {tokens} there")
    assert text == "it is  there" and entities[0][0] == tokens
    assert entities[0][1][0] == pytest.approx((0.1, 0.25, 0.5, 1.0), abs=0.5 / 63)
    assert bins.read("<bin_001><bin_002>")[1] == []  # half a box is no box
    assert bins_of({t: k for k, t in enumerate(bins.tokens)}) == bins and bins_of({"a": 0}) is None
    with pytest.raises(DataError, match="normalised"):
        bins.location([(0.1, 0.2, 1.5, 0.4)])


def test_grounding_answers_become_bins_and_are_scored_as_text_boxes():
    bins = CoordinateBins(100)
    sample = {"conversations": [{"from": "human", "value": "Where?"}, {"from": "gpt", "value": "[[100,200,500,600]]"}], "question_types": ["grounding"]}
    answer = located_answers(sample, bins)["conversations"][1]["value"]
    assert answer.count("<bin_") == 4
    assert box_iou(parse_box(boxes_as_text(answer, bins)), (100, 200, 500, 600)) > 0.95  # within a bin of 1/99


def test_the_image_tokenizer_trains_through_its_straight_through_codes():
    torch.manual_seed(0)
    tokenizer = build_image_tokenizer(CFG).train()
    colours = torch.rand(4, 3, 2, 2) * 2 - 1  # images of four flat quadrants: what a code grid can say
    pixels = colours.repeat_interleave(16, dim=2).repeat_interleave(16, dim=3)
    _, losses = tokenizer(pixels)
    losses["loss"].backward()
    assert tokenizer.encoder[0][0].weight.grad.abs().sum() > 0  # the reconstruction reaches the encoder
    assert bool(tokenizer.initialised)  # the codebook started from the batch
    codes = tokenizer.encode(pixels)
    assert codes.shape == (4, 4, 4) and 0 <= int(codes.min()) and int(codes.max()) < 16
    assert tokenizer.decode(codes).shape == pixels.shape
    stage = ImageTokenizerOnly(tokenizer)
    optimiser = torch.optim.Adam(stage.parameters(), lr=3e-3)
    first = vq_tokenizer(stage, {"pixel_values": pixels})[1]["reconstruction"]
    for _ in range(150):
        optimiser.zero_grad()
        loss, metrics = vq_tokenizer(stage, {"pixel_values": pixels})
        loss.backward()
        optimiser.step()
    assert metrics["reconstruction"] < 0.5 * first


def test_the_decoder_is_causal_and_the_vocabulary_holds_the_codes(model):
    ids, mask = torch.tensor([[BOS, IMAGE, 7, 8, 9]]), torch.ones(1, 5, dtype=torch.long)
    pixels = torch.randn(1, 3, 32, 32)
    memory, memory_mask = model.encode(ids, mask, pixels, torch.tensor([True]))
    n = model.vision(pixels).shape[1]  # the image's tokens come first; the <image> marker is not read
    assert memory.shape == (1, n + 5, 32) and memory_mask.tolist()[0] == [True] * n + [True, False, True, True, True]
    a = model.decode(memory, memory_mask, torch.tensor([[BOS, 10, 11, 12]]))
    b = model.decode(memory, memory_mask, torch.tensor([[BOS, 10, 40, 41]]))
    assert a.shape == (1, 4, TEXT_VOCAB + 16)
    assert torch.allclose(a[:, :2], b[:, :2], atol=1e-6) and not torch.allclose(a[:, 2:], b[:, 2:])


def test_padding_does_not_change_what_the_encoder_reads(model):
    pixels = torch.randn(1, 3, 32, 32)
    alone = model.generate(torch.tensor([[BOS, IMAGE, 7, 8]]), torch.ones(1, 4, dtype=torch.long), pixels, torch.tensor([True]), 5, EOS)
    padded = model.generate(torch.tensor([[PAD, PAD, BOS, IMAGE, 7, 8]]), torch.tensor([[0, 0, 1, 1, 1, 1]]), pixels, torch.tensor([True]), 5, EOS)
    assert alone == padded and all(t < TEXT_VOCAB for t in alone[0])


def test_greedy_generation_is_the_teacher_forced_argmax(model):
    ids, mask, pixels, has = torch.tensor([[BOS, IMAGE, 9]]), torch.ones(1, 3, dtype=torch.long), torch.randn(1, 3, 32, 32), torch.tensor([True])
    written = model.generate(ids, mask, pixels, has, 6, eos_token_id=-1)[0]  # no eos: six tokens
    memory, memory_mask = model.encode(ids, mask, pixels, has)
    logits = model.decode(memory, memory_mask, torch.tensor([[BOS, *written[:-1]]]))[0, :, :TEXT_VOCAB]
    assert written == logits.argmax(-1).tolist()


def test_infilling_masks_the_middle_and_answers_with_its_codes(model):
    pixels = torch.rand(2, 3, 32, 32) * 2 - 1
    masked, codes = model.infill_batch(pixels)
    assert codes.shape == (2, middle_codes(32, CFG.vq)) == (2, 4) and bool((codes >= TEXT_VOCAB).all())
    assert torch.equal(masked[:, :, :8], pixels[:, :, :8]) and bool((masked[:, :, 8:24, 8:24] == pixels.amin()).all())
    written = model.generate(torch.tensor([[BOS, IMAGE, 9]] * 2), torch.ones(2, 3, dtype=torch.long), masked, torch.tensor([True, True]), 4, EOS, codes=True)
    assert [len(w) for w in written] == [4, 4] and all(0 <= c < 16 for w in written for c in w)


def test_the_objective_trains_text_answers_and_infilling_in_one_batch(model):
    model.train()
    batch = {
        "input_ids": torch.tensor([[BOS, IMAGE, 9, 10], [BOS, IMAGE, 11, PAD]]), "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]),
        "pixel_values": torch.rand(2, 3, 32, 32) * 2 - 1, "has_image": torch.tensor([True, True]),
        "labels": torch.tensor([[20, 21, EOS, IGNORE_INDEX, IGNORE_INDEX], [IGNORE_INDEX] * 5]), "infill": torch.tensor([False, True]),
    }
    loss, metrics = ofa_instruct(model, batch)
    loss.backward()
    assert torch.isfinite(loss) and 0.0 <= float(metrics["infill_code_accuracy"]) <= 1.0
    assert model.token_embed.weight.grad[TEXT_VOCAB:].abs().sum() > 0  # the code tokens were targets
    assert all(p.grad is None for p in model.image_tokenizer.parameters())  # the codes come from the tokenizer, which does not train here


def test_codes_no_cell_chose_are_moved_onto_the_data():
    torch.manual_seed(0)
    tokenizer = build_image_tokenizer(CFG).train()
    pixels = torch.rand(2, 3, 32, 32) * 2 - 1
    tokenizer(pixels)  # the codebook starts from these latents
    with torch.no_grad():
        tokenizer.codebook.weight[5:] = -tokenizer.codebook.weight[5:]  # codes 5.. point away from every latent
    tokenizer.uses.zero_()
    tokenizer.steps.zero_()  # count the uses from here
    for _ in range(RESTART_EVERY):
        tokenizer(pixels)
    latents = tokenizer.encode_latents(pixels).permute(0, 2, 3, 1).reshape(-1, CFG.vq.code_dim)
    nearest = (tokenizer.code_vectors() @ latents.t()).amax(1)  # each code's similarity to its closest latent
    assert bool((nearest[5:] > 0.99).all()) and int(tokenizer.uses.sum()) == 0
