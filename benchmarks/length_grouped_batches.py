"""How much faster is a LLaVA instruct step on length-grouped batches than on random ones?

A padded batch costs what its longest conversation costs. This script builds the
recipe's model, generates a few thousand Shapes scenes in a temporary folder,
and times full training steps (forward, backward, AdamW, with the stage's
freeze plan) on batches drawn at random and on batches grouped by length
(`group_by_length: true` in a stage), alternating the two in rounds so that a
machine that speeds up or slows down during the run touches both alike.

It prints the padding each way (padded tokens / real tokens) and the ratio of
the median step times, grouped / random (below 1 means grouping is faster), and
writes the figures with the machine they were taken on to --out as JSON. It
exits 0 whatever the timings: it is a measurement, not a test.

    python benchmarks/length_grouped_batches.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
WARMUP_STEPS = 2  # untimed steps at the start of each round and way
sys.path.insert(0, str(ROOT))

from components.data.build import build_shapes_dataset, load_dataset_tokenizer  # noqa: E402
from components.training.freeze import apply_freeze_plan  # noqa: E402
from components.training.objectives import OBJECTIVES  # noqa: E402
from components.training.stage_data import build_dataloader, build_stage_dataset  # noqa: E402
from components.training.stage_models import build_stage_model  # noqa: E402
from mmops.recipe import LENGTH_GROUPED_OBJECTIVES, load_recipe  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "llava.yaml"))
    parser.add_argument("--stage", default="instruct", help="a llava_pretrain or llava_instruct stage of the recipe")
    parser.add_argument("--scenes", type=int, default=3000, help="training scenes to generate")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round and way")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "length_grouped_batches.json"))
    return parser.parse_args(argv)


def time_steps(model, objective: str, weighting: str, batches: list[dict], optimizer) -> list[float]:
    seconds = []
    for batch in batches:
        start = time.perf_counter()
        loss, _ = OBJECTIVES[objective](model, batch, weighting)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seconds.append(time.perf_counter() - start)
    return seconds


def padding(batches: list[dict]) -> float:
    """Text tokens computed (padding included) over text tokens that are real."""
    return sum(b["input_ids"].numel() for b in batches) / sum(int(b["attention_mask"].sum()) for b in batches)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    loaded = load_recipe(args.recipe)
    recipe, stage = loaded.recipe, loaded.recipe.stage(args.stage)
    if stage.objective not in LENGTH_GROUPED_OBJECTIVES:
        print(f"--stage {args.stage}: objective {stage.objective} has no conversations to group", file=sys.stderr)
        return 2
    shapes = recipe.data.shapes.model_copy(update={"train": args.scenes, "val": 8, "test": 8})
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        build_shapes_dataset(shapes, recipe.data.tokenizer.vocab_size, data)
        tokenizer = load_dataset_tokenizer(data)
        dataset = build_stage_dataset(stage.objective, data, tokenizer, recipe.model.vision.image_size, stage.max_len)
        per_round = WARMUP_STEPS + args.steps
        ways = {}
        for grouped in (False, True):
            loader = iter(build_dataloader(dataset, stage.batch_size, tokenizer.pad_id, stage.seed, group_by_length=grouped))
            ways["grouped" if grouped else "random"] = [next(loader) for _ in range(per_round * args.rounds)]
        torch.manual_seed(stage.seed)
        model = build_stage_model(stage.objective, recipe.model, tokenizer)
        apply_freeze_plan(model, stage.trainable)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=stage.optimizer.lr)
        steps: dict[str, list[float]] = {"random": [], "grouped": []}
        for r in range(args.rounds):
            for way, batches in ways.items():
                chunk = batches[r * per_round : (r + 1) * per_round]
                steps[way] += time_steps(model, stage.objective, stage.loss_weighting, chunk, optimizer)[WARMUP_STEPS:]
    medians = {way: statistics.median(s) for way, s in steps.items()}
    results = {
        "recipe": str(Path(args.recipe).name), "stage": args.stage, "batch_size": stage.batch_size,
        "timed_steps_per_way": len(steps["random"]),
        "median_step_ms": {way: round(1000 * m, 2) for way, m in medians.items()},
        "padded_over_real_tokens": {way: round(padding(b), 3) for way, b in ways.items()},
        "ratio_grouped_over_random": round(medians["grouped"] / medians["random"], 3),
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
                    "cpus": os.cpu_count(), "threads": torch.get_num_threads()},
    }
    print(f"{args.stage} step of {Path(args.recipe).name}, batch {stage.batch_size}, {len(steps['random'])} timed steps each way")
    for way in ("random", "grouped"):
        print(f"  {way:8s} median {results['median_step_ms'][way]:8.1f} ms   padded/real tokens {results['padded_over_real_tokens'][way]:.2f}")
    print(f"  ratio grouped / random: {results['ratio_grouped_over_random']:.3f} (below 1: grouping is faster)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
