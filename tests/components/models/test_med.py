"""BLIP's MED text transformer against HF transformers' BlipTextModel, mode by mode, and its masks."""

import pytest
import torch

from components.models.med import MODES, MedTextTransformer, med_attention_mask

pytest.importorskip("transformers")
from blip_reference import CFG, IMAGE_DIM, PAD, VOCAB, copy_med_weights, hf_ids, text_reference  # noqa: E402


def inputs():
    torch.manual_seed(2)
    ids = torch.randint(1, VOCAB, (2, 7))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]])
    return ids * mask, mask, torch.randn(2, 10, IMAGE_DIM)


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_matches_hf(mode):
    hf = text_reference()
    ours = MedTextTransformer(CFG, IMAGE_DIM, VOCAB, PAD).eval()
    copy_med_weights(ours, hf.state_dict(), "decoder_self_attention" if mode == "decoder" else "self_attention")
    ids, mask, image = inputs()
    full_mask = torch.cat([torch.ones(2, 1, dtype=torch.long), mask], dim=1)
    with torch.no_grad():
        expected = hf(
            hf_ids(mode, ids), attention_mask=full_mask, encoder_hidden_states=None if mode == "text" else image,
            is_decoder=mode == "decoder",
        ).last_hidden_state
        got = ours(ids, mask, mode, None if mode == "text" else image)
    real = full_mask.bool()  # padded positions are garbage in both
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-5)


def test_decoder_and_encoders_share_all_but_self_attention():
    ours = MedTextTransformer(CFG, IMAGE_DIM, VOCAB, PAD)
    ids, mask, image = inputs()
    with torch.no_grad():
        before = {mode: ours(ids, mask, mode, image) for mode in ("encoder", "decoder")}
        for p in ours.layers[0].decoder_self_attention.parameters():
            p.add_(0.5)
        after = {mode: ours(ids, mask, mode, image) for mode in ("encoder", "decoder")}
    torch.testing.assert_close(after["encoder"], before["encoder"])  # the encoders never read the decoder's weights
    assert not torch.allclose(after["decoder"], before["decoder"])


def test_the_decoder_does_not_see_later_tokens_and_the_encoder_does():
    ours = MedTextTransformer(CFG, IMAGE_DIM, VOCAB, PAD).eval()
    ids, mask, image = inputs()
    changed = ids.clone()
    changed[:, 4] = (changed[:, 4] % (VOCAB - 1)) + 1
    with torch.no_grad():
        decoder, decoder_changed = ours(ids, mask, "decoder", image), ours(changed, mask, "decoder", image)
        encoder, encoder_changed = ours(ids, mask, "encoder", image), ours(changed, mask, "encoder", image)
    torch.testing.assert_close(decoder_changed[:, :5], decoder[:, :5])  # the mode token and text tokens 0..3
    assert not torch.allclose(encoder_changed[:, :5], encoder[:, :5])
    assert med_attention_mask("decoder", mask)[1, 0, 6, 7] == False  # a padded key  # noqa: E712


def test_grounded_modes_need_the_image():
    ours = MedTextTransformer(CFG, IMAGE_DIM, VOCAB, PAD)
    ids, mask, _ = inputs()
    with pytest.raises(ValueError, match="the encoder mode reads the image"):
        ours(ids, mask, "encoder")
    with pytest.raises(ValueError, match="longer than max_text_len=15"):
        ours(torch.ones(1, 16, dtype=torch.long))
