"""A stage stopped after a checkpoint and resumed from it ends with the weights of one never stopped."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch

from components.data.label_prompts import LabelPrompts
from components.training.checkpoints import CheckpointError, load_weights
from components.training.config import DistributedConfig, OptimizerConfig
from components.training.stage_data import build_dataloader, build_stage_dataset
from components.training.stage_models import build_stage_model
from components.training.step_checkpoints import latest_checkpoint, saved_checkpoints
from components.training.train_stage import train_stage, training_checkpoints
from components.training.training_state_io import STATE_FILE, read_training_state, write_training_state

STEPS, STOP_AFTER = 14, 10  # 40 scenes in batches of 8, 5 batches an epoch
DETERMINISTIC = DistributedConfig(deterministic=True)

SETUPS = {
    # label prompts draw from torch's global generator as items load, one batch ahead of training
    "global-draws-in-loading": ("contrastive", {"label_prompts": LabelPrompts(0.5, ("a {}", "a photo of a {}"))}, False, None),
    # a batch sampler of its own, with its own generator
    "length-grouped-batches": ("llava_instruct", {}, True, None),
    # the stage ends with a moving average of its weights, which the checkpoint must carry
    "weight-average": ("llava_instruct", {}, False, 0.8),
}


class Stop(Exception):
    """Stands for the process being killed after a step."""


class StopAfter(L.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise Stop(f"stopped after step {self.step}")


def train(setup: str, built_dataset: Path, tokenizer, config, out: Path, resume: bool = False, stop_after: int | None = None, every: int = 4):
    objective, options, grouped, ema_decay = SETUPS[setup]
    torch.manual_seed(0)
    model = build_stage_model(objective, config, tokenizer)
    data = build_stage_dataset(objective, built_dataset, tokenizer, 32, 64, **options)
    loader = build_dataloader(data, 8, tokenizer.pad_id, seed=0, group_by_length=grouped)
    trainable = ["vision", "text", "image_projection", "text_projection"] if objective == "contrastive" else ["connector", "language_model"]
    callbacks = [StopAfter(stop_after)] if stop_after else []
    return train_stage(model, objective, trainable, OptimizerConfig(lr=1e-2, warmup_steps=3, ema_decay=ema_decay), STEPS, loader, out, progress_bar=False,
                       distributed=DETERMINISTIC, checkpoint_every=every, resume=resume, callbacks=callbacks)


@pytest.mark.parametrize(("setup", "every"), [(setup, 4) for setup in SETUPS] + [("length-grouped-batches", 5)])
def test_a_stopped_stage_resumes_to_the_weights_of_an_unbroken_one(setup, every, built_dataset, built_tokenizer, tiny_model_config, tmp_path: Path):
    """Every 4 steps the last checkpoint is at step 8, inside the second epoch; every 5, at its end."""
    unbroken = train(setup, built_dataset, built_tokenizer, tiny_model_config, tmp_path / "unbroken" / "w.safetensors", every=every)
    assert unbroken.resumed_from is None

    out = tmp_path / "broken" / "w.safetensors"
    with pytest.raises(Stop):
        train(setup, built_dataset, built_tokenizer, tiny_model_config, out, stop_after=STOP_AFTER, every=every)
    assert not out.exists()
    last = f"step-{(STOP_AFTER - 1) // every * every:08d}"
    assert [p.name for p in saved_checkpoints(training_checkpoints(out))] == [last]  # the older ones were dropped

    resumed = train(setup, built_dataset, built_tokenizer, tiny_model_config, out, resume=True, every=every)
    assert resumed.resumed_from == training_checkpoints(out) / last
    assert resumed.steps == STEPS
    expected, got = load_weights(unbroken.weights), load_weights(resumed.weights)
    assert expected.keys() == got.keys()
    different = [name for name in expected if not torch.equal(expected[name], got[name])]
    assert not different, f"{len(different)} tensors differ after resuming, e.g. {different[:3]}"


def test_resuming_from_the_wrong_step_would_be_seen(built_dataset, built_tokenizer, tiny_model_config, tmp_path: Path):
    """The equality above is not vacuous: a stage resumed from an earlier checkpoint, with the loader's
    position dropped, ends elsewhere."""
    setup = "global-draws-in-loading"
    unbroken = train(setup, built_dataset, built_tokenizer, tiny_model_config, tmp_path / "unbroken" / "w.safetensors")
    out = tmp_path / "broken" / "w.safetensors"
    with pytest.raises(Stop):
        train(setup, built_dataset, built_tokenizer, tiny_model_config, out, stop_after=STOP_AFTER)
    checkpoint = latest_checkpoint(training_checkpoints(out))
    state = json.loads((checkpoint / STATE_FILE).read_text())
    state["loops"]["fit_loop"]["state_dict"].pop("combined_loader")
    (checkpoint / STATE_FILE).write_text(json.dumps(state))
    resumed = train(setup, built_dataset, built_tokenizer, tiny_model_config, out, resume=True)
    expected, got = load_weights(unbroken.weights), load_weights(resumed.weights)
    assert any(not torch.equal(expected[name], got[name]) for name in expected)


def test_training_state_round_trips_without_pickle_and_refuses_objects(tmp_path: Path):
    state = {"step": 3, "optimizer": {0: {"exp_avg": torch.ones(2)}, 1: {"step": torch.tensor(4.0)}}, "betas": (0.9, 0.98),
             "groups": [{"lr": 0.1, "params": [0, 1]}], "name": None, "shared": [torch.zeros(3)] * 2}
    path = write_training_state(state, tmp_path / "step-00000003")
    assert sorted(p.name for p in path.iterdir()) == ["state.json", "tensors.safetensors"]
    back = read_training_state(path)
    assert back["optimizer"][0]["exp_avg"].tolist() == [1.0, 1.0] and back["optimizer"][1]["step"].item() == 4.0
    assert back["betas"] == (0.9, 0.98) and back["groups"] == state["groups"] and back["name"] is None
    with pytest.raises(CheckpointError, match=r"checkpoint\.hook: a function cannot be written"):
        write_training_state({"hook": lambda: None}, tmp_path / "step-00000004")
    assert not (tmp_path / "step-00000004").exists()
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        read_training_state(tmp_path)


def test_a_checkpoint_cut_off_while_written_is_not_resumed_from(tmp_path: Path):
    write_training_state({"step": 4}, tmp_path / "step-00000004")
    (tmp_path / "step-00000008.partial").mkdir()  # killed while writing step 8
    assert latest_checkpoint(tmp_path) == tmp_path / "step-00000004"
