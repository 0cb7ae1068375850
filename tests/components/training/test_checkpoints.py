import pickle

import pytest
import torch
from torch import nn

from components.training.checkpoints import CheckpointError, init_part, load_weights, save_weights


class Pair(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.vision = nn.Linear(width, width)
        self.connector = nn.Linear(width, 2)


def test_round_trip_is_exact(tmp_path):
    model = Pair()
    path = save_weights(model, tmp_path / "m.safetensors")
    loaded = load_weights(path)
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    assert not list(tmp_path.glob("*.tmp"))


def test_pickles_are_refused(tmp_path):
    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        load_weights(bad)
    pt = tmp_path / "model.pt"
    torch.save(Pair().state_dict(), pt)
    with pytest.raises(CheckpointError, match="only .safetensors"):
        load_weights(pt)


def test_init_part_copies_only_that_part():
    source, target = Pair(), Pair()
    before = target.connector.weight.clone()
    copied = init_part(target, "vision", source.state_dict(), "parent")
    assert copied == 2
    assert torch.equal(target.vision.weight, source.vision.weight)
    assert torch.equal(target.connector.weight, before)


def test_init_part_names_shape_mismatches():
    with pytest.raises(CheckpointError, match=r"vision.weight has shape \(8, 8\)"):
        init_part(Pair(4), "vision", Pair(8).state_dict(), "parent")
    with pytest.raises(CheckpointError, match="no weights for part 'language_model'"):
        init_part(Pair(), "language_model", Pair().state_dict(), "parent")
