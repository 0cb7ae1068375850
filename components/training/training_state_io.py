"""A training checkpoint (weights, optimizer and schedule state, loop counters, data position) without pickle.

Lightning hands its checkpoint over as nested dicts and lists of tensors and plain values. A checkpoint
here is a folder: every tensor in `tensors.safetensors` and the structure around them in `state.json`,
where a tensor is `{"__tensor__": "t12"}`, a tuple `{"__tuple__": [...]}` and a mapping whose keys are not
all strings (an optimizer's state, keyed by parameter index) `{"__items__": [[key, value], ...]}`. Anything
else (a class, a function) is refused when saving rather than pickled. Loading reads JSON and
safetensors only, so a checkpoint, whoever wrote it, cannot run code.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import CheckpointIO
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from components.training.checkpoints import CheckpointError

TENSORS_FILE = "tensors.safetensors"
STATE_FILE = "state.json"
_TENSOR, _TUPLE, _ITEMS = "__tensor__", "__tuple__", "__items__"
_MARKERS = (_TENSOR, _TUPLE, _ITEMS)


def split_state(value: Any, tensors: dict[str, torch.Tensor], where: str = "checkpoint") -> Any:
    """`value` as JSON-ready data, its tensors moved into `tensors` under names t0, t1, ..."""
    if isinstance(value, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = value.detach().cpu().contiguous().clone()  # its own memory: safetensors refuses shared storage
        return {_TENSOR: name}
    if isinstance(value, dict):
        if all(isinstance(key, str) and key not in _MARKERS for key in value):
            return {key: split_state(item, tensors, f"{where}.{key}") for key, item in value.items()}
        return {_ITEMS: [[split_state(key, tensors, where), split_state(item, tensors, f"{where}.{key}")] for key, item in value.items()]}
    if isinstance(value, tuple):
        return {_TUPLE: [split_state(item, tensors, f"{where}[{i}]") for i, item in enumerate(value)]}
    if isinstance(value, list):
        return [split_state(item, tensors, f"{where}[{i}]") for i, item in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise CheckpointError(f"{where}: a {type(value).__name__} cannot be written to a training checkpoint without pickling it")


def join_state(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of split_state."""
    if isinstance(value, list):
        return [join_state(item, tensors) for item in value]
    if not isinstance(value, dict):
        return value
    if _TENSOR in value:
        return tensors[value[_TENSOR]]
    if _TUPLE in value:
        return tuple(join_state(item, tensors) for item in value[_TUPLE])
    if _ITEMS in value:
        return {join_state(key, tensors): join_state(item, tensors) for key, item in value[_ITEMS]}
    return {key: join_state(item, tensors) for key, item in value.items()}


def write_training_state(state: dict[str, Any], path: Path) -> Path:
    """Write the checkpoint folder at `path`, whole or not at all: it is built beside and renamed into place."""
    tensors: dict[str, torch.Tensor] = {}
    structure = split_state(state, tensors)
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    save_file(tensors, str(partial / TENSORS_FILE))
    (partial / STATE_FILE).write_text(json.dumps(structure))
    os.replace(partial, path)
    return path


def read_training_state(path: Path) -> dict[str, Any]:
    if not (path / STATE_FILE).is_file() or not (path / TENSORS_FILE).is_file():
        raise CheckpointError(f"{path}: not a training checkpoint (it needs {STATE_FILE} and {TENSORS_FILE})")
    try:
        tensors = load_file(str(path / TENSORS_FILE))
        structure = json.loads((path / STATE_FILE).read_text())
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable training checkpoint ({exc})") from None
    return join_state(structure, tensors)


class SafetensorsCheckpointIO(CheckpointIO):
    """Lightning's checkpoint plugin: what it saves and resumes from is a folder of JSON and safetensors."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        write_training_state(checkpoint, Path(path))

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None) -> dict[str, Any]:
        return read_training_state(Path(path))

    def remove_checkpoint(self, path) -> None:
        shutil.rmtree(path, ignore_errors=True)
