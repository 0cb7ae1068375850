"""DDP on CPU (gloo): two processes with batch B end with the weights of one process with batch 2B."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from components.training.checkpoints import load_weights
from components.training.config import DistributedConfig
from tests.services import free_port

SCRIPT = Path(__file__).with_name("ddp_stage.py")
STEPS = 6  # ddp_stage.py's
BATCH = 4


def run(*args: str, env: dict[str, str]) -> None:
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]


def test_two_ddp_processes_match_one_process_with_the_doubled_batch(tmp_path: Path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single, ddp = tmp_path / "single.safetensors", tmp_path / "ddp.safetensors"
    run(str(SCRIPT), str(single), str(2 * BATCH), "1", env=env)
    run("-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
        str(SCRIPT), str(ddp), str(BATCH), "2", env=env)
    one, two = load_weights(single), load_weights(ddp)
    assert one.keys() == two.keys() and len(one) > 5
    worst = max((one[k] - two[k]).abs().max().item() for k in one)
    assert worst < 5e-5, f"DDP and the doubled batch differ by up to {worst:.2e}"


def test_batches_grouped_by_the_loader_are_shared_out_among_the_ranks(tmp_path: Path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "grouped.safetensors"
    run("-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
        str(SCRIPT), str(out), str(BATCH), "2", "grouped", env=env)
    seen = [json.loads(out.with_name(f"{out.name}.rank{rank}.json").read_text()) for rank in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == STEPS * BATCH, "each rank trained its own batch of the stage's size at every step"
    rows = [tuple(row) for rank in seen for row in rank]
    assert len(set(rows)) == len(rows) == 2 * STEPS * BATCH, "no sample on both ranks (the epoch holds more than the steps take)"
    assert out.is_file()


def test_batches_are_per_process_and_the_config_is_checked():
    assert DistributedConfig(devices=4, num_nodes=2).processes == 8
    with pytest.raises(ValueError, match="strategy"):
        DistributedConfig(strategy="horovod")
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        DistributedConfig(devices=0)
    with pytest.raises(ValueError, match="ddp_spawn starts its processes on this machine only"):
        DistributedConfig(strategy="ddp_spawn", devices=2, num_nodes=2)
    with pytest.raises(ValueError, match="strategy fsdp shards over GPUs"):
        DistributedConfig(strategy="fsdp", devices=2)
    assert DistributedConfig(strategy="fsdp", accelerator="gpu", devices=8, precision="bf16-mixed").processes == 8


def test_bf16_mixed_precision_trains_on_cpu(tmp_path: Path):
    run(str(SCRIPT), str(tmp_path / "bf16.safetensors"), str(BATCH), "1", "bf16-mixed", env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert all(t.dtype == torch.float32 for t in load_weights(tmp_path / "bf16.safetensors").values()), "mixed: weights stay float32"
    assert torch.distributed.is_gloo_available()
