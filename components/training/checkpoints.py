"""Weights on disk: safetensors only, and a stage's start from its parents' weights.

Nothing here unpickles: safetensors files hold tensors and a JSON header,
never code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from components.models.visual_expert import expert_weights_from_lm
from components.training.freeze import in_group


class CheckpointError(ValueError):
    """A checkpoint is missing, not safetensors, or does not fit the model."""


def save_weights(model: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    state, storages = {}, set()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().contiguous().cpu()
        storage = tensor.untyped_storage().data_ptr()
        # Tied weights (an HF LM's head sharing its embedding) appear under two names; safetensors
        # refuses shared memory, so the second name gets its own copy. Loading writes both into the one tensor.
        state[name] = tensor.clone() if storage in storages else tensor
        storages.add(storage)
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata=metadata or {})
    tmp.replace(path)  # a crash never leaves a half-written checkpoint under the real name
    return path


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: only .safetensors checkpoints are accepted (pickled formats can run code)")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: not a valid safetensors file ({exc})") from None


DERIVED_PARTS: dict[str, Callable[[dict[str, torch.Tensor], str], dict[str, torch.Tensor]]] = {
    "visual_expert": expert_weights_from_lm,
}


def init_part(model: nn.Module, part: str, weights: dict[str, torch.Tensor], source: str) -> int:
    """Copy the weights of one part ('*' = every part the source has) into the model; return tensors copied.

    A nested part such as `connector.qformer` is taken from the source's own `connector.qformer.*`
    tensors or, when it has none, from its top-level `qformer.*` ones: a module trained alone in
    one stage (BLIP-2's Q-Former) becomes part of a bigger model in the next. A part in
    DERIVED_PARTS that the source lacks is derived from what it has (CogVLM's visual experts
    start as copies of a text-only LM's layers).
    """
    own = model.state_dict()
    if part in DERIVED_PARTS and not any(in_group(n, part) for n in weights):
        weights = DERIVED_PARTS[part](weights, part)
    if part != "*" and "." in part and not any(in_group(n, part) for n in weights):
        leaf = part.rsplit(".", 1)[1]
        weights = {f"{part}{n[len(leaf):]}": t for n, t in weights.items() if in_group(n, leaf)}
    names = [n for n in weights if n in own and (part == "*" or in_group(n, part))]
    if not names:
        raise CheckpointError(f"{source}: has no weights for part {part!r} (its parts: {', '.join(sorted({n.split('.')[0] for n in weights}))})")
    if part != "*":
        missing = [n for n in own if in_group(n, part) and n not in weights]
        if missing:
            raise CheckpointError(f"{source}: part {part!r} lacks {len(missing)} tensors, e.g. {missing[0]}")
    with torch.no_grad():
        for name in names:
            if own[name].shape != weights[name].shape:
                raise CheckpointError(
                    f"{source}: {name} has shape {tuple(weights[name].shape)}, the model expects {tuple(own[name].shape)}"
                    " (the recipes' model sizes differ)"
                )
            own[name].copy_(weights[name])
    return len(names)
