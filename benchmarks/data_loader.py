"""Does our data loader keep up with the files? Samples per second through a stage's DataLoader (CLIP's
image-caption items: decode, resize to the tower's size, tokenise the caption, collate) against decoding the same
image files raw with Pillow into arrays, with the same workers (the stages load in the training process).

Both ways read the same generated Shapes dataset, alternating in rounds, the first pass of each untimed so the
files are in the page cache for both. It prints samples/s each way and the ratio loader / raw (goal >= 0.90) and
writes them to benchmarks/results/data_loader.json. A measurement, not a test: it exits 0 whatever the figures.

    python benchmarks/data_loader.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.figures import verdict, write_figures  # noqa: E402
from benchmarks.shapes_stage_data import shapes_stage_data  # noqa: E402
from components.data.llava_json import load_llava_json  # noqa: E402
from components.training.stage_data import build_dataloader, captions_file  # noqa: E402
from mmops.recipe import load_recipe  # noqa: E402

GOAL = 0.90


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "clip.yaml"))
    parser.add_argument("--stage", default="clip")
    parser.add_argument("--scenes", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None)
    return parser.parse_args(argv)


def loader_rate(loader) -> float:
    start, count = time.perf_counter(), 0
    for batch in loader:
        count += len(batch["pixel_values"])
    return count / (time.perf_counter() - start)


def raw_rate(files: list[Path]) -> float:
    start = time.perf_counter()
    for path in files:
        with Image.open(path) as image:
            np.asarray(image.convert("RGB"))
    return len(files) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    recipe = load_recipe(args.recipe).recipe
    stage = recipe.stage(args.stage)
    with shapes_stage_data(recipe, stage, args.scenes) as (data, tokenizer, dataset):
        loader = build_dataloader(dataset, stage.batch_size, tokenizer.pad_id, stage.seed, shuffle=False)
        files = [data / sample["image"] for sample in load_llava_json(captions_file(data, "train"))]
        loader_rate(loader), raw_rate(files)  # the page cache, for both
        rates: dict[str, list[float]] = {"loader": [], "raw": []}
        for _ in range(args.rounds):
            rates["loader"].append(loader_rate(loader))
            rates["raw"].append(raw_rate(files))
    medians = {way: statistics.median(r) for way, r in rates.items()}
    ratio = medians["loader"] / medians["raw"]
    print(f"{len(files)} images of {Path(args.recipe).name}'s {args.stage} stage, {args.rounds} rounds, 0 workers (the stages' setting)")
    for way, rate in medians.items():
        print(f"  {way:7s} {rate:10.0f} samples/s")
    print(f"  loader / raw decode: {verdict(ratio, GOAL, at_most=False)}")
    write_figures("data_loader", {
        "what": f"stage data loader vs raw Pillow decode of the same {len(files)} files ({Path(args.recipe).name} {args.stage})",
        "samples_per_s": {way: round(r, 1) for way, r in medians.items()}, "ratio": round(ratio, 4), "goal": GOAL, "at_most": False,
    }, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
