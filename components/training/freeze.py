"""Freeze plans: which parameter groups train in a stage.

A plan is data (a list of group names from the recipe); this is the one
function that applies it. A group is a parameter-name prefix on a module
boundary: `connector` or `language_model.blocks.3`.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


class FreezePlanError(ValueError):
    """A group in a freeze plan matches no parameter of the model."""


@dataclass(frozen=True)
class FreezeReport:
    trainable: tuple[str, ...]
    frozen: tuple[str, ...]
    trainable_count: int
    frozen_count: int


def in_group(name: str, group: str) -> bool:
    return name == group or name.startswith(group + ".")


def apply_freeze_plan(model: nn.Module, trainable: list[str]) -> FreezeReport:
    """Let exactly the parameters in `trainable` groups train; freeze all others."""
    names = [name for name, _ in model.named_parameters()]
    for group in trainable:
        if not any(in_group(name, group) for name in names):
            parts = sorted({name.split(".")[0] for name in names})
            raise FreezePlanError(f"freeze plan group {group!r} matches no parameter (top-level parts: {', '.join(parts)})")
    on, off = [], []
    on_count = off_count = 0
    for name, param in model.named_parameters():
        trains = any(in_group(name, group) for group in trainable)
        param.requires_grad_(trains)
        (on if trains else off).append(name)
        if trains:
            on_count += param.numel()
        else:
            off_count += param.numel()
    return FreezeReport(tuple(on), tuple(off), on_count, off_count)
