"""How much does Lightning cost per training step? LLaVA's stage 2 (llava.yaml's instruct stage) trained by our
Lightning stage (components.training.train_stage's StageModule and Trainer settings) against a plain PyTorch loop
on the same model, freeze plan, optimizer, schedule, gradient clipping and batches.

Both ways run the same pre-collated batches from a generated Shapes dataset; each way is timed per step (from one
step's start to the next's, so Lightning's own work between steps counts), alternating in rounds so that a machine
that speeds up or slows down touches both alike, and split into phases (forward, backward, optimizer, between) to
show where a difference lies. It prints the median step and phases each way and the ratio
Lightning / plain (goal <= 1.03) and writes them to benchmarks/results/lightning_step.json. It exits 0 whatever
the timings: it is a measurement, not a test.

    python benchmarks/lightning_step.py
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.figures import verdict, write_figures  # noqa: E402
from benchmarks.shapes_stage_data import shapes_stage_data  # noqa: E402
from components.training.freeze import apply_freeze_plan  # noqa: E402
from components.training.stage_data import build_dataloader  # noqa: E402
from components.training.stage_models import build_stage_model  # noqa: E402
from components.training.stage_module import StageModule  # noqa: E402
from mmops.recipe import load_recipe  # noqa: E402

WARMUP_STEPS = 5  # the first steps of a fresh copy run slower (allocations, kernel choices)
GOAL = 1.03


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "llava.yaml"))
    parser.add_argument("--stage", default="instruct")
    parser.add_argument("--scenes", type=int, default=600, help="training scenes to generate")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round and way")
    parser.add_argument("--rounds", type=int, default=6, help="rounds, each way first in every other; runs of 60 steps scattered by several hundredths")
    parser.add_argument("--out", default=None)
    return parser.parse_args(argv)


PHASES = ("forward", "backward", "optimizer", "between")
"""Where a step's time goes: the loss (with Lightning's zero_grad and logging), its backward, clipping with the
optimizer and schedule steps, and for Lightning what it does between one step's end and the next one's start."""

Step = dict[str, float]
"""Seconds per phase of one step, and their sum as "step"."""


def _step(marks: list[float]) -> Step:
    phases = dict(zip(PHASES, (b - a for a, b in zip(marks, marks[1:]))))
    return phases | {"step": marks[-1] - marks[0]}


class StepClock(L.Callback):
    """The phases of every step, from its start to the next one's (and to the end of the last)."""

    def __init__(self) -> None:
        self.marks: list[list[float]] = []

    def _mark(self) -> None:
        self.marks[-1].append(time.perf_counter())

    def on_train_batch_start(self, *_) -> None:
        if self.marks:
            self._mark()  # the end of the previous step's "between"
        self.marks.append([time.perf_counter()])

    def on_before_backward(self, *_) -> None:
        self._mark()

    def on_after_backward(self, *_) -> None:
        self._mark()

    def on_train_batch_end(self, *_) -> None:
        self._mark()

    def on_train_end(self, *_) -> None:
        self._mark()

    def steps(self) -> list[Step]:
        return [_step(marks) for marks in self.marks]


def lightning_steps(module: StageModule, batches: list[dict], grad_clip: float | None) -> list[Step]:
    clock = StepClock()
    trainer = L.Trainer(max_steps=len(batches), max_epochs=-1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_model_summary=False, enable_progress_bar=False, gradient_clip_val=grad_clip, num_sanity_val_steps=0,
                        callbacks=[clock])
    trainer.fit(module, train_dataloaders=DataLoader(batches, batch_size=None))  # the batches as they are
    return clock.steps()


def plain_steps(module: StageModule, batches: list[dict], grad_clip: float | None) -> list[Step]:
    configured = module.configure_optimizers()  # the same AdamW groups and schedule Lightning gets
    optimizer, schedule = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    trainable = [p for p in module.parameters() if p.requires_grad]
    module.train()
    steps = []
    for batch in DataLoader(batches, batch_size=None):
        marks = [time.perf_counter()]
        loss, _ = module.loss_fn(module.model, batch)
        optimizer.zero_grad(set_to_none=True)
        marks.append(time.perf_counter())
        loss.backward()
        marks.append(time.perf_counter())
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(trainable, grad_clip)
        optimizer.step()
        schedule.step()
        marks += [time.perf_counter()] * 2  # nothing between steps: the next batch is the loop's
        steps.append(_step(marks))
    return steps


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    recipe = load_recipe(args.recipe).recipe
    stage = recipe.stage(args.stage)
    per_round = WARMUP_STEPS + args.steps
    with shapes_stage_data(recipe, stage, args.scenes) as (_, tokenizer, dataset):
        loader = build_dataloader(dataset, stage.batch_size, tokenizer.pad_id, stage.seed)
        batches = [batch for _ in range(-(-per_round // len(loader))) for batch in loader][:per_round]
    torch.manual_seed(stage.seed)
    model = build_stage_model(stage.objective, recipe.model, tokenizer)
    apply_freeze_plan(model, stage.trainable)
    steps: dict[str, list[Step]] = {"lightning": [], "plain": []}
    ways = [("lightning", lightning_steps), ("plain", plain_steps)]
    for r in range(args.rounds):
        for way, run in ways if r % 2 == 0 else ways[::-1]:  # each way goes first in every other round
            module = StageModule(copy.deepcopy(model), stage.objective, stage.optimizer, per_round, stage.loss_weighting,
                                 log_every=stage.log_every)
            steps[way] += run(module, batches, stage.optimizer.grad_clip)[WARMUP_STEPS:]
    medians = {way: {part: statistics.median(s[part] for s in timed) for part in ("step", *PHASES)} for way, timed in steps.items()}
    ratio = medians["lightning"]["step"] / medians["plain"]["step"]
    print(f"{args.stage} step of {Path(args.recipe).name}, batch {stage.batch_size}, {len(steps['plain'])} timed steps each way")
    print(f"  {'median ms':9s} {'step':>8s}" + "".join(f" {part:>9s}" for part in PHASES))
    for way, median in medians.items():
        print(f"  {way:9s} {1000 * median['step']:8.1f}" + "".join(f" {1000 * median[part]:9.1f}" for part in PHASES))
    print(f"  Lightning / plain: {verdict(ratio, GOAL, at_most=True)}")
    write_figures("lightning_step", {
        "what": f"Lightning training step vs a plain PyTorch loop ({Path(args.recipe).name} {args.stage}, batch {stage.batch_size})",
        "median_step_ms": {way: round(1000 * m["step"], 2) for way, m in medians.items()},
        "median_phase_ms": {way: {part: round(1000 * m[part], 2) for part in PHASES} for way, m in medians.items()},
        "timed_steps_per_way": len(steps["plain"]), "ratio": round(ratio, 4), "goal": GOAL, "at_most": True,
    }, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
